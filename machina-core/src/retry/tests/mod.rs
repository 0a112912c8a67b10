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
mod limited;
mod matching;
mod outcomes;
mod waits;

use std::collections::VecDeque;
use std::error::Error;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{BoxError, DEFAULT_HINT_CAP, Decision, GiveUpReason, Retry, RetryBudget, Rule, Wait};
use crate::limit::{ConcurrentGroup, Limits};
use crate::rt::{Runtime, RuntimeRng};
use crate::testing::MockRuntime;

pub(super) fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

pub(super) fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A failed HTTP call, with the server's `Retry-After` when it sent one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct HttpError {
    pub(super) status: u16,
    pub(super) retry_after: Option<Duration>,
}

impl HttpError {
    pub(super) fn retry_after(&self) -> Option<Duration> {
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
pub(super) struct DiskError;

impl fmt::Display for DiskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("disk full")
    }
}

impl Error for DiskError {}

/// An error that carries another as its `source()`, as a client library's
/// error wraps the transport's.
#[derive(Debug)]
pub(super) struct Wrapped {
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

pub(super) fn http(status: u16) -> BoxError {
    Box::new(HttpError {
        status,
        retry_after: None,
    })
}

pub(super) fn http_after(status: u16, retry_after: Duration) -> BoxError {
    Box::new(HttpError {
        status,
        retry_after: Some(retry_after),
    })
}

pub(super) fn disk() -> BoxError {
    Box::new(DiskError)
}

pub(super) fn wrapped(source: BoxError) -> BoxError {
    Box::new(Wrapped { source })
}

/// The status of an error that must be an [`HttpError`].
pub(super) fn status_of(error: &BoxError) -> u16 {
    error
        .downcast_ref::<HttpError>()
        .unwrap_or_else(|| panic!("expected an HttpError, got {error:?}"))
        .status
}

/// What one scripted attempt returns.
pub(super) type Outcome = Result<&'static str, BoxError>;

pub(super) fn ok() -> Outcome {
    Ok("done")
}

pub(super) fn fail(error: BoxError) -> Outcome {
    Err(error)
}

/// `n` failures with `http 503`.
pub(super) fn failures(n: usize) -> Vec<Outcome> {
    (0..n).map(|_| fail(http(503))).collect()
}

/// A scripted operation: each attempt records when it started (virtual
/// time since the script was made), takes `busy` of virtual time, and
/// returns the next scripted outcome. An attempt beyond the script fails
/// the test.
pub(super) struct Attempts {
    rt: Runtime,
    t0: Instant,
    busy: Duration,
    starts: Mutex<Vec<Duration>>,
    script: Mutex<VecDeque<Outcome>>,
}

impl Attempts {
    pub(super) fn new(rt: &Runtime, script: impl IntoIterator<Item = Outcome>) -> Arc<Self> {
        Attempts::busy(rt, Duration::ZERO, script)
    }

    pub(super) fn busy(
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
    pub(super) async fn attempt(self: Arc<Self>) -> Outcome {
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
    pub(super) fn starts(&self) -> Vec<Duration> {
        self.starts.lock().unwrap().clone()
    }

    /// Scripted outcomes not played yet.
    pub(super) fn left(&self) -> usize {
        self.script.lock().unwrap().len()
    }
}

/// Runs `retry.call` over `script` on `mock`; returns the call's result and
/// the start of every attempt. Fails unless every scripted outcome was
/// played (and [`Attempts`] fails on one more), so the script's length is
/// the exact number of attempts expected.
pub(super) fn call(
    mock: &MockRuntime,
    retry: &Retry,
    script: impl IntoIterator<Item = Outcome>,
) -> (Outcome, Vec<Duration>) {
    let rt = mock.runtime();
    let attempts = Attempts::new(&rt, script);
    let result = mock
        .block_on(retry.call(&rt, || attempts.clone().attempt()))
        .unwrap();
    assert_eq!(attempts.left(), 0, "fewer attempts than scripted");
    (result, attempts.starts())
}

/// The gaps between successive attempt starts: the waits actually slept.
pub(super) fn gaps(starts: &[Duration]) -> Vec<Duration> {
    starts.windows(2).map(|w| w[1] - w[0]).collect()
}

/// The wait of a `Retry` decision; fails on any other.
pub(super) fn retry_wait(decision: Decision) -> Duration {
    match decision {
        Decision::Retry { wait, .. } => wait,
        other => panic!("expected a retry, got {other:?}"),
    }
}
