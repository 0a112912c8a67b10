//! Execute throughput: 20 000 `event.execute` calls through one concurrent
//! group (64 in flight, no window), each handler awaiting one yield, on
//! tokio with 2 workers — side by side with a hand-written
//! `tokio::spawn` + `Semaphore` baseline doing the same work.
//!
//! Run: `cargo bench --bench execute`

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use machina_core::BoxError;
use machina_core::bot::{Event, Machina};
use machina_core::limit::Limits;

const CALLS: u32 = 20_000;
const IN_FLIGHT: u32 = 64;

/// Yields to the executor once (runtime-agnostic).
struct YieldNow(bool);

impl Future for YieldNow {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            return Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

fn machina_run(tokio_rt: &tokio::runtime::Runtime) -> Duration {
    tokio_rt.block_on(async {
        let rt = machina_tokio::runtime().expect("inside tokio");
        let mut bot = Machina::builder(&rt);
        bot.group("pool", Limits::new().max_in_flight(IN_FLIGHT))
            .expect("group");
        bot.execute("work", |n: u32| async move {
            YieldNow(false).await;
            Ok::<_, BoxError>(n)
        })
        .groups(["pool"])
        .register()
        .expect("execute");
        let elapsed = Arc::new(std::sync::Mutex::new(Duration::ZERO));
        let out = elapsed.clone();
        bot.emit("driver", "1s")
            .expect("schedule")
            .count(1)
            .register(move |event: Event| {
                let out = out.clone();
                async move {
                    let start = Instant::now();
                    let tasks: Vec<_> = (0..CALLS)
                        .map(|n| event.execute::<u32, u32>("work", n).expect("execute"))
                        .collect();
                    for task in tasks {
                        std::hint::black_box(task.await.expect("ok"));
                    }
                    *out.lock().expect("lock") = start.elapsed();
                }
            })
            .expect("emit");
        bot.build().run().await.expect("run");
        *elapsed.lock().expect("lock")
    })
}

fn baseline_run(tokio_rt: &tokio::runtime::Runtime) -> Duration {
    tokio_rt.block_on(async {
        tokio::spawn(async {
            let start = Instant::now();
            let semaphore = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT as usize));
            let tasks: Vec<_> = (0..CALLS)
                .map(|n| {
                    let semaphore = semaphore.clone();
                    tokio::spawn(async move {
                        let _permit = semaphore.acquire().await.expect("open");
                        YieldNow(false).await;
                        n
                    })
                })
                .collect();
            for task in tasks {
                std::hint::black_box(task.await.expect("ok"));
            }
            start.elapsed()
        })
        .await
        .expect("driver")
    })
}

fn execute_throughput(c: &mut Criterion) {
    let tokio_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio");
    let mut group = c.benchmark_group("execute_20k_calls_group_64");
    group.throughput(Throughput::Elements(u64::from(CALLS)));
    group.sample_size(20);
    group.bench_function("machina_event_execute", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| machina_run(&tokio_rt)).sum())
    });
    group.bench_function("tokio_spawn_semaphore", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| baseline_run(&tokio_rt)).sum())
    });
    group.finish();
}

criterion_group!(benches, execute_throughput);
criterion_main!(benches);
