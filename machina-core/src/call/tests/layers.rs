//! Each layer in a stack, at exact instants: what the breaker refuses and
//! which rules retry a refusal, the deadline around group waits and retry
//! waits, the attempt timeout as a retryable failure the breaker counts, a
//! dropped call giving its slots back, and a limiter of another kind as a
//! group layer.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

#[allow(unused_imports, reason = "each area uses part of the shared prelude")]
use super::*;
use crate::breaker::{CircuitBreaker, CircuitOpen, CircuitState};
use crate::call::{CallErrorKind, Layer};
use crate::decision::Reason;
use crate::error::BoxError;
use crate::limit::{Lease, LimitFuture, Limiter, LimiterError, Permit};

fn tripped_breaker(rt: &Runtime) -> CircuitBreaker {
    let breaker = CircuitBreaker::builder("api")
        .min_calls(1)
        .broken_time(secs(5))
        .build(rt)
        .unwrap();
    breaker.enter().unwrap().failure(&DiskError);
    breaker
}

/// An operation that counts its runs and fails with `http 503`.
fn counted_failure(runs: &AtomicU32) -> impl FnMut() -> std::future::Ready<Result<(), BoxError>> {
    move || {
        runs.fetch_add(1, Ordering::SeqCst);
        std::future::ready(Err(http(503)))
    }
}

#[test]
fn a_refused_attempt_does_not_run_and_a_catch_all_rule_does_not_retry_it() {
    let mock = MockRuntime::new();
    let rt = mock.runtime();
    let stack = CallStack::new()
        .breaker(tripped_breaker(&rt))
        .retry(Retry::new().rule(Rule::fixed(secs(1)).retries(3)));
    let runs = AtomicU32::new(0);
    let err = mock
        .block_on(stack.run(&rt, counted_failure(&runs)))
        .unwrap()
        .unwrap_err();
    assert_eq!(runs.load(Ordering::SeqCst), 0, "the operation never ran");
    assert_eq!(err.layer(), Some(Layer::Breaker("api".into())));
    assert_eq!(err.attempts(), 1);
    let refusal = err.refusal().expect("a refusal");
    assert_eq!(refusal.reason, Reason::Broken);
    assert_eq!(refusal.until, Some(rt.now() + secs(5)));
    let CallErrorKind::Refused { error, .. } = err.kind() else {
        panic!("{err:?}");
    };
    assert_eq!(
        error.downcast_ref::<CircuitOpen>().unwrap().state,
        CircuitState::Broken
    );
    assert_eq!(mock.elapsed(), Duration::ZERO);
}

#[test]
fn a_rule_naming_circuit_open_retries_until_the_breaker_lets_a_probe_through() {
    let mock = MockRuntime::with_seed(7);
    let rt = mock.runtime();
    let stack = CallStack::new()
        .breaker(tripped_breaker(&rt))
        .retry(Retry::new().rule(Rule::fixed(secs(1)).on::<CircuitOpen>().retries(30)));
    let first_run = std::sync::Mutex::new(None);
    let t0 = rt.now();
    let value = mock
        .block_on(stack.run(&rt, || {
            first_run.lock().unwrap().get_or_insert(rt.now() - t0);
            std::future::ready(Ok::<_, BoxError>("probed"))
        }))
        .unwrap()
        .unwrap();
    assert_eq!(value, "probed");
    let first = first_run.lock().unwrap().expect("ran once admitted");
    assert!(first >= secs(5), "not before recovery begins: {first:?}");
    assert_eq!(first.subsec_nanos(), 0, "on a retry's 1 s grid: {first:?}");
}

