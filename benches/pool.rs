//! Pool acquire + release with an idle instance ready, Machina's `Pool`
//! against `deadpool`'s managed pool, on a tokio current-thread runtime.
//!
//! Run: `cargo bench --bench pool`

use std::time::Instant;

use criterion::{Criterion, criterion_group, criterion_main};

struct Machina;

impl machina_core::pool::Manager for Machina {
    type Item = u64;
    type Error = std::io::Error;

    async fn create(&self) -> Result<u64, std::io::Error> {
        Ok(1)
    }
}

struct Dead;

impl deadpool::managed::Manager for Dead {
    type Type = u64;
    type Error = std::io::Error;

    async fn create(&self) -> Result<u64, std::io::Error> {
        Ok(1)
    }

    async fn recycle(
        &self,
        _item: &mut u64,
        _metrics: &deadpool::managed::Metrics,
    ) -> deadpool::managed::RecycleResult<std::io::Error> {
        Ok(())
    }
}

fn acquire_release(c: &mut Criterion) {
    let tokio_rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("tokio");
    let rt = machina_tokio::runtime_from(tokio_rt.handle().clone()).expect("timer");
    let ours = machina_core::pool::Pool::builder(Machina, 16)
        .build(&rt)
        .expect("pool");
    let theirs = deadpool::managed::Pool::<Dead>::builder(Dead)
        .max_size(16)
        .build()
        .expect("deadpool");

    let mut group = c.benchmark_group("pool_acquire_release");
    group.bench_function("machina_pool", |b| {
        b.iter_custom(|iters| {
            tokio_rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    let item = ours.acquire().await.expect("item");
                    std::hint::black_box(*item);
                }
                start.elapsed()
            })
        })
    });
    group.bench_function("deadpool", |b| {
        b.iter_custom(|iters| {
            tokio_rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    let item = theirs.get().await.expect("item");
                    std::hint::black_box(*item);
                }
                start.elapsed()
            })
        })
    });
    group.finish();
}

criterion_group!(benches, acquire_release);
criterion_main!(benches);
