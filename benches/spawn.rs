//! `Runtime::spawn` + join on tokio versus raw `tokio::spawn` + join, on a
//! two-worker multi-thread runtime, side by side: one task at a time, and
//! batches of 100 spawned before any is joined. The measuring loop runs in
//! a task on a worker thread.
//!
//! Run: `cargo bench --bench spawn`

use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const BATCH: usize = 100;

/// Runs `f` as a task on a worker thread (where a service's code runs),
/// not on the thread calling `block_on`, and returns its measured time.
fn on_worker<F>(tokio_rt: &tokio::runtime::Runtime, f: F) -> Duration
where
    F: std::future::Future<Output = Duration> + Send + 'static,
{
    tokio_rt.block_on(async move { tokio::spawn(f).await.expect("bench task") })
}

fn spawn_join(c: &mut Criterion) {
    let tokio_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio");
    let rt = tokio_rt.block_on(async { machina_tokio::runtime().expect("inside tokio") });

    let mut group = c.benchmark_group("spawn_join_one");
    group.measurement_time(Duration::from_secs(5));
    group.throughput(Throughput::Elements(1));
    group.bench_function("machina_tokio", |b| {
        b.iter_custom(|iters| {
            let rt = rt.clone();
            on_worker(&tokio_rt, async move {
                let start = Instant::now();
                for i in 0..iters {
                    let v = rt
                        .spawn(async move { i })
                        .expect("spawn")
                        .await
                        .expect("join");
                    std::hint::black_box(v);
                }
                start.elapsed()
            })
        })
    });
    group.bench_function("raw_tokio", |b| {
        b.iter_custom(|iters| {
            on_worker(&tokio_rt, async move {
                let start = Instant::now();
                for i in 0..iters {
                    let v = tokio::spawn(async move { i }).await.expect("join");
                    std::hint::black_box(v);
                }
                start.elapsed()
            })
        })
    });
    group.finish();

    let mut group = c.benchmark_group("spawn_join_batch_100");
    group.measurement_time(Duration::from_secs(5));
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function("machina_tokio", |b| {
        b.iter_custom(|iters| {
            let rt = rt.clone();
            on_worker(&tokio_rt, async move {
                let start = Instant::now();
                for _ in 0..iters {
                    let handles: Vec<_> = (0..BATCH)
                        .map(|i| rt.spawn(async move { i }).expect("spawn"))
                        .collect();
                    for h in handles {
                        std::hint::black_box(h.await.expect("join"));
                    }
                }
                start.elapsed()
            })
        })
    });
    group.bench_function("raw_tokio", |b| {
        b.iter_custom(|iters| {
            on_worker(&tokio_rt, async move {
                let start = Instant::now();
                for _ in 0..iters {
                    let handles: Vec<_> =
                        (0..BATCH).map(|i| tokio::spawn(async move { i })).collect();
                    for h in handles {
                        std::hint::black_box(h.await.expect("join"));
                    }
                }
                start.elapsed()
            })
        })
    });
    group.finish();
}

criterion_group!(benches, spawn_join);
criterion_main!(benches);
