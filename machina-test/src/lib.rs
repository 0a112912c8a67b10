//! # machina-test
//!
//! Testing a Machina program the way Machina tests itself (aiomisc's
//! pytest plugin, in Rust):
//!
//! - [`cross_runtime!`]: one `async fn name(rt: Runtime, env: Env)` body
//!   becomes a module `name` with one `#[test]` per runtime — `mock`,
//!   `tokio_mt`, `tokio_ct`, `smol` and `async_std` — so `cargo test smol`
//!   runs one runtime's share. [`real_runtimes!`] does the same without the
//!   mock runtime, for bodies that wait on real threads.
//! - [`Env`]: what a body knows about where it runs, and assertions that
//!   are exact on virtual time and coarse on a real clock.
//! - [`MockStack`]: a service stack started on a fresh mock runtime, to
//!   drive through virtual time.
//! - [`free_port`]: an unused loopback port for a server under test.
//!
//! In a test file (`tests/timing.rs`):
//!
//! ```
//! use machina_test::cross_runtime;
//! use std::time::Duration;
//!
//! cross_runtime! {
//!     /// A sleep takes as long as it says: exactly on the mock runtime,
//!     /// at least as long on a real one.
//!     async fn sleeping_takes_its_time(rt: Runtime, env: Env) {
//!         let t0 = rt.now();
//!         rt.sleep(Duration::from_millis(20)).await;
//!         env.assert_elapsed(rt.now() - t0, Duration::from_millis(20));
//!     }
//! }
//! # fn main() {}
//! ```
//!
//! `cargo test` then lists `sleeping_takes_its_time::mock`, `::tokio_mt`,
//! `::tokio_ct`, `::smol` and `::async_std`. The runners also work alone:
//!
//! ```
//! use std::time::Duration;
//!
//! machina_test::run_smol(|rt, env| async move {
//!     let t0 = rt.now();
//!     rt.sleep(Duration::from_millis(5)).await;
//!     env.assert_elapsed(rt.now() - t0, Duration::from_millis(5));
//! });
//! ```
//!
//! Each real-runtime body runs on a thread of its own under a watchdog
//! (60 s), so a body that hangs fails its test instead of the run; on the
//! mock runtime, virtual time may run for a year.

#![forbid(unsafe_code)]

mod env;
mod port;
mod runners;
mod stack;

pub use env::{Env, FAST_CLOCK_SLACK, Kind};
pub use machina_core::Runtime;
pub use port::free_port;
pub use runners::{run_async_std, run_mock, run_smol, run_tokio_ct, run_tokio_mt};
pub use stack::{MockStack, MockStackError};

/// Declares tests that run one body on the mock runtime and on every
/// adapter: each `async fn name(rt: Runtime, env: Env) { .. }` becomes a
/// module `name` with the tests `mock`, `tokio_mt`, `tokio_ct`, `smol` and
/// `async_std`. Doc comments on a body are kept. `Runtime` and `Env` in
/// the signature are this crate's [`Runtime`] and [`Env`] (no import
/// needed); the body sees the items of the module it is declared in.
///
/// # Examples
///
/// ```
/// use machina_test::{Kind, cross_runtime};
///
/// cross_runtime! {
///     async fn spawn_and_join(rt: Runtime, env: Env) {
///         let value = rt.spawn(async { 6 * 7 }).unwrap().await.unwrap();
///         assert_eq!(value, 42);
///         assert_eq!(env.is_virtual(), env.kind == Kind::Mock);
///     }
/// }
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! cross_runtime {
    ($($items:tt)*) => {
        $crate::runtime_tests! {
            [mock => run_mock, tokio_mt => run_tokio_mt, tokio_ct => run_tokio_ct,
             smol => run_smol, async_std => run_async_std]
            $($items)*
        }
    };
}

/// Like [`cross_runtime!`], without the mock runtime: for bodies that wait
/// on real threads (blocking work, OS processes), which virtual time cannot
/// see finish.
#[macro_export]
macro_rules! real_runtimes {
    ($($items:tt)*) => {
        $crate::runtime_tests! {
            [tokio_mt => run_tokio_mt, tokio_ct => run_tokio_ct,
             smol => run_smol, async_std => run_async_std]
            $($items)*
        }
    };
}

/// The machinery of [`cross_runtime!`] and [`real_runtimes!`]: one module
/// per body, with one `#[test]` per listed runtime, each running the body
/// through the crate's `run_*` function of that name.
#[doc(hidden)]
#[macro_export]
macro_rules! runtime_tests {
    (
        @module [$($test:ident => $runner:ident),*]
        $(#[doc = $doc:literal])*
        $name:ident($rt:ident, $env:ident) $body:block
    ) => {
        $(#[doc = $doc])*
        mod $name {
            #[allow(unused_imports, reason = "bodies use what they need")]
            use super::*;

            #[allow(unused_variables, reason = "not every body needs its Env")]
            async fn body($rt: $crate::Runtime, $env: $crate::Env) $body

            $(
                /// The body on this runtime.
                #[test]
                pub fn $test() {
                    $crate::$runner(body);
                }
            )*
        }
    };
    (
        $runners:tt
        $(
            $(#[doc = $doc:literal])*
            async fn $name:ident($rt:ident : Runtime, $env:ident : Env) $body:block
        )*
    ) => {$(
        $crate::runtime_tests! {
            @module $runners
            $(#[doc = $doc])*
            $name($rt, $env) $body
        }
    )*};
}
