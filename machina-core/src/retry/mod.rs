//! Retry rules for calls (exmachina's `Retry`): which errors are retried,
//! how long to wait, how many times.
//!
//! - [`Rule`]: a wait sequence (a [`Wait`](crate::waits::Wait): fixed,
//!   Fibonacci, random range, exponential with jitter), the errors it
//!   matches (by type, `on::<E>()`, and by predicate, `when`), and a retry
//!   count that must be stated (`retries(n)` or `unlimited()`).
//! - [`Retry`]: rules in order; each failure is charged to the first
//!   matching rule with retries left. [`RetryState`] is the pure per-call
//!   bookkeeping, fed `now`, answering with a
//!   [`Decision`](crate::decision::Decision).
//! - [`RetryBudget`]: a cap on the share of recent calls that may be
//!   retries.
//!
//! This module does not sleep, limit or time out calls: a `Retry` is one
//! layer of a [`CallStack`](crate::call::CallStack), whose driver waits;
//! [`Retry::call`] is that stack with the retry layer alone.

mod budget;
mod call;
mod policy;
mod rule;

#[cfg(all(test, feature = "test-util"))]
mod props;
#[cfg(all(test, feature = "test-util"))]
pub(crate) mod tests;

pub use budget::{BudgetError, BudgetState, RetryBudget};
pub use policy::{Retry, RetryState, RetryStats};
pub use rule::{DEFAULT_HINT_CAP, Rule, RuleBuilder};
