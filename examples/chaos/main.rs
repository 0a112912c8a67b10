//! Chaos: a bot against a flaky HTTP API on loopback. The API answers
//! some items with 429 and a `Retry-After`, 503 (a few times or always),
//! a slow answer past the bot's attempt timeout, a connection cut
//! mid-answer, or 404; then it goes down for a while (503 to everything).
//! The bot's execute runs in a group (4 in flight, 20 starts a second),
//! under a breaker and retry rules that honour `Retry-After`. The program
//! prints how each call ended, and checks its own counts against the
//! API's: requests, retries, the busiest second.
//!
//! Run: `cargo run --example chaos`

mod api;
mod bot;
mod chaos;

use std::time::Duration;

use machina_tokio::BoxError;

fn main() -> Result<(), BoxError> {
    let tokio_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let report = tokio_rt.block_on(async { chaos::run(machina_tokio::runtime()?).await })?;
    for (item, result) in &report.results {
        let tries = report.api.iter().filter(|s| s.item == *item).count();
        match result {
            Ok(body) => println!("item {item:>3}: {body:?} after {tries} request(s)"),
            Err(error) => println!("item {item:>3}: {error} after {tries} request(s)"),
        }
    }
    let ok = report.results.iter().filter(|(_, r)| r.is_ok()).count();
    println!(
        "{ok} of {} items fetched ({} executes ok, {} failed); the API saw {} requests, the group started {}, the retry rules granted {} and gave up {} times",
        report.results.len(),
        report.items.bot.executes_ok,
        report.items.bot.executes_failed,
        report
            .api
            .iter()
            .filter(|s| s.at < report.outage_began)
            .count(),
        report.items.group.acquired,
        report.items.retry.retries,
        report.items.retry.given_up,
    );
    let mut answers = std::collections::BTreeMap::new();
    for seen in &report.api {
        *answers.entry(format!("{:?}", seen.answer)).or_insert(0) += 1;
    }
    println!("the API answered: {answers:?}");
    let during: Vec<_> = report
        .api
        .iter()
        .filter(|s| s.at >= report.outage_began && s.at < report.outage_ended)
        .collect();
    let refused = report
        .outage
        .iter()
        .filter(|(_, r)| r.as_ref().is_err_and(|e| e.to_string().contains("circuit")))
        .count();
    println!(
        "outage: {} calls, {} requests reached the API, {refused} calls refused by the open breaker ({} trips)",
        report.outage.len(),
        during.len(),
        report.breaker.trips,
    );
    println!(
        "after the outage: {} after {} call(s)",
        if report.recovered {
            "recovered"
        } else {
            "not recovered"
        },
        report.recovery_tries
    );
    println!(
        "in all: the group started {} attempts, the retry rules granted {} retries, {} executes ok and {} failed",
        report.end.group.acquired,
        report.end.retry.retries,
        report.end.bot.executes_ok,
        report.end.bot.executes_failed,
    );
    println!(
        "busiest 900 ms at the API: {} requests (the group allows {} starts a second)",
        api::busiest(&report.api, Duration::from_millis(900)),
        bot::MAX_STARTS
    );
    Ok(())
}
