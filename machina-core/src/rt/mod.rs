//! The runtime boundary: the only place where Machina meets an executor.
//!
//! An adapter implements two small object-safe traits, [`Spawn`] and
//! [`Timer`], and wraps them in a [`Runtime`]; one with a reactor adds
//! [`Sockets`] for the network services. Everything else in Machina
//! (schedulers, limiters, retry, services) is written against `Runtime`, so
//! it runs unchanged on tokio, smol, async-std and the deterministic mock
//! runtime ([`crate::testing`]).
//!
//! What this module does not own: executors themselves (the adapter crates
//! and `testing` do) and any policy (those live in their own modules and are
//! fed `Runtime::now()`).
//!
//! Guarantees, the same on every executor:
//! - awaiting a [`JoinHandle`] gives `Result<T, JoinError>`; a panic is
//!   caught and reported as [`JoinError::Panicked`], and never takes the
//!   executor down; an aborted task reports [`JoinError::Cancelled`];
//! - dropping a `JoinHandle` detaches the task;
//! - time is read only through [`Runtime::now`], randomness drawn only from
//!   [`Runtime::rng`].

mod coarse;
mod fast;
mod interval;
#[cfg(feature = "io")]
mod io_sockets;
mod join;
mod rng;
mod runtime;
mod select;
mod sockets;
mod spawn;
mod system;
mod task;
mod threads;
mod timeout;
mod timer;
mod yield_now;

pub use coarse::CoarseClock;
pub use fast::FastClock;
pub(crate) use interval::Grid;
pub use interval::{Interval, IntervalError, MissedTick};
#[cfg(feature = "io")]
pub use io_sockets::IoSockets;
pub(crate) use join::panic_message;
pub use join::{AbortHandle, JoinError, JoinHandle, PanicPayload};
pub use rng::RuntimeRng;
pub use runtime::Runtime;
pub use select::{Losers, Selected, cancel_all, select, select_tasks, select_timeout};
pub use sockets::{ByteStream, Connection, IoFuture, NoSockets, Sockets, TcpListen, UdpIo};
pub use spawn::{BlockingFn, BoxFuture, Spawn, SpawnError};
#[cfg(feature = "io")]
pub use system::IoTimer;
pub use system::SystemTimer;
pub use task::Task;
pub use threads::{ThreadError, ThreadedStream, sync_wait};
pub use timeout::{Elapsed, Timeout};
pub(crate) use timer::instant_after;
pub use timer::{Sleep, SleepFuture, Timer};
pub use yield_now::{YieldNow, yield_now};

#[cfg(test)]
mod tests {
    use super::*;

    // Compile-time proof that the boundary traits are object-safe and that
    // the handle types can cross threads.
    #[allow(dead_code, reason = "only type-checked")]
    fn object_safe(_: &dyn Spawn, _: &dyn Timer) {}
    #[allow(dead_code, reason = "only type-checked")]
    fn send_sync<T: Send + Sync>() {}
    #[allow(dead_code, reason = "only type-checked")]
    fn handles_are_send_sync() {
        send_sync::<Runtime>();
        send_sync::<JoinHandle<()>>();
        send_sync::<AbortHandle>();
        send_sync::<JoinError>();
        send::<Interval>();
        send::<Sleep>();
    }
    #[allow(dead_code, reason = "only type-checked")]
    fn send<T: Send>() {}
}
