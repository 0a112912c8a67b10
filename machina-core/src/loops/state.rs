//! The shared state of a [`Loop`](super::Loop), and the futures through
//! which its task waits for a control request (stop, cancel, a new
//! interval) or the end of a run.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use super::kinds::ErrorKinds;
use crate::schedule::Schedule;

pub(crate) struct LoopState {
    pub(crate) schedule: Schedule,
    pub(crate) count: Option<u64>,
    pub(crate) reconnect: bool,
    pub(crate) reconnect_base: Duration,
    pub(crate) kinds: ErrorKinds,

    pub(crate) running: bool,
    /// Increments with every start, so a finished run cannot touch the
    /// state of the next one.
    pub(crate) generation: u64,
    pub(crate) current_loop: u64,
    pub(crate) next_iteration: Option<Instant>,
    /// When the iteration running now was due.
    pub(crate) current_due: Option<Instant>,
    pub(crate) stop_requested: bool,
    pub(crate) cancel_requested: bool,
    pub(crate) interval_changed: bool,
    pub(crate) failed: bool,
    pub(crate) previous_execution_time: Duration,
    pub(crate) stats: super::LoopStats,
    /// The loop task's waker, while it waits for a control request.
    pub(crate) task_waker: Option<Waker>,
    /// Whoever waits for the current run to end.
    pub(crate) done_wakers: Vec<Waker>,
}

impl LoopState {
    pub(crate) fn new(schedule: Schedule, count: Option<u64>) -> Self {
        LoopState {
            schedule,
            count,
            reconnect: true,
            reconnect_base: Duration::from_secs(1),
            kinds: ErrorKinds::default(),
            running: false,
            generation: 0,
            current_loop: 0,
            next_iteration: None,
            current_due: None,
            stop_requested: false,
            cancel_requested: false,
            interval_changed: false,
            failed: false,
            previous_execution_time: Duration::ZERO,
            stats: super::LoopStats::default(),
            task_waker: None,
            done_wakers: Vec::new(),
        }
    }

    /// Wakes the loop task so it looks at the control flags again.
    pub(crate) fn poke(&mut self) -> Option<Waker> {
        self.task_waker.take()
    }
}

pub(crate) fn lock(state: &Mutex<LoopState>) -> MutexGuard<'_, LoopState> {
    state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A control request the loop task reacts to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Control {
    Stop,
    Cancel,
    IntervalChanged,
}

/// Which requests a wait reacts to.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Watch {
    pub(crate) stop: bool,
    pub(crate) interval: bool,
}

/// Completes with the first pending control request that `watch` covers
/// (cancel always is). Consumes an interval change.
pub(crate) struct ControlWait<'a> {
    pub(crate) state: &'a Mutex<LoopState>,
    pub(crate) watch: Watch,
}

impl Future for ControlWait<'_> {
    type Output = Control;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Control> {
        let mut state = lock(self.state);
        if state.cancel_requested {
            return Poll::Ready(Control::Cancel);
        }
        if self.watch.stop && state.stop_requested {
            return Poll::Ready(Control::Stop);
        }
        if self.watch.interval && state.interval_changed {
            state.interval_changed = false;
            return Poll::Ready(Control::IntervalChanged);
        }
        match &state.task_waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => state.task_waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

/// Completes when the loop is not running.
pub(crate) struct Done<'a> {
    pub(crate) state: &'a Mutex<LoopState>,
}

impl Future for Done<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut state = lock(self.state);
        if !state.running {
            return Poll::Ready(());
        }
        if !state.done_wakers.iter().any(|w| w.will_wake(cx.waker())) {
            state.done_wakers.push(cx.waker().clone());
        }
        Poll::Pending
    }
}
