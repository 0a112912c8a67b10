//! Aggregation throughput: 64 concurrent callers on tokio (2 workers)
//! calling one `Aggregator` (max 64 per batch, 1 ms leeway) whose batch
//! function doubles its arguments — then the same workload through
//! aiomisc's `aggregate` (`benches/peers/aiomisc_aggregate.py`), in the
//! same run, rounds interleaved: Machina, aiomisc, Machina, aiomisc, …
//! The target is 100× aiomisc. A third row, `tokio_minimal_batcher_floor`,
//! runs the same callers through a minimal hand-written batcher (no
//! leeway timer): the floor that tokio's wake-ups set for any aggregator.
//!
//! The peer needs a Python with aiomisc: `python3 -m venv /tmp/aiomisc &&
//! /tmp/aiomisc/bin/pip install aiomisc`, then `MACHINA_PYTHON=/tmp/aiomisc/bin/python`
//! (`python3` by default). Without it the peer rows are skipped, and say
//! so.
//!
//! Run: `cargo bench --bench aggregate`

use std::future::Future;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use machina_core::aggregate::Aggregator;

const CALLERS: u64 = 64;
const CALLS_PER_CALLER: u64 = 1_000;

type Doubler = Aggregator<u64, u64>;

fn setup() -> (tokio::runtime::Runtime, Doubler) {
    let tokio_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio");
    let rt = tokio_rt.block_on(async { machina_tokio::runtime().expect("inside tokio") });
    let agg =
        Aggregator::new(
            &rt,
            Duration::from_millis(1),
            Some(CALLERS as usize),
            |args: Vec<u64>| async move {
                Ok::<_, std::io::Error>(args.iter().map(|a| a * 2).collect())
            },
        )
        .expect("aggregator");
    (tokio_rt, agg)
}

/// What the callers call: Machina's aggregator, or the floor's batcher.
trait Batching: Clone + Send + Sync + 'static {
    fn call_one(&self, arg: u64) -> impl Future<Output = u64> + Send;
}

impl Batching for Doubler {
    async fn call_one(&self, arg: u64) -> u64 {
        self.call(arg).await.expect("ok")
    }
}

/// One round of the workload: 64 callers × 1 000 calls through `batching`;
/// how long it took.
fn callers_round<B: Batching>(tokio_rt: &tokio::runtime::Runtime, batching: &B) -> Duration {
    let batching = batching.clone();
    tokio_rt.block_on(async move {
        let start = Instant::now();
        let callers: Vec<_> = (0..CALLERS)
            .map(|c| {
                let batching = batching.clone();
                tokio::spawn(async move {
                    for i in 0..CALLS_PER_CALLER {
                        std::hint::black_box(batching.call_one(c * CALLS_PER_CALLER + i).await);
                    }
                })
            })
            .collect();
        for caller in callers {
            caller.await.expect("caller");
        }
        start.elapsed()
    })
}

/// The floor of this workload on tokio: a minimal batcher with no leeway
/// timer, no errors and no configuration — a mutex-guarded list of
/// `(argument, oneshot sender)`, closed by the call that fills it, which
/// spawns the batch (doubling each argument) as Machina does. Not a peer
/// library: it shows how much of a call's cost is tokio waking 64 callers
/// per batch, which no aggregator on tokio avoids.
#[derive(Clone, Default)]
struct MinimalBatcher {
    open: std::sync::Arc<std::sync::Mutex<Vec<Waiting>>>,
}

/// A call in the minimal batcher's open batch.
type Waiting = (u64, futures::channel::oneshot::Sender<u64>);

impl Batching for MinimalBatcher {
    async fn call_one(&self, arg: u64) -> u64 {
        let (sender, receiver) = futures::channel::oneshot::channel();
        let full = {
            let mut open = self.open.lock().expect("lock");
            if open.capacity() == 0 {
                open.reserve(CALLERS as usize);
            }
            open.push((arg, sender));
            (open.len() >= CALLERS as usize).then(|| std::mem::take(&mut *open))
        };
        if let Some(batch) = full {
            drop(tokio::spawn(async move {
                for (arg, reply) in batch {
                    let _ = reply.send(arg * 2);
                }
            }));
        }
        receiver.await.expect("reply")
    }
}

/// One round of aiomisc's `aggregate` on the same workload, in calls per
/// second, or why it could not run.
fn aiomisc_round(python: &str) -> Result<f64, String> {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/benches/peers/aiomisc_aggregate.py"
    );
    let output = std::process::Command::new(python)
        .args([script, "--rounds", "1"])
        .output()
        .map_err(|e| format!("{python} did not run: {e}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    stdout
        .split_whitespace()
        .find_map(|field| field.strip_prefix("calls_per_sec="))
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| {
            format!(
                "{python} could not run the aiomisc peer (pip install aiomisc; MACHINA_PYTHON names the Python): {}",
                String::from_utf8_lossy(&output.stderr).lines().last().unwrap_or("")
            )
        })
}

/// Machina and aiomisc in the same run, three interleaved rounds.
fn same_run_peer() {
    let python = std::env::var("MACHINA_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let (tokio_rt, agg) = setup();
    let calls = (CALLERS * CALLS_PER_CALLER) as f64;
    println!("aggregate, 64 callers x 1 000 calls: Machina and aiomisc ({python}) in turn");
    let mut ratios = Vec::new();
    for round in 1..=3 {
        let machina = calls / callers_round(&tokio_rt, &agg).as_secs_f64();
        match aiomisc_round(&python) {
            Ok(peer) => {
                println!(
                    "  round {round}: machina {machina:>12.0} calls/s | aiomisc {peer:>9.0} calls/s | {:.0}x",
                    machina / peer
                );
                ratios.push(machina / peer);
            }
            Err(why) => {
                println!(
                    "  round {round}: machina {machina:>12.0} calls/s | aiomisc skipped: {why}"
                );
                return;
            }
        }
    }
    let lo = ratios.iter().cloned().fold(f64::MAX, f64::min);
    let hi = ratios.iter().cloned().fold(0.0, f64::max);
    println!("  => Machina is {lo:.0}-{hi:.0}x aiomisc (target >= 100x)");
}

fn aggregation(c: &mut Criterion) {
    let (tokio_rt, agg) = setup();

    let mut group = c.benchmark_group("aggregate_64_callers");
    group.throughput(Throughput::Elements(CALLERS * CALLS_PER_CALLER));
    group.sample_size(20);
    group.bench_function("machina_aggregator", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| callers_round(&tokio_rt, &agg)).sum())
    });
    let batcher = MinimalBatcher::default();
    group.bench_function("tokio_minimal_batcher_floor", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| callers_round(&tokio_rt, &batcher)).sum())
    });
    group.finish();
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    aggregation(&mut criterion);
    criterion.final_summary();
    // `cargo test --benches` runs bench binaries with `--test`: no peer then.
    if !std::env::args().any(|a| a == "--test") {
        same_run_peer();
    }
}
