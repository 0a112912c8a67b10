//! The cross-runtime harness: one test body, run on the mock runtime and on
//! every adapter.
//!
//! [`cross_runtime!`] turns each `async fn name(rt: Runtime, env: Env)` into
//! a module `name` with one `#[test]` per runtime: `mock`, `tokio_mt`,
//! `tokio_ct`, `smol` and `async_std`. `cargo test smol` runs one runtime's
//! share. Bodies assert exact instants on the mock runtime and coarse ones
//! elsewhere through [`Env`].

#![allow(
    dead_code,
    reason = "each test binary uses its own share of the harness"
)]

use std::future::Future;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use machina_core::rt::Runtime;
use machina_core::testing::MockRuntime;

pub(crate) mod nginx;

/// How long a body may run on a real runtime before the harness fails it
/// instead of hanging CI.
const REAL_RUNTIME_WATCHDOG: Duration = Duration::from_secs(60);

/// How long virtual time may run on the mock runtime.
const MOCK_TIME_LIMIT: Duration = Duration::from_secs(60 * 60 * 24 * 365);

/// Which runtime a body is running on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `machina_core::testing::MockRuntime`.
    Mock,
    /// tokio's multi-thread runtime, two workers.
    TokioMultiThread,
    /// tokio's current-thread runtime.
    TokioCurrentThread,
    /// smol: an `async_executor::Executor` driven by the test thread.
    Smol,
    /// async-std's global executor.
    AsyncStd,
}

/// What a body knows about where it runs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Env {
    /// The runtime.
    pub(crate) kind: Kind,
}

impl Env {
    /// Whether time is virtual (exact) rather than real (coarse).
    pub(crate) fn is_virtual(&self) -> bool {
        self.kind == Kind::Mock
    }

    /// On the mock runtime `actual == expected`; on a real one
    /// `actual >= expected` (and not absurdly late).
    #[track_caller]
    pub(crate) fn assert_elapsed(&self, actual: Duration, expected: Duration) {
        if self.is_virtual() {
            assert_eq!(actual, expected, "exact virtual time");
        } else {
            assert!(
                actual >= expected,
                "{actual:?} should be at least {expected:?}"
            );
            assert!(
                actual < expected + Duration::from_secs(5),
                "{actual:?} is far past {expected:?}"
            );
        }
    }

    /// On the mock runtime `actual == expected`; on a real one `actual`
    /// lies in `[expected, expected + slack]`.
    #[track_caller]
    pub(crate) fn assert_about(&self, actual: Duration, expected: Duration, slack: Duration) {
        if self.is_virtual() {
            assert_eq!(actual, expected, "exact virtual time");
        } else {
            assert!(
                actual >= expected && actual <= expected + slack,
                "{actual:?} should be within [{expected:?}, {expected:?} + {slack:?}]"
            );
        }
    }
}

/// An ordered record of what happened, shared between tasks.
pub(crate) type Log = Arc<std::sync::Mutex<Vec<String>>>;

/// A new, empty [`Log`].
pub(crate) fn log() -> Log {
    Arc::new(std::sync::Mutex::new(Vec::new()))
}

/// Appends to a [`Log`].
pub(crate) fn push(log: &Log, entry: impl Into<String>) {
    log.lock().expect("log").push(entry.into());
}

/// What a [`Log`] holds now.
pub(crate) fn entries(log: &Log) -> Vec<String> {
    log.lock().expect("log").clone()
}

/// Runs `body` on the mock runtime.
pub(crate) fn run_mock<F, Fut>(body: F)
where
    F: FnOnce(Runtime, Env) -> Fut,
    Fut: Future<Output = ()>,
{
    let mock = MockRuntime::builder().time_limit(MOCK_TIME_LIMIT).build();
    let rt = mock.runtime();
    mock.block_on(body(rt, Env { kind: Kind::Mock }))
        .expect("the body finished on the mock runtime");
}

/// Runs `body` on a fresh thread, failing the test if it takes longer than
/// the watchdog allows, and re-raising its panic if it panics.
fn with_watchdog(run: impl FnOnce() + Send + 'static) {
    let (done_tx, done_rx) = mpsc::channel();
    let worker = std::thread::spawn(move || {
        run();
        let _ = done_tx.send(());
    });
    match done_rx.recv_timeout(REAL_RUNTIME_WATCHDOG) {
        Ok(()) => worker.join().expect("body thread"),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            if let Err(panic) = worker.join() {
                std::panic::resume_unwind(panic);
            }
        }
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!("the body did not finish within {REAL_RUNTIME_WATCHDOG:?} on a real runtime")
        }
    }
}

/// Runs `body` inside a tokio runtime built by `builder`.
fn run_tokio<F, Fut>(mut builder: tokio::runtime::Builder, kind: Kind, body: F)
where
    F: FnOnce(Runtime, Env) -> Fut + Send + 'static,
    Fut: Future<Output = ()>,
{
    with_watchdog(move || {
        let tokio_rt = builder.enable_all().build().expect("tokio runtime");
        tokio_rt.block_on(async move {
            let rt = machina_tokio::runtime().expect("inside tokio");
            body(rt, Env { kind }).await;
        });
    });
}

/// Runs `body` on a tokio multi-thread runtime with two workers.
pub(crate) fn run_tokio_mt<F, Fut>(body: F)
where
    F: FnOnce(Runtime, Env) -> Fut + Send + 'static,
    Fut: Future<Output = ()>,
{
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.worker_threads(2);
    run_tokio(builder, Kind::TokioMultiThread, body);
}

/// Runs `body` on a tokio current-thread runtime.
pub(crate) fn run_tokio_ct<F, Fut>(body: F)
where
    F: FnOnce(Runtime, Env) -> Fut + Send + 'static,
    Fut: Future<Output = ()>,
{
    run_tokio(
        tokio::runtime::Builder::new_current_thread(),
        Kind::TokioCurrentThread,
        body,
    );
}

/// Runs `body` on a smol executor driven by the test's thread.
pub(crate) fn run_smol<F, Fut>(body: F)
where
    F: FnOnce(Runtime, Env) -> Fut + Send + 'static,
    Fut: Future<Output = ()>,
{
    with_watchdog(move || {
        let executor = Arc::new(async_executor::Executor::new());
        let rt = machina_smol::runtime_on(&executor);
        smol::block_on(executor.run(body(rt, Env { kind: Kind::Smol })));
    });
}

/// Runs `body` on async-std.
pub(crate) fn run_async_std<F, Fut>(body: F)
where
    F: FnOnce(Runtime, Env) -> Fut + Send + 'static,
    Fut: Future<Output = ()>,
{
    with_watchdog(move || {
        let rt = machina_async_std::runtime();
        async_std::task::block_on(body(
            rt,
            Env {
                kind: Kind::AsyncStd,
            },
        ));
    });
}

/// Declares behaviour tests that run on every runtime from one body.
///
/// ```ignore
/// cross_runtime! {
///     async fn spawn_and_join(rt: Runtime, env: Env) {
///         assert_eq!(rt.spawn(async { 1 }).unwrap().await.unwrap(), 1);
///     }
/// }
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

/// Like [`cross_runtime!`], for bodies that wait on real threads, which the
/// mock runtime cannot see finish: only the real runtimes.
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

/// One module per body, with one `#[test]` per listed runtime, each
/// running the body through its `support::run_*` function.
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
            async fn body($rt: Runtime, $env: Env) $body

            $(
                #[test]
                fn $test() {
                    $crate::support::$runner(body);
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
