//! Circuit breaker (aiomisc `CircuitBreaker` and `cutout`): stop calling a
//! failing dependency for a while, then probe it back to health.
//!
//! - [`BreakerMachine`]: the pure state machine (`Passing`, `Broken`,
//!   `Recovering`), fed `now`; its docs state the rules exactly.
//! - [`CircuitBreaker`]: the shared breaker around calls, on the runtime's
//!   clock and seeded random generator; `call(fut)` or the guard form
//!   `enter()` … `success()` / `failure(&e)`.
//!
//! A refusal is a [`CircuitOpen`] error (with a
//! [`Refusal`](crate::decision::Refusal) in its source chain); a
//! [`Retry`](crate::retry::Retry) rule retries it only if it names that
//! type (`.on::<CircuitOpen>()`). In a [`call`](crate::call) stack the
//! breaker is one layer; `CircuitBreaker::call` is that stack with the
//! breaker alone.
//!
//! While the breaker is plainly passing, entering a call needs neither the
//! clock nor the lock (the trip rule is evaluated as outcomes arrive), and
//! a success is one clock read and one atomic increment into the window's
//! current bucket (folded into the machine under the lock before anything
//! reads the window); failures and everything outside the passing state
//! take the lock.

mod circuit;
mod state;
mod tally;
mod window;

pub use circuit::{BreakerBuilder, BreakerConfigError, BreakerGuard, CircuitBreaker, CircuitOpen};
pub use state::{Admission, BreakerMachine, BreakerSettings, BreakerStats, CircuitState};

#[cfg(all(test, feature = "test-util"))]
mod circuit_props;
#[cfg(all(test, feature = "test-util"))]
mod props;
#[cfg(all(test, feature = "test-util"))]
mod tests;
