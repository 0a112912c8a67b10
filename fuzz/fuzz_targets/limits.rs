//! `Limits` and the token bucket with any numbers: making a group never
//! panics (bad limits are an error), and a group driven through any
//! sequence of starts, ends and clock steps keeps its limits — never more
//! in flight than allowed, never more starts in a window than allowed, and
//! a refusal's instant is never in the past.
#![no_main]

use std::time::{Duration, Instant};

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use machina_core::decision::Decision;
use machina_core::limit::{GroupPolicy, Limits};

#[derive(Debug, Arbitrary)]
struct Input {
    max_in_flight: Option<u32>,
    /// (max, window in nanoseconds)
    max_starts: Option<(u32, u64)>,
    /// (n, per in nanoseconds)
    rate: Option<(u32, u64)>,
    burst: Option<u32>,
    steps: Vec<Step>,
}

#[derive(Debug, Arbitrary)]
enum Step {
    /// Moves the clock on by this many microseconds.
    Advance(u32),
    /// A caller decides and, if it may, starts.
    Start,
    /// A caller that may try right away.
    TryStart,
    /// A call ends.
    End,
}

fuzz_target!(|input: Input| {
    let mut limits = Limits::new();
    if let Some(max) = input.max_in_flight {
        limits = limits.max_in_flight(max);
    }
    if let Some((max, window)) = input.max_starts {
        limits = limits.max_starts(max, Duration::from_nanos(window));
    }
    if let Some((n, per)) = input.rate {
        limits = limits.with_rate(n, Duration::from_nanos(per));
    }
    if let Some(burst) = input.burst {
        limits = limits.burst(burst);
    }
    let Ok(mut policy) = GroupPolicy::new(limits) else {
        return;
    };
    let mut now = Instant::now();
    let mut running: u32 = 0;
    for step in input.steps.iter().take(512) {
        match step {
            Step::Advance(us) => now += Duration::from_micros(u64::from(*us)),
            Step::Start => match policy.decide(now) {
                Decision::Proceed => {
                    policy.commit(now);
                    running += 1;
                }
                Decision::WaitUntil(refusal) => {
                    if let Some(until) = refusal.until {
                        assert!(until >= now, "told to wait until the past");
                    }
                }
                other => panic!("a group answered {other:?}"),
            },
            Step::TryStart => {
                if policy.try_acquire(now).is_ok() {
                    running += 1;
                }
            }
            Step::End => {
                if running > 0 {
                    policy.release();
                    running -= 1;
                }
            }
        }
        assert_eq!(policy.in_flight(), running);
        if let Some(max) = input.max_in_flight {
            assert!(running <= max, "{running} in flight over {max}");
        }
        if let Some((max, window)) = input.max_starts
            && window > 0
        {
            let starts = policy.starts_in_window(now);
            assert!(starts <= max, "{starts} starts in the window over {max}");
        }
        assert!(policy.next_window_opening(now) >= now);
    }
});
