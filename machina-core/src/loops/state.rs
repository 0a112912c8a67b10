//! The shared state of a [`Loop`](super::Loop), and the futures through
//! which its task waits for a control request (stop, cancel, a new
//! interval) or the end of a run.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicI64, AtomicU8, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use futures::task::AtomicWaker;

use super::kinds::ErrorKinds;
use crate::schedule::Schedule;

/// What the loop task and its readers touch on every tick, without the
/// state's lock: the control requests (one atomic word), the task's
/// waker, and the iteration and due time a body reads. Kept at the front
/// of the loop's allocation, beside its reference counts.
///
/// The requests and the counters are written under the state's lock (so
/// a lock section sees them agree with the rest of the state) and read
/// with or without it; the one exception is the task taking an interval
/// change it has seen ([`ControlWait`]), without the lock.
#[derive(Debug)]
pub(crate) struct Pulse {
    /// [`STOP`], [`CANCEL`] and [`INTERVAL`] requests.
    control: AtomicU8,
    /// The loop task, while it waits for a control request.
    waker: AtomicWaker,
    /// The current iteration (see `Loop::current_loop`).
    current_loop: AtomicU64,
    /// When the iteration running now was due: nanoseconds from `anchor`
    /// (before it if negative); [`NO_DUE`] for none.
    current_due: AtomicI64,
    /// The instant `current_due` counts from: when the loop was built.
    /// Due times are usually later, but need not be (a runtime whose clock
    /// read differently when the loop was built, such as tokio's outside
    /// its context).
    anchor: Instant,
}

/// No iteration has been due yet.
const NO_DUE: i64 = i64::MIN;

/// A stop was asked for.
pub(crate) const STOP: u8 = 1;
/// A cancel was asked for.
pub(crate) const CANCEL: u8 = 2;
/// The interval changed and the task has not yet seen it.
pub(crate) const INTERVAL: u8 = 4;

impl Pulse {
    pub(crate) fn new(anchor: Instant) -> Self {
        Pulse {
            control: AtomicU8::new(0),
            waker: AtomicWaker::new(),
            current_loop: AtomicU64::new(0),
            current_due: AtomicI64::new(NO_DUE),
            anchor,
        }
    }

    /// The control requests pending.
    #[inline]
    pub(crate) fn control(&self) -> u8 {
        self.control.load(Ordering::Acquire)
    }

    /// Whether `request` is pending.
    #[inline]
    pub(crate) fn requested(&self, request: u8) -> bool {
        self.control() & request != 0
    }

    /// Adds `request` (under the state's lock); then [`wake`](Self::wake)
    /// the loop task, once the lock is dropped.
    pub(crate) fn request(&self, request: u8) {
        self.control.fetch_or(request, Ordering::AcqRel);
    }

    /// Wakes the loop task, if it waits for a control request.
    pub(crate) fn wake(&self) {
        self.waker.wake();
    }

    /// A new run, or the end of one: no request pending, no iteration, no
    /// task to wake (under the state's lock).
    pub(crate) fn reset(&self) {
        self.control.store(0, Ordering::Release);
        self.current_loop.store(0, Ordering::Release);
        drop(self.waker.take());
    }

    #[inline]
    pub(crate) fn current_loop(&self) -> u64 {
        self.current_loop.load(Ordering::Acquire)
    }

    /// One more iteration done (under the state's lock).
    #[inline]
    pub(crate) fn iteration_done(&self) {
        self.current_loop
            .store(self.current_loop() + 1, Ordering::Release);
    }

    #[inline]
    pub(crate) fn current_due(&self) -> Option<Instant> {
        match self.current_due.load(Ordering::Acquire) {
            NO_DUE => None,
            n if n >= 0 => Some(self.anchor + Duration::from_nanos(n.unsigned_abs())),
            n => Some(self.anchor - Duration::from_nanos(n.unsigned_abs())),
        }
    }

    /// The iteration starting now was due `at` (under the state's lock).
    /// Exact within 292 years of the anchor, either side.
    #[inline]
    pub(crate) fn set_current_due(&self, at: Instant) {
        let offset = if at >= self.anchor {
            i64::try_from((at - self.anchor).as_nanos()).unwrap_or(i64::MAX)
        } else {
            i64::try_from((self.anchor - at).as_nanos()).map_or(NO_DUE + 1, |n| -n)
        };
        self.current_due.store(offset, Ordering::Release);
    }
}

