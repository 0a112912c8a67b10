//! Quickstart: a periodic task on tokio through Machina's runtime boundary.
//!
//! Ticks every 200 ms on an absolute grid (no drift), does a little work on
//! each tick through a spawned task with a timeout, and stops by itself
//! after five ticks. The same `run` function runs on any Machina runtime;
//! only `main` names tokio.
//!
//! Run: `cargo run --example quickstart`

use std::time::Duration;

use machina_tokio::rt::{MissedTick, Runtime};

/// The periodic task, written once against `Runtime`.
async fn run(rt: Runtime) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let start = rt.now();
    let mut ticks = rt.interval(Duration::from_millis(200), MissedTick::Burst)?;
    for n in 1..=5u32 {
        let due = ticks.tick().await;
        let job = rt.spawn(async move { n * n })?;
        let square = rt.timeout(Duration::from_secs(1), job).await??;
        println!(
            "tick {n}: due at +{:>4} ms, ran at +{:>4} ms, {n}² = {square}",
            (due - start).as_millis(),
            (rt.now() - start).as_millis(),
        );
    }
    println!("done after {} ms", (rt.now() - start).as_millis());
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let tokio_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    tokio_rt.block_on(async {
        let rt = machina_tokio::runtime()?;
        run(rt).await
    })
}
