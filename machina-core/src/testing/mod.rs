//! Deterministic testing on virtual time (feature `test-util`).
//!
//! [`MockRuntime`] is a single-threaded executor whose clock moves only when
//! every task is idle, and then exactly to the next timer. Code written
//! against [`Runtime`](crate::rt::Runtime) runs on it unchanged, so a
//! simulated day of schedules takes milliseconds and every instant can be
//! asserted exactly.
//!
//! [`MemoryNet`] is a loopback network in memory: given to a mock runtime
//! (`Runtime::with_sockets`), the network services and clients run on
//! virtual time too.
//!
//! This module owns the mock executor and its clock; it is not meant for
//! production use, and a task that waits on a real thread cannot make
//! progress on it.

mod clock;
mod error;
mod executor;
mod memory_net;
mod sleep;
mod task;

pub use error::MockError;
pub use executor::{MockRuntime, MockRuntimeBuilder};
pub use memory_net::MemoryNet;

#[cfg(test)]
mod tests;
