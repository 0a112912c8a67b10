//! Property tests of [`BreakerMachine`], the breaker's pure state machine.
//!
//! Random valid settings and random event sequences: time moves on by
//! random amounts (in whole milliseconds, so that instants often fall
//! exactly on a boundary), calls enter with a random draw (uniform, or
//! within a few steps of the recovery ramp's share, to test its edge),
//! admitted calls finish as a success or a failure — late, out of order,
//! or never — and the state is looked at. A model written from the rules
//! in [`BreakerMachine`]'s docs, keeping a log of outcomes rather than
//! buckets, predicts every answer:
//!
//! - **Passing** trips on an entry only when the window (ten buckets of
//!   `response_time / 10`) holds at least `max(min_calls, 1)` outcomes and
//!   `failures ≥ error_ratio × calls`, and never within `passing_time`
//!   after a recovery; the entry that trips it is rejected;
//! - **Broken** rejects every entry with `until` the trip plus
//!   `broken_time` (never before `now`), and lasts exactly that long;
//! - **Recovering** admits its first entry (a probe, so the instant a
//!   Broken refusal names admits a try), then an entry iff its draw is
//!   below `2^(Δ/recovery_time) − 1` (and asks for a draw only then), goes back
//!   to Broken once the failures among its calls reach `error_ratio / 2`
//!   of them, and to Passing after `recovery_time`;
//! - an outcome of a call admitted in an earlier state is ignored;
//! - [`current`](BreakerMachine::current) is the state a call was admitted
//!   in, [`state`](BreakerMachine::state),
//!   [`time_to_recovery`](BreakerMachine::time_to_recovery) and
//!   [`would_pass`](BreakerMachine::would_pass) agree with the model, and
//!   the counters match it and, with the calls let through while passing
//!   and still in flight (counted as they end), add up to the entries.
//!
//! This suite found two places where the machine broke its own rules; both
//! are fixed, and their smallest failing cases are kept as tests:
//!
//! - the calm period ran `passing_time` from the first entry, outcome or
//!   look after a recovery instead of from its end
//!   (`calm_ends_passing_time_after_the_recovery_ends`);
//! - an outcome of a call admitted in an earlier period of the *same*
//!   state (passing before a trip and a recovery, or an earlier recovery)
//!   counted, since `record` only had the state to tell; calls now carry
//!   an [`Admission`] with the period
//!   (`late_outcomes_of_an_earlier_period_are_ignored`).
//!
//! The default run is proptest's default number of cases per property
//! (`PROPTEST_CASES` overrides it). A long run:
//!
//! ```text
//! PROPTEST_CASES=20000 cargo test -p machina-core --features test-util --release --lib breaker::props
//! ```

use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

use super::{Admission, BreakerMachine, BreakerSettings, BreakerStats, CircuitState};
use crate::decision::{Decision, Reason, Refusal};

use crate::test_kit::ms;

/// The documented rules, on a log of outcomes.
#[derive(Debug, Clone)]
struct Model {
    settings: BreakerSettings,
    /// Where the window's buckets start.
    epoch: Instant,
    state: CircuitState,
    /// Broken: when it tripped; Recovering: when recovery began.
    since: Instant,
    calm_until: Option<Instant>,
    /// Bumped on every change of state, to tell stale outcomes.
    period: u64,
    /// Outcomes of this passing period: (when, failed).
    log: Vec<(Instant, bool)>,
    /// Calls and failures of this recovery.
    recovering: (u64, u64),
    /// Whether this recovery has admitted its probe.
    probed: bool,
    stats: BreakerStats,
}

/// What the model expects of an entry.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Expected {
    Proceed(CircuitState),
    Broken { until: Instant },
    Recovering,
}

impl Model {
    fn new(settings: BreakerSettings, now: Instant) -> Self {
        Model {
            settings,
            epoch: now,
            state: CircuitState::Passing,
            since: now,
            calm_until: None,
            period: 0,
            log: Vec::new(),
            recovering: (0, 0),
            probed: false,
            stats: BreakerStats::default(),
        }
    }

