//! The soak bot, shared by the soak test on the mock runtime
//! (`tests/soak`) and the soak program on tokio (`examples/soak`): 3
//! groups, 20 emits, and executes that work, fail (and are retried), time
//! out, panic or are cancelled as a seeded draw says.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use machina_core::Runtime;
use machina_core::bot::{Event, ExecuteError, Machina};
use machina_core::limit::Limits;
use machina_core::retry::{Retry, Rule};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// What the handler does, drawn per job from the seed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Behaviour {
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
pub(crate) struct Transient(u64);

#[derive(Debug, thiserror::Error)]
#[error("fatal failure of job {0}")]
pub(crate) struct Fatal(u64);

#[derive(Clone, Debug)]
pub(crate) struct Job {
    id: u64,
    behaviour: Behaviour,
    attempts: Arc<AtomicU32>,
}

/// How a job ended, as the caller awaiting its task saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Ending {
    Ok,
    Failed,
    Panicked,
    Cancelled,
}

/// A small deterministic generator (SplitMix64), so the schedule depends
/// on the seed alone.
pub(crate) struct Draw(pub(crate) u64);

impl Draw {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub(crate) fn behaviour(&mut self) -> Behaviour {
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

/// How big a soak is and how fast its emits tick.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Plan {
    /// The seed of every draw.
    pub(crate) seed: u64,
    /// How many executes in all (`None`: the emits run until stopped).
    pub(crate) executes: Option<u64>,
    /// Emit `e` runs every `tick + e` milliseconds.
    pub(crate) tick_ms: u64,
}

/// The emits, and the executes each of their runs spawns.
pub(crate) const EMITS: u64 = 20;
/// Executes spawned by each run of an emit.
pub(crate) const PER_TICK: u64 = 5;

/// What the bot's callers saw, shared with the test or program.
#[derive(Clone, Default)]
pub(crate) struct Record {
    /// Executes spawned.
    pub(crate) spawned: Arc<AtomicU64>,
    /// How many ended each way.
    pub(crate) endings: Arc<Mutex<HashMap<Ending, u64>>>,
    /// How each job ended (kept only for a bounded soak).
    pub(crate) seen: Option<Arc<Mutex<HashMap<u64, Ending>>>>,
    /// A digest of every event, in order, with its instant.
    pub(crate) trace: Arc<Mutex<DefaultHasher>>,
}

impl Record {
    fn note(&self, what: impl Hash) {
        what.hash(&mut *self.trace.lock().unwrap());
    }

    /// The digest of the trace so far.
    pub(crate) fn digest(&self) -> u64 {
        self.trace.lock().unwrap().finish()
    }
}

/// The soak bot on `rt`, and what its callers will record.
pub(crate) fn build(rt: &Runtime, plan: Plan) -> (Machina, Record) {
    let record = Record {
        seen: plan.executes.map(|_| Arc::default()),
        ..Record::default()
    };
    let t0 = rt.now();
    let stamp = {
        let rt = rt.clone();
        move || (rt.now() - t0).as_nanos()
    };
    let mut bot = Machina::builder(rt);
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
        let record = record.clone();
        let stamp = stamp.clone();
        move |job: Job| {
            let rt = rt.clone();
            let record = record.clone();
            let stamp = stamp.clone();
            async move {
                let attempt = job.attempts.fetch_add(1, Ordering::SeqCst);
                record.note(("attempt", job.id, attempt, stamp()));
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
    for (name, groups) in [
        ("fetch", &["narrow"][..]),
        ("store", &["window", "bucket"][..]),
        ("notify", &["bucket"][..]),
    ] {
        let execute = bot
            .execute(name, handler.clone())
            .groups(groups.iter().copied())
            .retry(retry())
            .timeout(ms(60))
            .register()
            .unwrap();
        drop(execute);
    }
    let ticks = plan.executes.map(|n| n.div_ceil(EMITS * PER_TICK));
    for e in 0..EMITS {
        let draw = Arc::new(Mutex::new(Draw(
            plan.seed ^ (e + 1).wrapping_mul(0x2545_F491_4F6C_DD1D),
        )));
        let record = record.clone();
        let emit = bot.emit(&format!("emit{e}"), ms(plan.tick_ms + e)).unwrap();
        let emit = match ticks {
            Some(ticks) => emit.count(ticks),
            None => emit,
        };
        emit.register(move |event: Event| {
            let (draw, record) = (draw.clone(), record.clone());
            async move {
                for k in 0..PER_TICK {
                    let id = record.spawned.fetch_add(1, Ordering::SeqCst);
                    if plan.executes.is_some_and(|n| id >= n) {
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
                    record.note(("spawn", e, k, id, name, behaviour));
                    let task = event.execute::<Job, u64>(name, job)?;
                    let rt = event.runtime().clone();
                    let record = record.clone();
                    // The caller: awaits the task (aborting it first for
                    // an `Aborted` job) and records how it ended.
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
                            record.note(("end", id, ending));
                            *record.endings.lock().unwrap().entry(ending).or_default() += 1;
                            if let Some(seen) = &record.seen {
                                let before = seen.lock().unwrap().insert(id, ending);
                                assert_eq!(before, None, "job {id} ended twice");
                            }
                        })
                        .unwrap()
                        .detach();
                }
                Ok::<(), machina_core::BoxError>(())
            }
        })
        .unwrap();
    }
    (bot.build(), record)
}
