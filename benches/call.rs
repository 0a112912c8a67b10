//! The call pipeline's cost on the success path: one call through a group,
//! a breaker and retry rules that all let it pass at once, polled to
//! completion with a no-op waker on tokio's clock — beside the bare
//! operation and the same handler through a bot's `Execute::call`.
//!
//! Run: `cargo bench --bench call`

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

#[path = "support/mod.rs"]
mod support;

use criterion::{Criterion, criterion_group, criterion_main};
use machina_core::BoxError;
use machina_core::bot::Machina;
use machina_core::breaker::CircuitBreaker;
use machina_core::call::CallStack;
use machina_core::limit::{ConcurrentGroup, Limits};
use machina_core::retry::{Retry, Rule};
use support::tokio_runtime;

/// Polls `fut` once; the success path completes without waiting.
fn ready<T>(fut: impl Future<Output = T>) -> T {
    let mut cx = Context::from_waker(Waker::noop());
    match pin!(fut).poll(&mut cx) {
        Poll::Ready(value) => value,
        Poll::Pending => panic!("the success path never waits"),
    }
}

/// A named routine of one call.
type Row<'a> = (&'static str, Box<dyn Fn() + 'a>);

fn retry() -> Retry {
    Retry::new().rule(Rule::fixed(Duration::from_secs(1)).retries(3))
}

fn success_path(c: &mut Criterion) {
    let (tokio_rt, rt) = tokio_runtime();
    let _enter = tokio_rt.enter();
    let group = ConcurrentGroup::new(&rt, "pool", Limits::new().max_in_flight(64)).expect("group");
    let breaker = CircuitBreaker::builder("api").build(&rt).expect("breaker");
    let stack = CallStack::new()
        .group(group.clone())
        .breaker(breaker.clone())
        .retry(retry());

    let mut bot = Machina::builder(&rt);
    bot.group("pool", Limits::new().max_in_flight(64))
        .expect("group");
    let bare_execute = bot
        .execute("group_retry", |n: u64| async move { Ok::<_, BoxError>(n) })
        .groups(["pool"])
        .retry(retry())
        .register()
        .expect("execute");
    let full_execute = bot
        .execute("group_breaker_retry", |n: u64| async move {
            Ok::<_, BoxError>(n)
        })
        .groups(["pool"])
        .breaker(breaker)
        .retry(retry())
        .register()
        .expect("execute");

    let rows: Vec<Row<'_>> = vec![
        (
            "bare_operation",
            Box::new(|| {
                ready(async { Ok::<_, BoxError>(black_box(7u64)) }).expect("ok");
            }),
        ),
        (
            "stack_group_breaker_retry",
            Box::new(|| {
                ready(stack.run(&rt, || async { Ok::<_, BoxError>(black_box(7u64)) })).expect("ok");
            }),
        ),
        (
            "execute_call_group_retry",
            Box::new(|| {
                ready(bare_execute.call(black_box(7))).expect("ok");
            }),
        ),
        (
            "execute_call_group_breaker_retry",
            Box::new(|| {
                ready(full_execute.call(black_box(7))).expect("ok");
            }),
        ),
    ];
    run_rows(c, &rows);
}

/// Times each row with criterion — or, with `MACHINA_CALLGRIND=<row>:<n>`,
/// runs that row `n` times and exits, for instruction counts:
/// `bash benches/callgrind_rows.sh call <row>...` runs it under callgrind
/// at two values of `n`; the difference over the difference in `n` is the
/// count per call.
fn run_rows(c: &mut Criterion, rows: &[Row<'_>]) {
    if let Ok(spec) = std::env::var("MACHINA_CALLGRIND") {
        let (row, n) = spec.split_once(':').expect("row:n");
        let n: u64 = n.parse().expect("a count");
        let (_, f) = rows
            .iter()
            .find(|(name, _)| *name == row)
            .expect("a known row");
        machina_callgrind_loop(n, &mut || f());
        std::process::exit(0);
    }
    let mut group = c.benchmark_group("call_success_path");
    for (name, f) in rows {
        group.bench_function(*name, |b| b.iter(f));
    }
    group.finish();
}

criterion_group!(benches, success_path);
criterion_main!(benches);

/// Runs `op` `n` times: the one function callgrind counts in
/// (`benches/callgrind_rows.sh` toggles collection on it).
#[inline(never)]
fn machina_callgrind_loop(n: u64, op: &mut dyn FnMut()) {
    for _ in 0..n {
        op();
    }
}
