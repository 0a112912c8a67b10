//! The one driver: runs attempts of an operation through the layers of a
//! stack, turning each layer's decision into a wait, a refusal or a
//! result. The policies decide (fed `now`); this file only waits and
//! wires.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use super::error::{AsDynError, AttemptTimedOut, CallError, CallErrorKind, Layer, View, view};
use crate::breaker::CircuitBreaker;
use crate::decision::{Decision, Reason};
use crate::error::BoxError;
use crate::limit::{Acquire, Group, Limiter, Permit};
use crate::retry::{Retry, RetryState};
use crate::rt::{Runtime, Sleep, instant_after};

/// The layers of one call, borrowed (so a call allocates nothing for
/// them).
#[derive(Clone, Copy)]
pub(crate) struct Layers<'a> {
    pub(crate) groups: &'a [Group],
    pub(crate) breaker: Option<&'a CircuitBreaker>,
    pub(crate) retry: Option<&'a Retry>,
    pub(crate) attempt_timeout: Option<Duration>,
    pub(crate) deadline: Option<Duration>,
}

impl<'a> Layers<'a> {
    /// Only retry rules (what `Retry::call` runs).
    pub(crate) fn retry_only(retry: &'a Retry) -> Self {
        Layers {
            groups: &[],
            breaker: None,
            retry: Some(retry),
            attempt_timeout: None,
            deadline: None,
        }
    }
}

/// How one attempt failed.
enum Failure<E> {
    /// The operation's own error.
    Op(E),
    /// It ran past the per-attempt timeout.
    TimedOut(AttemptTimedOut),
    /// A layer refused it; it did not run.
    Refused { layer: Layer, error: BoxError },
}

impl<E> Failure<E> {
    fn as_error(&self, view: View<E>) -> &(dyn std::error::Error + 'static) {
        match self {
            Failure::Op(e) => view(e),
            Failure::TimedOut(t) => t,
            Failure::Refused { error, .. } => &**error,
        }
    }

    fn into_call_error(self, attempts: u32, reason: Reason, view: View<E>) -> CallError<E> {
        let kind = match self {
            Failure::Op(error) => CallErrorKind::Failed {
                error,
                attempts,
                reason,
            },
            Failure::TimedOut(t) => CallErrorKind::TimedOut {
                limit: t.limit,
                attempts,
                reason,
            },
            Failure::Refused { layer, error } => CallErrorKind::Refused {
                layer,
                error,
                attempts,
            },
        };
        CallError::new(kind, view)
    }
}

/// Runs `op` (a fresh attempt per call) through `layers`. Not an `async
/// fn`: the driver's future is returned as it is, without a wrapper state
/// machine to move it into.
pub(crate) fn run<'a, T, E, M, F, Fut>(
    layers: Layers<'a>,
    runtime: &'a Runtime,
    mut op: F,
) -> impl Future<Output = Result<T, CallError<E>>> + 'a
where
    F: FnMut() -> Fut + 'a,
    Fut: Future<Output = Result<T, E>> + 'a,
    E: AsDynError<M>,
    T: 'a,
    M: 'a,
{
    run_attempts(layers, runtime, move || Some(op()))
}

