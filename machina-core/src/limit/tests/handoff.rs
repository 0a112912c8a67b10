//! The direct hand-off: a release on a group of slots gives its slot to
//! the waiter first in line (each release to a different waiter), in
//! order of arrival; a waiter handed a slot starts when it is polled.

use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Wake, Waker};

use super::*;

/// A waker that counts its wakes.
#[derive(Default)]
struct Counting(AtomicUsize);

impl Wake for Counting {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn counting() -> (Arc<Counting>, Waker) {
    let count = Arc::new(Counting::default());
    (count.clone(), Waker::from(count))
}

fn wakes(count: &Counting) -> usize {
    count.0.load(Ordering::SeqCst)
}

fn poll<F: Future + Unpin>(future: &mut F, waker: &Waker) -> Poll<F::Output> {
    Pin::new(future).poll(&mut Context::from_waker(waker))
}

#[test]
fn each_release_hands_its_slot_to_a_different_waiter() {
    let (_mock, rt, _) = setup();
    let api = group(&rt, "api", Limits::new().max_in_flight(2));
    let held = [api.try_acquire().unwrap(), api.try_acquire().unwrap()];
    let (a_count, a_waker) = counting();
    let (b_count, b_waker) = counting();
    let (c_count, c_waker) = counting();
    let mut a = api.acquire();
    let mut b = api.acquire();
    let mut c = api.acquire();
    assert!(poll(&mut a, &a_waker).is_pending());
    assert!(poll(&mut b, &b_waker).is_pending());
    assert!(poll(&mut c, &c_waker).is_pending());
    let [first, second] = held;
    drop(first);
    drop(second);
    // Both releases handed their slot on: the first two waiters are woken
    // once each (a wake of the head alone would leave `b` asleep until `a`
    // ran); the third sleeps on.
    assert_eq!(
        (wakes(&a_count), wakes(&b_count), wakes(&c_count)),
        (1, 1, 0)
    );
    // Handed, not yet started: still waiting, not yet in flight; a
    // newcomer queues behind them.
    assert_eq!((api.in_flight(), api.waiting()), (0, 3));
    assert_eq!(api.try_acquire().unwrap_err().reason, Reason::Queue);
    let a_permit = match poll(&mut a, &a_waker) {
        Poll::Ready(permit) => permit,
        Poll::Pending => panic!("a was handed a slot"),
    };
    let b_permit = poll(&mut b, &b_waker);
    assert!(b_permit.is_ready(), "b was handed the other");
    assert!(poll(&mut c, &c_waker).is_pending());
    assert_eq!((api.in_flight(), api.waiting()), (2, 1));
    drop(a_permit);
    assert_eq!(wakes(&c_count), 1);
    assert_eq!(api.counted_waiters(), 1, "c counted until it collects");
    assert!(poll(&mut c, &c_waker).is_ready());
    assert_eq!(api.stats().waited, 3);
    assert_eq!((api.waiting(), api.counted_waiters()), (0, 0));
}

#[test]
fn a_queued_waiter_beside_a_free_slot_starts_once_the_handed_slots_are_collected() {
    let (_mock, rt, _) = setup();
    let api = group(&rt, "api", Limits::new().max_in_flight(2));
    let [first, second] = [api.try_acquire().unwrap(), api.try_acquire().unwrap()];
    let (a_count, a_waker) = counting();
    let mut a = api.acquire();
    assert!(poll(&mut a, &a_waker).is_pending());
    drop(first);
    assert_eq!(wakes(&a_count), 1, "handed the first slot");
    // The second slot comes free with nobody queued for it.
    drop(second);
    assert_eq!((api.in_flight(), api.waiting()), (0, 1));
    // A newcomer beside that free slot queues behind the uncollected grant
    // (it must not start before `a`), for the lock-free forms too.
    assert_eq!(api.try_acquire_guard().unwrap_err().reason, Reason::Queue);
    let (c_count, c_waker) = counting();
    let mut c = api.acquire();
    assert!(poll(&mut c, &c_waker).is_pending());
    assert_eq!((api.waiting(), api.counted_waiters()), (2, 2));
    // `a` collects its slot and wakes `c`, who takes the free one.
    let a_permit = poll(&mut a, &a_waker);
    assert!(a_permit.is_ready());
    assert_eq!(wakes(&c_count), 1);
    let c_permit = poll(&mut c, &c_waker);
    assert!(c_permit.is_ready());
    assert_eq!(
        (api.in_flight(), api.waiting(), api.counted_waiters()),
        (2, 0, 0)
    );
}

#[test]
fn waiters_handed_slots_start_in_the_order_they_are_polled() {
    let (_mock, rt, _) = setup();
    let api = group(&rt, "api", Limits::new().max_in_flight(2));
    let held = [api.try_acquire().unwrap(), api.try_acquire().unwrap()];
    let (a_count, a_waker) = counting();
    let (b_count, b_waker) = counting();
    let mut a = api.acquire();
    let mut b = api.acquire();
    assert!(poll(&mut a, &a_waker).is_pending());
    assert!(poll(&mut b, &b_waker).is_pending());
    drop(held);
    assert_eq!((wakes(&a_count), wakes(&b_count)), (1, 1));
    // The slots were handed in order of arrival; the executor polls the
    // younger first (tokio runs the task woken last first): it starts on
    // the slot it was handed, without waiting for the older.
    let b_permit = poll(&mut b, &b_waker);
    assert!(b_permit.is_ready());
    assert_eq!((api.in_flight(), api.waiting()), (1, 1));
    let a_permit = poll(&mut a, &a_waker);
    assert!(a_permit.is_ready());
    assert_eq!((api.in_flight(), api.waiting()), (2, 0));
    assert_eq!((wakes(&a_count), wakes(&b_count)), (1, 1), "one wake each");
}

#[test]
fn a_waiter_cancelled_after_being_handed_a_slot_passes_it_on() {
    let (_mock, rt, _) = setup();
    let api = group(&rt, "api", Limits::new().max_in_flight(1));
    let held = api.try_acquire().unwrap();
    let (_, a_waker) = counting();
    let (b_count, b_waker) = counting();
    let mut a = api.acquire();
    let mut b = pin!(api.acquire());
    assert!(poll(&mut a, &a_waker).is_pending());
    assert!(
        b.as_mut()
            .poll(&mut Context::from_waker(&b_waker))
            .is_pending()
    );
    drop(held);
    assert_eq!(wakes(&b_count), 0, "the slot went to a");
    // `a` gives up before it runs: its slot goes to `b`, nothing leaks.
    drop(a);
    assert_eq!(wakes(&b_count), 1);
    let b_permit = b.as_mut().poll(&mut Context::from_waker(&b_waker));
    assert!(b_permit.is_ready());
    assert_eq!(
        (api.in_flight(), api.waiting(), api.counted_waiters()),
        (1, 0, 0)
    );
    let stats = api.stats();
    assert_eq!((stats.acquired, stats.abandoned), (2, 1));
}
