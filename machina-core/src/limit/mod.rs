//! Concurrent groups: how many calls may run at once, and how many may
//! start per sliding window or at what rate (exmachina's concurrent groups,
//! plus a token bucket).
//!
//! - [`Limits`] says what a group limits; [`GroupPolicy`] is the pure
//!   decision core, fed `now`, usable without any executor.
//! - [`ConcurrentGroup`] shares a policy between callers with a fair,
//!   cancel-safe wait queue; [`acquire_all`] takes several groups
//!   atomically. A group without a window of starts takes a start without
//!   a lock while nobody waits: its in-flight slots are one atomic word
//!   (`slots.rs`), and a rate whose interval is a whole number of
//!   nanoseconds another (`gcra.rs`); other rates keep the policy's exact
//!   arithmetic under the group's lock.
//! - [`Permit`] is the right to run one call; dropping it frees the slot.
//! - [`Limiter`] is what a call stack needs from any group (try, wait,
//!   give back); [`Group`] holds a local group or any other limiter.
//!
//! This module does not retry or time out calls (see `retry` and
//! [`Runtime::timeout`](crate::rt::Runtime::timeout)).
//!
//! # The window, exactly
//!
//! A group with `max_starts(n, window)` holds `n` start tokens. A start
//! spends one, and **that token returns exactly `window` after that start**,
//! however long the call runs — a sliding window on start times, not a
//! fixed window that resets on the clock. With 2 starts per 300 ms, calls
//! arriving at 0, 100, 150 and 160 ms start at 0, 100, 300 and 400 ms:
//!
//! ```
//! use machina_core::limit::{ConcurrentGroup, Limits};
//! use machina_core::testing::MockRuntime;
//! use std::time::Duration;
//!
//! let ms = Duration::from_millis;
//! let mock = MockRuntime::new();
//! let rt = mock.runtime();
//! let group = ConcurrentGroup::new(&rt, "api", Limits::new().max_starts(2, ms(300))).unwrap();
//! let handles: Vec<_> = [0, 100, 150, 160].into_iter().map(|arrival| {
//!     let (rt2, group) = (rt.clone(), group.clone());
//!     rt.spawn(async move {
//!         let t0 = rt2.now();
//!         rt2.sleep(ms(arrival)).await;
//!         let _permit = group.acquire().await;
//!         (rt2.now() - t0).as_millis()
//!     }).unwrap()
//! }).collect();
//! let starts = mock.block_on(async {
//!     let mut starts = Vec::new();
//!     for h in handles { starts.push(h.await.unwrap()); }
//!     starts
//! }).unwrap();
//! assert_eq!(starts, [0, 100, 300, 400]);
//! ```
//!
//! # When not to use it
//!
//! For a plain rate limit with bursts and no in-flight bound, a GCRA
//! limiter such as `governor` is lighter; for a plain in-flight bound, a
//! semaphore is.

mod acquire;
mod config;
mod error;
mod gcra;
mod group;
mod limiter;
mod permit;
mod policy;
mod queue;
mod slots;
mod sync;

pub use acquire::Acquire;
pub use config::Limits;
pub use error::{AcquireError, LimitError};
pub use group::{ConcurrentGroup, GroupGuard, GroupStats, acquire_all, try_acquire_all};
pub use limiter::{Group, IntoGroup, Lease, LimitFuture, Limiter, LimiterError};
pub use permit::Permit;
pub use policy::GroupPolicy;

#[cfg(all(test, loom))]
mod loom_model;
#[cfg(all(test, feature = "test-util"))]
mod props;
#[cfg(all(test, feature = "test-util"))]
mod tests;
