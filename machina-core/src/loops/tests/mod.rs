//! Behaviour tests of [`Loop`] on the mock runtime, asserting exact virtual
//! instants: bodies and hooks record `rt.now() - t0` as they run.
//!
//! Shared helpers live here; each submodule covers one area of the issue:
//! the schedules, the lifecycle (count, start, stop, cancel, restart and
//! what the handle reports), the hooks and their order for every ending,
//! reconnection after handled errors, and `change_interval`.

mod cadence;
mod change_interval;
mod hooks;
mod lifecycle;
mod reconnect;
mod schedules;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::{Loop, LoopBuilder, LoopEnd, LoopError, LoopPanicked, LoopRun, SharedError};
use crate::error::BoxError;
use crate::rt::{MissedTick, Runtime};
use crate::schedule::Schedule;
use crate::testing::MockRuntime;

pub(super) use crate::test_kit::secs;

pub(super) use crate::test_kit::ms;

/// Each of `list`, in seconds.
pub(super) fn all_secs<const N: usize>(list: [u64; N]) -> Vec<Duration> {
    list.into_iter().map(secs).collect()
}

/// A fresh mock runtime (FIFO, seed 0), its handle, and the instant every
/// test measures from.
pub(super) fn setup() -> (MockRuntime, Runtime, Instant) {
    let mock = MockRuntime::new();
    let rt = mock.runtime();
    let t0 = rt.now();
    (mock, rt, t0)
}

/// A seeded mock runtime (shuffled ready order, seeded random generator),
/// its handle and `t0`.
pub(super) fn setup_seeded(seed: u64) -> (MockRuntime, Runtime, Instant) {
    let mock = MockRuntime::with_seed(seed);
    let rt = mock.runtime();
    let t0 = rt.now();
    (mock, rt, t0)
}

pub(super) fn after(interval: Duration) -> Schedule {
    Schedule::after(interval).unwrap()
}

pub(super) fn fixed(period: Duration, missed: MissedTick) -> Schedule {
    Schedule::fixed_rate(period, missed).unwrap()
}

/// Moves virtual time forward to `t0 + at`, running everything due on
/// the way.
pub(super) fn advance_to(mock: &MockRuntime, t0: Instant, at: Duration) {
    let target = t0 + at;
    let now = mock.now();
    assert!(target >= now, "advance_to({at:?}) is in the past");
    mock.advance(target - now).unwrap();
}

/// Drives `run` to its end and gives how it ended.
pub(super) fn finish(mock: &MockRuntime, run: LoopRun) -> Result<LoopEnd, SharedError> {
    mock.block_on(run)
        .expect("the mock runtime stalled")
        .expect("the loop task was cancelled or panicked")
}

/// `next_iteration` as virtual time since `t0`.
pub(super) fn next_at(lp: &Loop, t0: Instant) -> Option<Duration> {
    lp.next_iteration().map(|at| at - t0)
}

pub(super) use crate::test_kit::{Log, entries, log, push};

/// An expected event: `what` at `at` seconds after `t0`.
pub(super) fn ev(what: &'static str, at: u64) -> (&'static str, Duration) {
    (what, secs(at))
}

/// What bodies and hooks saw, each with the virtual time since `t0`.
#[derive(Clone)]
pub(super) struct Recorder {
    pub(super) rt: Runtime,
    pub(super) t0: Instant,
    /// Named events in the order they happened.
    events: Log<(&'static str, Duration)>,
    /// `current_loop` at the start of every body call (retries included).
    loops: Log<u64>,
    /// `next_iteration` at the start of every body call.
    nexts: Log<Option<Duration>>,
    /// The errors `on_error` was given.
    errors: Log<SharedError>,
}

impl Recorder {
    pub(super) fn new(rt: &Runtime, t0: Instant) -> Self {
        Recorder {
            rt: rt.clone(),
            t0,
            events: log(),
            loops: log(),
            nexts: log(),
            errors: log(),
        }
    }

    pub(super) fn since_t0(&self) -> Duration {
        self.rt.now() - self.t0
    }

    pub(super) fn mark(&self, what: &'static str) {
        push(&self.events, (what, self.since_t0()));
    }