    /// The changes time alone makes.
    fn advance(&mut self, now: Instant) {
        let s = self.settings;
        loop {
            match self.state {
                CircuitState::Broken if now >= self.since + s.broken_time => {
                    self.state = CircuitState::Recovering;
                    self.since += s.broken_time;
                    self.recovering = (0, 0);
                    self.probed = false;
                }
                CircuitState::Recovering if now >= self.since + s.recovery_time => {
                    let over = self.since + s.recovery_time;
                    self.state = CircuitState::Passing;
                    self.calm_until = Some(over + s.passing_time);
                    self.log.clear();
                }
                _ => return,
            }
            self.period += 1;
        }
    }

    /// (calls, failures) in the ten buckets ending with the one of `now`.
    fn totals(&self, now: Instant) -> (u64, u64) {
        let bucket = (self.settings.response_time.as_nanos() / 10).max(1);
        let index = |at: Instant| (at - self.epoch).as_nanos() / bucket;
        let current = index(now);
        self.log
            .iter()
            .filter(|&&(at, _)| current - index(at) < 10)
            .fold((0, 0), |(calls, failures), &(_, failed)| {
                (calls + 1, failures + u64::from(failed))
            })
    }

    fn calm(&self, now: Instant) -> bool {
        self.calm_until.is_some_and(|until| now < until)
    }

    fn at_trip_condition(&self, now: Instant) -> bool {
        let (calls, failures) = self.totals(now);
        let s = self.settings;
        calls >= s.min_calls.max(1) && failures as f64 >= s.error_ratio * calls as f64
    }

    /// The recovery ramp's share of admitted calls at `now`.
    fn share(&self, now: Instant) -> f64 {
        let progress = (now - self.since).as_secs_f64() / self.settings.recovery_time.as_secs_f64();
        2f64.powf(progress) - 1.0
    }

    /// A call ended (its outcome in, or abandoned): one let through while
    /// passing is counted now.
    fn ended(&mut self, call: Admitted) {
        if call.state == CircuitState::Passing {
            self.stats.passing += 1;
        }
    }

    fn trip(&mut self, now: Instant) {
        self.state = CircuitState::Broken;
        self.since = now;
        self.log.clear();
        self.period += 1;
        self.stats.trips += 1;
    }

    fn enter(&mut self, now: Instant, draw: f64) -> Expected {
        self.advance(now);
        match self.state {
            CircuitState::Passing if !self.calm(now) && self.at_trip_condition(now) => {
                self.trip(now);
                self.stats.broken_rejected += 1;
                Expected::Broken {
                    until: now + self.settings.broken_time,
                }
            }
            CircuitState::Passing => Expected::Proceed(CircuitState::Passing),
            CircuitState::Broken => {
                self.stats.broken_rejected += 1;
                Expected::Broken {
                    until: self.since + self.settings.broken_time,
                }
            }
            CircuitState::Recovering if !self.probed || draw < self.share(now) => {
                self.probed = true;
                self.stats.recovering_admitted += 1;
                Expected::Proceed(CircuitState::Recovering)
            }
            CircuitState::Recovering => {
                self.stats.recovering_rejected += 1;
                Expected::Recovering
            }
        }
    }

    fn record(&mut self, now: Instant, call: Admitted, failed: bool) {
        self.ended(call);
        self.advance(now);
        if call.period != self.period {
            return;
        }
        match call.state {
            CircuitState::Passing => self.log.push((now, failed)),
            CircuitState::Recovering => {
                self.recovering.0 += 1;
                self.recovering.1 += u64::from(failed);
                let (calls, failures) = self.recovering;
                if failures as f64 >= self.settings.error_ratio / 2.0 * calls as f64 {
                    self.trip(now);
                }
            }
            CircuitState::Broken => unreachable!("no call is admitted while broken"),
        }
    }
}

/// A call let through and not finished yet.
#[derive(Debug, Clone, Copy)]
struct Admitted {
    state: CircuitState,
    period: u64,
    /// What the machine handed out for it.
    admission: Admission,
}

#[derive(Debug, Clone, Copy)]
pub(super) enum Draw {
    /// Uniform in `[0, 1)`.
    Uniform(f64),
    /// The ramp's share at the time of entry, moved by this many steps of
    /// one float.
    NearShare(i8),
}

#[derive(Debug, Clone, Copy)]
pub(super) enum Outcome {
    Success,
    Failure,
    /// Never reported (the call was cancelled, say).
    Dropped,
}

