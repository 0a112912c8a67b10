//! The one vocabulary every policy answers in: [`Decision`] — go ahead,
//! wait until an instant, or give up, with a [`Reason`].
//!
//! The pure policies — a concurrent group's
//! [`GroupPolicy`](crate::limit::GroupPolicy), the breaker's
//! [`BreakerMachine`](crate::breaker::BreakerMachine) and a call's
//! [`RetryState`](crate::retry::RetryState) — are fed `now` and answer
//! with a `Decision`; the layers of [`call`](crate::call) turn those
//! answers into waits or refusals.
//!
//! A refusal that reaches a caller as an error (an open breaker, a group
//! wait that timed out) carries a [`Refusal`] in its `source()` chain, so
//! any layer can tell "a layer said no, the operation did not run" from
//! the operation's own failure by type.

use std::fmt;
use std::time::Instant;

/// What a policy says about going ahead now.
///
/// # Examples
///
/// ```
/// use machina_core::decision::{Decision, Reason};
/// use machina_core::limit::{GroupPolicy, Limits};
/// use std::time::{Duration, Instant};
///
/// let mut policy = GroupPolicy::new(Limits::new().max_starts(1, Duration::from_secs(1))).unwrap();
/// let t0 = Instant::now();
/// assert_eq!(policy.decide(t0), Decision::Proceed);
/// policy.commit(t0);
/// let Decision::WaitUntil(refusal) = policy.decide(t0) else { panic!() };
/// assert_eq!(refusal.reason, Reason::Window);
/// assert_eq!(refusal.until, Some(t0 + Duration::from_secs(1)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Decision {
    /// Go ahead now.
    Proceed,
    /// Not now: try again at [`Refusal::until`], or, when that is `None`,
    /// once something is given back (a slot freed, a waiter ahead served)
    /// — no clock can tell when.
    WaitUntil(Refusal),
    /// Stop: no later try will go ahead.
    GiveUp(Reason),
}

impl Decision {
    /// Whether the decision is [`Proceed`](Decision::Proceed).
    pub fn is_proceed(&self) -> bool {
        matches!(self, Decision::Proceed)
    }

    /// The decision as a result: `Ok(())` to proceed, else the refusal (a
    /// give-up is a refusal with no instant).
    ///
    /// # Errors
    /// The [`Refusal`] when the decision is not to proceed.
    pub fn into_result(self) -> Result<(), Refusal> {
        match self {
            Decision::Proceed => Ok(()),
            Decision::WaitUntil(refusal) => Err(refusal),
            Decision::GiveUp(reason) => Err(Refusal {
                reason,
                until: None,
            }),
        }
    }
}

/// Why a policy did not say "proceed".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Reason {
    /// Every in-flight slot of a group is held.
    InFlight,
    /// Every start of a group's sliding window is spent.
    Window,
    /// A group's token bucket has no start to give until its next
    /// theoretical arrival time.
    Rate,
    /// Other callers wait for the group first, and are served first.
    Queue,
    /// A limiter could not decide (its store was unreachable, say).
    Unavailable,
    /// The circuit breaker is broken.
    Broken,
    /// The circuit breaker is recovering and did not pick this call.
    Recovering,
    /// A retry rule grants another attempt after a wait.
    Retrying {
        /// Index of the rule the failure was charged to.
        rule: usize,
        /// Retries that rule has left after this one (`None` = unlimited).
        remaining: Option<u32>,
    },
    /// No retry rule matches the error.
    NoRuleMatches,
    /// Every matching retry rule has used up its retries.
    RetriesExhausted,
    /// The retry budget is spent: too many recent calls were retries.
    BudgetExhausted,
    /// A give-up predicate said to stop.
    GiveUpPredicate,
    /// The overall deadline leaves no time for another attempt.
    Deadline,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::InFlight => f.write_str("every in-flight slot is taken"),
            Reason::Window => f.write_str("every start of the current window is spent"),
            Reason::Rate => f.write_str("the rate allows no start yet"),
            Reason::Queue => f.write_str("other callers are waiting first"),
            Reason::Unavailable => f.write_str("the limiter could not decide"),
            Reason::Broken => f.write_str("the circuit breaker is broken"),
            Reason::Recovering => f.write_str("the circuit breaker is recovering"),
            Reason::Retrying { rule, remaining } => match remaining {
                Some(n) => write!(f, "retrying under rule {rule} ({n} retries left)"),
                None => write!(f, "retrying under rule {rule} (unlimited)"),
            },
            Reason::NoRuleMatches => f.write_str("no retry rule matches the error"),
            Reason::RetriesExhausted => f.write_str("every matching retry rule is spent"),
            Reason::BudgetExhausted => f.write_str("the retry budget is spent"),
            Reason::GiveUpPredicate => f.write_str("the giveup predicate said to stop"),
            Reason::Deadline => f.write_str("the deadline leaves no time for another attempt"),
        }
    }
}

/// "Not now": why, and the earliest instant a new try could succeed when
/// a clock can tell (`None` when it depends on a slot being freed or on
/// waiters ahead). This is also what a `Retry-After` answer needs.
///
/// It is an error type too: refusals that reach a caller (an open breaker,
/// a group wait that timed out) carry one in their `source()` chain, which
/// is how a catch-all retry rule knows not to retry them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[error("{reason}")]
pub struct Refusal {
    /// Why.
    pub reason: Reason,
    /// The earliest instant a try could succeed, when known.
    pub until: Option<Instant>,
}

impl Refusal {
    /// A refusal for `reason` until `until`.
    pub fn new(reason: Reason, until: Option<Instant>) -> Self {
        Refusal { reason, until }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_decision_as_a_result() {
        let t = crate::rt::Timer::now(&crate::rt::SystemTimer::new());
        assert_eq!(Decision::Proceed.into_result(), Ok(()));
        assert!(Decision::Proceed.is_proceed());
        let wait = Refusal::new(Reason::Window, Some(t));
        assert_eq!(Decision::WaitUntil(wait).into_result(), Err(wait));
        assert_eq!(
            Decision::GiveUp(Reason::RetriesExhausted).into_result(),
            Err(Refusal::new(Reason::RetriesExhausted, None))
        );
        assert!(!Decision::GiveUp(Reason::Deadline).is_proceed());
    }

    #[test]
    fn reasons_read_as_sentences() {
        assert_eq!(
            Reason::InFlight.to_string(),
            "every in-flight slot is taken"
        );
        assert_eq!(
            Reason::Retrying {
                rule: 1,
                remaining: Some(2)
            }
            .to_string(),
            "retrying under rule 1 (2 retries left)"
        );
        assert_eq!(
            Refusal::new(Reason::Broken, None).to_string(),
            "the circuit breaker is broken"
        );
    }
}