#[test]
fn the_deadline_bounds_the_wait_for_a_group_and_leaves_nothing_queued() {
    let mock = MockRuntime::new();
    let rt = mock.runtime();
    let api = ConcurrentGroup::new(&rt, "api", Limits::new().max_in_flight(1)).unwrap();
    let held = api.try_acquire().unwrap();
    let stack = CallStack::new().group(api.clone()).deadline(secs(3));
    let runs = AtomicU32::new(0);
    let err = mock
        .block_on(stack.run(&rt, counted_failure(&runs)))
        .unwrap()
        .unwrap_err();
    assert!(
        matches!(
            err.kind(),
            CallErrorKind::DeadlineExceeded {
                attempts: 0,
                last: None,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.layer(), Some(Layer::Deadline));
    assert_eq!(mock.elapsed(), secs(3));
    assert_eq!(runs.load(Ordering::SeqCst), 0);
    assert_eq!((api.in_flight(), api.waiting()), (1, 0));
    drop(held);
}

#[test]
fn a_retry_wait_that_would_reach_the_deadline_is_not_slept() {
    let mock = MockRuntime::new();
    let rt = mock.runtime();
    let stack = CallStack::new()
        .retry(Retry::new().rule(Rule::fixed(secs(5)).retries(3)))
        .deadline(secs(3));
    let runs = AtomicU32::new(0);
    let err = mock
        .block_on(stack.run(&rt, counted_failure(&runs)))
        .unwrap()
        .unwrap_err();
    assert_eq!(mock.elapsed(), Duration::ZERO, "reported at once");
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert_eq!(err.operation_error().map(status_of), Some(503));
    assert!(err.to_string().contains("last error: http 503"), "{err}");
}

#[test]
fn an_attempt_timeout_is_retried_and_counted_by_the_breaker() {
    let mock = MockRuntime::new();
    let rt = mock.runtime();
    let breaker = CircuitBreaker::builder("slow")
        .min_calls(3)
        .error_ratio(1.0)
        .build(&rt)
        .unwrap();
    let stack = CallStack::new()
        .breaker(breaker.clone())
        .retry(Retry::new().rule(Rule::fixed(secs(1)).retries(2)))
        .timeout(ms(100));
    let starts = std::sync::Mutex::new(Vec::new());
    let t0 = rt.now();
    let err = mock
        .block_on(stack.run(&rt, || {
            starts.lock().unwrap().push(rt.now() - t0);
            std::future::pending::<Result<(), BoxError>>()
        }))
        .unwrap()
        .unwrap_err();
    assert!(
        matches!(
            err.kind(),
            CallErrorKind::TimedOut { attempts: 3, reason: Reason::RetriesExhausted, limit }
                if *limit == ms(100)
        ),
        "{err:?}"
    );
    assert_eq!(*starts.lock().unwrap(), [ms(0), ms(1100), ms(2200)]);
    assert_eq!(mock.elapsed(), ms(2300));
    // Three timeouts of three calls: the next call trips it.
    assert!(breaker.enter().is_err());
}

#[test]
fn dropping_a_call_mid_attempt_gives_every_slot_back() {
    let mock = MockRuntime::new();
    let rt = mock.runtime();
    let a = ConcurrentGroup::new(&rt, "a", Limits::new().max_in_flight(1)).unwrap();
    let b = ConcurrentGroup::new(&rt, "b", Limits::new().max_starts(5, secs(10))).unwrap();
    let stack = CallStack::new().groups([a.clone(), b.clone()]);
    let task = {
        let rt2 = rt.clone();
        rt.spawn(async move {
            stack
                .run(&rt2, std::future::pending::<Result<(), BoxError>>)
                .await
        })
        .unwrap()
    };
    mock.advance(secs(1)).unwrap();
    assert_eq!((a.in_flight(), b.in_flight()), (1, 1));
    task.abort();
    mock.run_until_stalled().unwrap();
    assert_eq!((a.in_flight(), b.in_flight()), (0, 0));
    assert_eq!(
        b.starts_in_window(),
        1,
        "the start happened; its token returns on time"
    );
}

/// A limiter kept "elsewhere": one slot, leases counted, and a switch to
/// make it unreachable.
#[derive(Debug, Default)]
struct Remote {
    held: Arc<AtomicU32>,
    released: Arc<AtomicU32>,
    down: std::sync::atomic::AtomicBool,
}

#[derive(Debug)]
struct RemoteLease(Arc<AtomicU32>, Arc<AtomicU32>);

impl Lease for RemoteLease {
    fn release(self: Box<Self>) {
        self.0.fetch_sub(1, Ordering::SeqCst);
        self.1.fetch_add(1, Ordering::SeqCst);
    }
}

impl Limiter for Remote {
    fn name(&self) -> &str {
        "remote"
    }

    fn try_acquire(&self) -> LimitFuture<'_, Result<Permit, LimiterError>> {
        Box::pin(async move {
            if self.down.load(Ordering::SeqCst) {
                return Err(LimiterError::unavailable("remote", "connection refused"));
            }
            self.held.fetch_add(1, Ordering::SeqCst);
            Ok(Permit::from_lease(Box::new(RemoteLease(
                self.held.clone(),
                self.released.clone(),
            ))))
        })
    }

    fn acquire(&self) -> LimitFuture<'_, Result<Permit, LimiterError>> {
        self.try_acquire()
    }
}

