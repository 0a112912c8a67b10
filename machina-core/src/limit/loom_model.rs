//! Loom models of a concurrent group's permit accounting and wait queue:
//! acquire, release and cancel racing on real (loom) threads.
//!
//! The groups have in-flight limits, and one of them a rate whose callers
//! only try (never wait): no window, so nothing ever sleeps, and their
//! runtime is a frozen clock that is read but never awaited. Loom explores the interleavings of the groups' locks and
//! wake-ups, and reports a waiter that is never woken as a deadlock.
//!
//! ```text
//! RUSTFLAGS="--cfg loom" cargo test -p machina-core --features test-util --release --lib limit::loom_model
//! ```
//!
//! The preemption bound defaults to 3; `LOOM_MAX_PREEMPTIONS` overrides
//! it (higher explores more, for much longer).

use std::future::Future;
use std::pin::{Pin, pin};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Instant, SystemTime};

use loom::sync::Arc;
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::thread;

use super::{ConcurrentGroup, Limits, Permit, acquire_all};
use crate::rt::{BlockingFn, BoxFuture, Runtime, RuntimeRng, Sleep, Spawn, SpawnError, Timer};

/// A clock that never moves and an executor that takes no task: all a
/// group without a window needs from its runtime.
#[derive(Debug)]
struct Frozen(Instant);

impl Timer for Frozen {
    fn now(&self) -> Instant {
        self.0
    }

    fn sleep_until(&self, _deadline: Instant) -> Sleep {
        unreachable!("a group without a window never sleeps")
    }

    fn calendar_now(&self) -> SystemTime {
        SystemTime::UNIX_EPOCH
    }
}

impl Spawn for Frozen {
    fn spawn_detached(&self, _task: BoxFuture) -> Result<(), SpawnError> {
        Err(SpawnError::Shutdown { executor: "loom" })
    }

    fn spawn_blocking(&self, _f: BlockingFn) -> Result<(), SpawnError> {
        Err(SpawnError::Shutdown { executor: "loom" })
    }
}

fn runtime() -> Runtime {
    let frozen = std::sync::Arc::new(Frozen(
        crate::rt::Timer::now(&crate::rt::SystemTimer::new()),
    ));
    Runtime::with_rng("loom", frozen.clone(), frozen, RuntimeRng::from_seed(0))
}

fn one_slot(rt: &Runtime, name: &str) -> ConcurrentGroup {
    ConcurrentGroup::new(rt, name, Limits::new().max_in_flight(1)).unwrap()
}

/// Wakes a parked loom thread.
struct Unpark(thread::Thread);

impl Wake for Unpark {
    fn wake(self: std::sync::Arc<Self>) {
        self.0.unpark();
    }
}

