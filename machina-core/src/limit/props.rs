//! Property tests of concurrent groups on the mock runtime.
//!
//! Random arrival schedules, call durations, cancellations (the acquire
//! dropped, or the task aborted, at a random instant) and panics, on one
//! group or on calls spread over three overlapping groups, with the ready
//! order optionally shuffled by a seed. A model of the expected accounting
//! is kept beside the groups and compared with them inside each call right
//! after it starts, and after every tick of virtual time:
//!
//! - in flight never exceeds the limit, and equals the number of calls
//!   holding a permit (so nothing is held by a waiter or leaked);
//! - no window of length `window` holds more than `N` starts (checked on
//!   every start and, at the end, over the whole log), and the group's own
//!   count of starts in the window agrees with the log;
//! - first come first served among callers that wait for the same groups:
//!   no call starts while an earlier caller needing exactly its groups
//!   still waits;
//! - groups never block each other, yet a multi-group caller is not
//!   starved: a younger caller may take a group an older multi-group
//!   caller needs while that caller is stuck on another group, but it may
//!   leave the older caller blocked *only* by what it took a bounded
//!   number of times ([`PASSED_OVER_BOUND`] per group of the older caller);
//!   after that the older caller keeps its place in every queue;
//! - no lost wake-up: a caller first in line in each of its groups is
//!   always held back by a limit of one of them;
//! - at the end nothing is in flight or queued, every caller that arrived
//!   was either served or cancelled, and the counters agree.
//!
//! Every instant is a multiple of [`TICK`], so checking after each tick
//! sees every state the groups pass through between polls.
//!
//! The default run is proptest's default number of cases per property
//! (`PROPTEST_CASES` overrides it). A long run:
//!
//! ```text
//! PROPTEST_CASES=100000 cargo test -p machina-core --features test-util --release limit::props
//! ```

use std::panic::resume_unwind;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

use super::{ConcurrentGroup, Limits, acquire_all};
use crate::rt::{JoinError, JoinHandle, Runtime};
use crate::testing::MockRuntime;

/// How many times, per group of its own, an older multi-group caller may be
/// left blocked only by the groups a younger caller just took: once per
/// look that passes it over, and it stops being passed over after
/// `PINNED_AFTER` (2) of them. Written out, not derived, so that raising
/// `PINNED_AFTER` (or removing the pinning) fails this property.
const PASSED_OVER_BOUND: u32 = 3;

/// The unit of every instant and duration in a schedule.
const TICK: Duration = Duration::from_millis(10);

fn ticks(n: u64) -> Duration {
    TICK * u32::try_from(n).expect("schedules are short")
}

/// The limits of one group, in ticks.
#[derive(Debug, Clone, Copy)]
struct GroupSpec {
    max_in_flight: Option<u32>,
    max_starts: Option<(u32, u64)>,
}

impl GroupSpec {
    fn limits(self) -> Limits {
        let mut limits = Limits::new();
        if let Some(max) = self.max_in_flight {
            limits = limits.max_in_flight(max);
        }
        if let Some((max, window)) = self.max_starts {
            limits = limits.max_starts(max, ticks(window));
        }
        limits
    }

    fn window(self) -> Option<(u32, Duration)> {
        self.max_starts.map(|(max, window)| (max, ticks(window)))
    }
}

/// How a call ends.
#[derive(Debug, Clone, Copy)]
enum Fate {
    /// Runs for its hold time and ends.
    Finish,
    /// Panics `after` ticks into the call (at most its hold time).
    Panic { after: u64 },
    /// Drops its acquire if no permit came `patience` ticks after arriving.
    GiveUp { patience: u64 },
    /// Its task is aborted `delay` ticks after its arrival, whatever it is
    /// doing then (waiting, running, or already done).
    Abort { delay: u64 },
}

#[derive(Debug, Clone, Copy)]
struct CallSpec {
    /// Bit `g` set: the call needs group `g`.
    groups: u8,
    arrival: u64,
    hold: u64,
    fate: Fate,
}

/// Where a call is, as the model sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Not arrived yet (or aborted before it arrived).
    Away,
    /// Waiting, the `seq`-th caller to arrive.
    Waiting {
        seq: u64,
    },
    Running,
    Done,
    Cancelled,
}

