//! The chaos example as a test: a bot against a flaky loopback HTTP API
//! (429 with `Retry-After`, 503s, a slow answer, a cut connection, 404s,
//! then an outage). Every call ends the way the plan says, with the
//! right error; `Retry-After` is honoured; the API never sees more
//! starts in a second than the group allows; the breaker keeps most of
//! the outage's requests off the API and lets calls through once it is
//! back; and the bot's counters match the API's own.

#[path = "../../examples/chaos/api.rs"]
mod api;
#[path = "../../examples/chaos/bot.rs"]
mod bot;
#[path = "../../examples/chaos/chaos.rs"]
mod chaos;

use std::time::Duration;

use machina_tokio::bot::ExecuteError;
use machina_tokio::breaker::CircuitOpen;
use machina_tokio::call::Layer;

use api::{Answer, busiest};
use bot::{ApiError, MAX_STARTS, STATUS_RETRIES};
use chaos::{ITEMS, OUTAGE_ITEMS};

/// The operation's own error, if the call failed with one.
fn api_error(result: &Result<String, ExecuteError>) -> Option<(u16, u32)> {
    let Err(ExecuteError::Failed { source, .. }) = result else {
        return None;
    };
    let error = source.operation_error()?.downcast_ref::<ApiError>()?;
    Some((error.status, source.attempts()))
}

#[test]
fn a_bot_against_a_flaky_api() {
    let tokio_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let report = tokio_rt
        .block_on(async { chaos::run(machina_tokio::runtime()?).await })
        .expect("the chaos run");
    let before_outage: Vec<_> = report
        .api
        .iter()
        .filter(|s| s.at < report.outage_began)
        .copied()
        .collect();

    // Each item ended as planned, with the right error.
    let requests = |item: u32| before_outage.iter().filter(|s| s.item == item).count();
    for (item, result) in &report.results {
        match item % 10 {
            7 => assert_eq!(
                api_error(result),
                Some((404, 1)),
                "item {item}: not retried"
            ),
            9 => assert_eq!(
                api_error(result),
                Some((503, STATUS_RETRIES + 1)),
                "item {item}: retries spent"
            ),
            _ => assert_eq!(
                result.as_ref().ok(),
                Some(&format!("item {item}")),
                "item {item}"
            ),
        }
        let expected = match item % 10 {
            0 | 2 | 3 => 2, // a 429, a timeout, a cut connection: one retry
            1 => 3,         // two 503s
            9 => STATUS_RETRIES as usize + 1,
            _ => 1,
        };
        assert_eq!(requests(*item), expected, "requests for item {item}");
    }

    // Retry-After honoured: the retry of a 429 came a full second later.
    for item in ITEMS.filter(|i| i % 10 == 0) {
        let seen: Vec<_> = before_outage.iter().filter(|s| s.item == item).collect();
        assert_eq!(seen[0].answer, Answer::TooManyRequests);
        let gap = seen[1].at - seen[0].at;
        assert!(
            gap >= Duration::from_secs(api::RETRY_AFTER_SECS),
            "item {item}: retried after {gap:?}"
        );
    }

    // The API never saw more starts in a second than the group allows.
    let busiest = busiest(&report.api, Duration::from_millis(950));
    assert!(
        busiest <= MAX_STARTS as usize,
        "{busiest} requests within a second"
    );

    // The bot's counters match the API's.
    let items = report.items;
    assert_eq!(
        items.group.acquired as usize,
        before_outage.len(),
        "one start per request"
    );
    assert_eq!(
        items.retry.retries as usize,
        before_outage.len() - ITEMS.len()
    );
    assert_eq!(
        items.retry.given_up, 8,
        "four 404s and four items out of retries"
    );
    assert_eq!((items.bot.executes_ok, items.bot.executes_failed), (32, 8));

    // The outage: every call failed with a 503 or was refused by the open
    // breaker, which kept most requests off the API, then recovered.
    let mut refused = 0;
    for (item, result) in &report.outage {
        let Err(ExecuteError::Failed { source, .. }) = result else {
            panic!("item {item}: {result:?}");
        };
        if matches!(source.layer(), Some(Layer::Breaker(_))) {
            assert!(
                machina_tokio::error::find_in_chain::<CircuitOpen>(source.as_dyn_error()).is_some()
            );
            refused += 1;
        } else {
            assert_eq!(api_error(result).map(|(s, _)| s), Some(503), "item {item}");
        }
    }
    assert!(refused > 0, "the breaker opened");
    assert!(report.breaker.trips >= 1);
    let during = report
        .api
        .iter()
        .filter(|s| s.at >= report.outage_began && s.at < report.outage_ended)
        .count();
    let without_breaker = OUTAGE_ITEMS.len() * (STATUS_RETRIES as usize + 1);
    assert!(
        during < without_breaker,
        "{during} requests reached the API during the outage"
    );
    // The group comes before the breaker in the call pipeline: an attempt
    // the breaker refuses has taken its start but never reaches the API.
    let refused_attempts = report.breaker.broken_rejected + report.breaker.recovering_rejected;
    assert_eq!(
        report.end.group.acquired,
        report.api.len() as u64 + refused_attempts,
        "every start reached the API, unless the breaker refused it"
    );
    assert!(
        report.recovered,
        "calls went through again after {} tries",
        report.recovery_tries
    );
}
