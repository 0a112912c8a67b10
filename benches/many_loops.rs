//! Many loops: 10 000 emits ticking every 100 ms for 10 s on tokio (2
//! workers), against 10 000 raw `tokio::time::interval` tasks: CPU time,
//! p50/p99 lateness of each tick against its due time (start + k·period),
//! drift (lateness of the last ticks against the first), and resident
//! memory per emit.
//!
//! Both sides do the same work per tick and are measured the same way:
//! each tick's lateness is `now − the instant it was scheduled for` (the
//! interval's returned deadline; the emit's `Event::scheduled_at`), stored
//! with one relaxed atomic store into a slot of a per-loop array made
//! before the clock starts; the timed region (wall and CPU) starts when
//! the loops start — after the emits are registered, before the tasks are
//! spawned — and ends when the last loop has finished.
//!
//! Not a criterion benchmark: a lateness distribution over one long run is
//! the measurement, so this prints its own table.
//!
//! Run: `cargo bench --bench many_loops`

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use machina_core::bot::{Event, Machina};
use machina_core::rt::MissedTick;
use machina_core::schedule::Schedule;

const LOOPS: usize = 10_000;
const PERIOD: Duration = Duration::from_millis(100);
const TICKS: u64 = 100;

/// User + system CPU time of this process (Linux `/proc/self/stat`).
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name, which is in parentheses.
    let rest = stat.rsplit(')').next().unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15 of the line, 11 and 12 here.
    let clock_ticks = ticks(11) + ticks(12);
    Duration::from_millis(clock_ticks * 10)
}

/// Resident memory of this process in bytes (Linux `/proc/self/statm`).
fn resident() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse::<u64>().ok())
        .unwrap_or(0)
        * 4096
}

/// One loop's lateness samples, one slot per tick (nanoseconds), written
/// with one relaxed store each — the same on both sides.
struct Samples(Box<[AtomicU64]>);

impl Samples {
    fn new() -> Arc<Self> {
        Arc::new(Samples((0..TICKS).map(|_| AtomicU64::new(0)).collect()))
    }

    fn record(&self, tick: u64, late: Duration) {
        if let Some(slot) = self.0.get(tick as usize) {
            slot.store(late.as_nanos() as u64, Ordering::Relaxed);
        }
    }

    fn read(&self) -> Vec<Duration> {
        self.0
            .iter()
            .map(|n| Duration::from_nanos(n.load(Ordering::Relaxed)))
            .collect()
    }
}

struct Outcome {
    wall: Duration,
    cpu: Duration,
    lateness: Vec<Duration>,
    first_ticks: Vec<Duration>,
    last_ticks: Vec<Duration>,
    memory_per_loop: u64,
}

impl Outcome {
    /// Gathers each loop's lateness samples (one per tick, in order).
    fn new(
        wall: Duration,
        cpu: Duration,
        per_loop: Vec<Vec<Duration>>,
        memory_per_loop: u64,
    ) -> Self {
        let mut o = Outcome {
            wall,
            cpu,
            lateness: Vec::new(),
            first_ticks: Vec::new(),
            last_ticks: Vec::new(),
            memory_per_loop,
        };
        for late in per_loop {
            o.first_ticks.extend_from_slice(&late[..10]);
            o.last_ticks.extend_from_slice(&late[late.len() - 10..]);
            o.lateness.extend(late);
        }
        o
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i]
}

fn summarize(name: &str, mut o: Outcome) {
    o.lateness.sort();
    o.first_ticks.sort();
    o.last_ticks.sort();
    println!(
        "| {name} | {:.2} s | {:.2} s | {:?} | {:?} | {:?} | {:?} | {} B |",
        o.wall.as_secs_f64(),
        o.cpu.as_secs_f64(),
        percentile(&o.lateness, 0.5),
        percentile(&o.lateness, 0.99),
        percentile(&o.first_ticks, 0.5),
        percentile(&o.last_ticks, 0.5),
        o.memory_per_loop,
    );
}

fn tokio_rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio")
}

fn raw_tokio() -> Outcome {
    let rt = tokio_rt();
    rt.block_on(async {
        let before_mem = resident();
        let samples: Vec<Arc<Samples>> = (0..LOOPS).map(|_| Samples::new()).collect();
        let cpu0 = cpu_time();
        let start = Instant::now();
        let tasks: Vec<_> = samples
            .iter()
            .map(|out| {
                let out = out.clone();
                tokio::spawn(async move {
                    let mut ticks = tokio::time::interval(PERIOD);
                    for tick in 0..TICKS {
                        let due = ticks.tick().await;
                        out.record(tick, tokio::time::Instant::now() - due);
                    }
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(500)).await;
        let memory_per_loop = resident().saturating_sub(before_mem) / LOOPS as u64;
        for t in tasks {
            t.await.expect("loop");
        }
        let (wall, cpu) = (start.elapsed(), cpu_time() - cpu0);
        let per_loop = samples.iter().map(|s| s.read()).collect();
        Outcome::new(wall, cpu, per_loop, memory_per_loop)
    })
}

fn machina_emits() -> Outcome {
    let rt = tokio_rt();
    rt.block_on(async {
        let mrt = machina_tokio::runtime().expect("inside tokio");
        let before_mem = resident();
        let mut bot = Machina::builder(&mrt);
        let samples: Vec<Arc<Samples>> = (0..LOOPS).map(|_| Samples::new()).collect();
        for (i, out) in samples.iter().enumerate() {
            let out = out.clone();
            bot.emit(
                &format!("emit-{i}"),
                Schedule::fixed_rate(PERIOD, MissedTick::Burst).expect("period"),
            )
            .expect("schedule")
            .count(TICKS)
            .register(move |event: Event| {
                let late = event
                    .runtime()
                    .now()
                    .saturating_duration_since(event.scheduled_at());
                out.record(event.epoch() - 1, late);
                async {}
            })
            .expect("emit");
        }
        let bot = bot.build();
        let cpu0 = cpu_time();
        let start = Instant::now();
        let runner = tokio::spawn({
            let bot = bot.clone();
            async move { bot.run().await }
        });
        tokio::time::sleep(Duration::from_millis(500)).await;
        let memory_per_loop = resident().saturating_sub(before_mem) / LOOPS as u64;
        runner.await.expect("run").expect("bot");
        let (wall, cpu) = (start.elapsed(), cpu_time() - cpu0);
        let per_loop = samples.iter().map(|s| s.read()).collect();
        Outcome::new(wall, cpu, per_loop, memory_per_loop)
    })
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes
    // nothing useful: run only under `cargo bench`.
    if !std::env::args().any(|a| a == "--bench") {
        println!("many_loops: run with `cargo bench --bench many_loops`");
        return;
    }
    println!("{LOOPS} loops × {TICKS} ticks every {PERIOD:?}, tokio multi-thread (2 workers)\n");
    println!(
        "| workload | wall | CPU | p50 lateness | p99 lateness | p50 first 10 ticks | p50 last 10 ticks | memory per loop |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- |");
    summarize("raw tokio::time::interval tasks", raw_tokio());
    summarize("Machina emits (FixedRate, Burst)", machina_emits());
}
