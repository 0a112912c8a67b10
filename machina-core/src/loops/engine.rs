//! The task behind a [`Loop`] run: waits for each iteration's start on
//! the schedule, runs the body, retries handled errors after a backoff,
//! reacts to stop, cancel and interval changes, then runs the hooks that
//! end the run.

use std::any::Any;
use std::future::Future;
use std::ops::ControlFlow;
use std::panic::AssertUnwindSafe;
use std::pin::pin;
use std::sync::Arc;
use std::time::Instant;

use futures::FutureExt;
use futures::future::{Either, select};

use super::cadence::{Cadence, Next, RunOutcome};
use super::kinds::ReconnectBackoff;
use super::state::{CANCEL, Control, ControlWait, LoopState, Pulse, STOP, Watch};
use super::{Loop, LoopEnd, LoopPanicked, SharedError};
use crate::error::BoxError;
use crate::rt::{Sleep, panic_message};

/// The first of two futures to finish; the other is dropped.
async fn race<A: Future, B: Future>(a: A, b: B) -> Either<A::Output, B::Output> {
    match select(pin!(a), pin!(b)).await {
        Either::Left((a, _)) => Either::Left(a),
        Either::Right((b, _)) => Either::Right(b),
    }
}

/// Marks the run finished even if its task is dropped before the end
/// (executor shutdown), so the loop never looks running forever.
struct FinishGuard {
    lp: Loop,
    generation: u64,
}

impl Drop for FinishGuard {
    fn drop(&mut self) {
        self.lp.finish(self.generation);
    }
}

impl Loop {
    fn control(&self, watch: Watch) -> ControlWait<'_> {
        ControlWait {
            pulse: &self.shared.pulse,
            watch,
        }
    }

    fn panicked(&self, what: &'static str, payload: &(dyn Any + Send)) -> SharedError {
        Arc::new(LoopPanicked {
            what,
            name: self.shared.name.clone(),
            message: panic_message(payload),
        })
    }
}

const CANCEL_ONLY: Watch = Watch {
    stop: false,
    interval: false,
};
const STOP_OR_CANCEL: Watch = Watch {
    stop: true,
    interval: false,
};
const ANY_CONTROL: Watch = Watch {
    stop: true,
    interval: true,
};

