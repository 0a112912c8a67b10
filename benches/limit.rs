//! Concurrent groups and retry, side by side with their peers:
//! - uncontended `try_acquire` + release of a group enforcing both limits,
//!   and of a token-bucket group (GCRA, the same quota as governor's),
//!   each with an owned `Permit` and with a borrowed `GroupGuard`
//!   (`try_acquire_guard`), versus `governor`'s `check()` and tokio's `Semaphore::try_acquire` +
//!   drop; Machina is measured on a real clock (a multi-thread tokio
//!   runtime's, as `#[tokio::main]` makes: one clock read per decision) and
//!   on the mock runtime's virtual clock;
//! - the same with two threads hammering one limiter;
//! - the success-path overhead of a `Retry`-wrapped call over the bare call.
//!
//! Run: `cargo bench --bench limit`

use std::hint::black_box;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use machina_core::limit::{ConcurrentGroup, Limits};
use machina_core::retry::{Retry, Rule};
use machina_core::testing::MockRuntime;

/// A multi-thread tokio runtime (one worker: the benches call from their
/// own thread) and a Machina runtime on it: what `#[tokio::main]` gives a
/// program. Its clock can never be paused, so the groups read the real
/// clock directly (`Timer::fast_clock`); on a current-thread runtime they
/// read tokio's (test-util) clock as an `Instant`.
fn tokio_runtime() -> (tokio::runtime::Runtime, machina_core::rt::Runtime) {
    let tokio_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_time()
        .build()
        .expect("tokio");
    let rt = machina_tokio::runtime_from(tokio_rt.handle().clone()).expect("timer");
    (tokio_rt, rt)
}

/// Both limits on, never binding: the window is short enough that its log
/// of start times stays small at tens of millions of starts per second.
fn both_limits() -> Limits {
    Limits::new()
        .max_in_flight(1_000_000)
        .max_starts(1_000_000, Duration::from_millis(1))
}

/// A billion per second: never binding at tens of nanoseconds per start,
/// and a whole nanosecond apart, so Machina's bucket is the lock-free one
/// (see `limit/gcra.rs`).
const RATE: u32 = 1_000_000_000;

fn governor() -> governor::DefaultDirectRateLimiter {
    governor::RateLimiter::direct(governor::Quota::per_second(
        NonZeroU32::new(RATE).expect("non-zero"),
    ))
}

fn uncontended(c: &mut Criterion) {
    let (_tokio_rt, rt) = tokio_runtime();
    let mock = MockRuntime::new();
    let real_clock = ConcurrentGroup::new(&rt, "bench", both_limits()).expect("group");
    let virtual_clock =
        ConcurrentGroup::new(&mock.runtime(), "bench", both_limits()).expect("group");
    let in_flight_only =
        ConcurrentGroup::new(&rt, "bench", Limits::new().max_in_flight(1_000_000)).expect("group");
    let semaphore = tokio::sync::Semaphore::new(1_000_000);
    // The same quota as governor's: a billion per second, with a burst as
    // large as governor's (its burst is the whole quota).
    let bucket = ConcurrentGroup::new(
        &rt,
        "bench",
        Limits::rate(RATE, Duration::from_secs(1)).burst(RATE - 1),
    )
    .expect("group");
    // A rate that is not a whole number of nanoseconds apart: the exact
    // 128-bit arithmetic under the group's lock.
    let bucket_exact = ConcurrentGroup::new(
        &rt,
        "bench",
        Limits::rate(u32::MAX, Duration::from_secs(1)).burst(u32::MAX - 1),
    )
    .expect("group");

    // Instruction counts: with MACHINA_CALLGRIND=<row>:<n>, run that row
    // n times under `valgrind --tool=callgrind` and exit (see benches/call.rs).
    if let Ok(spec) = std::env::var("MACHINA_CALLGRIND") {
        let (row, n) = spec.split_once(':').expect("row:n");
        let n: u64 = n.parse().expect("a count");
        // governor's clock (quanta) calibrates on first use, for a time,
        // not a count: made only for its own row, before the first count.
        let limiter = (row == "governor_check").then(governor);
        if let Some(limiter) = &limiter {
            black_box(limiter.check()).expect("free");
        }
        // Chosen before the loop: the loop counts the operation alone, the
        // same for every row (no name compared per iteration).
        let mut op: Box<dyn FnMut()> = match row {
            "machina_token_bucket" => Box::new(|| {
                drop(black_box(bucket.try_acquire().expect("free")));
            }),
            "machina_token_bucket_guard" => {
                Box::new(|| drop(black_box(bucket.try_acquire_guard().expect("free"))))
            }
            "machina_token_bucket_exact_guard" => {
                Box::new(|| drop(black_box(bucket_exact.try_acquire_guard().expect("free"))))
            }
            "machina_group_real_clock" => Box::new(|| {
                drop(black_box(real_clock.try_acquire().expect("free")));
            }),
            "machina_group_real_clock_guard" => {
                Box::new(|| drop(black_box(real_clock.try_acquire_guard().expect("free"))))
            }
            "machina_group_in_flight_only" => {
                Box::new(|| drop(black_box(in_flight_only.try_acquire().expect("free"))))
            }
            "machina_group_in_flight_only_guard" => {
                Box::new(|| drop(black_box(in_flight_only.try_acquire_guard().expect("free"))))
            }
            "governor_check" => Box::new(|| {
                black_box(limiter.as_ref().expect("made").check()).expect("free");
            }),
            "tokio_semaphore" => Box::new(|| {
                drop(black_box(semaphore.try_acquire().expect("free")));
            }),
            "std_instant_now" => Box::new(|| {
                black_box(Instant::now());
            }),
            other => panic!("unknown row {other}"),
        };
        machina_callgrind_loop(n, &mut *op);
        std::process::exit(0);
    }
    let limiter = governor();
    let mut group = c.benchmark_group("uncontended_acquire_release");
    group.bench_function("machina_token_bucket", |b| {
        b.iter(|| drop(black_box(bucket.try_acquire().expect("free"))))
    });
    group.bench_function("machina_token_bucket_guard", |b| {
        b.iter(|| drop(black_box(bucket.try_acquire_guard().expect("free"))))
    });
    group.bench_function("machina_token_bucket_exact_guard", |b| {
        b.iter(|| drop(black_box(bucket_exact.try_acquire_guard().expect("free"))))
    });
    group.bench_function("machina_group_real_clock", |b| {
        b.iter(|| drop(black_box(real_clock.try_acquire().expect("free"))))
    });
    group.bench_function("machina_group_real_clock_guard", |b| {
        b.iter(|| drop(black_box(real_clock.try_acquire_guard().expect("free"))))
    });
    group.bench_function("machina_group_virtual_clock", |b| {
        // The virtual clock only moves when told to: step it 1 ms every
        // 10 000 starts so the window keeps turning over.
        b.iter_custom(|iters| {
            let start = Instant::now();
            for i in 0..iters {
                drop(black_box(virtual_clock.try_acquire().expect("free")));
                if i % 10_000 == 9_999 {
                    mock.advance(Duration::from_millis(1)).expect("advance");
                }
            }
            start.elapsed()
        })
    });
    group.bench_function("machina_group_in_flight_only", |b| {
        b.iter(|| drop(black_box(in_flight_only.try_acquire().expect("free"))))
    });
    // The borrowed form, as tokio's `Semaphore::try_acquire` borrows.
    group.bench_function("machina_group_in_flight_only_guard", |b| {
        b.iter(|| drop(black_box(in_flight_only.try_acquire_guard().expect("free"))))
    });
    group.bench_function("governor_check", |b| {
        b.iter(|| black_box(limiter.check()).expect("free"))
    });
    group.bench_function("tokio_semaphore", |b| {
        b.iter(|| drop(black_box(semaphore.try_acquire().expect("free"))))
    });
    group.bench_function("std_instant_now", |b| b.iter(|| black_box(Instant::now())));
    group.finish();
}

