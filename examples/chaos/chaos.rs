//! The chaos run itself, shared by the example's `main` and its test:
//! start the flaky API, send 40 items through the bot, then 20 more
//! during an outage, then wait for the breaker to let calls through again
//! — and keep everything either side counted.

use std::sync::Arc;
use std::time::{Duration, Instant};

use machina_tokio::BoxError;
use machina_tokio::bot::{ExecuteError, RunStats};
use machina_tokio::breaker::BreakerStats;
use machina_tokio::http::HttpService;
use machina_tokio::limit::GroupStats;
use machina_tokio::retry::RetryStats;
use machina_tokio::rt::Runtime;
use machina_tokio::service::Supervisor;

use crate::api::{ApiLog, Seen, app};
use crate::bot::{ChaosBot, build};

/// The items sent while the API works, and during its outage.
pub(crate) const ITEMS: std::ops::Range<u32> = 0..40;
pub(crate) const OUTAGE_ITEMS: std::ops::Range<u32> = 100..120;

/// Everything that happened, both sides.
pub(crate) struct Report {
    pub(crate) results: Vec<(u32, Result<String, ExecuteError>)>,
    pub(crate) outage: Vec<(u32, Result<String, ExecuteError>)>,
    /// Calls made after the outage until one succeeded.
    pub(crate) recovery_tries: u32,
    pub(crate) recovered: bool,
    pub(crate) api: Vec<Seen>,
    pub(crate) outage_began: Instant,
    pub(crate) outage_ended: Instant,
    /// The bot's counters after the first 40 items, and at the end.
    pub(crate) items: Counters,
    pub(crate) end: Counters,
    pub(crate) breaker: BreakerStats,
}

/// The bot's counters at one moment.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Counters {
    pub(crate) bot: RunStats,
    pub(crate) group: GroupStats,
    pub(crate) retry: RetryStats,
}

impl ChaosBot {
    fn counters(&self) -> Counters {
        Counters {
            bot: self.bot.stats(),
            group: self.group.stats(),
            retry: self.retry.stats(),
        }
    }
}

async fn send_all(
    fetch: &machina_tokio::bot::Execute<u32, String>,
    items: std::ops::Range<u32>,
) -> Result<Vec<(u32, Result<String, ExecuteError>)>, BoxError> {
    let tasks = items
        .map(|item| Ok((item, fetch.spawn(item)?)))
        .collect::<Result<Vec<_>, BoxError>>()?;
    let mut results = Vec::new();
    for (item, task) in tasks {
        results.push((item, task.await));
    }
    Ok(results)
}

pub(crate) async fn run(rt: Runtime) -> Result<Report, BoxError> {
    let log = Arc::new(ApiLog::default());
    let api = HttpService::builder("127.0.0.1:0", app(log.clone())).build()?;
    let stack = Supervisor::builder(&rt)
        .service("flaky-api", api.clone(), &[])
        .build()?;
    stack.start().await?;
    let base = format!("http://{}", api.local_addr().ok_or("the API is not bound")?);
    let chaos = build(&rt.with_rng_seed(7), base)?;

    let results = send_all(&chaos.fetch, ITEMS).await?;
    let items = chaos.counters();
    // The breaker's window forgets the faults above before the outage.
    rt.sleep(Duration::from_millis(2100)).await;

    log.set_outage(true);
    let outage_began = Instant::now();
    let outage = send_all(&chaos.fetch, OUTAGE_ITEMS).await?;
    log.set_outage(false);
    let outage_ended = Instant::now();

    let (mut recovery_tries, mut recovered) = (0, false);
    while recovery_tries < 40 && !recovered {
        recovery_tries += 1;
        recovered = chaos.fetch.call(1000 + recovery_tries).await.is_ok();
        if !recovered {
            rt.sleep(Duration::from_millis(100)).await;
        }
    }
    stack.stop().await;
    Ok(Report {
        results,
        outage,
        recovery_tries,
        recovered,
        api: log.seen(),
        outage_began,
        outage_ended,
        items,
        end: chaos.counters(),
        breaker: chaos.breaker.stats(),
    })
}