/// The state behind the lock: what changes between ticks, then the
/// configuration. `repr(C)` keeps the fields every tick writes next to the
/// lock word, in the order given.
#[repr(C)]
pub(crate) struct LoopState {
    pub(crate) running: bool,
    pub(crate) failed: bool,
    pub(crate) reconnect: bool,
    pub(crate) next_iteration: Option<Instant>,
    pub(crate) previous_execution_time: Duration,
    pub(crate) stats: super::LoopStats,

    pub(crate) schedule: Schedule,
    pub(crate) count: Option<u64>,
    pub(crate) reconnect_base: Duration,
    pub(crate) kinds: ErrorKinds,
    /// Increments with every start, so a finished run cannot touch the
    /// state of the next one.
    pub(crate) generation: u64,
    /// Whoever waits for the current run to end.
    pub(crate) done_wakers: Vec<Waker>,
}

impl LoopState {
    pub(crate) fn new(schedule: Schedule, count: Option<u64>) -> Self {
        LoopState {
            running: false,
            failed: false,
            reconnect: true,
            next_iteration: None,
            previous_execution_time: Duration::ZERO,
            stats: super::LoopStats::default(),
            schedule,
            count,
            reconnect_base: Duration::from_secs(1),
            kinds: ErrorKinds::default(),
            generation: 0,
            done_wakers: Vec::new(),
        }
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
/// (cancel always is). Consumes an interval change. Reads the control
/// word without the state's lock.
pub(crate) struct ControlWait<'a> {
    pub(crate) pulse: &'a Pulse,
    pub(crate) watch: Watch,
}

impl ControlWait<'_> {
    fn pending(&self) -> Option<Control> {
        let control = self.pulse.control();
        if control & CANCEL != 0 {
            return Some(Control::Cancel);
        }
        if self.watch.stop && control & STOP != 0 {
            return Some(Control::Stop);
        }
        if self.watch.interval
            && control & INTERVAL != 0
            && self.pulse.control.fetch_and(!INTERVAL, Ordering::AcqRel) & INTERVAL != 0
        {
            return Some(Control::IntervalChanged);
        }
        None
    }
}

impl Future for ControlWait<'_> {
    type Output = Control;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Control> {
        if let Some(control) = self.pending() {
            return Poll::Ready(control);
        }
        self.pulse.waker.register(cx.waker());
        // A request made before the registration woke nobody: look again.
        match self.pending() {
            Some(control) => Poll::Ready(control),
            None => Poll::Pending,
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_due_time_reads_back_exactly_and_a_request_is_seen_once() {
        let anchor = crate::rt::Timer::now(&crate::rt::SystemTimer::new());
        let pulse = Pulse::new(anchor);
        assert_eq!(pulse.current_due(), None);
        let at = anchor + Duration::new(3, 141_592_653);
        pulse.set_current_due(at);
        assert_eq!(pulse.current_due(), Some(at));
        pulse.set_current_due(anchor);
        assert_eq!(
            pulse.current_due(),
            Some(anchor),
            "the anchor itself is a due time"
        );
        if let Some(before) = anchor.checked_sub(Duration::new(2, 718_281_828)) {
            pulse.set_current_due(before);
            assert_eq!(
                pulse.current_due(),
                Some(before),
                "a due time before the anchor"
            );
            pulse.set_current_due(anchor);
        }

        let watch = Watch {
            stop: false,
            interval: true,
        };
        let wait = ControlWait {
            pulse: &pulse,
            watch,
        };
        assert_eq!(wait.pending(), None);
        pulse.request(INTERVAL);
        pulse.wake();
        assert_eq!(wait.pending(), Some(Control::IntervalChanged));
        assert_eq!(wait.pending(), None, "an interval change is consumed");
        pulse.request(STOP);
        assert_eq!(wait.pending(), None, "this wait does not watch stops");
        pulse.request(CANCEL);
        assert_eq!(wait.pending(), Some(Control::Cancel));
        assert!(pulse.requested(STOP) && pulse.requested(CANCEL));
        pulse.iteration_done();
        assert_eq!(pulse.current_loop(), 1);
        pulse.reset();
        assert_eq!((pulse.control(), pulse.current_loop()), (0, 0));
        assert_eq!(
            pulse.current_due(),
            Some(anchor),
            "a reset keeps the last due time"
        );
    }
}
