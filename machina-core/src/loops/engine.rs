//! The task behind a [`Loop`] run: waits for each iteration's start on
//! the schedule, runs the body, retries handled errors after a backoff,
//! reacts to stop, cancel and interval changes, then runs the hooks that
//! end the run.

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::pin;
use std::sync::Arc;
use std::time::Instant;

use futures::FutureExt;
use futures::future::{Either, select};

use super::kinds::ReconnectBackoff;
use super::state::{Control, ControlWait, Watch};
use super::{Loop, LoopEnd, LoopPanicked, SharedError};
use crate::error::BoxError;
use crate::rt::instant_after;
use crate::rt::{Sleep, panic_message};
use crate::schedule::Schedule;

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
            state: &self.shared.state,
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

    fn set_next_iteration(&self, at: Option<Instant>) {
        let mut state = self.state();
        if !(state.stop_requested || state.cancel_requested) {
            state.next_iteration = at;
        }
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
                    tracing::error!(name = %lp.name(), %error, "on_error hook of a loop panicked");
                }
            }
            None => tracing::error!(name = %lp.name(), %error, "loop ended with an error"),
        }
    }
    if let Some(hook) = &lp.shared.after_loop
        && AssertUnwindSafe(hook(lp.clone()))
            .catch_unwind()
            .await
            .is_err()
    {
        tracing::error!(name = %lp.name(), "after_loop hook of a loop panicked");
    }
    outcome
}

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
    let schedule = lp.schedule();
    let cron = match &schedule {
        Schedule::Cron(cron) => Some(cron.clone()),
        _ => None,
    };
    let mut interval = match schedule {
        Schedule::FixedRate(period, missed) => Some(
            rt.interval(period, missed)
                .map_err(|e| Arc::new(e) as SharedError)?,
        ),
        _ => None,
    };
    let mut due = rt.now();
    let mut sleeper: Option<Sleep> = None;
    let mut last_end: Option<Instant> = None;
    let mut backoff = ReconnectBackoff::new(lp.state().reconnect_base, rt.rng().clone());
    let mut retry_now = false;
    let mut scheduled = due;
    loop {
        // One look at the state: has the run ended, and if not, publish
        // when the next iteration is due.
        {
            let mut state = lp.state();
            if state.count.is_some_and(|count| state.current_loop >= count) {
                return Ok(LoopEnd::Completed);
            }
            if state.stop_requested {
                return Ok(LoopEnd::Stopped);
            }
            if !retry_now && !state.cancel_requested {
                state.next_iteration = Some(interval.as_ref().map_or(due, |iv| iv.next_deadline()));
            }
        }
        if !retry_now {
            let mut first_wait = true;
            loop {
                // A calendar schedule: the next match, on the runtime's
                // calendar clock; a pattern that never matches again ends
                // the run.
                if let Some(cron) = &cron {
                    match cron.wait_from(&rt) {
                        Some(wait) => due = rt.now() + wait,
                        None => return Ok(LoopEnd::Completed),
                    }
                    lp.set_next_iteration(Some(due));
                }
                if !first_wait {
                    let next = interval.as_ref().map_or(due, |iv| iv.next_deadline());
                    lp.set_next_iteration(Some(next));
                }
                first_wait = false;
                let waited = match &mut interval {
                    Some(iv) => match race(iv.tick(), lp.control(ANY_CONTROL)).await {
                        Either::Left(deadline) => {
                            scheduled = deadline;
                            Either::Left(())
                        }
                        Either::Right(control) => Either::Right(control),
                    },
                    None if due <= rt.now() => {
                        // Due already (a zero interval): still give the
                        // other tasks a turn, or a loop that never waits
                        // would starve them.
                        scheduled = due;
                        race(crate::rt::yield_now(), lp.control(ANY_CONTROL)).await
                    }
                    None => {
                        // One timer for the whole run, re-armed each time.
                        scheduled = due;
                        let sleep = match sleeper.as_mut() {
                            Some(sleep) => {
                                sleep.reset(due);
                                sleep
                            }
                            None => sleeper.insert(rt.sleep_until(due)),
                        };
                        race(sleep, lp.control(ANY_CONTROL)).await
                    }
                };
                match waited {
                    Either::Left(()) => break,
                    Either::Right(Control::Stop) => return Ok(LoopEnd::Stopped),
                    Either::Right(Control::Cancel) => return Ok(LoopEnd::Cancelled),
                    Either::Right(Control::IntervalChanged) => {
                        let new = lp.schedule().interval();
                        match &mut interval {
                            Some(iv) => {
                                iv.set_period(new).map_err(|e| Arc::new(e) as SharedError)?
                            }
                            None => {
                                if let Some(end) = last_end {
                                    due = instant_after(end, new);
                                }
                            }
                        }
                    }
                }
            }
        }
        // A stop or cancel may have come while the iteration fell due (or
        // right after start): it wins over starting the body.
        {
            let mut state = lp.state();
            if state.cancel_requested {
                return Ok(LoopEnd::Cancelled);
            }
            if state.stop_requested {
                return Ok(LoopEnd::Stopped);
            }
            state.next_iteration = interval.as_ref().map(|iv| iv.next_deadline());
        }
        let start = rt.now();
        if !retry_now {
            let late = start.saturating_duration_since(scheduled);
            let mut state = lp.state();
            state.stats.lateness_total += late;
            state.stats.lateness_max = state.stats.lateness_max.max(late);
        }
        let body = AssertUnwindSafe((lp.shared.body)(lp.clone())).catch_unwind();
        let result: Result<(), BoxError> = match race(body, lp.control(CANCEL_ONLY)).await {
            Either::Left(Ok(result)) => result,
            Either::Left(Err(panic)) => return Err(lp.panicked("body", &*panic)),
            Either::Right(_) => return Ok(LoopEnd::Cancelled),
        };
        let end = rt.now();
        // One lock section for the iteration's bookkeeping; for an error,
        // whether it is of a handled kind.
        let handled = {
            let mut state = lp.state();
            state.previous_execution_time = end - start;
            match &result {
                Ok(()) => {
                    state.current_loop += 1;
                    state.stats.iterations += 1;
                    due = instant_after(end, state.schedule.interval());
                    true
                }
                Err(error) => state.reconnect && state.kinds.matches(&**error),
            }
        };
        match result {
            Ok(()) => {
                retry_now = false;
                last_end = Some(end);
            }
            Err(error) => {
                if !handled {
                    return Err(SharedError::from(error));
                }
                lp.state().stats.retried_errors += 1;
                let delay = backoff.delay(end);
                tracing::warn!(name = %lp.name(), %error, ?delay, "loop iteration failed with a handled error; retrying it");
                lp.set_next_iteration(Some(end + delay));
                match race(rt.sleep(delay), lp.control(STOP_OR_CANCEL)).await {
                    Either::Left(()) => retry_now = true,
                    Either::Right(Control::Cancel) => return Ok(LoopEnd::Cancelled),
                    Either::Right(_) => return Ok(LoopEnd::Stopped),
                }
            }
        }
    }
}
