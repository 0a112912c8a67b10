//! Unit tests of retry rules, their composition, server hints, budgets and
//! `Retry::call` / `Retry::call_limited`, at exact instants of the mock
//! runtime's virtual clock.
//!
//! Shared helpers live here: the errors calls fail with, and [`Attempts`],
//! a scripted operation that records when each attempt started. Each
//! submodule covers one area.

mod budget;
mod compose;
mod events;
mod hints;
mod matching;
mod outcomes;
mod waits;

use std::collections::VecDeque;
use std::error::Error;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{DEFAULT_HINT_CAP, Retry, RetryBudget, RetryState, Rule};
use crate::call::CallError;
use crate::decision::{Decision, Reason};
use crate::error::BoxError;
use crate::rt::{Runtime, RuntimeRng};
use crate::testing::MockRuntime;
use crate::waits::Wait;

pub(crate) use crate::test_kit::secs;

pub(crate) use crate::test_kit::ms;

/// A failed HTTP call, with the server's `Retry-After` when it sent one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HttpError {
    pub(crate) status: u16,
    pub(crate) retry_after: Option<Duration>,
}

impl HttpError {
    pub(crate) fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "http {}", self.status)
    }
}

impl Error for HttpError {}

/// A failure that has nothing to do with HTTP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DiskError;

impl fmt::Display for DiskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("disk full")
    }
}

impl Error for DiskError {}

/// An error that carries another as its `source()`, as a client library's
/// error wraps the transport's.
#[derive(Debug)]
pub(crate) struct Wrapped {
    source: BoxError,
}

impl fmt::Display for Wrapped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("request failed")
    }
}

impl Error for Wrapped {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(&*self.source)
    }
}

pub(crate) fn http(status: u16) -> BoxError {
    Box::new(HttpError {
        status,
        retry_after: None,
    })
}

pub(crate) fn http_after(status: u16, retry_after: Duration) -> BoxError {
    Box::new(HttpError {
        status,
        retry_after: Some(retry_after),
    })
}

pub(crate) fn disk() -> BoxError {
    Box::new(DiskError)
}

pub(crate) fn wrapped(source: BoxError) -> BoxError {
    Box::new(Wrapped { source })
}

/// The status of an error that must be an [`HttpError`].
pub(crate) fn status_of(error: &BoxError) -> u16 {
    error
        .downcast_ref::<HttpError>()
        .unwrap_or_else(|| panic!("expected an HttpError, got {error:?}"))
        .status
}

/// What one scripted attempt returns.
pub(crate) type Outcome = Result<&'static str, BoxError>;

pub(crate) fn ok() -> Outcome {
    Ok("done")
}

pub(crate) fn fail(error: BoxError) -> Outcome {
    Err(error)
}

/// `n` failures with `http 503`.
pub(crate) fn failures(n: usize) -> Vec<Outcome> {
    (0..n).map(|_| fail(http(503))).collect()
}

/// A scripted operation: each attempt records when it started (virtual
/// time since the script was made), takes `busy` of virtual time, and
/// returns the next scripted outcome. An attempt beyond the script fails
/// the test.
pub(crate) struct Attempts {
    rt: Runtime,
    t0: Instant,
    busy: Duration,
    starts: Mutex<Vec<Duration>>,
    script: Mutex<VecDeque<Outcome>>,
}

impl Attempts {
    pub(crate) fn new(rt: &Runtime, script: impl IntoIterator<Item = Outcome>) -> Arc<Self> {
        Attempts::busy(rt, Duration::ZERO, script)
    }

    pub(crate) fn busy(
        rt: &Runtime,
        busy: Duration,
        script: impl IntoIterator<Item = Outcome>,
    ) -> Arc<Self> {
        Arc::new(Attempts {
            rt: rt.clone(),
            t0: rt.now(),
            busy,
            starts: Mutex::new(Vec::new()),
            script: Mutex::new(script.into_iter().collect()),
        })
    }

