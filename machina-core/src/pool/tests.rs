//! The pool on virtual time: growth and reuse, checks, recycling, 1 000
//! concurrent users within `max_size`, timeouts and cancellation, panics,
//! creation failures and close.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use super::*;
use crate::testing::MockRuntime;

use crate::test_kit::secs;

/// A manager of numbered "connections" that counts what it does; it can
/// be told to fail creations and to fail checks of odd-numbered ones.
#[derive(Default)]
struct Counting {
    created: AtomicUsize,
    destroyed: AtomicUsize,
    checked: AtomicUsize,
    fail_create: AtomicBool,
    fail_odd_checks: AtomicBool,
}

#[derive(Debug, thiserror::Error)]
#[error("connection refused")]
struct Refused;

impl Manager for Arc<Counting> {
    type Item = usize;
    type Error = Refused;

    async fn create(&self) -> Result<usize, Refused> {
        if self.fail_create.load(Ordering::SeqCst) {
            return Err(Refused);
        }
        Ok(self.created.fetch_add(1, Ordering::SeqCst))
    }

    async fn check(&self, item: &mut usize) -> Result<(), Refused> {
        self.checked.fetch_add(1, Ordering::SeqCst);
        if self.fail_odd_checks.load(Ordering::SeqCst) && *item % 2 == 1 {
            return Err(Refused);
        }
        Ok(())
    }

    async fn destroy(&self, _item: usize) {
        self.destroyed.fetch_add(1, Ordering::SeqCst);
    }
}

fn pool(mock: &MockRuntime, max: usize) -> (Pool<Arc<Counting>>, Arc<Counting>) {
    let manager = Arc::new(Counting::default());
    let pool = Pool::builder(manager.clone(), max)
        .build(&mock.runtime())
        .unwrap();
    (pool, manager)
}

#[test]
fn grows_to_max_size_then_waiters_reuse_returned_instances() {
    let mock = MockRuntime::new();
    let rt = mock.runtime();
    let (pool, manager) = pool(&mock, 2);
    mock.block_on(async {
        let a = pool.acquire().await.unwrap();
        let b = pool.acquire().await.unwrap();
        assert_eq!((*a, *b, pool.size()), (0, 1, 2));
        let waiter = {
            let pool = pool.clone();
            rt.spawn(async move { *pool.acquire().await.unwrap() })
                .unwrap()
        };
        rt.sleep(secs(1)).await;
        drop(a);
        assert_eq!(
            waiter.await.unwrap(),
            0,
            "the waiter got the returned instance"
        );
        drop(b);
    })
    .unwrap();
    assert_eq!(manager.created.load(Ordering::SeqCst), 2);
    assert_eq!((pool.size(), pool.idle()), (2, 2));
}

#[test]
fn a_failed_check_destroys_the_instance_and_tries_the_next() {
    let mock = MockRuntime::new();
    let (pool, manager) = pool(&mock, 3);
    mock.block_on(async {
        let lent: Vec<_> = futures::future::join_all((0..3).map(|_| pool.acquire())).await;
        drop(lent); // 0, 1, 2 idle
        manager.fail_odd_checks.store(true, Ordering::SeqCst);
        let picks: Vec<usize> = {
            let a = pool.acquire().await.unwrap();
            let b = pool.acquire().await.unwrap();
            vec![*a, *b]
        };
        // Idle order 0, 1, 2: 0 passes, 1 fails and is destroyed, 2 passes.
        assert_eq!(picks, [0, 2]);
    })
    .unwrap();
    assert_eq!(manager.destroyed.load(Ordering::SeqCst), 1);
    assert_eq!(pool.size(), 2);
}

#[test]
fn old_instances_are_recycled_when_they_come_back() {
    let mock = MockRuntime::new();
    let rt = mock.runtime();
    let manager = Arc::new(Counting::default());
    let pool = Pool::builder(manager.clone(), 1)
        .recycle(secs(10))
        .build(&rt)
        .unwrap();
    mock.block_on(async {
        let first = pool.acquire().await.unwrap();
        assert_eq!(*first, 0);
        rt.sleep(secs(5)).await;
        drop(first); // 5 s old: kept
        let again = pool.acquire().await.unwrap();
        assert_eq!(*again, 0);
        rt.sleep(secs(7)).await;
        drop(again); // 12 s old, past 10 s ± 10 %: destroyed
        rt.sleep(Duration::from_millis(1)).await;
        assert_eq!(manager.destroyed.load(Ordering::SeqCst), 1);
        assert_eq!(*pool.acquire().await.unwrap(), 1, "a fresh instance");
    })
    .unwrap();
}

