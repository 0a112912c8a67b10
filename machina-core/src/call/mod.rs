//! One call pipeline: the layers that limit, refuse, retry and time-box an
//! async operation, run by one driver with one error type.
//!
//! A [`CallStack`] holds the layers; [`CallStack::run`] runs an operation
//! through them and returns its value or a [`CallError`]. The resilience
//! types keep their names and become layers: a
//! [`ConcurrentGroup`](crate::limit::ConcurrentGroup) or any
//! [`Limiter`](crate::limit::Limiter), a
//! [`CircuitBreaker`](crate::breaker::CircuitBreaker), a
//! [`Retry`](crate::retry::Retry) (with its budget), and the per-attempt
//! timeout and overall deadline of aiomisc's `asyncbackoff`.
//! `Retry::call`, `Backoff::run`, `CircuitBreaker::call` and a bot's
//! `Execute::call` are all this driver with some layers set.
//!
//! # The order of the layers
//!
//! ```text
//! deadline ─────────────────────────────────────────────────────────┐
//! │ retry: after a failed attempt, wait until the rules say, or stop │
//! │ ┌─ one attempt ────────────────────────────────────────────────┐ │
//! │ │ groups: wait for a slot and a start in every group (all/none)│ │
//! │ │ breaker: admitted, or refused (the operation does not run)   │ │
//! │ │ attempt timeout ┌───────────┐                                │ │
//! │ │                 │ operation │ → outcome counted by breaker   │ │
//! │ │                 └───────────┘                                │ │
//! │ │ slots given back                                             │ │
//! │ └──────────────────────────────────────────────────────────────┘ │
//! └──────────────────────────────────────────────────────────────────┘
//! ```
//!
//! - A slot is held only while an attempt runs: never during a retry's
//!   wait. Each attempt is a new start in every group.
//! - The operation is called (its future made) only once the attempt holds
//!   its slots and the breaker admitted it.
//! - A refusal by a layer (a [`CircuitOpen`](crate::breaker::CircuitOpen),
//!   a [`LimiterError`](crate::limit::LimiterError)) is an error with a
//!   [`Refusal`](crate::decision::Refusal) in its source chain: a retry rule
//!   retries it only if it names its type.
//! - The deadline bounds everything: group waits, attempts and the waits
//!   between them. A retry whose wait would end at or past the deadline is
//!   not waited for.
//! - Dropping the call's future at any point gives back every slot it
//!   held; an attempt cut short is not counted in the breaker's window,
//!   only among the calls it let through (`BreakerStats::passing`).

mod driver;
mod error;
mod stack;

pub(crate) use driver::{Layers, run};
pub use error::{AsDynError, AttemptTimedOut, Boxed, CallError, CallErrorKind, Direct, Layer};
pub use stack::CallStack;

#[cfg(all(test, feature = "test-util"))]
mod tests;