    /// One attempt. Recorded when first polled, so under `call_limited` it
    /// shows when the attempt got its permit.
    pub(crate) async fn attempt(self: Arc<Self>) -> Outcome {
        let n = {
            let mut starts = self.starts.lock().unwrap();
            starts.push(self.rt.now() - self.t0);
            starts.len()
        };
        if !self.busy.is_zero() {
            self.rt.sleep(self.busy).await;
        }
        let next = self.script.lock().unwrap().pop_front();
        next.unwrap_or_else(|| panic!("attempt {n} was not scripted"))
    }

    /// When each attempt started, relative to the script's creation.
    pub(crate) fn starts(&self) -> Vec<Duration> {
        self.starts.lock().unwrap().clone()
    }

    /// Scripted outcomes not played yet.
    pub(crate) fn left(&self) -> usize {
        self.script.lock().unwrap().len()
    }
}

/// The operation's own error of a failed call (a refusal by a layer, as
/// itself).
pub(crate) fn op_error(error: CallError<BoxError>) -> BoxError {
    if error.operation_error().is_some() {
        error.into_operation_error().expect("checked")
    } else {
        Box::new(error)
    }
}

/// Runs `retry.call` over `script` on `mock`; returns the call's result and
/// the start of every attempt. Fails unless every scripted outcome was
/// played (and [`Attempts`] fails on one more), so the script's length is
/// the exact number of attempts expected.
pub(crate) fn call(
    mock: &MockRuntime,
    retry: &Retry,
    script: impl IntoIterator<Item = Outcome>,
) -> (Outcome, Vec<Duration>) {
    let rt = mock.runtime();
    let attempts = Attempts::new(&rt, script);
    let result = mock
        .block_on(retry.call(&rt, || attempts.clone().attempt()))
        .unwrap()
        .map_err(op_error);
    assert_eq!(attempts.left(), 0, "fewer attempts than scripted");
    (result, attempts.starts())
}

/// The gaps between successive attempt starts: the waits actually slept.
pub(crate) fn gaps(starts: &[Duration]) -> Vec<Duration> {
    starts.windows(2).map(|w| w[1] - w[0]).collect()
}

/// The instant every pure decision below is taken at.
pub(crate) fn t0() -> Instant {
    static T0: std::sync::LazyLock<Instant> =
        std::sync::LazyLock::new(|| crate::rt::Timer::now(&crate::rt::SystemTimer::new()));
    *T0
}

/// A retry decision seen as the wait it asks for, for short assertions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum D {
    Retry {
        wait: Duration,
        rule: usize,
        remaining: Option<u32>,
    },
    GiveUp(Reason),
}

impl From<Decision> for D {
    fn from(decision: Decision) -> Self {
        match decision {
            Decision::WaitUntil(refusal) => match refusal.reason {
                Reason::Retrying { rule, remaining } => D::Retry {
                    wait: refusal.until.expect("a retry has an instant") - t0(),
                    rule,
                    remaining,
                },
                other => panic!("not a retry: {other:?}"),
            },
            Decision::GiveUp(reason) => D::GiveUp(reason),
            Decision::Proceed => panic!("a retry state never says proceed"),
        }
    }
}

/// `state.on_error` at [`t0`], without a budget.
pub(crate) fn on(state: &mut RetryState<'_>, error: &(dyn Error + 'static)) -> D {
    state.on_error(t0(), error, None).into()
}

/// `state.on_error` at [`t0`], with `retry`'s budget.
pub(crate) fn on_budget(
    retry: &Retry,
    state: &mut RetryState<'_>,
    error: &(dyn Error + 'static),
) -> D {
    let budget = retry.retry_budget().expect("a budget");
    budget.with(|b| state.on_error(t0(), error, Some(b))).into()
}

/// The wait of a `Retry` decision; fails on any other.
pub(crate) fn retry_wait(decision: D) -> Duration {
    match decision {
        D::Retry { wait, .. } => wait,
        other => panic!("expected a retry, got {other:?}"),
    }
}