/// Runs `op` `iters` times on each of two threads; returns the wall time.
fn on_two_threads(iters: u64, op: impl Fn() + Send + Sync + 'static) -> Duration {
    let op = Arc::new(op);
    let barrier = Arc::new(std::sync::Barrier::new(2));
    let start = Instant::now();
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let (op, barrier) = (op.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                for _ in 0..iters {
                    op();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("bench thread");
    }
    start.elapsed()
}

fn contended(c: &mut Criterion) {
    let (_tokio_rt, rt) = tokio_runtime();
    let group_real = ConcurrentGroup::new(&rt, "bench", both_limits()).expect("group");
    let limiter = Arc::new(governor());
    let semaphore = Arc::new(tokio::sync::Semaphore::new(1_000_000));

    // Per-iteration time is for one operation on each of the two threads.
    let mut group = c.benchmark_group("contended_2_threads");
    group.bench_function("machina_group_real_clock", |b| {
        b.iter_custom(|iters| {
            let g = group_real.clone();
            on_two_threads(iters, move || {
                drop(black_box(g.try_acquire().expect("free")))
            })
        })
    });
    group.bench_function("governor_check", |b| {
        b.iter_custom(|iters| {
            let l = limiter.clone();
            on_two_threads(iters, move || black_box(l.check()).expect("free"))
        })
    });
    group.bench_function("tokio_semaphore", |b| {
        b.iter_custom(|iters| {
            let s = semaphore.clone();
            on_two_threads(iters, move || {
                drop(black_box(s.try_acquire().expect("free")))
            })
        })
    });
    group.finish();
}

async fn succeed(n: u64) -> Result<u64, std::io::Error> {
    Ok(black_box(n))
}

fn retry_success_path(c: &mut Criterion) {
    let mock = MockRuntime::new();
    let rt = mock.runtime();
    let retry = Retry::new()
        .rule(
            Rule::fixed(Duration::from_secs(1))
                .on::<std::io::Error>()
                .retries(5),
        )
        .rule(
            Rule::exponential_jitter(Duration::from_millis(100), Duration::from_secs(10))
                .unlimited(),
        );

    let mut group = c.benchmark_group("retry_success_path");
    group.bench_function("bare_call", |b| {
        b.iter_custom(|iters| {
            mock.block_on(async {
                let start = Instant::now();
                for i in 0..iters {
                    black_box(succeed(i).await.expect("ok"));
                }
                start.elapsed()
            })
            .expect("mock")
        })
    });
    group.bench_function("retry_call", |b| {
        b.iter_custom(|iters| {
            mock.block_on(async {
                let start = Instant::now();
                for i in 0..iters {
                    black_box(retry.call(&rt, || succeed(i)).await.expect("ok"));
                }
                start.elapsed()
            })
            .expect("mock")
        })
    });
    group.finish();
}

criterion_group!(benches, uncontended, contended, retry_success_path);
criterion_main!(benches);

/// Runs `op` `n` times: the one function callgrind counts in (`--toggle-collect`),
/// so that set-up (a clock's calibration, say) stays out of the count.
#[inline(never)]
fn machina_callgrind_loop(n: u64, op: &mut dyn FnMut()) {
    for _ in 0..n {
        op();
    }
}
