//! The runners behind [`cross_runtime!`](crate::cross_runtime): each runs
//! a body `FnOnce(Runtime, Env) -> impl Future<Output = ()>` on one
//! runtime, real ones on a thread of their own under a watchdog.

use std::future::Future;
use std::sync::{Arc, mpsc};
use std::time::Duration;

use machina_core::Runtime;
use machina_core::testing::MockRuntime;

use crate::env::{Env, Kind};

/// How long a body may run on a real runtime before the runner fails it
/// instead of hanging the test run.
const REAL_RUNTIME_WATCHDOG: Duration = Duration::from_secs(60);

/// How long virtual time may run on the mock runtime.
const MOCK_TIME_LIMIT: Duration = Duration::from_secs(60 * 60 * 24 * 365);

/// Runs `body` on a fresh mock runtime (FIFO order, virtual time up to a
/// year).
///
/// # Panics
/// If the body panics, or the mock runtime stalls with the body unfinished
/// (a deadlock) or runs past the time limit.
pub fn run_mock<F, Fut>(body: F)
where
    F: FnOnce(Runtime, Env) -> Fut,
    Fut: Future<Output = ()>,
{
    let mock = MockRuntime::builder().time_limit(MOCK_TIME_LIMIT).build();
    let rt = mock.runtime();
    if let Err(error) = mock.block_on(body(rt, Env::new(Kind::Mock))) {
        panic!("the body did not finish on the mock runtime: {error}");
    }
}

/// Runs `run` on a fresh thread; fails if it takes longer than the
/// watchdog allows, and re-raises its panic.
fn with_watchdog(run: impl FnOnce() + Send + 'static) {
    let (done_tx, done_rx) = mpsc::channel();
    let worker = std::thread::spawn(move || {
        run();
        let _ = done_tx.send(());
    });
    match done_rx.recv_timeout(REAL_RUNTIME_WATCHDOG) {
        Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => {
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
        let tokio_rt = match builder.enable_all().build() {
            Ok(rt) => rt,
            Err(error) => panic!("tokio runtime: {error}"),
        };
        tokio_rt.block_on(async move {
            let rt = match machina_tokio::runtime() {
                Ok(rt) => rt,
                Err(error) => panic!("machina-tokio runtime: {error}"),
            };
            body(rt, Env::new(kind)).await;
        });
    });
}

/// Runs `body` on a tokio multi-thread runtime with two workers.
///
/// # Panics
/// If the body panics or runs past the 60 s watchdog.
pub fn run_tokio_mt<F, Fut>(body: F)
where
    F: FnOnce(Runtime, Env) -> Fut + Send + 'static,
    Fut: Future<Output = ()>,
{
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.worker_threads(2);
    run_tokio(builder, Kind::TokioMultiThread, body);
}

/// Runs `body` on a tokio current-thread runtime.
///
/// # Panics
/// If the body panics or runs past the 60 s watchdog.
pub fn run_tokio_ct<F, Fut>(body: F)
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

/// Runs `body` on a smol executor driven by the body's thread.
///
/// # Panics
/// If the body panics or runs past the 60 s watchdog.
pub fn run_smol<F, Fut>(body: F)
where
    F: FnOnce(Runtime, Env) -> Fut + Send + 'static,
    Fut: Future<Output = ()>,
{
    with_watchdog(move || {
        let executor = Arc::new(async_executor::Executor::new());
        let rt = machina_smol::runtime_on(&executor);
        smol::block_on(executor.run(body(rt, Env::new(Kind::Smol))));
    });
}

/// Runs `body` on async-std's global executor.
///
/// # Panics
/// If the body panics or runs past the 60 s watchdog.
pub fn run_async_std<F, Fut>(body: F)
where
    F: FnOnce(Runtime, Env) -> Fut + Send + 'static,
    Fut: Future<Output = ()>,
{
    with_watchdog(move || {
        let rt = machina_async_std::runtime();
        async_std::task::block_on(body(rt, Env::new(Kind::AsyncStd)));
    });
}
