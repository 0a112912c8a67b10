//! A shared group's decision through Redis against one plain round trip,
//! in the same run, on loopback to a `redis-server` this bench starts:
//! - `ping`: one `PING` on the same multiplexed connection;
//! - `acquire_release`: `try_acquire` (the decision script: in-flight
//!   lease, start log, all limits checked) and the permit dropped (its
//!   release script is sent from a task, pipelined with the next decision);
//! - `acquire_release_window_only`: the same with only a window.
//!
//! Run: `cargo bench --bench redis` (needs `redis-server` on the `PATH`,
//! or `MACHINA_REDIS_URL`).

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use machina_core::limit::{Limiter, Limits};
use machina_redis::testing::RedisServer;
use machina_redis::{Redis, RedisGroup};

fn round_trips(c: &mut Criterion) {
    let server = RedisServer::start().expect("redis-server");
    // One thread for the one-at-a-time rows (steadier: no wake-ups across
    // threads), two workers for the throughput row.
    let tokio_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio");
    let rt = tokio_rt
        .block_on(async { machina_tokio::runtime() })
        .expect("runtime");
    let tokio_mt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio");
    let rt_mt = tokio_mt
        .block_on(async { machina_tokio::runtime() })
        .expect("runtime");
    let redis = Redis::open(server.url()).expect("url").prefix("bench");
    let both = Limits::new()
        .max_in_flight(1_000_000)
        .max_starts(1_000_000_000, Duration::from_millis(100));
    let group = tokio_rt.block_on(async {
        RedisGroup::builder(&redis, &rt, "both", both)
            .build()
            .expect("group")
    });
    let window = tokio_rt.block_on(async {
        RedisGroup::builder(
            &redis,
            &rt,
            "window",
            Limits::new().max_starts(1_000_000_000, Duration::from_millis(100)),
        )
        .build()
        .expect("group")
    });
    tokio_rt.block_on(redis.ping()).expect("ping");

    let mut bench = c.benchmark_group("redis_round_trip");
    bench.bench_function("ping", |b| {
        b.iter(|| tokio_rt.block_on(redis.ping()).expect("ping"))
    });
    bench.bench_function("acquire_release", |b| {
        b.iter(|| {
            let permit = tokio_rt.block_on(group.try_acquire()).expect("granted");
            drop(black_box(permit));
        })
    });
    bench.bench_function("acquire_release_window_only", |b| {
        b.iter(|| {
            let permit = tokio_rt.block_on(window.try_acquire()).expect("granted");
            drop(black_box(permit));
        })
    });
    // Throughput: three replicas (each its own connection and group
    // handle), 16 callers each, acquire + release as fast as they can.
    let replicas: Vec<RedisGroup> = (0..3)
        .map(|_| {
            let redis = Redis::open(server.url()).expect("url").prefix("bench");
            tokio_mt.block_on(async {
                RedisGroup::builder(&redis, &rt_mt, "both", both)
                    .build()
                    .expect("group")
            })
        })
        .collect();
    bench.bench_function("three_replicas_48_callers_per_decision", |b| {
        b.iter_custom(|iters| {
            let per_caller = iters.div_ceil(48).max(1);
            let started = std::time::Instant::now();
            tokio_mt.block_on(async {
                let callers: Vec<_> = (0..48)
                    .map(|i| {
                        let group = replicas[i % 3].clone();
                        tokio::spawn(async move {
                            for _ in 0..per_caller {
                                let permit = group.try_acquire().await.expect("granted");
                                drop(black_box(permit));
                            }
                        })
                    })
                    .collect();
                for caller in callers {
                    caller.await.expect("caller");
                }
            });
            started.elapsed() * (iters as u32) / ((per_caller * 48) as u32)
        })
    });
    bench.finish();
    drop(server);
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .measurement_time(Duration::from_secs(4))
        .warm_up_time(Duration::from_secs(1));
    targets = round_trips
}
criterion_main!(benches);
