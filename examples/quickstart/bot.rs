//! The quickstart bot, written once against `Runtime` and run by each
//! adapter's `main` (exmachina's README example, in Rust).

use std::time::Duration;

use machina_core::BoxError;
use machina_core::bot::{Event, Machina};
use machina_core::limit::Limits;
use machina_core::retry::{Retry, Rule};
use machina_core::rt::Runtime;

/// An HTTP-like error that the retry rule matches by type.
#[derive(Debug)]
pub(crate) struct HttpError {
    /// The status code.
    pub(crate) status: u16,
}

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HTTP {}", self.status)
    }
}

impl std::error::Error for HttpError {}

/// Builds the bot, runs it until its emit has run three times, and prints
/// what happened.
pub(crate) async fn run(rt: Runtime) -> Result<(), BoxError> {
    // Seeded, so the "sometimes fails" below is the same on every run.
    let rt = rt.with_rng_seed(7);
    let t0 = rt.now();
    let mut bot = Machina::builder(&rt);
    // 4 calls in flight at most, 3 starts per second.
    bot.group(
        "limit",
        Limits::new()
            .max_in_flight(4)
            .max_starts(3, Duration::from_secs(1)),
    )?;

    let rt2 = rt.clone();
    let fetch = bot
        .execute("fetch", move |id: u32| {
            let rt = rt2.clone();
            async move {
                let at = (rt.now() - t0).as_millis();
                if rt.rng().below(3) == 0 {
                    println!("  [{at:>5} ms] fetch({id}) -> HTTP 503, will retry");
                    return Err(HttpError { status: 503 });
                }
                println!("  [{at:>5} ms] fetch({id}) -> ok");
                Ok(id * 10)
            }
        })
        .groups(["limit"])
        .retry(
            Retry::new().rule(
                Rule::fixed(Duration::from_millis(100))
                    .when_is(|e: &HttpError| e.status >= 500)
                    .retries(5),
            ),
        )
        .register()?;

    bot.emit("emit", "1s")?
        .count(3)
        .register(move |event: Event| {
            let fetch = fetch.clone();
            async move {
                println!(
                    "emit epoch {} (remaining {:?}, previous run took {:?})",
                    event.epoch(),
                    event.remaining(),
                    event.previous_execution_time()
                );
                // A typed, direct call...
                let direct = fetch.call(event.epoch() as u32).await?;
                // ...and calls by name, running as tasks of the bot.
                let tasks = (100..103)
                    .map(|id| event.execute::<u32, u32>("fetch", id))
                    .collect::<Result<Vec<_>, _>>()?;
                let mut by_name = Vec::new();
                for task in tasks {
                    by_name.push(task.await?);
                }
                println!("  results: direct {direct}, by name {by_name:?}");
                Ok::<(), BoxError>(())
            }
        })?;

    let bot = bot.build();
    let report = bot.run().await?;
    println!(
        "done after {} ms: {} executes ok, {} failed",
        (rt.now() - t0).as_millis(),
        report.stats.executes_ok,
        report.stats.executes_failed
    );
    Ok(())
}