/// What the groups should look like, kept up to date by the calls.
struct Model {
    specs: Vec<GroupSpec>,
    /// Each call's groups and stage.
    calls: Vec<(u8, Stage)>,
    next_seq: u64,
    /// Per group: calls holding a permit.
    running: Vec<u32>,
    /// Per group: every start, as time since the runtime was made.
    starts: Vec<Vec<Duration>>,
    /// Per call: times a younger caller left it blocked only by what that
    /// caller took.
    passed_over: Vec<u32>,
    /// Per waiting call: the first instant a younger caller of the same
    /// groups started before it. It must start at that same instant (a
    /// release hands slots in order of arrival, but the executor may poll
    /// the callers it woke in another order), never later.
    overtaken_at: Vec<Option<Duration>>,
    violations: Vec<String>,
}

fn members(mask: u8, groups: usize) -> impl Iterator<Item = usize> {
    (0..groups).filter(move |g| mask & (1 << g) != 0)
}

impl Model {
    fn new(specs: &[GroupSpec], calls: &[CallSpec]) -> Self {
        Model {
            specs: specs.to_vec(),
            calls: calls.iter().map(|c| (c.groups, Stage::Away)).collect(),
            next_seq: 0,
            running: vec![0; specs.len()],
            starts: vec![Vec::new(); specs.len()],
            passed_over: vec![0; calls.len()],
            overtaken_at: vec![None; calls.len()],
            violations: Vec::new(),
        }
    }

    fn violation(&mut self, at: Duration, what: String) {
        self.violations.push(format!("at {at:?}: {what}"));
    }