#[test]
fn a_thousand_users_never_push_it_past_max_size() {
    let mock = MockRuntime::with_seed(11);
    let rt = mock.runtime();
    let (pool, manager) = pool(&mock, 8);
    let peak = Arc::new(AtomicUsize::new(0));
    let users: Vec<_> = (0..1000u64)
        .map(|i| {
            let (pool, rt2, peak) = (pool.clone(), rt.clone(), peak.clone());
            rt.spawn(async move {
                rt2.sleep(Duration::from_millis(i % 37)).await;
                let conn = pool.acquire().await.unwrap();
                peak.fetch_max(pool.size(), Ordering::SeqCst);
                assert!(pool.size() <= 8);
                rt2.sleep(Duration::from_millis(1 + i % 5)).await;
                if i % 97 == 0 {
                    conn.discard();
                }
            })
            .unwrap()
        })
        .collect();
    mock.block_on(async {
        for user in users {
            user.await.unwrap();
        }
    })
    .unwrap();
    assert_eq!(peak.load(Ordering::SeqCst), 8);
    let created = manager.created.load(Ordering::SeqCst);
    let destroyed = manager.destroyed.load(Ordering::SeqCst);
    assert_eq!(
        created - destroyed,
        pool.size(),
        "every instance accounted for"
    );
    assert!(created < 30, "instances are reused ({created} created)");
}

#[test]
fn timeouts_cancellations_and_failed_creations_leak_nothing() {
    let mock = MockRuntime::new();
    let rt = mock.runtime();
    let (pool, manager) = pool(&mock, 1);
    mock.block_on(async {
        let held = pool.acquire().await.unwrap();
        let err = pool.acquire_timeout(secs(1)).await.unwrap_err();
        assert!(matches!(err, PoolError::Timeout(_)));
        drop(held);
        manager.fail_create.store(true, Ordering::SeqCst);
        drop(pool.acquire().await.unwrap()); // the idle one: no creation needed
        let grabbed = pool.acquire().await.unwrap();
        grabbed.discard();
        rt.sleep(Duration::from_millis(1)).await;
        assert_eq!(pool.size(), 0);
        let err = pool.acquire().await.unwrap_err();
        assert!(matches!(err, PoolError::Create(Refused)), "{err}");
        assert_eq!(pool.size(), 0, "a failed creation is not counted");
        manager.fail_create.store(false, Ordering::SeqCst);
        assert!(pool.acquire().await.is_ok(), "the slot was given back");
    })
    .unwrap();
}

#[test]
fn a_panicking_user_still_returns_its_instance() {
    let mock = MockRuntime::new();
    let rt = mock.runtime();
    let (pool, _manager) = pool(&mock, 1);
    let p = pool.clone();
    let task = rt
        .spawn(async move {
            let _conn = p.acquire().await.unwrap();
            panic!("user code blew up");
        })
        .unwrap();
    let outcome = mock.block_on(task).unwrap();
    assert!(outcome.unwrap_err().is_panic());
    assert_eq!((pool.size(), pool.idle()), (1, 1));
}

#[test]
fn close_destroys_idle_now_and_lent_on_return() {
    let mock = MockRuntime::new();
    let rt = mock.runtime();
    let (pool, manager) = pool(&mock, 2);
    mock.block_on(async {
        let kept = pool.acquire().await.unwrap();
        drop(pool.acquire().await.unwrap());
        let returner = {
            let rt = rt.clone();
            rt.clone()
                .spawn(async move {
                    rt.sleep(secs(2)).await;
                    drop(kept);
                })
                .unwrap()
        };
        let left = pool.close(secs(5)).await;
        assert_eq!(left, 0, "the lent one came back within the timeout");
        returner.await.unwrap();
        rt.sleep(Duration::from_millis(1)).await;
        assert_eq!(manager.destroyed.load(Ordering::SeqCst), 2);
        assert!(matches!(pool.acquire().await, Err(PoolError::Closed)));
    })
    .unwrap();
    let rt = mock.runtime();
    let zero = Pool::builder(Arc::new(Counting::default()), 0).build(&rt);
    assert!(matches!(zero, Err(PoolError::ZeroSize)));
}
