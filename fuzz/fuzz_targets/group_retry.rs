//! A concurrent group and retry rules on the mock runtime, driven by any
//! schedule of calls (each failing, hanging or panicking as told),
//! cancellations and clock steps. After every step the group keeps its
//! limits; at the end every call has ended exactly once, the group holds
//! nothing and has no waiter, and no task is left alive.
#![no_main]

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use machina_core::call::CallStack;
use machina_core::limit::{ConcurrentGroup, Limits};
use machina_core::retry::{Retry, Rule};
use machina_core::testing::MockRuntime;

#[derive(Debug, Arbitrary)]
struct Input {
    seed: u64,
    max_in_flight: u8,
    /// Starts per window (0: no window limit) and the window in ms.
    max_starts: (u8, u16),
    retries: u8,
    retry_ms: u8,
    timeout_ms: u16,
    steps: Vec<Step>,
}

#[derive(Debug, Arbitrary)]
enum Step {
    /// A call whose attempts fail `fails` times, then hold the slot for
    /// `hold_ms` (past the attempt timeout if long enough), or panic.
    Call { fails: u8, hold_ms: u16, panics: bool },
    /// Aborts the n-th call (modulo the calls so far).
    Cancel(u16),
    /// Runs virtual time on.
    Advance(u16),
}

#[derive(Debug, thiserror::Error)]
#[error("attempt failed")]
struct Flaky;

/// libFuzzer's panic hook aborts on every panic; the calls' own panics
/// (caught by the mock runtime, as a real executor would) are expected.
fn allow_calls_to_panic() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let abort = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let on_purpose = info
                .payload()
                .downcast_ref::<&str>()
                .is_some_and(|m| m.contains("on purpose"));
            if !on_purpose {
                abort(info);
            }
        }));
    });
}

fuzz_target!(|input: Input| {
    allow_calls_to_panic();
    let max_in_flight = u32::from(input.max_in_flight.max(1));
    let mut limits = Limits::new().max_in_flight(max_in_flight);
    let (starts, window_ms) = input.max_starts;
    if starts > 0 && window_ms > 0 {
        limits = limits.max_starts(u32::from(starts), Duration::from_millis(u64::from(window_ms)));
    }
    let mock = MockRuntime::builder().seed(input.seed).build();
    let rt = mock.runtime();
    let group = ConcurrentGroup::new(&rt, "fuzz", limits).expect("valid limits");
    let stack = Arc::new(
        CallStack::new()
            .group(group.clone())
            .retry(
                Retry::new().rule(
                    Rule::fixed(Duration::from_millis(u64::from(input.retry_ms)))
                        .on::<Flaky>()
                        .retries(u32::from(input.retries % 8)),
                ),
            )
            .timeout(Duration::from_millis(u64::from(input.timeout_ms.max(1)))),
    );
    let ended = Arc::new(AtomicU32::new(0));
    let mut tasks = Vec::new();
    let check = |group: &ConcurrentGroup| {
        assert!(group.in_flight() <= max_in_flight);
        if starts > 0 && window_ms > 0 {
            assert!(group.starts_in_window() <= u32::from(starts));
        }
    };
    for step in input.steps.iter().take(256) {
        match *step {
            Step::Call { fails, hold_ms, panics } => {
                let (stack, rt2, ended) = (stack.clone(), rt.clone(), ended.clone());
                let attempts = Arc::new(AtomicU32::new(0));
                let task = rt
                    .spawn(async move {
                        let outcome = stack
                            .run(&rt2, || {
                                let (rt, attempts) = (rt2.clone(), attempts.clone());
                                async move {
                                    if attempts.fetch_add(1, Ordering::SeqCst) < u32::from(fails % 4) {
                                        return Err(Flaky);
                                    }
                                    if panics {
                                        panic!("a call panics on purpose");
                                    }
                                    rt.sleep(Duration::from_millis(u64::from(hold_ms))).await;
                                    Ok(())
                                }
                            })
                            .await;
                        let _ = outcome;
                        ended.fetch_add(1, Ordering::SeqCst);
                    })
                    .expect("the mock runtime takes tasks");
                tasks.push(task);
            }
            Step::Cancel(n) => {
                if !tasks.is_empty() {
                    tasks[usize::from(n) % tasks.len()].abort();
                }
            }
            Step::Advance(ms) => {
                mock.advance(Duration::from_millis(u64::from(ms))).expect("advance");
            }
        }
        mock.run_until_stalled().expect("no deadlock");
        check(&group);
    }
    // Let everything end: every task finishes, is cancelled, or panicked.
    let calls = tasks.len();
    let outcomes = mock
        .block_on(async move {
            let mut outcomes = Vec::new();
            for task in tasks {
                outcomes.push(task.await.is_ok());
            }
            outcomes
        })
        .expect("every call ends");
    assert_eq!(outcomes.len(), calls);
    // A call that ran to its end counted itself once; the others were
    // cancelled or panicked.
    let finished = outcomes.iter().filter(|ok| **ok).count() as u32;
    assert_eq!(ended.load(Ordering::SeqCst), finished);
    assert_eq!(group.in_flight(), 0, "a permit leaked");
    assert_eq!(group.waiting(), 0, "a waiter was left behind");
    assert!(mock.live_tasks().is_empty(), "{:?}", mock.live_tasks());
});