/// Polls `future` on this loom thread, parking between polls until woken.
fn block_on<F: Future>(future: F) -> F::Output {
    let waker = Waker::from(std::sync::Arc::new(Unpark(thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        if let Poll::Ready(value) = future.as_mut().poll(&mut cx) {
            return value;
        }
        thread::park();
    }
}

/// Polls `future` once with a waker that does nothing.
fn poll_once<F: Future + Unpin>(future: &mut F) -> Poll<F::Output> {
    Pin::new(future).poll(&mut Context::from_waker(Waker::noop()))
}

/// Runs `model` under loom with a preemption bound of 3 unless
/// `LOOM_MAX_PREEMPTIONS` says otherwise.
fn check(model: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(3);
    }
    builder.check(model);
}

/// Counts the calls inside their critical section, per group.
#[derive(Clone)]
struct Inside(Arc<[AtomicUsize; 2]>);

impl Inside {
    fn new() -> Self {
        Inside(Arc::new([AtomicUsize::new(0), AtomicUsize::new(0)]))
    }

    /// Runs a call holding `permit` in groups `which`, asserting it is alone
    /// in each, then ends it.
    fn run(&self, which: &[usize], groups: &[&ConcurrentGroup], permit: Permit) {
        for &g in which {
            assert_eq!(
                self.0[g].fetch_add(1, Ordering::SeqCst),
                0,
                "two calls in one slot"
            );
        }
        for group in groups {
            assert_eq!(group.in_flight(), 1);
        }
        for &g in which {
            self.0[g].fetch_sub(1, Ordering::SeqCst);
        }
        drop(permit);
    }
}

#[test]
fn two_waiters_and_a_canceller_share_one_slot() {
    check(|| {
        let rt = runtime();
        let api = one_slot(&rt, "api");
        let inside = Inside::new();
        let waiters: Vec<_> = (0..2)
            .map(|_| {
                let (api, inside) = (api.clone(), inside.clone());
                thread::spawn(move || {
                    let permit = block_on(api.acquire());
                    inside.run(&[0], &[&api], permit);
                })
            })
            .collect();
        let canceller = {
            let (api, inside) = (api.clone(), inside.clone());
            thread::spawn(move || {
                let mut acquire = api.acquire();
                if let Poll::Ready(permit) = poll_once(&mut acquire) {
                    inside.run(&[0], &[&api], permit);
                }
                drop(acquire);
            })
        };
        for waiter in waiters {
            waiter.join().unwrap();
        }
        canceller.join().unwrap();
        assert_eq!((api.in_flight(), api.waiting()), (0, 0));
    });
}

#[test]
fn a_release_racing_a_cancelled_head_still_wakes_the_next_waiter() {
    check(|| {
        let rt = runtime();
        let api = one_slot(&rt, "api");
        let holder = api.try_acquire().unwrap();
        // Queued first, so it is the head the release wakes; it is then
        // dropped without ever being polled again.
        let mut head = api.acquire();
        assert!(poll_once(&mut head).is_pending());
        let waiter = {
            let api = api.clone();
            thread::spawn(move || {
                let permit = block_on(api.acquire());
                assert_eq!(api.in_flight(), 1);
                drop(permit);
            })
        };
        let canceller = thread::spawn(move || drop(head));
        drop(holder);
        waiter.join().unwrap();
        canceller.join().unwrap();
        assert_eq!((api.in_flight(), api.waiting()), (0, 0));
    });
}

#[test]
fn overlapping_sets_on_threads_neither_deadlock_nor_overfill() {
    check(|| {
        let rt = runtime();
        let (a, b) = (one_slot(&rt, "a"), one_slot(&rt, "b"));
        let inside = Inside::new();
        let spawn = |groups: Vec<ConcurrentGroup>, which: Vec<usize>| {
            let inside = inside.clone();
            thread::spawn(move || {
                let permit = block_on(acquire_all(&groups).unwrap());
                let refs: Vec<&ConcurrentGroup> = groups.iter().collect();
                inside.run(&which, &refs, permit);
            })
        };
        let threads = [
            spawn(vec![a.clone(), b.clone()], vec![0, 1]),
            spawn(vec![b.clone(), a.clone()], vec![1, 0]),
            spawn(vec![b.clone()], vec![1]),
        ];
        for thread in threads {
            thread.join().unwrap();
        }
        for group in [&a, &b] {
            assert_eq!((group.in_flight(), group.waiting()), (0, 0));
        }
    });
}

/// The lock-free slots: a release gives its slot back while a waiter joins
/// the queue and a newcomer tries to start without the lock. Whatever the
/// order, the waiter is served (never left asleep beside a free slot) and
/// no two calls hold the one slot.
#[test]
fn a_release_racing_a_waiter_joining_the_queue_is_never_missed() {
    check(|| {
        let rt = runtime();
        let api = one_slot(&rt, "api");
        let holder = api.try_acquire().unwrap();
        let inside = Inside::new();
        let waiter = {
            let (api, inside) = (api.clone(), inside.clone());
            thread::spawn(move || {
                let permit = block_on(api.acquire());
                inside.run(&[0], &[&api], permit);
            })
        };
        let newcomer = {
            let (api, inside) = (api.clone(), inside.clone());
            thread::spawn(move || {
                if let Ok(permit) = api.try_acquire() {
                    inside.run(&[0], &[&api], permit);
                }
            })
        };
        drop(holder);
        waiter.join().unwrap();
        newcomer.join().unwrap();
        assert_eq!((api.in_flight(), api.waiting()), (0, 0));
    });
}

/// The hand-off with two slots: two releases race two waiters joining the
/// queue. Whatever the order, each release hands its slot to a different
/// waiter or gives it back, both waiters run, the group never holds more
/// than two calls, and the waiters counted in the slots' word come back to
/// zero.
#[test]
fn two_releases_hand_two_slots_to_two_waiters() {
    check(|| {
        let rt = runtime();
        let api = ConcurrentGroup::new(&rt, "api", Limits::new().max_in_flight(2)).unwrap();
        let holders = [api.try_acquire().unwrap(), api.try_acquire().unwrap()];
        let ran = Arc::new(AtomicUsize::new(0));
        let waiters: Vec<_> = (0..2)
            .map(|_| {
                let (api, ran) = (api.clone(), ran.clone());
                thread::spawn(move || {
                    let permit = block_on(api.acquire());
                    assert!(api.in_flight() <= 2);
                    ran.fetch_add(1, Ordering::SeqCst);
                    drop(permit);
                })
            })
            .collect();
        let [first, second] = holders;
        drop(first);
        drop(second);
        for waiter in waiters {
            waiter.join().unwrap();
        }
        assert_eq!(ran.load(Ordering::SeqCst), 2);
        assert_eq!((api.in_flight(), api.waiting()), (0, 0));
        assert_eq!(api.counted_waiters(), 0);
    });
}

/// A group with a rate that fits one atomic word (two tokens on a frozen
/// clock): two newcomers start without the lock while a caller of two
/// groups starts under the locks (its decision, then its commit, can be
/// overtaken by a newcomer's compare-and-swap). Whatever the order,
/// exactly two of the three start, and a refused all-or-nothing start
/// gives back the slot it took in the other group.
#[test]
fn newcomers_and_a_locked_start_never_spend_one_token_twice() {
    check(|| {
        let rt = runtime();
        let api = ConcurrentGroup::new(
            &rt,
            "api",
            Limits::rate(1, std::time::Duration::from_secs(3600)).burst(1),
        )
        .unwrap();
        let db = one_slot(&rt, "db");
        let started = Arc::new(AtomicUsize::new(0));
        let newcomers: Vec<_> = (0..2)
            .map(|_| {
                let (api, started) = (api.clone(), started.clone());
                thread::spawn(move || {
                    if let Ok(permit) = api.try_acquire() {
                        started.fetch_add(1, Ordering::SeqCst);
                        drop(permit);
                    }
                })
            })
            .collect();
        if let Ok(permit) = super::try_acquire_all(&[api.clone(), db.clone()]) {
            started.fetch_add(1, Ordering::SeqCst);
            assert_eq!(db.in_flight(), 1);
            drop(permit);
        }
        for newcomer in newcomers {
            newcomer.join().unwrap();
        }
        assert_eq!(started.load(Ordering::SeqCst), 2);
        assert_eq!((api.in_flight(), db.in_flight()), (0, 0));
        assert_eq!(api.stats().acquired, 2);
    });
}
