//! The recurring service on virtual time: waits and skips as the strategy
//! says, failures counted for back-off, stop during a wait and during a
//! run, and a strategy that never waits.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::*;
use crate::service::Supervisor;
use crate::testing::MockRuntime;

use crate::test_kit::secs;

type Log = Arc<Mutex<Vec<u64>>>;
type RunFuture = Pin<Box<dyn Future<Output = Result<(), BoxError>> + Send>>;

/// A callback that records its start (seconds since t0), takes `work`
/// seconds and fails on the runs listed in `fail` (0-based).
fn recording(
    rt: &crate::rt::Runtime,
    work: u64,
    fail: &'static [u32],
) -> (Log, impl Fn() -> RunFuture + Send + Sync + 'static) {
    let log: Log = Arc::default();
    let (seen, clock, t0, n) = (
        log.clone(),
        rt.clone(),
        rt.now(),
        Arc::new(AtomicU32::new(0)),
    );
    let callback = move || {
        let (seen, clock, n) = (seen.clone(), clock.clone(), n.clone());
        async move {
            seen.lock().unwrap().push((clock.now() - t0).as_secs());
            clock.sleep(secs(work)).await;
            if fail.contains(&n.fetch_add(1, Ordering::SeqCst)) {
                Err(BoxError::from(std::io::Error::other("flaky")))
            } else {
                Ok(())
            }
        }
        .boxed()
    };
    (log, callback)
}

#[test]
fn the_strategy_chooses_each_wait_skips_and_stops() {
    let mock = MockRuntime::new();
    let rt = mock.runtime();
    let (starts, callback) = recording(&rt, 1, &[]);
    let states = Arc::new(Mutex::new(Vec::new()));
    let seen = states.clone();
    let service = RecurringService::new(
        "sync",
        move |state: RecurringState| {
            seen.lock().unwrap().push(state);
            async move {
                match (state.runs, state.skips) {
                    (0, 0) => Strategy::Run(secs(5)),
                    (1, 0) => Strategy::Skip(secs(7)),
                    (1, 1) => Strategy::Run(secs(3)),
                    (2, _) => Strategy::Run(secs(10)),
                    _ => Strategy::Stop,
                }
            }
        },
        callback,
    );
    let service = Arc::new(service);
    let stack = Supervisor::builder(&rt)
        .service("sync", ServiceHandle(service.clone()), &[])
        .build()
        .unwrap();
    mock.block_on(async { stack.start().await.unwrap() })
        .unwrap();
    mock.advance(secs(120)).unwrap();
    // 5 s wait; run 5..6; skip 7 s to 13; wait 3 s to 16; run 16..17;
    // wait 10 s to 27; run 27..28; then Stop.
    assert_eq!(*starts.lock().unwrap(), [5, 16, 27]);
    let states = states.lock().unwrap().clone();
    assert_eq!(states.len(), 5, "{states:?}");
    assert_eq!(
        states[4],
        RecurringState {
            runs: 3,
            failures: 0,
            consecutive_failures: 0,
            skips: 1
        }
    );
    assert!(
        service.slot().as_ref().is_some(),
        "the slot is cleared only by stop"
    );
    mock.block_on(async { stack.stop().await }).unwrap();
    assert_eq!(mock.pending_timers(), 0, "a stopped cycle leaves no timer");
}

#[test]
fn failures_are_counted_so_the_strategy_can_back_off() {
    let mock = MockRuntime::new();
    let rt = mock.runtime();
    // Runs 1, 2 and 3 fail; the wait doubles with each failure in a row.
    let (starts, callback) = recording(&rt, 0, &[1, 2, 3]);
    let service = RecurringService::new(
        "backoff",
        |state: RecurringState| async move {
            if state.runs == 6 {
                return Strategy::Stop;
            }
            Strategy::Run(secs(10 << state.consecutive_failures))
        },
        callback,
    );
    let stack = Supervisor::builder(&rt)
        .service("backoff", service, &[])
        .build()
        .unwrap();
    mock.block_on(async { stack.start().await.unwrap() })
        .unwrap();
    mock.advance(secs(1000)).unwrap();
    // Waits: 10, 10 (ok), 20 (1 failure), 40 (2), 80 (3), 10 (success).
    assert_eq!(*starts.lock().unwrap(), [10, 20, 40, 80, 160, 170]);
    mock.block_on(async { stack.stop().await }).unwrap();
}

