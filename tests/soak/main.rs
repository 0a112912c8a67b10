//! The soak test (issue "hardening"): a bot with 3 groups, 20 emits and
//! many executes — failures, retries, timeouts, cancellations and panics
//! drawn from a seed — on the mock runtime. At the end every execute is
//! accounted for exactly once, every group is empty, no task is alive, and
//! two runs of one seed are identical event for event (a digest of the
//! trace).
//!
//! The default size runs in seconds; the full size is
//! `MACHINA_SOAK_EXECUTES=1000000 cargo test --release --test soak`.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use machina_core::bot::Machina;
use machina_core::limit::Limits;
use machina_core::testing::MockRuntime;

#[path = "../../examples/soak/bot.rs"]
mod bot;

use bot::{Ending, Plan};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// What one soak run saw.
#[derive(Debug, PartialEq, Eq)]
struct Soak {
    /// A digest of every event, in order, with its virtual instant.
    digest: u64,
    spawned: u64,
    endings: HashMap<Ending, u64>,
    virtual_time: Duration,
}

fn soak(seed: u64, executes: u64) -> Soak {
    let mock = MockRuntime::builder()
        .seed(seed)
        .time_limit(Duration::from_secs(60 * 60 * 24 * 30))
        .build();
    let plan = Plan {
        seed,
        executes: Some(executes),
        tick_ms: 7,
    };
    let (bot, record) = bot::build(&mock.runtime(), plan);
    let report = mock.block_on(bot.run()).unwrap().unwrap();
    // The callers record after their task ends; let them finish.
    mock.run_until_stalled().unwrap();

    let spawned = record.spawned.load(Ordering::SeqCst).min(executes);
    let endings = record.endings.lock().unwrap().clone();
    let seen = record.seen.as_ref().unwrap().lock().unwrap();
    // Every execute accounted for exactly once, by its caller and by the bot.
    assert_eq!(seen.len() as u64, spawned, "every job ended once");
    assert!((0..spawned).all(|id| seen.contains_key(&id)));
    let count = |e| endings.get(&e).copied().unwrap_or(0);
    let stats = report.stats;
    assert_eq!(stats.executes_ok, count(Ending::Ok));
    assert_eq!(
        stats.executes_failed,
        count(Ending::Failed) + count(Ending::Panicked)
    );
    assert_eq!(stats.executes_cancelled, count(Ending::Cancelled));
    assert_eq!(
        stats.executes_ok + stats.executes_failed + stats.executes_cancelled,
        spawned
    );
    // Every group empty, nothing alive.
    for name in ["narrow", "window", "bucket"] {
        let group = bot.group(name).unwrap();
        let local = group.as_local().expect("a local group");
        assert_eq!(local.in_flight(), 0, "{name} in flight");
        assert_eq!(local.waiting(), 0, "{name} waiting");
    }
    assert!(mock.live_tasks().is_empty(), "{:?}", mock.live_tasks());
    Soak {
        digest: record.digest(),
        spawned,
        endings,
        virtual_time: mock.elapsed(),
    }
}

fn size() -> u64 {
    std::env::var("MACHINA_SOAK_EXECUTES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000)
}

#[test]
fn every_execute_is_accounted_for_and_a_seed_replays_exactly() {
    let executes = size();
    let first = soak(7, executes);
    assert_eq!(first.spawned, executes);
    // Every kind of ending happened.
    for ending in [
        Ending::Ok,
        Ending::Failed,
        Ending::Panicked,
        Ending::Cancelled,
    ] {
        assert!(
            first.endings.get(&ending).copied().unwrap_or(0) > 0,
            "no {ending:?} in {:?}",
            first.endings
        );
    }
    let again = soak(7, executes);
    assert_eq!(first, again, "the same seed replays event for event");
    let other = soak(8, executes);
    assert_ne!(first.digest, other.digest, "another seed is another run");
    eprintln!(
        "soak: {executes} executes, endings {:?}, {:?} of virtual time",
        first.endings, first.virtual_time
    );
}

/// Shutdown under load: 10 064 executes spawned into a group of 64, each
/// working 1 s; a shutdown with a 2.5 s grace period lets the first two
/// waves of 64 finish and cancels the rest — and names every one.
#[test]
fn a_shutdown_under_load_names_every_execute() {
    let mock = MockRuntime::new();
    let rt = mock.runtime();
    let mut bot = Machina::builder(&rt);
    bot.group("api", Limits::new().max_in_flight(64)).unwrap();
    let work = {
        let rt = rt.clone();
        move |n: u64| {
            let rt = rt.clone();
            async move {
                rt.sleep(Duration::from_secs(1)).await;
                Ok::<u64, std::io::Error>(n)
            }
        }
    };
    let call = bot
        .execute("call", work)
        .groups(["api"])
        .register()
        .unwrap();
    let bot = bot.build();
    const QUEUED: u64 = 10_000;
    const RUNNING: u64 = 64;
    let (report, stats) = mock
        .block_on(async {
            for n in 0..QUEUED + RUNNING {
                call.spawn(n).unwrap().detach();
            }
            // Everything is spawned; 64 hold the group, 10 000 wait for it.
            rt.sleep(ms(1)).await;
            let group = bot.group("api").unwrap().as_local().unwrap().clone();
            assert_eq!(group.in_flight() as u64, RUNNING);
            assert_eq!(group.waiting() as u64, QUEUED);
            let report = bot.shutdown(ms(2_500)).await;
            assert_eq!((group.in_flight(), group.waiting()), (0, 0));
            (report, bot.stats())
        })
        .unwrap();
    assert_eq!(mock.elapsed(), ms(2_501), "bounded by the grace period");
    // Two waves finished in the grace period; every other one is named
    // as cancelled, none dropped silently.
    assert_eq!(
        report.executes_finished.len() as u64 + report.executes_cancelled.len() as u64,
        QUEUED + RUNNING
    );
    assert_eq!(stats.executes_ok, 2 * RUNNING);
    assert_eq!(stats.executes_cancelled, QUEUED + RUNNING - 2 * RUNNING);
    assert_eq!(
        report.executes_cancelled.len() as u64,
        stats.executes_cancelled
    );
    mock.run_until_stalled().unwrap();
    assert!(mock.live_tasks().is_empty(), "{:?}", mock.live_tasks());
}