/// The driver. `next` makes the next attempt's future, or `None` when no
/// further attempt can be made (then the last failure is final).
///
/// Per attempt, in order: wait for a slot in every group (all or none) →
/// ask the breaker → make and run the attempt, cut at the per-attempt
/// timeout → report the outcome to the breaker → give the slots back. On
/// a failure the retry rules decide: wait until an instant, or give up.
/// The deadline bounds all of it, waits included.
///
/// Not an `async fn`: an `async fn` keeps its arguments beside the copies
/// its body works on (112 bytes more in every call's future); the block
/// below captures them once.
#[allow(
    clippy::manual_async_fn,
    reason = "an async fn would store its arguments twice (see above)"
)]
pub(crate) fn run_attempts<'a, T, E, M, F, Fut>(
    layers: Layers<'a>,
    runtime: &'a Runtime,
    mut next: F,
) -> impl Future<Output = Result<T, CallError<E>>> + 'a
where
    F: FnMut() -> Option<Fut> + 'a,
    Fut: Future<Output = Result<T, E>> + 'a,
    E: AsDynError<M>,
    T: 'a,
    M: 'a,
{
    async move {
        let view = view::<E, M>();
        let deadline_at = layers.deadline.map(|d| instant_after(runtime.now(), d));
        let deadline_passed = |attempts, last: Option<Box<CallError<E>>>| {
            CallError::new(
                CallErrorKind::DeadlineExceeded {
                    deadline: layers.deadline.unwrap_or_default(),
                    attempts,
                    last,
                },
                view,
            )
        };
        if let Some(budget) = layers.retry.and_then(Retry::retry_budget) {
            budget.deposit(runtime.now());
        }
        // Boxed, like `last`: made only at the first failure.
        let mut state: Option<Box<RetryState<'_>>> = None;
        let mut attempts = 0u32;
        // Boxed: rarely set, and kept small in every call's future.
        let mut last: Option<Box<CallError<E>>> = None;
        loop {
            let held = match (deadline_at, layers.groups) {
                // The common cases without a deadline: no group, or one local
                // group, awaited in place. The others are boxed, so that their
                // larger futures do not make every call's future larger.
                (None, []) => Ok(Held::None),
                (None, [Group::Local(one)]) => Ok(Held::One(one.acquire().await)),
                (None, groups) => Box::pin(acquire(groups)).await,
                (Some(at), groups) => match Box::pin(runtime.timeout_at(at, acquire(groups))).await
                {
                    Ok(held) => held,
                    Err(_) => return Err(deadline_passed(attempts, last)),
                },
            };
            // The slots came, but perhaps after the deadline (a late wake-up):
            // an attempt must not start past it.
            if deadline_at.is_some_and(|d| runtime.now() >= d) {
                drop(held);
                return Err(deadline_passed(attempts, last));
            }
            attempts += 1;
            let failure = match held {
                Err(refused) => refused,
                Ok(permits) => {
                    let outcome: Result<T, Failure<E>> = 'attempt: {
                        // A guard: an attempt dropped mid-call (the stack
                        // cancelled) is abandoned, not lost from the counts.
                        let admitted = match layers.breaker {
                            None => None,
                            Some(breaker) => match breaker.enter() {
                                Ok(guard) => Some(guard),
                                Err(open) => {
                                    break 'attempt Err(Failure::Refused {
                                        layer: Layer::Breaker(open.name.clone()),
                                        error: Box::new(open),
                                    });
                                }
                            },
                        };
                        let Some(fut) = next() else {
                            return Err(match last {
                                Some(last) => *last,
                                None => deadline_passed(attempts - 1, None),
                            });
                        };
                        let limit_at = layers
                            .attempt_timeout
                            .map(|t| instant_after(runtime.now(), t));
                        let cut_at = match (limit_at, deadline_at) {
                            (Some(a), Some(d)) => Some(a.min(d)),
                            (a, d) => a.or(d),
                        };
                        let outcome = CutAt {
                            fut,
                            sleep: cut_at.map(|at| runtime.sleep_until(at)),
                        }
                        .await;
                        let result = match outcome {
                            Some(Ok(value)) => Ok(value),
                            Some(Err(error)) => Err(Failure::Op(error)),
                            None if cut_at == deadline_at => {
                                // Cut by the deadline: still a call that hung,
                                // for the breaker.
                                if let Some(guard) = admitted {
                                    let cut = AttemptTimedOut {
                                        limit: layers.deadline.unwrap_or_default(),
                                    };
                                    guard.failure(&cut);
                                }
                                return Err(deadline_passed(attempts, last));
                            }
                            None => Err(Failure::TimedOut(AttemptTimedOut {
                                limit: layers.attempt_timeout.unwrap_or_default(),
                            })),
                        };
                        if let Some(guard) = admitted {
                            match &result {
                                Ok(_) => guard.success(),
                                Err(failure) => guard.failure(failure.as_error(view)),
                            }
                        }
                        result
                    };
                    drop(permits);
                    match outcome {
                        Ok(value) => return Ok(value),
                        Err(failure) => failure,
                    }
                }
            };
            let Some(retry) = layers.retry else {
                return Err(failure.into_call_error(attempts, Reason::NoRuleMatches, view));
            };
            let state = state.get_or_insert_with(|| Box::new(retry.start(runtime.rng().clone())));
            let now = runtime.now();
            let decision = match retry.retry_budget() {
                Some(budget) => {
                    budget.with(|b| state.on_error(now, failure.as_error(view), Some(b)))
                }
                None => state.on_error(now, failure.as_error(view), None),
            };
            retry.count(&decision);
            let (until, retrying) = match decision {
                Decision::WaitUntil(refusal) => (refusal.until.unwrap_or(now), refusal.reason),
                Decision::Proceed => (now, Reason::NoRuleMatches),
                Decision::GiveUp(reason) => {
                    tracing::debug!(error = %failure.as_error(view), attempts, ?reason, "call failed; not retrying");
                    return Err(failure.into_call_error(attempts, reason, view));
                }
            };
            if deadline_at.is_some_and(|d| until >= d) {
                // The wait would end at or past the deadline: no time is left
                // for another attempt, so report now rather than sleep for
                // nothing.
                let failed = failure.into_call_error(attempts, Reason::Deadline, view);
                return Err(deadline_passed(attempts, Some(Box::new(failed))));
            }
            let wait = until.saturating_duration_since(now);
            if let Reason::Retrying { rule, remaining } = retrying {
                tracing::warn!(
                    error = %failure.as_error(view),
                    attempt = attempts,
                    ?wait,
                    rule,
                    remaining = remaining.map_or_else(|| "unlimited".to_owned(), |n| n.to_string()),
                    "call failed; retrying"
                );
            }
            last = Some(Box::new(failure.into_call_error(attempts, retrying, view)));
            if until > now {
                runtime.sleep_until(until).await;
            }
        }
    }
}

