//! The worker pool on the real runtimes: jobs run on its threads, a panic
//! is an error for its caller and its thread is replaced, a full queue
//! makes submit wait, and close drains the queue and ends every thread.
//! (The mock runtime cannot see a real thread finish, so it is left out.)

#[path = "../support/mod.rs"]
mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use machina_core::rt::Runtime;
use machina_core::workers::{WorkerError, WorkerPool};
use support::Env;

real_runtimes! {
    /// Jobs run on the pool's own threads and return their values.
    async fn jobs_run_on_worker_threads(rt: Runtime, env: Env) {
        let pool = WorkerPool::new("crunch", 2, 4).unwrap();
        let caller = std::thread::current().id();
        let (value, thread) = pool
            .submit(move || ((1..=10u64).product::<u64>(), std::thread::current().name().map(str::to_owned)))
            .await
            .unwrap();
        assert_eq!(value, 3_628_800);
        assert_eq!(thread.as_deref(), Some("crunch-worker"));
        let other = pool.submit(move || std::thread::current().id() != caller).await.unwrap();
        assert!(other);
        assert_eq!(pool.threads(), 2);
        pool.close().await;
        assert_eq!(pool.threads(), 0);
    }

    /// A panicking job is an error for its caller; the pool keeps its
    /// thread count and goes on working.
    async fn a_panic_is_isolated_and_its_thread_replaced(rt: Runtime, env: Env) {
        let pool = WorkerPool::new("fragile", 1, 2).unwrap();
        let err = pool.submit(|| -> u8 { panic!("job blew up") }).await.unwrap_err();
        assert_eq!(err, WorkerError::Panicked("job blew up".into()));
        assert_eq!(pool.submit(|| 7).await.unwrap(), 7, "a fresh thread serves the next job");
        assert_eq!(pool.threads(), 1);
        pool.close().await;
    }

    /// Many submitters, few threads and a short queue: every job runs once,
    /// no more run at once than there are threads.
    async fn backpressure_and_bounded_parallelism(rt: Runtime, env: Env) {
        let pool = WorkerPool::new("bounded", 2, 2).unwrap();
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let jobs = (0..24u64).map(|i| {
            let (pool, running, peak) = (pool.clone(), running.clone(), peak.clone());
            async move {
                pool.submit(move || {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(2));
                    running.fetch_sub(1, Ordering::SeqCst);
                    i
                })
                .await
                .unwrap()
            }
        });
        let mut done = futures::future::join_all(jobs).await;
        done.sort_unstable();
        assert_eq!(done, (0..24).collect::<Vec<_>>());
        assert!(peak.load(Ordering::SeqCst) <= 2, "at most one job per thread");
        pool.close().await;
    }

    /// close refuses new jobs, lets queued ones finish, and ends the threads.
    async fn close_drains_the_queue_then_refuses(rt: Runtime, env: Env) {
        let pool = WorkerPool::new("draining", 1, 8).unwrap();
        let finished = Arc::new(AtomicUsize::new(0));
        let queued: Vec<_> = (0..4)
            .map(|_| {
                let (pool, finished) = (pool.clone(), finished.clone());
                rt.spawn(async move {
                    pool.submit(move || {
                        std::thread::sleep(Duration::from_millis(5));
                        finished.fetch_add(1, Ordering::SeqCst);
                    })
                    .await
                })
                .unwrap()
            })
            .collect();
        // Let the submits reach the queue before closing.
        rt.sleep(Duration::from_millis(2)).await;
        pool.close().await;
        assert_eq!(pool.threads(), 0);
        let refused = pool.submit(|| ()).await.unwrap_err();
        assert!(matches!(refused, WorkerError::Closed(_)), "{refused}");
        let mut ran = 0;
        for handle in queued {
            if handle.await.unwrap().is_ok() {
                ran += 1;
            }
        }
        assert_eq!(ran, finished.load(Ordering::SeqCst), "no queued job vanished");
        assert!(WorkerPool::new("x", 0, 1).is_err() && WorkerPool::new("x", 1, 0).is_err());
    }
}