#[test]
fn a_limiter_of_another_kind_is_a_group_layer_like_a_local_group() {
    let mock = MockRuntime::new();
    let rt = mock.runtime();
    let remote = Arc::new(Remote::default());
    let local = ConcurrentGroup::new(&rt, "local", Limits::new().max_in_flight(1)).unwrap();
    let shared: Arc<dyn Limiter> = remote.clone();
    let stack = CallStack::new()
        .group(local.clone())
        .group(shared)
        .retry(Retry::new().rule(Rule::fixed(secs(1)).retries(2)));
    let runs = AtomicU32::new(0);
    let err = mock
        .block_on(stack.run(&rt, || {
            runs.fetch_add(1, Ordering::SeqCst);
            assert_eq!(remote.held.load(Ordering::SeqCst), 1, "held while it runs");
            assert_eq!(local.in_flight(), 1);
            std::future::ready(Err::<(), BoxError>(http(503)))
        }))
        .unwrap()
        .unwrap_err();
    assert_eq!(err.attempts(), 3);
    assert_eq!(runs.load(Ordering::SeqCst), 3);
    assert_eq!(
        remote.released.load(Ordering::SeqCst),
        3,
        "released after each attempt"
    );
    assert_eq!(
        (remote.held.load(Ordering::SeqCst), local.in_flight()),
        (0, 0)
    );

    // Unreachable: a refusal by that layer, retried only by a rule naming
    // the limiter's error.
    remote.down.store(true, Ordering::SeqCst);
    runs.store(0, Ordering::SeqCst);
    let err = mock
        .block_on(stack.run(&rt, || {
            runs.fetch_add(1, Ordering::SeqCst);
            std::future::ready(Ok::<(), BoxError>(()))
        }))
        .unwrap()
        .unwrap_err();
    assert_eq!(err.layer(), Some(Layer::Group("remote".into())));
    assert_eq!((err.attempts(), runs.load(Ordering::SeqCst)), (1, 0));
    assert_eq!(local.in_flight(), 0, "the local slot was given back");
    let patient = stack
        .clone()
        .retry(Retry::new().rule(Rule::fixed(secs(1)).on::<LimiterError>().retries(2)));
    let err = mock
        .block_on(patient.run(&rt, || std::future::ready(Ok::<(), BoxError>(()))))
        .unwrap()
        .unwrap_err();
    assert_eq!(err.attempts(), 3);
    assert!(err.to_string().contains("could not decide"), "{err}");
}

#[test]
fn a_stack_without_layers_runs_the_operation_once_as_it_is() {
    let mock = MockRuntime::new();
    let rt = mock.runtime();
    let runs = AtomicU32::new(0);
    let err = mock
        .block_on(CallStack::new().run(&rt, counted_failure(&runs)))
        .unwrap()
        .unwrap_err();
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert!(
        matches!(
            err.kind(),
            CallErrorKind::Failed {
                attempts: 1,
                reason: Reason::NoRuleMatches,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.layer(), None);
    // One future through a stack with retry rules still runs once.
    let stack = CallStack::new().retry(Retry::new().rule(Rule::fixed(secs(1)).retries(5)));
    let err = mock
        .block_on(stack.run_once(&rt, async { Err::<(), _>(DiskError) }))
        .unwrap()
        .unwrap_err();
    assert_eq!(err.attempts(), 1);
    // The typed error comes back typed, and is the error's source.
    let _: &DiskError = err.operation_error().unwrap();
    assert!(std::error::Error::source(&err).unwrap().is::<DiskError>());
}

#[test]
fn a_call_cut_by_the_deadline_counts_as_a_failure_for_the_breaker() {
    let mock = MockRuntime::new();
    let rt = mock.runtime();
    let breaker = CircuitBreaker::builder("hangs")
        .min_calls(1)
        .build(&rt)
        .unwrap();
    let stack = CallStack::new().breaker(breaker.clone()).deadline(secs(2));
    let err = mock
        .block_on(stack.run(&rt, std::future::pending::<Result<(), BoxError>>))
        .unwrap()
        .unwrap_err();
    assert!(
        matches!(
            err.kind(),
            CallErrorKind::DeadlineExceeded { attempts: 1, .. }
        ),
        "{err:?}"
    );
    assert_eq!(mock.elapsed(), secs(2));
    assert!(
        breaker.enter().is_err(),
        "the hung call tripped the breaker"
    );
}

#[test]
fn limiters_of_other_kinds_are_taken_in_one_order_whatever_the_stack_says() {
    // Two stacks name the same two one-slot limiters in opposite orders;
    // their calls overlap. Taken in the stacks' orders, each could hold
    // one and wait for the other for ever.
    let mock = MockRuntime::new();
    let rt = mock.runtime();
    let x: Arc<dyn Limiter> =
        Arc::new(ConcurrentGroup::new(&rt, "x", Limits::new().max_in_flight(1)).unwrap());
    let y: Arc<dyn Limiter> =
        Arc::new(ConcurrentGroup::new(&rt, "y", Limits::new().max_in_flight(1)).unwrap());
    let xy = CallStack::new().group(x.clone()).group(y.clone());
    let yx = CallStack::new().group(y).group(x);
    let calls: Vec<_> = [xy, yx]
        .into_iter()
        .map(|stack| {
            let rt2 = rt.clone();
            rt.spawn(async move {
                let t0 = rt2.now();
                stack
                    .run(&rt2, || {
                        let rt3 = rt2.clone();
                        async move {
                            rt3.sleep(secs(1)).await;
                            Ok::<_, BoxError>(())
                        }
                    })
                    .await
                    .unwrap();
                rt2.now() - t0
            })
            .unwrap()
        })
        .collect();
    let ends = mock
        .block_on(async {
            let mut ends = Vec::new();
            for call in calls {
                ends.push(call.await.unwrap());
            }
            ends
        })
        .unwrap();
    assert_eq!(ends, [secs(1), secs(2)]);
}