/// An attempt, cut short at an instant when there is one: `None` then.
#[pin_project::pin_project]
struct CutAt<F> {
    #[pin]
    fut: F,
    sleep: Option<Sleep>,
}

impl<F: Future> Future for CutAt<F> {
    type Output = Option<F::Output>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(value) = this.fut.poll(cx) {
            return Poll::Ready(Some(value));
        }
        match this.sleep {
            Some(sleep) => Pin::new(sleep).poll(cx).map(|()| None),
            None => Poll::Pending,
        }
    }
}

/// The slots of one attempt, given back when dropped (the permits are
/// only held, never read).
#[allow(dead_code, reason = "the permits are held for their drop")]
enum Held {
    /// No group.
    None,
    /// One local group's permit.
    One(Permit),
    /// A permit over the local groups (taken all or none), then one per
    /// other limiter, in the stack's order.
    Many(Permit, Vec<Permit>),
}

/// Waits for a slot in every group.
async fn acquire<E>(groups: &[Group]) -> Result<Held, Failure<E>> {
    let local = match groups {
        [] => Permit::none(),
        [Group::Local(one)] => one.acquire().await,
        _ => {
            let inners: Vec<_> = groups
                .iter()
                .filter_map(Group::as_local)
                .map(|g| g.inner.clone())
                .collect();
            match inners.len() {
                0 => Permit::none(),
                _ => Acquire::new(inners).await,
            }
        }
    };
    // Limiters of other kinds, one at a time: in one order (by address)
    // for every call, so two calls naming the same ones in different
    // orders cannot each hold one and wait for the other; each once.
    let mut limiters: Vec<&Arc<dyn Limiter>> = groups
        .iter()
        .filter_map(|g| match g {
            Group::Shared(limiter) => Some(limiter),
            Group::Local(_) => None,
        })
        .collect();
    limiters.sort_by_key(|l| Arc::as_ptr(l).cast::<()>() as usize);
    limiters.dedup_by_key(|l| Arc::as_ptr(l).cast::<()>() as usize);
    let mut shared = Vec::new();
    for limiter in limiters {
        {
            match limiter.acquire().await {
                Ok(permit) => shared.push(permit),
                Err(error) => {
                    return Err(Failure::Refused {
                        layer: Layer::Group(limiter.name().into()),
                        error: Box::new(error),
                    });
                }
            }
        }
    }
    Ok(Held::Many(local, shared))
}
