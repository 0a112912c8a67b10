//! Behaviour tests of concurrent groups on the mock runtime, asserting
//! exact virtual instants (milliseconds since the runtime was made).
//!
//! Shared helpers live here; each submodule covers one area of the issue:
//! the sliding window, fairness, cancellation, several groups at once, and
//! the non-blocking API with its errors and introspection.

mod api;
mod cancel;
mod clock;
mod fairness;
mod handoff;
mod multi;
mod rate;
mod window;

use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::{
    AcquireError, ConcurrentGroup, GroupStats, LimitError, Limits, Permit, acquire_all,
    try_acquire_all,
};
pub(super) use crate::decision::{Reason, Refusal};
use crate::rt::{JoinError, JoinHandle, Runtime};
use crate::testing::MockRuntime;

pub(super) use crate::test_kit::ms;

/// A fresh mock runtime, its handle, and the instant every test measures
/// from.
pub(super) fn setup() -> (MockRuntime, Runtime, Instant) {
    let mock = MockRuntime::new();
    let rt = mock.runtime();
    let t0 = rt.now();
    (mock, rt, t0)
}

/// Virtual milliseconds from `t0` to now.
pub(super) fn since(rt: &Runtime, t0: Instant) -> u64 {
    u64::try_from((rt.now() - t0).as_millis()).unwrap()
}

pub(super) fn group(rt: &Runtime, name: &str, limits: Limits) -> ConcurrentGroup {
    ConcurrentGroup::new(rt, name, limits).unwrap()
}

pub(super) use crate::test_kit::{Log, entries, log, push};

/// Spawns call `id`: it arrives `arrival` ms after `t0`, waits for a permit
/// in every group of `groups`, records `(id, start)` in `starts`, and holds
/// the permit for `hold` ms. The handle gives the start, in ms after `t0`.
pub(super) fn call(
    rt: &Runtime,
    t0: Instant,
    groups: &[&ConcurrentGroup],
    id: usize,
    (arrival, hold): (u64, u64),
    starts: &Log<(usize, u64)>,
) -> JoinHandle<u64> {
    let groups: Vec<ConcurrentGroup> = groups.iter().map(|&g| g.clone()).collect();
    let (rt2, starts) = (rt.clone(), starts.clone());
    rt.spawn(async move {
        rt2.sleep_until(t0 + ms(arrival)).await;
        let permit = acquire_all(&groups).unwrap().await;
        let start = since(&rt2, t0);
        push(&starts, (id, start));
        rt2.sleep(ms(hold)).await;
        drop(permit);
        start
    })
    .unwrap()
}

/// Spawns one call per `(arrival, hold)`, numbered in order, all in
/// `groups`.
pub(super) fn calls(
    rt: &Runtime,
    t0: Instant,
    groups: &[&ConcurrentGroup],
    schedule: &[(u64, u64)],
    starts: &Log<(usize, u64)>,
) -> Vec<JoinHandle<u64>> {
    schedule
        .iter()
        .enumerate()
        .map(|(id, &timing)| call(rt, t0, groups, id, timing, starts))
        .collect()
}

/// Runs the mock until every handle is done; gives their values in order.
pub(super) fn join_all<T: Send + 'static>(
    mock: &MockRuntime,
    handles: Vec<JoinHandle<T>>,
) -> Vec<T> {
    mock.block_on(async {
        let mut values = Vec::new();
        for handle in handles {
            values.push(handle.await.unwrap());
        }
        values
    })
    .unwrap()
}

/// Awaits `inner`, counting every time it is polled: shows which waiters a
/// release or a returning token actually wakes.
pub(super) async fn counting_polls<F: Future + Unpin>(
    mut inner: F,
    polls: Arc<AtomicUsize>,
) -> F::Output {
    poll_fn(|cx| {
        polls.fetch_add(1, Ordering::SeqCst);
        Pin::new(&mut inner).poll(cx)
    })
    .await
}

/// Reads and resets a set of poll counters.
pub(super) fn take_polls(counters: &[Arc<AtomicUsize>]) -> Vec<usize> {
    counters
        .iter()
        .map(|c| c.swap(0, Ordering::SeqCst))
        .collect()
}