pub(super) async fn run(lp: Loop, generation: u64) -> Result<LoopEnd, SharedError> {
    let _guard = FinishGuard {
        lp: lp.clone(),
        generation,
    };
    let outcome = drive(&lp).await;
    if let Err(error) = &outcome {
        {
            let mut state = lp.state();
            state.failed = true;
            state.stats.failed_runs += 1;
        }
        match &lp.shared.on_error {
            Some(hook) => {
                let hook = AssertUnwindSafe(hook(lp.clone(), error.clone())).catch_unwind();
                if hook.await.is_err() {
                    tracing::error!(r#loop = %lp.name(), %error, "on_error hook of a loop panicked");
                }
            }
            None => tracing::error!(r#loop = %lp.name(), %error, "loop ended with an error"),
        }
    }
    if let Some(hook) = &lp.shared.after_loop
        && AssertUnwindSafe(hook(lp.clone()))
            .catch_unwind()
            .await
            .is_err()
    {
        tracing::error!(r#loop = %lp.name(), "after_loop hook of a loop panicked");
    }
    outcome
}

/// Waits until `at` (yielding once if it has come already, so that a loop
/// that never waits cannot starve the other tasks), or until a control
/// request that `watch` covers. One timer serves the whole run.
async fn wait_until(
    lp: &Loop,
    sleeper: &mut Option<Sleep>,
    at: Instant,
    watch: Watch,
) -> Option<Control> {
    let rt = lp.runtime();
    let waited = if at <= rt.now() {
        race(crate::rt::yield_now(), lp.control(watch)).await
    } else {
        let sleep = match sleeper.as_mut() {
            Some(sleep) => {
                sleep.reset(at);
                sleep
            }
            None => sleeper.insert(rt.sleep_until(at)),
        };
        race(sleep, lp.control(watch)).await
    };
    match waited {
        Either::Left(()) => None,
        Either::Right(control) => Some(control),
    }
}

/// Publishes that the next iteration is due `at`, unless a stop was asked
/// for (then the run ends: `Break`).
fn publish_next(state: &mut LoopState, pulse: &Pulse, at: Instant) -> ControlFlow<()> {
    let control = pulse.control();
    if control & STOP != 0 {
        return ControlFlow::Break(());
    }
    if control & CANCEL == 0 {
        state.next_iteration = Some(at);
    }
    ControlFlow::Continue(())
}

/// The run: `before_loop`, then each iteration when the [`Cadence`] says
/// it is due, until it says the run is over or a control request ends it.
async fn drive(lp: &Loop) -> Result<LoopEnd, SharedError> {
    let rt = lp.runtime().clone();
    if let Some(hook) = lp.shared.before_loop.clone() {
        match race(
            AssertUnwindSafe(hook(lp.clone())).catch_unwind(),
            lp.control(CANCEL_ONLY),
        )
        .await
        {
            Either::Left(Ok(())) => {}
            Either::Left(Err(panic)) => return Err(lp.panicked("before_loop", &*panic)),
            Either::Right(_) => return Ok(LoopEnd::Cancelled),
        }
    }
    let (count, backoff) = {
        let state = lp.state();
        (
            state.count,
            ReconnectBackoff::new(state.reconnect_base, rt.rng().clone()),
        )
    };
    let (mut cadence, mut next) = Cadence::start(
        &lp.schedule(),
        count,
        backoff,
        rt.lateness_tolerance(),
        rt.now(),
        || rt.calendar_now(),
    )
    .map_err(|e| Arc::new(e) as SharedError)?;
    let mut sleeper: Option<Sleep> = None;
    // Whether the last iteration's bookkeeping already published `next`
    // (one lock section instead of two between iterations).
    let mut published = false;
    loop {
        let Next::At(at) = next else {
            return Ok(LoopEnd::Completed);
        };
        // One look at the state: a stop ends the run; else publish when
        // the next iteration is due.
        if !std::mem::take(&mut published)
            && publish_next(&mut lp.state(), &lp.shared.pulse, at).is_break()
        {
            return Ok(LoopEnd::Stopped);
        }
        // A retry's wait ignores interval changes (they apply to the
        // schedule, which a retry is not on).
        let watch = if cadence.is_retrying() {
            STOP_OR_CANCEL
        } else {
            ANY_CONTROL
        };
        match wait_until(lp, &mut sleeper, at, watch).await {
            None => {}
            Some(Control::Stop) => return Ok(LoopEnd::Stopped),
            Some(Control::Cancel) => return Ok(LoopEnd::Cancelled),
            Some(Control::IntervalChanged) => {
                let interval = lp.schedule().interval();
                if let Some(at) = cadence
                    .change_interval(interval)
                    .map_err(|e| Arc::new(e) as SharedError)?
                {
                    next = Next::At(at);
                }
                continue;
            }
        }
        let start = rt.now();
        let due = cadence.fall_due(start);
        // A stop or cancel may have come while the iteration fell due (or
        // right after start): it wins over starting the body.
        {
            let mut state = lp.state();
            let pulse = &lp.shared.pulse;
            let control = pulse.control();
            if control & CANCEL != 0 {
                return Ok(LoopEnd::Cancelled);
            }
            if control & STOP != 0 {
                return Ok(LoopEnd::Stopped);
            }
            state.next_iteration = cadence.next_due();
            pulse.set_current_due(due.scheduled);
            if let Some(late) = due.lateness {
                state.stats.record_lateness(late);
            }
        }
        let body = AssertUnwindSafe((lp.shared.body)(lp.clone())).catch_unwind();
        let result: Result<(), BoxError> = match race(body, lp.control(CANCEL_ONLY)).await {
            Either::Left(Ok(result)) => result,
            Either::Left(Err(panic)) => return Err(lp.panicked("body", &*panic)),
            Either::Right(_) => return Ok(LoopEnd::Cancelled),
        };
        let end = rt.now();
        // One lock section for the iteration's bookkeeping — for an
        // error, whether it is of a handled kind (else it ends the run) —
        // and for publishing when the next iteration is due.
        let handled = {
            let mut state = lp.state();
            state.previous_execution_time = end - start;
            let (outcome, handled) = match result {
                Ok(()) => {
                    lp.shared.pulse.iteration_done();
                    state.stats.iterations += 1;
                    (RunOutcome::Succeeded, None)
                }
                Err(error) if state.reconnect && state.kinds.matches(&*error) => {
                    state.stats.retried_errors += 1;
                    (RunOutcome::Retry, Some(error))
                }
                Err(error) => return Err(SharedError::from(error)),
            };
            next = cadence.finish(outcome, end, || rt.calendar_now());
            if let Next::At(at) = next {
                if publish_next(&mut state, &lp.shared.pulse, at).is_break() {
                    return Ok(LoopEnd::Stopped);
                }
                published = true;
            }
            handled
        };
        if let (Some(error), Next::At(at)) = (handled, next) {
            let delay = at.saturating_duration_since(end);
            tracing::warn!(r#loop = %lp.name(), %error, ?delay, "loop iteration failed with a handled error; retrying it");
        }
    }
}
