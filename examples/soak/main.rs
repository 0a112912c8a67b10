//! The soak program: the soak bot of `tests/soak` on tokio, in real time,
//! for ten minutes (or `--minutes N`), its resident memory sampled every
//! ten seconds (`--sample-secs S`). After a warm-up of a fifth of the run
//! it prints the least-squares slope of the memory: a bot that leaks shows
//! a slope that does not fall to noise.
//!
//! ```sh
//! cargo run --release --example soak -- --minutes 10
//! ```
//!
//! The emits tick every 300–319 ms, each spawning 5 executes: about 320
//! executes a second, below what the three groups let through (the token
//! bucket's 300 a second is shared by two thirds of them and their
//! retries), so queues stay short and memory can level off; the samples
//! show the groups' waiters.

use std::time::{Duration, Instant};

#[allow(
    dead_code,
    reason = "the test uses parts of the bot this program does not"
)]
mod bot;

/// Resident memory in KiB, from `/proc/self/status` (Linux).
fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The least-squares slope of `(seconds, kib)` points, in KiB per minute.
fn slope_per_minute(points: &[(f64, f64)]) -> f64 {
    let n = points.len() as f64;
    let (sx, sy) = points
        .iter()
        .fold((0.0, 0.0), |(sx, sy), (x, y)| (sx + x, sy + y));
    let (mx, my) = (sx / n, sy / n);
    let (num, den) = points.iter().fold((0.0, 0.0), |(num, den), (x, y)| {
        (num + (x - mx) * (y - my), den + (x - mx) * (x - mx))
    });
    if den == 0.0 { 0.0 } else { num / den * 60.0 }
}

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let minutes = arg("--minutes", 10);
    let sample = Duration::from_secs(arg("--sample-secs", 10));
    let tokio_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    // The soak's own panics are expected: keep them off the terminal.
    std::panic::set_hook(Box::new(|info| {
        let on_purpose = info
            .payload()
            .downcast_ref::<String>()
            .is_some_and(|m| m.contains("on purpose"));
        if !on_purpose {
            eprintln!("{info}");
        }
    }));
    tokio_rt.block_on(async move {
        let rt = machina_tokio::runtime().expect("inside tokio");
        let plan = bot::Plan {
            seed: 7,
            executes: None,
            tick_ms: 300,
        };
        let (bot, record) = bot::build(&rt, plan);
        let running = {
            let bot = bot.clone();
            tokio::spawn(async move { bot.run().await })
        };
        let started = Instant::now();
        let end = started + Duration::from_secs(minutes * 60);
        let mut points = Vec::new();
        println!(
            "{:>8} {:>10} {:>12} {:>8}",
            "seconds", "rss KiB", "executes", "waiting"
        );
        let waiting = |bot: &machina_core::bot::Machina| -> usize {
            ["narrow", "window", "bucket"]
                .iter()
                .filter_map(|g| bot.group(g)?.as_local().map(|g| g.waiting()))
                .sum()
        };
        while Instant::now() < end {
            tokio::time::sleep(sample).await;
            let t = started.elapsed().as_secs_f64();
            let rss = rss_kib().unwrap_or(0);
            let spawned = record.spawned.load(std::sync::atomic::Ordering::Relaxed);
            let queued = waiting(&bot);
            println!("{t:>8.0} {rss:>10} {spawned:>12} {queued:>8}");
            points.push((t, rss as f64));
        }
        let report = bot.shutdown(Duration::from_secs(5)).await;
        let _ = running.await;
        let warm = points.len() / 5;
        let slope = slope_per_minute(&points[warm..]);
        let stats = bot.stats();
        println!(
            "executes: {} spawned, {} ok, {} failed, {} cancelled; at shutdown {} finished, {} cancelled",
            record.spawned.load(std::sync::atomic::Ordering::Relaxed),
            stats.executes_ok,
            stats.executes_failed,
            stats.executes_cancelled,
            report.executes_finished.len(),
            report.executes_cancelled.len(),
        );
        println!(
            "rss after warm-up ({} samples): first {:.0} KiB, last {:.0} KiB, slope {slope:+.1} KiB/min",
            points.len() - warm,
            points[warm].1,
            points[points.len() - 1].1,
        );
    });
}
