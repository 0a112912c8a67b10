//! Property test of [`CircuitBreaker`] against its [`BreakerMachine`]: the
//! shared breaker — fast admissions, successes counted in the lock-free
//! tally and folded in later, the published fast-path flags — must answer
//! exactly what the pure machine answers to the same sequence of entries,
//! outcomes, looks and clock moves (on the mock runtime, one thread, the
//! same random draws).
//!
//! A long run:
//!
//! ```text
//! PROPTEST_CASES=20000 cargo test -p machina-core --features test-util --release --lib breaker::circuit_props
//! ```

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

use super::props::{Event, Outcome, event, settings};
use super::{Admission, BreakerGuard, BreakerMachine, BreakerSettings, CircuitBreaker};
use crate::decision::Decision;
use crate::test_kit::ms;
use crate::testing::MockRuntime;

fn breaker(settings: BreakerSettings, rt: &crate::rt::Runtime) -> CircuitBreaker {
    CircuitBreaker::builder("props")
        .error_ratio(settings.error_ratio)
        .response_time(settings.response_time)
        .broken_time(settings.broken_time)
        .recovery_time(settings.recovery_time)
        .passing_time(settings.passing_time)
        .min_calls(settings.min_calls)
        .build(rt)
        .expect("valid settings")
}

fn run(settings: BreakerSettings, seed: u64, events: &[Event]) -> Result<(), TestCaseError> {
    let mock = MockRuntime::new();
    let rt = mock.runtime().with_rng_seed(seed);
    let draws = rt.with_rng_seed(seed);
    let shared = breaker(settings, &rt);
    let mut machine = BreakerMachine::new(settings, rt.now());
    let mut calls: Vec<(BreakerGuard<'_>, Admission)> = Vec::new();
    let failure = std::io::Error::other("down");
    for (n, &event) in events.iter().enumerate() {
        let now = rt.now();
        match event {
            Event::Advance(by) => {
                mock.advance(ms(by)).expect("advance");
            }
            Event::Enter(_) => {
                let decision = machine.enter(now, || draws.rng().next_f64());
                match (shared.enter(), decision) {
                    (Ok(guard), Decision::Proceed) => {
                        prop_assert_eq!(guard.admitted_in(), machine.current(), "event {}", n);
                        calls.push((guard, machine.admission()));
                    }
                    (Err(open), Decision::WaitUntil(refusal)) => {
                        prop_assert_eq!(open.refusal, refusal, "event {}", n);
                    }
                    (got, want) => {
                        prop_assert!(
                            false,
                            "event {}: breaker {:?}, machine {:?}",
                            n,
                            got.map(|g| g.admitted_in()),
                            want
                        );
                    }
                }
            }
            Event::Finish { pick, outcome } => {
                if calls.is_empty() {
                    continue;
                }
                let (guard, admission) = calls.swap_remove(pick % calls.len());
                match outcome {
                    Outcome::Success => {
                        guard.success();
                        machine.record(now, admission, false);
                    }
                    Outcome::Failure => {
                        guard.failure(&failure);
                        machine.record(now, admission, true);
                    }
                    Outcome::Dropped => {
                        drop(guard);
                        machine.abandon(admission);
                    }
                }
            }
            Event::Look => {
                prop_assert_eq!(shared.state(), machine.state(now), "event {}", n);
                prop_assert_eq!(shared.time_to_recovery(), machine.time_to_recovery(now));
                prop_assert_eq!(shared.stats(), machine.stats(), "event {}", n);
            }
        }
    }
    prop_assert_eq!(shared.stats(), machine.stats());
    Ok(())
}

proptest! {
    #[test]
    fn the_breaker_answers_as_its_machine(
        settings in settings(),
        seed in any::<u64>(),
        events in prop::collection::vec(event(), 1..=300),
    ) {
        run(settings, seed, &events)?;
    }
}
