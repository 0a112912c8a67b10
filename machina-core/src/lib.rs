//! # machina-core
//!
//! The runtime-agnostic heart of Machina, a framework for bots and
//! long-running async services: programs that run forever, on a schedule,
//! within rate limits, and survive failure.
//!
//! This crate names no async runtime. It is written against the small
//! [`rt::Spawn`] and [`rt::Timer`] traits, bundled in an [`rt::Runtime`]
//! handle; the adapter crates `machina-tokio`, `machina-smol` and
//! `machina-async-std` provide that handle for their executor and re-export
//! this crate, so application code depends on one adapter only.
//!
//! | module | owns |
//! | --- | --- |
//! | [`rt`] | the runtime boundary: spawn, join handles, clock, sleep, timeout, interval, seeded RNG |
//! | [`schedule`] | when periodic work runs: `After` / `FixedRate`, exmachina interval strings |
//! | [`error`] | `BoxError`, and `ErrorMatcher`: which errors a layer cares about (by type through `source()`, by predicate, any) |
//! | [`waits`] | `Wait` / `Waits`: every waiting sequence (fixed, Fibonacci, random range, exponential, jitter), pure and seedable |
//! | [`decision`] | `Decision`: what every pure policy answers (proceed / wait until an instant / give up, with a `Reason`) |
//! | [`call`] | the call pipeline: a `CallStack` of layers (groups → breaker → retry → attempt timeout → deadline), one driver, one `CallError` |
//! | [`limit`] | concurrent groups: max in flight, max starts per sliding window, token bucket; the `Limiter` trait |
//! | [`retry`] | retry rules (fixed, Fibonacci, random range, exponential jitter), matching, budget: a layer |
//! | [`loops`] | `Loop`: periodic work (discord.ext.tasks), a pure `Cadence` that says when the next run is due, and the task that drives it |
//! | [`bot`] | `Machina` bots: emits (loops whose body gets an `Event`) and executes (handlers on a call stack) |
//! | [`backoff`] | aiomisc `asyncbackoff`: per-attempt timeout, deadline, pauses, max tries, giveup — a stack preset |
//! | [`breaker`] | circuit breaker: passing, broken, recovering with a seeded ramp: a layer |
//! | [`aggregate`] | call aggregation: single-argument calls batched by leeway and size |
//! | [`fs`] | files off the executor: read, write, append, lines on the blocking pool; gzip/zstd with feature `compression` |
//! | [`timeline`] | a recorder of a bot's ticks and calls, and its SVG picture |
//! | [`workers`] | a bounded pool of worker threads with an async submit |
//! | [`pool`] | a generic async pool of reusable instances over a `Manager` |
//! | [`stats`] | one snapshot of every registered component's counters; `metrics` export |
//! | [`service`] | services: `Service`, the dependency-graph `Supervisor`, shared `Context` |
//! | `testing` (feature `test-util`) | [`MockRuntime`](testing::MockRuntime): a deterministic executor with a virtual clock |
//! | [`guide`] | documentation only: a newcomer's guide in chapters (first bot, virtual time, services, adapters, resilience), every example a doctest |
//!
//! ## Testing on virtual time
//!
//! With the `test-util` feature, any code written against [`rt::Runtime`]
//! runs on the mock runtime, where a simulated day takes milliseconds and
//! every instant is exact:
//!
//! ```
//! use machina_core::testing::MockRuntime;
//! use std::time::Duration;
//!
//! let mock = MockRuntime::new();
//! let rt = mock.runtime();
//! let day = mock.block_on(async move {
//!     let start = rt.now();
//!     rt.sleep(Duration::from_secs(86_400)).await;
//!     rt.now() - start
//! }).unwrap();
//! assert_eq!(day, Duration::from_secs(86_400));
//! ```
//!
//! ## When not to use it
//!
//! If a program needs only one executor and no schedules, limits or
//! supervision, the executor's own primitives are simpler.

// `unsafe` is denied everywhere but in `rt/task.rs` (one allocation per
// spawned task), which says why and is model-checked with loom.
#![deny(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod aggregate;
pub mod backoff;
pub mod bot;
pub mod breaker;
pub mod call;
pub mod decision;
pub mod error;
pub mod fs;
pub mod guide;
pub mod limit;
pub mod loops;
pub mod net;
pub mod pool;
pub mod retry;
pub mod rt;
pub mod schedule;
pub mod service;
pub mod stats;
#[cfg(test)]
mod test_kit;
#[cfg(feature = "test-util")]
pub mod testing;
pub mod timeline;
pub mod waits;
pub mod workers;

pub use error::BoxError;
pub use rt::{JoinError, JoinHandle, MissedTick, Runtime};