    fn arrive(&mut self, id: usize) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.calls[id].1 = Stage::Waiting { seq };
    }

    /// Starts in the window of group `g` that ends at `now`.
    fn starts_in_window(&self, g: usize, now: Duration) -> u32 {
        let Some((_, window)) = self.specs[g].window() else {
            return 0;
        };
        let count = self.starts[g]
            .iter()
            .filter(|&&start| start + window > now)
            .count();
        u32::try_from(count).unwrap()
    }

    /// Call `id` just got its permit at `now`.
    fn start(&mut self, id: usize, now: Duration, groups: &[ConcurrentGroup]) {
        let (mask, stage) = self.calls[id];
        let Stage::Waiting { seq } = stage else {
            return self.violation(now, format!("call {id} started from {stage:?}"));
        };
        if let Some(at) = self.overtaken_at[id].take()
            && at < now
        {
            self.violation(
                now,
                format!("call {id} started after a younger caller that started at {at:?}"),
            );
        }
        // Callers of one group may be handed slots, and start in the order
        // they are polled at that instant; callers of several never are,
        // and start strictly in order.
        let handed = mask.count_ones() == 1;
        let overtaken: Vec<usize> = (0..self.calls.len())
            .filter(|&j| {
                let (other, stage) = self.calls[j];
                matches!(stage, Stage::Waiting { seq: s } if s < seq) && other == mask
            })
            .collect();
        if !handed && !overtaken.is_empty() {
            self.violation(now, format!("call {id} started before {overtaken:?}"));
        }
        for j in overtaken {
            self.overtaken_at[j].get_or_insert(now);
        }
        let older_sharers: Vec<usize> = (0..self.calls.len())
            .filter(|&j| {
                let (other, stage) = self.calls[j];
                matches!(stage, Stage::Waiting { seq: s } if s < seq)
                    && other & mask != 0
                    && other != mask
            })
            .collect();
        self.calls[id].1 = Stage::Running;
        for g in members(mask, groups.len()) {
            self.running[g] += 1;
            self.starts[g].push(now);
            let spec = self.specs[g];
            if spec.max_in_flight.is_some_and(|max| self.running[g] > max) {
                self.violation(now, format!("group {g}: {} in flight", self.running[g]));
            }
            if let Some((max, _)) = spec.window() {
                let in_window = self.starts_in_window(g, now);
                if in_window > max {
                    self.violation(now, format!("group {g}: {in_window} starts in a window"));
                }
            }
            self.compare(g, now, &groups[g]);
        }
        for j in older_sharers {
            let other = self.calls[j].0;
            let n = groups.len();
            let rest_admits = members(other & !mask, n).all(|g| !self.blocked(g, now));
            let took_what_it_needs = members(other & mask, n).any(|g| self.blocked(g, now));
            if rest_admits && took_what_it_needs {
                self.passed_over[j] += 1;
                let bound = PASSED_OVER_BOUND * other.count_ones();
                if self.passed_over[j] > bound {
                    self.violation(
                        now,
                        format!(
                            "call {j} passed over {} times (bound {bound})",
                            self.passed_over[j]
                        ),
                    );
                }
            }
        }
    }

    /// Whether group `g`'s limits refuse a start at `now`, by the model.
    fn blocked(&self, g: usize, now: Duration) -> bool {
        let spec = self.specs[g];
        spec.max_in_flight.is_some_and(|max| self.running[g] >= max)
            || spec
                .window()
                .is_some_and(|(max, _)| self.starts_in_window(g, now) >= max)
    }

    /// Call `id` is gone: cancelled while waiting, or its call ended.
    fn leave(&mut self, id: usize, now: Duration) {
        let (mask, stage) = self.calls[id];
        self.calls[id].1 = match stage {
            Stage::Waiting { .. } => {
                if let Some(at) = self.overtaken_at[id].take()
                    && at < now
                {
                    self.violation(
                        now,
                        format!("call {id} still waited after a younger caller started at {at:?}"),
                    );
                }
                Stage::Cancelled
            }
            Stage::Running => {
                for g in members(mask, self.specs.len()) {
                    self.running[g] -= 1;
                }
                Stage::Done
            }
            other => {
                self.violation(now, format!("call {id} left from {other:?}"));
                other
            }
        };
    }

    /// The group's own counts agree with the model's.
    fn compare(&mut self, g: usize, now: Duration, group: &ConcurrentGroup) {
        let in_flight = group.in_flight();
        if in_flight != self.running[g] {
            let running = self.running[g];
            self.violation(
                now,
                format!("group {g}: in_flight {in_flight}, running {running}"),
            );
        }
        let (counted, logged) = (group.starts_in_window(), self.starts_in_window(g, now));
        if counted != logged {
            self.violation(
                now,
                format!("group {g}: starts_in_window {counted}, log {logged}"),
            );
        }
    }

    /// The checks made once everything is idle at a tick.
    fn check_idle(&mut self, now: Duration, groups: &[ConcurrentGroup]) {
        let mut waiters: Vec<(u64, u8)> = self
            .calls
            .iter()
            .filter_map(|&(mask, stage)| match stage {
                Stage::Waiting { seq } => Some((seq, mask)),
                _ => None,
            })
            .collect();
        waiters.sort_unstable();
        for (g, group) in groups.iter().enumerate() {
            self.compare(g, now, group);
            // Callers of `g` alone always wait in its queue; callers of
            // several groups only while `g` is what they wait for.
            let needing = waiters.iter().filter(|(_, m)| m & (1 << g) != 0).count();
            let only = waiters.iter().filter(|(_, m)| *m == 1 << g).count();
            let waiting = group.waiting();
            if group.counted_waiters() != waiting {
                self.violation(
                    now,
                    format!(
                        "group {g}: {} waiters counted in its slots, {waiting} waiting",
                        group.counted_waiters()
                    ),
                );
            }
            if !(only..=needing).contains(&waiting) {
                self.violation(
                    now,
                    format!("group {g}: waiting {waiting}, model {only}..={needing}"),
                );
            }
        }
        let blocked = |g: usize| {
            let spec = self.specs[g];
            let group = &groups[g];
            spec.max_in_flight
                .is_some_and(|max| group.in_flight() >= max)
                || spec
                    .window()
                    .is_some_and(|(max, _)| group.starts_in_window() >= max)
        };
        let mut idle = Vec::new();
        for (i, &(seq, mask)) in waiters.iter().enumerate() {
            let first_in_line = waiters[..i].iter().all(|&(_, m)| m & mask == 0);
            if first_in_line && !members(mask, groups.len()).any(blocked) {
                idle.push(seq);
            }
        }
        if !idle.is_empty() {
            self.violation(now, format!("callers {idle:?} could start but wait"));
        }
    }
}

