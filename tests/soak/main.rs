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
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use machina_core::bot::{Event, ExecuteError, Machina};
use machina_core::limit::Limits;
use machina_core::retry::{Retry, Rule};
use machina_core::testing::MockRuntime;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// What the handler does, drawn per job from the seed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Behaviour {
    /// Works for the given milliseconds, then succeeds.
    Works(u64),
    /// Fails with a transient error on its first attempt, then works.
    FlakyOnce,
    /// Always fails transiently: the retries run out.
    AlwaysTransient,
    /// Fails with an error no rule retries.
    Fatal,
    /// Outlives its attempt timeout on every attempt.
    Hangs,
    /// Panics.
    Panics,
    /// Works slowly; its task is aborted after the given milliseconds.
    Aborted(u64),
}

#[derive(Debug, thiserror::Error)]
#[error("transient failure of job {0}")]
struct Transient(u64);

#[derive(Debug, thiserror::Error)]
#[error("fatal failure of job {0}")]
struct Fatal(u64);

#[derive(Clone, Debug)]
struct Job {
    id: u64,
    behaviour: Behaviour,
    attempts: Arc<AtomicU32>,
}

/// How a job ended, as the caller awaiting its task saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Ending {
    Ok,
    Failed,
    Panicked,
    Cancelled,
}

/// A small deterministic generator (SplitMix64), so the schedule depends
/// on the seed alone.
struct Draw(u64);