#[derive(Debug, Clone, Copy)]
pub(super) enum Event {
    Advance(u64),
    Enter(Draw),
    /// Finishes one of the calls in flight (`pick` modulo their number).
    Finish {
        pick: usize,
        outcome: Outcome,
    },
    /// Asks for the state, the time to recovery and whether a call would
    /// pass.
    Look,
}

fn near(share: f64, steps: i8) -> f64 {
    let mut draw = share;
    for _ in 0..steps.unsigned_abs() {
        draw = if steps > 0 {
            draw.next_up()
        } else {
            draw.next_down()
        };
    }
    draw.clamp(0.0, 1.0f64.next_down())
}

fn run(settings: BreakerSettings, events: &[Event]) -> Result<(), TestCaseError> {
    let t0 = crate::rt::Timer::now(&crate::rt::SystemTimer::new());
    let mut now = t0;
    let mut machine = BreakerMachine::new(settings, now);
    let mut model = Model::new(settings, now);
    let mut in_flight: Vec<Admitted> = Vec::new();
    let mut entries = 0u64;
    for (n, &event) in events.iter().enumerate() {
        let at = now - t0;
        match event {
            Event::Advance(by) => now += ms(by),
            Event::Enter(draw) => {
                entries += 1;
                model.advance(now);
                let recovering = model.state == CircuitState::Recovering;
                let draw = match draw {
                    Draw::Uniform(draw) => draw,
                    Draw::NearShare(steps) if recovering => near(model.share(now), steps),
                    Draw::NearShare(_) => 0.5,
                };
                let mut asked = false;
                let decision = machine.enter(now, || {
                    asked = true;
                    draw
                });
                prop_assert_eq!(asked, recovering, "event {} at {:?}: draw asked for", n, at);
                let expected = model.enter(now, draw);
                match (expected, decision) {
                    (Expected::Proceed(state), Decision::Proceed) => {
                        prop_assert_eq!(machine.current(), state, "event {} at {:?}", n, at);
                        prop_assert_eq!(machine.admission().state(), state);
                        in_flight.push(Admitted {
                            state,
                            period: model.period,
                            admission: machine.admission(),
                        });
                    }
                    (
                        Expected::Broken { until },
                        Decision::WaitUntil(Refusal {
                            reason: Reason::Broken,
                            until: Some(got),
                        }),
                    ) => {
                        prop_assert!(got > now, "event {} at {:?}: broken until the past", n, at);
                        prop_assert_eq!(got, until, "event {} at {:?}: broken until", n, at);
                    }
                    (
                        Expected::Recovering,
                        Decision::WaitUntil(Refusal {
                            reason: Reason::Recovering,
                            until: None,
                        }),
                    ) => {}
                    (expected, got) => {
                        return Err(TestCaseError::fail(format!(
                            "event {n} at {at:?}: expected {expected:?}, got {got:?}"
                        )));
                    }
                }
            }
            Event::Finish { pick, outcome } => {
                if in_flight.is_empty() {
                    continue;
                }
                let call = in_flight.remove(pick % in_flight.len());
                let failed = match outcome {
                    Outcome::Dropped => {
                        machine.abandon(call.admission);
                        model.ended(call);
                        continue;
                    }
                    Outcome::Success => false,
                    Outcome::Failure => true,
                };
                machine.record(now, call.admission, failed);
                model.record(now, call, failed);
            }
            Event::Look => {
                model.advance(now);
                prop_assert_eq!(machine.state(now), model.state, "event {} at {:?}", n, at);
                let to_recovery = match model.state {
                    CircuitState::Broken => model.since + settings.broken_time - now,
                    _ => Duration::ZERO,
                };
                prop_assert_eq!(
                    machine.time_to_recovery(now),
                    to_recovery,
                    "event {} at {:?}",
                    n,
                    at
                );
                let would_pass = model.state == CircuitState::Passing
                    && !model.calm(now)
                    && !model.at_trip_condition(now);
                prop_assert_eq!(
                    machine.would_pass(now),
                    would_pass,
                    "event {} at {:?}",
                    n,
                    at
                );
            }
        }
        let stats = machine.stats();
        let passing_in_flight = in_flight
            .iter()
            .filter(|call| call.state == CircuitState::Passing)
            .count() as u64;
        prop_assert_eq!(stats, model.stats, "event {} at {:?}", n, at);
        prop_assert_eq!(
            stats.passing
                + passing_in_flight
                + stats.broken_rejected
                + stats.recovering_admitted
                + stats.recovering_rejected,
            entries,
            "event {} at {:?}: the counters and the passing calls in flight do not add up to the entries",
            n,
            at
        );
    }
    Ok(())
}