fn lock(model: &Mutex<Model>) -> MutexGuard<'_, Model> {
    model
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Tells the model a call has left, however its future ends (returning,
/// unwinding or being dropped).
struct Presence {
    model: Arc<Mutex<Model>>,
    id: usize,
    rt: Runtime,
    t0: Instant,
}

impl Drop for Presence {
    fn drop(&mut self) {
        lock(&self.model).leave(self.id, self.rt.now() - self.t0);
    }
}

/// One call: arrives, waits, runs, and ends by its fate. Gives whether it
/// got a permit.
async fn run_call(
    rt: Runtime,
    t0: Instant,
    model: Arc<Mutex<Model>>,
    groups: Vec<ConcurrentGroup>,
    id: usize,
    spec: CallSpec,
) -> bool {
    rt.sleep_until(t0 + ticks(spec.arrival)).await;
    let mine: Vec<ConcurrentGroup> = members(spec.groups, groups.len())
        .map(|g| groups[g].clone())
        .collect();
    lock(&model).arrive(id);
    let _presence = Presence {
        model: model.clone(),
        id,
        rt: rt.clone(),
        t0,
    };
    let acquire = acquire_all(&mine).expect("every call names a group");
    let permit = match spec.fate {
        Fate::GiveUp { patience } => match rt.timeout(ticks(patience), acquire).await {
            Ok(permit) => permit,
            Err(_) => return false,
        },
        _ => acquire.await,
    };
    lock(&model).start(id, rt.now() - t0, &groups);
    if let Fate::Panic { after } = spec.fate {
        rt.sleep(ticks(after.min(spec.hold))).await;
        // `resume_unwind` unwinds like a panic but skips the panic hook,
        // keeping thousands of cases quiet.
        resume_unwind(Box::new("the call failed"));
    }
    rt.sleep(ticks(spec.hold)).await;
    drop(permit);
    true
}

fn simulate(
    specs: &[GroupSpec],
    calls: &[CallSpec],
    seed: Option<u64>,
) -> Result<(), TestCaseError> {
    let mock = seed.map_or_else(MockRuntime::new, MockRuntime::with_seed);
    let rt = mock.runtime();
    let t0 = rt.now();
    let groups: Vec<ConcurrentGroup> = specs
        .iter()
        .enumerate()
        .map(|(g, spec)| ConcurrentGroup::new(&rt, format!("g{g}"), spec.limits()).unwrap())
        .collect();
    let model = Arc::new(Mutex::new(Model::new(specs, calls)));
    let tasks: Vec<JoinHandle<bool>> = calls
        .iter()
        .enumerate()
        .map(|(id, &spec)| {
            let call = run_call(rt.clone(), t0, model.clone(), groups.clone(), id, spec);
            rt.spawn(call).unwrap()
        })
        .collect();
    for (task, spec) in tasks.iter().zip(calls) {
        if let Fate::Abort { delay } = spec.fate {
            let (rt2, abort) = (rt.clone(), task.abort_handle());
            let at = t0 + ticks(spec.arrival + delay);
            rt.spawn(async move {
                rt2.sleep_until(at).await;
                abort.abort();
            })
            .unwrap()
            .detach();
        }
    }

    // Every call is served within its arrival plus, at worst, one window
    // and one hold per call ahead of it.
    let max_steps = 100 + calls.len() as u64 * (30 + 20);
    let mut steps = 0;
    while !tasks.iter().all(JoinHandle::is_finished) {
        prop_assert!(
            steps < max_steps,
            "calls still unfinished after {steps} ticks"
        );
        mock.advance(TICK)
            .map_err(|err| TestCaseError::fail(err.to_string()))?;
        lock(&model).check_idle(rt.now() - t0, &groups);
        steps += 1;
    }
    let model = lock(&model);
    prop_assert!(model.violations.is_empty(), "{:#?}", model.violations);

    let (mut served, mut cancelled, mut away) = (0, 0, 0);
    for (id, (task, spec)) in tasks.into_iter().zip(calls).enumerate() {
        let outcome: Result<bool, JoinError> = mock.block_on(task).unwrap();
        let stage = model.calls[id].1;
        let expected = match (spec.fate, &outcome, stage) {
            (Fate::Finish, Ok(true), Stage::Done) => true,
            (Fate::Panic { .. }, Err(JoinError::Panicked(panic)), Stage::Done) => {
                panic.message() == "the call failed"
            }
            (Fate::GiveUp { .. }, Ok(true), Stage::Done) => true,
            (Fate::GiveUp { .. }, Ok(false), Stage::Cancelled) => true,
            (Fate::Abort { .. }, Ok(true), Stage::Done) => true,
            (Fate::Abort { .. }, Err(JoinError::Cancelled), stage) => {
                matches!(stage, Stage::Away | Stage::Cancelled | Stage::Done)
            }
            _ => false,
        };
        prop_assert!(expected, "call {id} {spec:?}: {outcome:?}, {stage:?}");
        match stage {
            Stage::Done => served += 1,
            Stage::Cancelled => cancelled += 1,
            _ => away += 1,
        }
    }
    prop_assert_eq!(served + cancelled + away, calls.len());

    for (g, group) in groups.iter().enumerate() {
        prop_assert_eq!((group.in_flight(), group.waiting()), (0, 0), "group {}", g);
        let in_g = |wanted: Stage| {
            model
                .calls
                .iter()
                .filter(|&&(mask, stage)| mask & (1 << g) != 0 && stage == wanted)
                .count() as u64
        };
        let stats = group.stats();
        prop_assert_eq!(stats.acquired, in_g(Stage::Done), "group {} acquired", g);
        prop_assert_eq!(
            stats.abandoned,
            in_g(Stage::Cancelled),
            "group {} abandoned",
            g
        );
        if let Some((max, window)) = specs[g].window() {
            let mut starts = model.starts[g].clone();
            starts.sort_unstable();
            for (i, &from) in starts.iter().enumerate() {
                let inside = starts[i..]
                    .iter()
                    .take_while(|&&s| s < from + window)
                    .count();
                prop_assert!(
                    inside <= max as usize,
                    "group {}: {} starts in [{:?}, {:?})",
                    g,
                    inside,
                    from,
                    from + window
                );
            }
        }
    }
    Ok(())
}

fn group_spec() -> impl Strategy<Value = GroupSpec> {
    (
        prop::option::weighted(0.8, 1..=4u32),
        prop::option::weighted(0.7, (1..=4u32, 1..=30u64)),
    )
        .prop_map(|(max_in_flight, max_starts)| GroupSpec {
            max_in_flight,
            max_starts,
        })
}

fn fate() -> impl Strategy<Value = Fate> {
    prop_oneof![
        5 => Just(Fate::Finish),
        1 => (0..=20u64).prop_map(|after| Fate::Panic { after }),
        2 => (0..=30u64).prop_map(|patience| Fate::GiveUp { patience }),
        2 => (0..=40u64).prop_map(|delay| Fate::Abort { delay }),
    ]
}

/// A call in a non-empty subset of `groups` groups.
fn call_spec(groups: u32) -> impl Strategy<Value = CallSpec> {
    (1..(1u8 << groups), 0..=40u64, 0..=20u64, fate()).prop_map(|(groups, arrival, hold, fate)| {
        CallSpec {
            groups,
            arrival,
            hold,
            fate,
        }
    })
}

/// Hostile traffic for one caller needing both of two groups: a stream of
/// single-group calls on each, offset so that the two groups are rarely
/// free together — the schedule that would starve a caller that always
/// gave way.
fn alternating_traffic() -> impl Strategy<Value = (Vec<GroupSpec>, Vec<CallSpec>)> {
    (1..=2u32, 2..=6u64, 1..=5u64, 0..=4u64, 8..=16u64, 0..=10u64).prop_map(
        |(slots, period, offset, extra_hold, count, arrival)| {
            let spec = GroupSpec {
                max_in_flight: Some(slots),
                max_starts: None,
            };
            let hold = period + extra_hold;
            let mut calls = Vec::new();
            for k in 0..count {
                for (group, shift) in [(0b01, 0), (0b10, offset)] {
                    calls.push(CallSpec {
                        groups: group,
                        arrival: k * period + shift,
                        hold,
                        fate: Fate::Finish,
                    });
                }
            }
            calls.push(CallSpec {
                groups: 0b11,
                arrival,
                hold: 1,
                fate: Fate::Finish,
            });
            (vec![spec, spec], calls)
        },
    )
}

proptest! {
    #[test]
    fn a_multi_group_caller_is_not_starved_by_alternating_traffic(
        (specs, calls) in alternating_traffic(),
        seed in prop::option::of(any::<u64>()),
    ) {
        simulate(&specs, &calls, seed)?;
    }

    #[test]
    fn one_group_keeps_its_limits_serves_in_order_and_leaks_nothing(
        spec in group_spec(),
        calls in prop::collection::vec(call_spec(1), 1..=32),
        seed in prop::option::of(any::<u64>()),
    ) {
        simulate(&[spec], &calls, seed)?;
    }

    #[test]
    fn overlapping_groups_start_all_or_nothing_and_never_deadlock(
        specs in prop::collection::vec(group_spec(), 3),
        calls in prop::collection::vec(call_spec(3), 1..=24),
        seed in prop::option::of(any::<u64>()),
    ) {
        simulate(&specs, &calls, seed)?;
    }
}
