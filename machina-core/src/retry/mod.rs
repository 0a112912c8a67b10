//! Retry rules for calls (exmachina's `Retry`): which errors are retried,
//! how long to wait, how many times.
//!
//! - [`Rule`]: a wait sequence ([`Wait`]: fixed, Fibonacci, random range,
//!   exponential with jitter), the errors it matches (by type, `on::<E>()`,
//!   and by predicate, `when`), and a retry count that must be stated
//!   (`retries(n)` or `unlimited()`).
//! - [`Retry`]: rules in order; each failure is charged to the first
//!   matching rule with retries left. [`RetryState`] is the pure per-call
//!   bookkeeping; [`Retry::call`] and [`Retry::call_limited`] run a call
//!   with it, sleeping through the runtime.
//! - [`RetryBudget`]: a cap on the share of recent calls that may be
//!   retries.
//!
//! Timeouts per attempt and deadlines for a whole call are the `backoff`
//! module's (aiomisc `asyncbackoff`).

mod budget;
mod call;
mod policy;
mod rule;
mod wait;

#[cfg(all(test, feature = "test-util"))]
mod tests;

pub use budget::{BudgetError, BudgetState, RetryBudget};
pub use policy::{Decision, GiveUpReason, Retry, RetryState, RetryStats};
pub use rule::{BoxError, DEFAULT_HINT_CAP, Rule, RuleBuilder};
pub use wait::{Wait, Waits};
