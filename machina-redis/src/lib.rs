//! Machina on Redis: one bot run as N replicas.
//!
//! - [`RedisGroup`]: a concurrent group every replica shares — in-flight
//!   leases with a TTL, a sliding window of starts, a GCRA token bucket —
//!   behind the same [`Limiter`](machina_core::limit::Limiter) trait as a
//!   local group, one atomic script and one round trip per decision.
//! - [`Singleton`]: a [`TickGate`](machina_core::bot::TickGate) for an
//!   emit that must run on exactly one replica per tick — a leader lease
//!   renewed while held, failover within its TTL, a fencing token for the
//!   body.
//! - [`RedisQueue`]: executes submitted by name to a Redis Stream that
//!   every replica consumes — at least once, acknowledged after the
//!   handler, claimed from a dead consumer, dead-lettered after N
//!   deliveries, with results a caller can await.
//! - [`Redis`]: the server, the key prefix and the timeouts; [`keys`]
//!   names every key.
//!
//! Redis I/O runs on tokio inside a tokio runtime and on smol elsewhere
//! (features `tokio` and `smol`, both on by default: redis' `tokio-comp`
//! and `smol-comp`; async-std runs on async-io, so the smol path serves
//! it). `rediss://` needs the feature `tls`.
#![forbid(unsafe_code)]

#[cfg(not(any(feature = "tokio", feature = "smol")))]
compile_error!("machina-redis needs the feature `tokio` or `smol` (or both, the default)");

mod client;
mod closed;
mod error;
mod group;
pub mod keys;
mod queue;
mod singleton;
mod subscription;
mod sync;
#[cfg(feature = "test-util")]
pub mod testing;

pub use client::Redis;
pub use error::RedisError;
pub use group::{OnUnavailable, RedisGroup, RedisGroupBuilder, RedisGroupError, RedisGroupStats};
pub use queue::{QueueConsumer, QueueError, QueueStats, RedisQueue, RedisQueueBuilder};
pub use singleton::{Singleton, SingletonBuilder, SingletonError};
