//! The chaos example's bot: one execute, `fetch`, that asks the flaky API
//! for an item — inside a group (at most 4 in flight, 20 starts per
//! second), under a breaker (5xx answers and timeouts count), with a
//! 400 ms attempt timeout and retry rules: 429 and 5xx retried up to 5
//! times honouring `Retry-After`, timeouts and cut connections 3 times,
//! anything else (a 404) not at all.

use std::time::Duration;

use machina_tokio::BoxError;
use machina_tokio::bot::{Execute, Machina};
use machina_tokio::breaker::CircuitBreaker;
use machina_tokio::call::AttemptTimedOut;
use machina_tokio::limit::{ConcurrentGroup, Limits};
use machina_tokio::retry::{Retry, Rule};
use machina_tokio::rt::Runtime;

/// An answer other than 200.
#[derive(Debug)]
pub(crate) struct ApiError {
    pub(crate) status: u16,
    pub(crate) retry_after: Option<Duration>,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HTTP {}", self.status)
    }
}

impl std::error::Error for ApiError {}

/// The group's limits: the API must never see more.
pub(crate) const MAX_STARTS: u32 = 20;
pub(crate) const STARTS_WINDOW: Duration = Duration::from_secs(1);
pub(crate) const MAX_IN_FLIGHT: u32 = 4;
/// Retries of a 429 or 5xx, and of a timeout or cut connection.
pub(crate) const STATUS_RETRIES: u32 = 5;
pub(crate) const TRANSPORT_RETRIES: u32 = 3;

/// The bot and the handles whose counters the example reports.
pub(crate) struct ChaosBot {
    pub(crate) bot: Machina,
    pub(crate) fetch: Execute<u32, String>,
    pub(crate) group: ConcurrentGroup,
    pub(crate) breaker: CircuitBreaker,
    pub(crate) retry: Retry,
}

pub(crate) fn build(rt: &Runtime, base: String) -> Result<ChaosBot, BoxError> {
    let mut bot = Machina::builder(rt);
    let group = bot.group(
        "api",
        Limits::new()
            .max_in_flight(MAX_IN_FLIGHT)
            .max_starts(MAX_STARTS, STARTS_WINDOW),
    )?;
    let breaker = CircuitBreaker::builder("api")
        .error_ratio(0.8)
        .response_time(Duration::from_secs(2))
        .min_calls(10)
        .broken_time(Duration::from_millis(500))
        .recovery_time(Duration::from_millis(500))
        .counts_if(|e| {
            machina_tokio::error::find_in_chain::<ApiError>(e).is_some_and(|e| e.status >= 500)
                || machina_tokio::error::find_in_chain::<AttemptTimedOut>(e).is_some()
        })
        .build(rt)?;
    let retry = Retry::new()
        .rule(
            Rule::exponential_jitter(Duration::from_millis(50), Duration::from_millis(400))
                .when_is(|e: &ApiError| e.status == 429 || e.status >= 500)
                .after_is(|e: &ApiError| e.retry_after)
                .max_wait(Duration::from_secs(2))
                .retries(STATUS_RETRIES),
        )
        .rule(
            Rule::fixed(Duration::from_millis(50))
                .on::<AttemptTimedOut>()
                .on::<reqwest::Error>()
                .retries(TRANSPORT_RETRIES),
        );
    let client = reqwest::Client::new();
    let fetch = bot
        .execute("fetch", move |item: u32| {
            let (client, url) = (client.clone(), format!("{base}/items/{item}"));
            async move {
                let answer = client.get(url).send().await?;
                let status = answer.status().as_u16();
                if status != 200 {
                    let retry_after = answer
                        .headers()
                        .get(reqwest::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
                        .map(Duration::from_secs);
                    return Err(Box::new(ApiError {
                        status,
                        retry_after,
                    }) as BoxError);
                }
                Ok(answer.text().await?)
            }
        })
        .groups(["api"])
        .breaker(breaker.clone())
        .retry(retry.clone())
        .timeout(Duration::from_millis(400))
        .register()?;
    Ok(ChaosBot {
        bot: bot.build(),
        fetch,
        group,
        breaker,
        retry,
    })
}