#[test]
fn stop_ends_a_wait_at_once_and_lets_a_run_finish() {
    let mock = MockRuntime::new();
    let rt = mock.runtime();

    // During the wait before the second run (run 10..18, next at 28).
    let t0 = rt.now();
    let (starts, stack) = slow_every_ten(&mock);
    mock.advance(secs(20)).unwrap();
    let report = mock.block_on(async { stack.stop().await }).unwrap();
    assert_eq!(report.stopped, ["slow"]);
    assert_eq!(rt.now() - t0, secs(20), "a wait is cut short");
    mock.advance(secs(100)).unwrap();
    assert_eq!(*starts.lock().unwrap(), [10]);

    // During a run: stop waits until it finishes (started at 10, 8 s).
    let t1 = rt.now();
    let (starts, stack) = slow_every_ten(&mock);
    mock.advance(secs(13)).unwrap();
    mock.block_on(async { stack.stop().await }).unwrap();
    assert_eq!(rt.now() - t1, secs(18), "the run in progress finished");
    mock.advance(secs(100)).unwrap();
    assert_eq!(starts.lock().unwrap().len(), 1);
}

/// A started stack with one service: every 10 s, a run of 8 s.
fn slow_every_ten(mock: &MockRuntime) -> (Log, Supervisor) {
    let rt = mock.runtime();
    let (starts, callback) = recording(&rt, 8, &[]);
    let service = RecurringService::new("slow", |_s| async { Strategy::Run(secs(10)) }, callback);
    let stack = Supervisor::builder(&rt)
        .service("slow", service, &[])
        .build()
        .unwrap();
    mock.block_on(async { stack.start().await.unwrap() })
        .unwrap();
    (starts, stack)
}

#[test]
fn a_strategy_that_never_waits_does_not_starve_other_tasks() {
    let mock = MockRuntime::new();
    let rt = mock.runtime();
    let runs = Arc::new(AtomicU32::new(0));
    // Run 10 spawns another task; it must get a turn before the spin ends.
    let observed = Arc::new(AtomicU32::new(u32::MAX));
    let (counter, at_other, spawner) = (runs.clone(), observed.clone(), rt.clone());
    let service = RecurringService::new(
        "spin",
        |state: RecurringState| async move {
            if state.runs < 1000 {
                Strategy::Run(Duration::ZERO)
            } else {
                Strategy::Stop
            }
        },
        move || {
            let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
            if n == 10 {
                let (at_other, counter) = (at_other.clone(), counter.clone());
                spawner
                    .spawn(async move {
                        at_other.store(counter.load(Ordering::SeqCst), Ordering::SeqCst)
                    })
                    .unwrap()
                    .detach();
            }
            async { Ok::<(), BoxError>(()) }
        },
    );
    let stack = Supervisor::builder(&rt)
        .service("spin", service, &[])
        .build()
        .unwrap();
    mock.block_on(async { stack.start().await.unwrap() })
        .unwrap();
    mock.run_until_stalled().unwrap();
    assert_eq!(runs.load(Ordering::SeqCst), 1000);
    let at = observed.load(Ordering::SeqCst);
    assert!(
        (10..20).contains(&at),
        "the other task ran soon, during the spin: {at}"
    );
    mock.block_on(async { stack.stop().await }).unwrap();
}

/// Lets a test keep its own `Arc` to the service it registers.
struct ServiceHandle(Arc<RecurringService>);

impl Service for ServiceHandle {
    fn start(self: Arc<Self>, ctx: ServiceContext) -> ServiceFuture {
        self.0.clone().start(ctx)
    }
    fn stop(self: Arc<Self>, ctx: StopContext) -> ServiceFuture {
        self.0.clone().stop(ctx)
    }
}
