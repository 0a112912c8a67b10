//! Circuit breaker overhead while passing: a call that succeeds at once,
//! through Machina's `CircuitBreaker` (on tokio's real clock), `recloser`
//! and `failsafe`, side by side.
//!
//! The tokio runtime is a multi-thread one (what `#[tokio::main]` makes),
//! whose clock can never be paused: the breaker reads the process's coarse
//! clock directly. On a current-thread runtime (whose clock a test may
//! pause) each success asks tokio's timer instead, a few nanoseconds more.
//!
//! Run: `cargo bench --bench breaker`; instruction counts per call:
//! `MACHINA_CALLGRIND=<row>:<n> valgrind --tool=callgrind <bench binary>`
//! for rows `machina_guard`, `recloser`, `failsafe` (n = 1 000 and 11 000:
//! the difference over 10 000 is the per-call count).

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use failsafe::CircuitBreaker as _;
use machina_core::breaker::CircuitBreaker;

fn passing_overhead(c: &mut Criterion) {
    let tokio_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_time()
        .build()
        .expect("tokio");
    let rt = machina_tokio::runtime_from(tokio_rt.handle().clone()).expect("timer");
    let breaker = CircuitBreaker::builder("bench")
        .response_time(Duration::from_secs(10))
        .build(&rt)
        .expect("breaker");
    let recloser = recloser::Recloser::custom().closed_len(100).build();
    let failsafe = failsafe::Config::new().build();

    // Instruction counts: with MACHINA_CALLGRIND=<row>:<n>, run that row
    // n times under `valgrind --tool=callgrind` and exit (see benches/call.rs).
    if let Ok(spec) = std::env::var("MACHINA_CALLGRIND") {
        let (row, n) = spec.split_once(':').expect("row:n");
        let n: u64 = n.parse().expect("a count");
        // Chosen before the loop: the loop counts the operation alone, the
        // same for every row (no name compared per iteration).
        let mut op: Box<dyn FnMut()> = match row {
            "machina_guard" => Box::new(|| {
                let guard = breaker.enter().expect("passing");
                black_box(1u64);
                guard.success();
            }),
            "recloser" => Box::new(|| {
                let _ = black_box(recloser.call(|| Ok::<u64, ()>(black_box(1))));
            }),
            "failsafe" => Box::new(|| {
                let _ = black_box(failsafe.call(|| Ok::<u64, ()>(black_box(1))));
            }),
            other => panic!("unknown row {other}"),
        };
        machina_callgrind_loop(n, &mut *op);
        std::process::exit(0);
    }
    let mut group = c.benchmark_group("breaker_call_passing");
    group.bench_function("bare_call", |b| {
        b.iter(|| black_box(Ok::<u64, std::io::Error>(black_box(1))))
    });
    group.bench_function("machina_circuit_breaker", |b| {
        // `call` is async; a future that is ready at once is polled to its
        // end by a no-op waker, so only the breaker is measured.
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                let outcome = futures::executor::block_on(
                    breaker.call(async { Ok::<u64, std::io::Error>(black_box(1)) }),
                );
                black_box(outcome.expect("passing"));
            }
            start.elapsed()
        })
    });
    group.bench_function("machina_guard", |b| {
        b.iter(|| {
            let guard = breaker.enter().expect("passing");
            black_box(1u64);
            guard.success();
        })
    });
    group.bench_function("recloser", |b| {
        b.iter(|| black_box(recloser.call(|| Ok::<u64, ()>(black_box(1)))))
    });
    group.bench_function("failsafe", |b| {
        b.iter(|| black_box(failsafe.call(|| Ok::<u64, ()>(black_box(1)))))
    });
    group.finish();
}

criterion_group!(benches, passing_overhead);
criterion_main!(benches);

/// Runs `op` `n` times: the one function callgrind counts in (`--toggle-collect`),
/// so that set-up (a clock's calibration, say) stays out of the count.
#[inline(never)]
fn machina_callgrind_loop(n: u64, op: &mut dyn FnMut()) {
    for _ in 0..n {
        op();
    }
}
