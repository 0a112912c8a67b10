//! The quickstart bot (a group of 4 in flight and 3 starts a second, an
//! execute failing with HTTP 503 a third of the time and retried, an emit
//! every second spawning two calls), recorded in a timeline; shared by the
//! `timeline` example and its test.

use std::time::Duration;

use machina_core::BoxError;
use machina_core::Runtime;
use machina_core::bot::{Event, Machina};
use machina_core::limit::Limits;
use machina_core::retry::{Retry, Rule};
use machina_core::timeline::Timeline;

#[derive(Debug, thiserror::Error)]
#[error("HTTP {0}")]
struct Http(u16);

/// Runs the bot for `seconds` emit ticks on `rt`, recording into
/// `timeline`; returns the executes spawned.
pub(crate) async fn run(rt: &Runtime, timeline: &Timeline, seconds: u64) -> Result<u64, BoxError> {
    let rt = rt.with_rng_seed(7);
    let mut bot = Machina::builder(&rt);
    bot.timeline(timeline);
    bot.group(
        "limit",
        Limits::new()
            .max_in_flight(4)
            .max_starts(3, Duration::from_secs(1)),
    )?;
    let work = rt.clone();
    let fetch = bot
        .execute("fetch", move |id: u64| {
            let rt = work.clone();
            async move {
                rt.sleep(Duration::from_millis(150 + rt.rng().below(300)))
                    .await;
                if rt.rng().below(3) == 0 {
                    return Err(Http(503));
                }
                Ok(id)
            }
        })
        .groups(["limit"])
        .retry(
            Retry::new().rule(
                Rule::fixed(Duration::from_millis(100))
                    .when_is(|e: &Http| e.0 >= 500)
                    .retries(5),
            ),
        )
        .register()?;
    bot.emit("emit", "1s")?
        .count(seconds)
        .register(move |event: Event| {
            let fetch = fetch.clone();
            async move {
                for k in 0..2 {
                    fetch.spawn(event.epoch() * 10 + k)?.detach();
                }
                Ok::<(), BoxError>(())
            }
        })?;
    let report = bot.build().run().await?;
    let stats = report.stats;
    Ok(stats.executes_ok + stats.executes_failed + stats.executes_cancelled)
}
