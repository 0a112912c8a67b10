//! Work on real threads, on the real runtimes: the worker pool (jobs on
//! its threads, panics isolated and threads replaced, a full queue makes
//! submit wait, close drains the queue and ends every thread), a closure
//! on a thread of its own, a blocking iterator as a bounded stream, and
//! waiting on async code from a blocking thread. (The mock runtime cannot
//! see a real thread finish, so it is left out.)

#[path = "../support/mod.rs"]
mod support;

use machina_test::real_runtimes;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::StreamExt;
use machina_core::rt::{ThreadError, sync_wait};
use machina_core::workers::{WorkerError, WorkerPool};

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
        // The retired thread ends just after starting its replacement.
        let mut waited = 0;
        while pool.threads() != 1 && waited < 200 {
            rt.sleep(Duration::from_millis(5)).await;
            waited += 1;
        }
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

        // A full queue makes submit wait: with one thread busy and room for
        // two queued jobs, further submits are still pending after a while.
        let pool = WorkerPool::new("narrow", 1, 2).unwrap();
        let gate = Arc::new(std::sync::Barrier::new(2));
        let started = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let blocker = {
            let (pool, gate, started) = (pool.clone(), gate.clone(), started.clone());
            rt.spawn(async move {
                pool.submit(move || {
                    started.store(true, Ordering::SeqCst);
                    gate.wait();
                })
                .await
            })
            .unwrap()
        };
        // The only thread is busy before any other job is submitted.
        let mut waited = 0;
        while !started.load(Ordering::SeqCst) && waited < 400 {
            rt.sleep(Duration::from_millis(5)).await;
            waited += 1;
        }
        assert!(started.load(Ordering::SeqCst));
        let fillers: Vec<_> = (0..6)
            .map(|_| {
                let pool = pool.clone();
                rt.spawn(async move { pool.submit(|| ()).await }).unwrap()
            })
            .collect();
        // Wait until the queue has filled (submits start in any order).
        let mut waited = 0;
        while pool.queued() < 2 && waited < 400 {
            rt.sleep(Duration::from_millis(5)).await;
            waited += 1;
        }
        rt.sleep(Duration::from_millis(20)).await;
        let waiting = fillers.iter().filter(|f| !f.is_finished()).count();
        assert_eq!(waiting, 6, "none can finish while the only thread is busy");
        assert_eq!(pool.queued(), 2, "the queue holds two; the others wait for room");
        gate.wait();
        blocker.await.unwrap().unwrap();
        for filler in fillers {
            filler.await.unwrap().unwrap();
        }
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

    /// threaded_separate runs on a new thread; a panic is contained.
    async fn a_closure_on_a_thread_of_its_own(rt: Runtime, env: Env) {
        let name = rt
            .threaded_separate(|| std::thread::current().name().map(str::to_owned))
            .unwrap()
            .await
            .unwrap();
        assert_eq!(name.as_deref(), Some("machina-threaded"));
        let err = rt.threaded_separate(|| panic!("thread blew up")).unwrap().await;
        let err: machina_core::rt::JoinError = err.unwrap_err();
        assert_eq!(err.panic_payload().unwrap().message(), "thread blew up");
    }

    /// A blocking iterator becomes a stream; the producer stays at most the
    /// buffer ahead, and stops once the stream is dropped.
    async fn a_blocking_iterator_as_a_bounded_stream(rt: Runtime, env: Env) {
        let items: Vec<u32> = rt.threaded_iterable(0..100u32, 4).unwrap().collect().await;
        assert_eq!(items, (0..100).collect::<Vec<_>>());

        let produced = Arc::new(AtomicUsize::new(0));
        let counter = produced.clone();
        let endless = (0u64..).inspect(move |_| {
            counter.fetch_add(1, Ordering::SeqCst);
        });
        let mut stream = rt.threaded_iterable(endless, 3).unwrap();
        for expected in 0..5u64 {
            assert_eq!(stream.next().await, Some(expected));
        }
        rt.sleep(Duration::from_millis(20)).await;
        let ahead = produced.load(Ordering::SeqCst);
        assert!(ahead <= 5 + 3 + 1, "producer ran {ahead} items ahead of 5 taken");
        drop(stream);
        rt.sleep(Duration::from_millis(20)).await;
        let stopped = produced.load(Ordering::SeqCst);
        rt.sleep(Duration::from_millis(20)).await;
        assert_eq!(produced.load(Ordering::SeqCst), stopped, "the producer stopped");
        assert_eq!(rt.threaded_iterable(0..1, 0).unwrap_err(), ThreadError::ZeroBuffer);
    }

    /// A blocking thread waits on a value from async code.
    async fn a_blocking_thread_waits_on_async_code(rt: Runtime, env: Env) {
        let (tx, rx) = futures::channel::oneshot::channel::<u32>();
        let waiter = rt.threaded_separate(move || sync_wait(rx).unwrap() * 2).unwrap();
        rt.sleep(Duration::from_millis(5)).await;
        tx.send(21).unwrap();
        assert_eq!(waiter.await.unwrap(), 42);
    }
}