pub(super) fn settings() -> impl Strategy<Value = BreakerSettings> {
    (
        prop_oneof![
            Just(1.0),
            (1..=100u32).prop_map(|n| f64::from(n) / 100.0),
            (f64::MIN_POSITIVE..=1.0),
        ],
        prop_oneof![1..=100u64, 1..=2000u64].prop_map(ms),
        (1..=50u64).prop_map(ms),
        (1..=50u64).prop_map(ms),
        (1..=50u64).prop_map(ms),
        1..10u64,
    )
        .prop_map(
            |(error_ratio, response_time, broken_time, recovery_time, passing_time, min_calls)| {
                BreakerSettings {
                    error_ratio,
                    response_time,
                    broken_time,
                    recovery_time,
                    passing_time,
                    min_calls,
                }
            },
        )
}

pub(super) fn event() -> impl Strategy<Value = Event> {
    let draw = prop_oneof![
        3 => (0.0..1.0f64).prop_map(Draw::Uniform),
        1 => (-2..=2i8).prop_map(Draw::NearShare),
    ];
    let outcome = prop_oneof![
        3 => Just(Outcome::Success),
        5 => Just(Outcome::Failure),
        1 => Just(Outcome::Dropped),
    ];
    prop_oneof![
        3 => prop_oneof![4 => 0..=3u64, 3 => 0..=20u64, 1 => 0..=200u64].prop_map(Event::Advance),
        4 => draw.prop_map(Event::Enter),
        4 => (any::<usize>(), outcome).prop_map(|(pick, outcome)| Event::Finish { pick, outcome }),
        1 => Just(Event::Look),
    ]
}

/// Settings under which one failure trips the breaker.
fn touchy(recovery_time: Duration) -> BreakerSettings {
    BreakerSettings {
        error_ratio: 1.0,
        response_time: ms(100),
        broken_time: ms(1),
        recovery_time,
        passing_time: ms(1),
        min_calls: 1,
    }
}

const ENTER: Event = Event::Enter(Draw::Uniform(0.0));

fn fail(pick: usize) -> Event {
    Event::Finish {
        pick,
        outcome: Outcome::Failure,
    }
}

#[test]
fn calm_ends_passing_time_after_the_recovery_ends() {
    // Trips at 0 ms and recovers over 1..4 ms; calm ends at 5 ms. The
    // first call after that comes at 5 ms and fails, so the next one, at
    // 5 ms, trips the breaker. As built, calm runs until 6 ms and it
    // passes.
    let events = [
        ENTER,
        fail(0),
        ENTER,
        Event::Advance(5),
        ENTER,
        fail(0),
        ENTER,
    ];
    run(touchy(ms(3)), &events).unwrap();
}

#[test]
fn late_outcomes_of_an_earlier_period_are_ignored() {
    // Passing: call 0 is admitted, call 1 fails and trips the breaker at
    // 0 ms; it recovers at 1..2 ms; call 0 fails at 3 ms. As built, that
    // failure from before the trip lands in the new window and the call at
    // 5 ms trips the breaker again.
    let events = [
        ENTER,
        ENTER,
        fail(1),
        ENTER,
        Event::Advance(3),
        fail(0),
        Event::Advance(2),
        ENTER,
    ];
    run(touchy(ms(1)), &events).unwrap();
    // Recovering: calls 0 and 1 are admitted at 5 ms, call 1 fails and
    // breaks the breaker again; it recovers from 6 ms; call 0 fails at 7 ms.
    // As built, that failure from the earlier recovery breaks this one.
    let events = [
        ENTER,
        fail(0),
        ENTER,
        Event::Advance(5),
        ENTER,
        ENTER,
        fail(1),
        Event::Advance(2),
        fail(0),
        Event::Look,
    ];
    run(touchy(ms(10)), &events).unwrap();
}

proptest! {
    #[test]
    fn the_machine_follows_its_rules(
        settings in settings(),
        events in prop::collection::vec(event(), 1..=200),
    ) {
        run(settings, &events)?;
    }
}
