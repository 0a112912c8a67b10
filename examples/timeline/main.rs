//! A timeline picture of a simulated hour of the quickstart bot, on the
//! mock runtime: writes `timeline.svg` (or the path given) in well under a
//! second. `--seconds N` simulates N seconds instead of 3 600.
//!
//! ```sh
//! cargo run --release --example timeline
//! cargo run --release --example timeline -- --seconds 60 docs/timeline.svg
//! ```

use std::time::Instant;

use machina_core::testing::MockRuntime;
use machina_core::timeline::Timeline;

mod bot;

fn main() -> Result<(), machina_core::BoxError> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let seconds = args
        .iter()
        .position(|a| a == "--seconds")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(3_600);
    let path = args
        .iter()
        .rev()
        .find(|a| a.ends_with(".svg"))
        .cloned()
        .unwrap_or_else(|| "timeline.svg".to_owned());
    let started = Instant::now();
    let mock = MockRuntime::new();
    let rt = mock.runtime();
    let timeline = Timeline::new();
    let executes = mock.block_on(bot::run(&rt, &timeline, seconds))??;
    let svg = timeline.render_svg();
    std::fs::write(&path, &svg)?;
    println!(
        "{seconds} simulated seconds: {executes} executes, {} calls drawn in lanes {:?}; {path} ({} KiB) in {:?}",
        timeline.calls(),
        timeline.lanes(),
        svg.len() / 1024,
        started.elapsed()
    );
    Ok(())
}