    /// Marks the start of a body call and what the loop said about itself.
    fn body_started(&self, lp: &Loop) {
        self.mark("body");
        push(&self.loops, lp.current_loop());
        push(&self.nexts, next_at(lp, self.t0));
    }

    pub(super) fn events(&self) -> Vec<(&'static str, Duration)> {
        entries(&self.events)
    }

    /// The instants of the events named `what`.
    pub(super) fn at(&self, what: &str) -> Vec<Duration> {
        self.events()
            .into_iter()
            .filter(|(name, _)| *name == what)
            .map(|(_, at)| at)
            .collect()
    }

    /// When every body call started.
    pub(super) fn starts(&self) -> Vec<Duration> {
        self.at("body")
    }

    pub(super) fn loops(&self) -> Vec<u64> {
        entries(&self.loops)
    }

    pub(super) fn nexts(&self) -> Vec<Option<Duration>> {
        entries(&self.nexts)
    }

    pub(super) fn errors(&self) -> Vec<SharedError> {
        entries(&self.errors)
    }

    /// Adds hooks that mark `before`, `after` (`after (cancelling)` when
    /// [`Loop::is_being_cancelled`] holds in it) and `on_error` (keeping
    /// the error).
    pub(super) fn hooks(&self, builder: LoopBuilder) -> LoopBuilder {
        let (before, after, error) = (self.clone(), self.clone(), self.clone());
        builder
            .before_loop(move |_: Loop| {
                let rec = before.clone();
                async move { rec.mark("before") }
            })
            .after_loop(move |lp: Loop| {
                let rec = after.clone();
                async move {
                    rec.mark(if lp.is_being_cancelled() {
                        "after (cancelling)"
                    } else {
                        "after"
                    });
                }
            })
            .on_error(move |_: Loop, e: SharedError| {
                let rec = error.clone();
                async move {
                    rec.mark("on_error");
                    push(&rec.errors, e);
                }
            })
    }
}

type BodyFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// A body that marks `body` when it starts and `body end` when it ends,
/// and takes `work(current_loop)` of virtual time in between.
pub(super) fn timed_body(
    rec: &Recorder,
    work: impl Fn(u64) -> Duration + Send + Sync + 'static,
) -> impl Fn(Loop) -> BodyFuture<()> + Send + Sync + 'static {
    let rec = rec.clone();
    move |lp: Loop| {
        let rec = rec.clone();
        let took = work(lp.current_loop());
        Box::pin(async move {
            rec.body_started(&lp);
            rec.rt.sleep(took).await;
            rec.mark("body end");
        })
    }
}

/// A body whose n-th call (from 0, retries included) marks `body`, takes
/// no time, and fails with `fail(n)` if that gives an error.
pub(super) fn failing_body(
    rec: &Recorder,
    fail: impl Fn(usize) -> Option<BoxError> + Send + Sync + 'static,
) -> impl Fn(Loop) -> BodyFuture<Result<(), BoxError>> + Send + Sync + 'static {
    let rec = rec.clone();
    let calls = Arc::new(AtomicUsize::new(0));
    move |lp: Loop| {
        let rec = rec.clone();
        let outcome = fail(calls.fetch_add(1, Ordering::SeqCst));
        Box::pin(async move {
            rec.body_started(&lp);
            outcome.map_or(Ok(()), Err)
        })
    }
}

/// Sets a flag when dropped: proves a body's future was dropped.
pub(super) struct DropFlag(pub(super) Arc<AtomicBool>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

pub(super) fn is_set(flag: &AtomicBool) -> bool {
    flag.load(Ordering::SeqCst)
}

/// An error of no handled kind.
#[derive(Debug, thiserror::Error)]
#[error("fatal: {0}")]
pub(super) struct Fatal(pub(super) &'static str);

/// An error kind that tests opt in to handling.
#[derive(Debug, thiserror::Error)]
#[error("flaky")]
pub(super) struct Flaky;

/// An I/O error inside another error: handled through its source chain.
#[derive(Debug, thiserror::Error)]
#[error("request failed")]
pub(super) struct Wrapped(#[source] pub(super) std::io::Error);

pub(super) fn io_error() -> BoxError {
    std::io::Error::other("connection reset").into()
}

pub(super) fn fatal(what: &'static str) -> BoxError {
    Fatal(what).into()
}