impl Draw {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn behaviour(&mut self) -> Behaviour {
        match self.next() % 100 {
            0..70 => Behaviour::Works(1 + self.next() % 20),
            70..80 => Behaviour::FlakyOnce,
            80..85 => Behaviour::AlwaysTransient,
            85..90 => Behaviour::Fatal,
            90..93 => Behaviour::Hangs,
            93..94 => Behaviour::Panics,
            _ => Behaviour::Aborted(self.next() % 30),
        }
    }
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

const EMITS: u64 = 20;
const PER_TICK: u64 = 5;

fn soak(seed: u64, executes: u64) -> Soak {
    let mock = MockRuntime::builder()
        .seed(seed)
        .time_limit(Duration::from_secs(60 * 60 * 24 * 30))
        .build();
    let rt = mock.runtime();
    let trace: Arc<Mutex<DefaultHasher>> = Arc::new(Mutex::new(DefaultHasher::new()));
    let note = {
        let trace = trace.clone();
        move |what: &dyn Fn(&mut DefaultHasher)| what(&mut trace.lock().unwrap())
    };
    let t0 = rt.now();
    let stamp = {
        let rt = rt.clone();
        move || (rt.now() - t0).as_nanos()
    };

    let mut bot = Machina::builder(&rt);
    bot.group("narrow", Limits::new().max_in_flight(4)).unwrap();
    bot.group(
        "window",
        Limits::new().max_in_flight(32).max_starts(400, ms(1000)),
    )
    .unwrap();
    bot.group(
        "bucket",
        Limits::rate(300, ms(1000)).burst(10).max_in_flight(64),
    )
    .unwrap();
    let retry = || {
        Retry::new()
            .rule(Rule::fixed(ms(5)).on::<Transient>().retries(2))
            .rule(
                Rule::fixed(ms(3))
                    .on::<machina_core::call::AttemptTimedOut>()
                    .retries(1),
            )
    };
    let handler = {
        let rt = rt.clone();
        let note = note.clone();
        let stamp = stamp.clone();
        move |job: Job| {
            let rt = rt.clone();
            let note = note.clone();
            let stamp = stamp.clone();
            async move {
                let attempt = job.attempts.fetch_add(1, Ordering::SeqCst);
                note(&|h| ("attempt", job.id, attempt, stamp()).hash(h));
                match job.behaviour {
                    Behaviour::Works(n) => rt.sleep(ms(n)).await,
                    Behaviour::FlakyOnce if attempt == 0 => {
                        return Err(Box::new(Transient(job.id)) as machina_core::BoxError);
                    }
                    Behaviour::FlakyOnce => rt.sleep(ms(2)).await,
                    Behaviour::AlwaysTransient => return Err(Box::new(Transient(job.id)).into()),
                    Behaviour::Fatal => return Err(Box::new(Fatal(job.id)).into()),
                    Behaviour::Hangs => rt.sleep(ms(10_000)).await,
                    Behaviour::Panics => panic!("job {} panics on purpose", job.id),
                    Behaviour::Aborted(_) => rt.sleep(ms(40)).await,
                }
                Ok(job.id)
            }
        }
    };
    let fetch = bot
        .execute("fetch", handler.clone())
        .groups(["narrow"])
        .retry(retry())
        .timeout(ms(60))
        .register()
        .unwrap();
    let store = bot
        .execute("store", handler.clone())
        .groups(["window", "bucket"])
        .retry(retry())
        .timeout(ms(60))
        .register()
        .unwrap();
    let notify = bot
        .execute("notify", handler)
        .groups(["bucket"])
        .retry(retry())
        .timeout(ms(60))
        .register()
        .unwrap();
    drop((fetch, store, notify));

    let spawned = Arc::new(AtomicU64::new(0));
    let endings: Arc<Mutex<HashMap<Ending, u64>>> = Arc::default();
    let seen: Arc<Mutex<HashMap<u64, Ending>>> = Arc::default();
    let ticks = executes.div_ceil(EMITS * PER_TICK);
    for e in 0..EMITS {
        let draw = Arc::new(Mutex::new(Draw(
            seed ^ (e + 1).wrapping_mul(0x2545_F491_4F6C_DD1D),
        )));
        let (spawned, endings, seen, note) =
            (spawned.clone(), endings.clone(), seen.clone(), note.clone());
        let name = format!("emit{e}");
        bot.emit(&name, ms(7 + e))
            .unwrap()
            .count(ticks)
            .register(move |event: Event| {
                let (draw, spawned, endings, seen, note) = (
                    draw.clone(),
                    spawned.clone(),
                    endings.clone(),
                    seen.clone(),
                    note.clone(),
                );
                async move {
                    for k in 0..PER_TICK {
                        let id = spawned.fetch_add(1, Ordering::SeqCst);
                        if id >= executes {
                            return Ok(());
                        }
                        let (behaviour, which) = {
                            let mut d = draw.lock().unwrap();
                            (d.behaviour(), d.next() % 3)
                        };
                        let name = ["fetch", "store", "notify"][which as usize];
                        let job = Job {
                            id,
                            behaviour,
                            attempts: Arc::default(),
                        };
                        note(&|h| ("spawn", e, k, id, name, behaviour).hash(h));
                        let task = event.execute::<Job, u64>(name, job)?;
                        let rt = event.runtime().clone();
                        let (endings, seen, note) = (endings.clone(), seen.clone(), note.clone());
                        // The caller: awaits the task (aborting it first
                        // for an `Aborted` job) and records how it ended.
                        rt.clone()
                            .spawn(async move {
                                if let Behaviour::Aborted(after) = behaviour {
                                    rt.sleep(ms(after)).await;
                                    task.abort();
                                }
                                let ending = match task.await {
                                    Ok(_) => Ending::Ok,
                                    Err(ExecuteError::Failed { .. }) => Ending::Failed,
                                    Err(ExecuteError::Panicked { .. }) => Ending::Panicked,
                                    Err(ExecuteError::Cancelled { .. }) => Ending::Cancelled,
                                    Err(other) => panic!("unexpected ending {other:?}"),
                                };
                                note(&|h| ("end", id, ending).hash(h));
                                *endings.lock().unwrap().entry(ending).or_default() += 1;
                                let before = seen.lock().unwrap().insert(id, ending);
                                assert_eq!(before, None, "job {id} ended twice");
                            })
                            .unwrap()
                            .detach();
                    }
                    Ok::<(), machina_core::BoxError>(())
                }
            })
            .unwrap();
    }
    let bot = bot.build();
    let report = mock.block_on(bot.run()).unwrap().unwrap();
    // The callers record after their task ends; let them finish.
    mock.run_until_stalled().unwrap();

    let spawned = spawned.load(Ordering::SeqCst).min(executes);
    let endings = endings.lock().unwrap().clone();
    let seen = seen.lock().unwrap();
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
    let digest = trace.lock().unwrap().finish();
    Soak {
        digest,
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
