//! Mock runtime throughput: a simulated day of 100 loops ticking every
//! second (8.64 M timer events), on Machina's `MockRuntime` and, side by
//! side, on tokio's paused clock (`start_paused` + `tokio::time::interval`).
//!
//! Run: `cargo bench --bench mock_runtime`

use std::time::Duration;

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use machina_core::rt::MissedTick;
use machina_core::testing::MockRuntime;

const LOOPS: u64 = 100;
const TICKS_PER_LOOP: u64 = 86_400;
const PERIOD: Duration = Duration::from_secs(1);

/// One simulated day on the mock runtime; returns the virtual time reached.
fn machina_day() -> Duration {
    let mock = MockRuntime::new();
    let rt = mock.runtime();
    let handles: Vec<_> = (0..LOOPS)
        .map(|_| {
            let rt2 = rt.clone();
            rt.spawn(async move {
                let mut ticks = rt2.interval(PERIOD, MissedTick::Burst).expect("period");
                ticks.tick().await;
                for _ in 0..TICKS_PER_LOOP {
                    ticks.tick().await;
                }
            })
            .expect("spawn")
        })
        .collect();
    mock.block_on(async move {
        for h in handles {
            h.await.expect("loop");
        }
    })
    .expect("day");
    mock.elapsed()
}

/// The same day on tokio's paused clock.
fn tokio_day() -> Duration {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("tokio");
    rt.block_on(async {
        let start = tokio::time::Instant::now();
        let handles: Vec<_> = (0..LOOPS)
            .map(|_| {
                tokio::spawn(async move {
                    let mut ticks = tokio::time::interval(PERIOD);
                    ticks.tick().await;
                    for _ in 0..TICKS_PER_LOOP {
                        ticks.tick().await;
                    }
                })
            })
            .collect();
        for h in handles {
            h.await.expect("loop");
        }
        start.elapsed()
    })
}

fn simulated_day(c: &mut Criterion) {
    assert_eq!(machina_day(), PERIOD * TICKS_PER_LOOP as u32);
    let mut group = c.benchmark_group("simulated_day_100_loops_1s");
    group.sampling_mode(SamplingMode::Flat);
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(20));
    group.throughput(Throughput::Elements(LOOPS * TICKS_PER_LOOP));
    group.bench_function("machina_mock", |b| b.iter(machina_day));
    group.bench_function("tokio_paused", |b| b.iter(tokio_day));
    group.finish();
}

criterion_group!(benches, simulated_day);
criterion_main!(benches);
