//! [`Retry`]: an ordered set of rules, and [`RetryState`], the pure
//! per-call bookkeeping that turns each failure into a decision.

use std::error::Error;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use super::budget::{BudgetState, RetryBudget};
use super::rule::Rule;
use crate::decision::{Decision, Reason, Refusal};
use crate::error::ErrorMatcher;
use crate::rt::RuntimeRng;
use crate::waits::Waits;

/// Retry rules for a call (exmachina `Retry`): each failure is charged to
/// the **first** rule that matches it and still has retries; the call gives
/// up when none does. So the total number of attempts is at most 1 + the
/// sum of the retries of the rules that matched. Counters start fresh for
/// every top-level call.
///
/// # Examples
///
/// ```
/// use machina_core::decision::{Decision, Reason, Refusal};
/// use machina_core::retry::{Retry, Rule};
/// use machina_core::rt::RuntimeRng;
/// use std::time::{Duration, Instant};
///
/// let retry = Retry::new()
///     .rule(Rule::fixed(Duration::from_secs(1)).on::<std::io::Error>().retries(2))
///     .rule(Rule::fibonacci().unlimited());
/// let mut state = retry.start(RuntimeRng::from_seed(0));
/// let io = std::io::Error::other("reset");
/// let now = Instant::now();
/// let retrying = |rule, remaining| Decision::WaitUntil(Refusal::new(
///     Reason::Retrying { rule, remaining },
///     Some(now + Duration::from_secs(1)),
/// ));
/// assert_eq!(state.on_error(now, &io, None), retrying(0, Some(1)));
/// assert_eq!(state.on_error(now, &io, None), retrying(0, Some(0)));
/// // Rule 0 is spent: the next io error falls through to the catch-all.
/// assert_eq!(state.on_error(now, &io, None), retrying(1, None));
/// ```
#[derive(Clone, Default)]
pub struct Retry {
    rules: Vec<Rule>,
    budget: Option<RetryBudget>,
    giveup: Option<ErrorMatcher>,
    counters: Arc<Counters>,
}

#[derive(Debug, Default)]
struct Counters {
    retries: AtomicU64,
    given_up: AtomicU64,
}

/// Counters of a [`Retry`] (shared by its clones).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct RetryStats {
    /// Retries granted.
    pub retries: u64,
    /// Failures not retried (no rule, rules spent, or budget spent).
    pub given_up: u64,
}

impl Retry {
    /// No rules yet: such a `Retry` never retries.
    pub fn new() -> Self {
        Retry::default()
    }

    /// Adds a rule; rules are tried in the order they were added.
    ///
    /// # Examples
    ///
    /// A `Retry` without rules never retries; each rule grants its own
    /// retries, to the errors it matches:
    ///
    /// ```
    /// use machina_core::call::CallErrorKind;
    /// use machina_core::decision::Reason;
    /// use machina_core::retry::{Retry, Rule};
    /// use machina_core::testing::MockRuntime;
    /// use std::time::Duration;
    ///
    /// let mock = MockRuntime::new();
    /// let rt = mock.runtime();
    /// let down = || async { Err::<(), _>(std::io::Error::other("down")) };
    ///
    /// let none = Retry::new();
    /// let err = mock.block_on(none.call(&rt, down))?.unwrap_err();
    /// assert!(matches!(err.kind(), CallErrorKind::Failed { attempts: 1, reason: Reason::NoRuleMatches, .. }));
    ///
    /// let two_rules = Retry::new()
    ///     .rule(Rule::fixed(Duration::from_secs(1)).on::<std::io::Error>().retries(2))
    ///     .rule(Rule::fixed(Duration::from_secs(10)).retries(1));
    /// let err = mock.block_on(two_rules.call(&rt, down))?.unwrap_err();
    /// // 2 retries under the first rule, then 1 under the catch-all.
    /// assert!(matches!(err.kind(), CallErrorKind::Failed { attempts: 4, reason: Reason::RetriesExhausted, .. }));
    /// assert_eq!(mock.elapsed(), Duration::from_secs(1 + 1 + 10));
    /// # Ok::<(), machina_core::BoxError>(())
    /// ```
    pub fn rule(mut self, rule: Rule) -> Self {
        self.rules.push(rule);
        self
    }

    /// Limits retries across all calls sharing `budget`; see
    /// [`RetryBudget`].
    ///
    /// # Examples
    ///
    /// ```
    /// use machina_core::call::CallErrorKind;
    /// use machina_core::decision::Reason;
    /// use machina_core::retry::{Retry, RetryBudget, Rule};
    /// use machina_core::testing::MockRuntime;
    /// use std::time::Duration;
    ///
    /// // Retries may be 10% of the calls of the last 10 s, plus one.
    /// let budget = RetryBudget::new(0.1, Duration::from_secs(10), 1)?;
    /// let retry = Retry::new().rule(Rule::fixed(Duration::from_millis(10)).retries(1)).budget(budget);
    /// let mock = MockRuntime::new();
    /// let rt = mock.runtime();
    /// let down = || async { Err::<(), _>(std::io::Error::other("down")) };
    /// let mut reasons = Vec::new();
    /// for _ in 0..3 {
    ///     let err = mock.block_on(retry.call(&rt, down))?.unwrap_err();
    ///     if let CallErrorKind::Failed { reason, .. } = err.kind() {
    ///         reasons.push(*reason);
    ///     }
    /// }
    /// // The first call spends the budget; the next two are not retried.
    /// assert_eq!(reasons, [Reason::RetriesExhausted, Reason::BudgetExhausted, Reason::BudgetExhausted]);
    /// assert_eq!((retry.stats().retries, retry.stats().given_up), (1, 3));
    /// # Ok::<(), machina_core::BoxError>(())
    /// ```
    pub fn budget(mut self, budget: RetryBudget) -> Self {
        self.budget = Some(budget);
        self
    }

    /// Stops at once on errors `giveup` matches, instead of the retry a
    /// rule would grant (aiomisc `giveup`). It is asked only when a retry
    /// would actually be made: never after the last allowed attempt.
    ///
    /// # Examples
    ///
    /// ```
    /// use machina_core::call::CallErrorKind;
    /// use machina_core::decision::Reason;
    /// use machina_core::error::ErrorMatcher;
    /// use machina_core::retry::{Retry, Rule};
    /// use machina_core::testing::MockRuntime;
    /// use std::io::{Error, ErrorKind};
    /// use std::sync::Mutex;
    /// use std::time::Duration;
    ///
    /// let retry = Retry::new()
    ///     .rule(Rule::fixed(Duration::from_millis(100)).unlimited())
    ///     .giveup(ErrorMatcher::none().or_is(|e: &Error| e.kind() == ErrorKind::PermissionDenied));
    /// let mock = MockRuntime::new();
    /// let rt = mock.runtime();
    /// let replies = Mutex::new(vec![ErrorKind::PermissionDenied, ErrorKind::ConnectionReset]);
    /// let next = || async { Err::<(), _>(Error::from(replies.lock().unwrap().pop().unwrap())) };
    /// let err = mock.block_on(retry.call(&rt, next))?.unwrap_err();
    /// // The reset was retried; the refusal of access was not.
    /// assert!(matches!(err.kind(), CallErrorKind::Failed { attempts: 2, reason: Reason::GiveUpPredicate, .. }));
    /// assert_eq!(mock.elapsed(), Duration::from_millis(100));
    /// # Ok::<(), machina_core::BoxError>(())
    /// ```
    pub fn giveup(mut self, giveup: ErrorMatcher) -> Self {
        self.giveup = Some(giveup);
        self
    }

    /// The counters, over every call made with this `Retry` or a clone.
    pub fn stats(&self) -> RetryStats {
        RetryStats {
            retries: self.counters.retries.load(Ordering::Relaxed),
            given_up: self.counters.given_up.load(Ordering::Relaxed),
        }
    }

    /// The rules, in order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The shared budget, if any.
    pub fn retry_budget(&self) -> Option<&RetryBudget> {
        self.budget.as_ref()
    }

    /// Fresh bookkeeping for one top-level call, drawing jitter from `rng`.
    /// Does not record the call in the budget; see
    /// [`RetryBudget::deposit`].
    pub fn start(&self, rng: RuntimeRng) -> RetryState<'_> {
        RetryState {
            retry: self,
            used: vec![0; self.rules.len()],
            waits: self.rules.iter().map(|r| r.waits(rng.clone())).collect(),
            attempts: 1,
        }
    }

    /// Counts the outcome of a decision in [`stats`](Self::stats).
    pub(crate) fn count(&self, decision: &Decision) {
        let counter = match decision {
            Decision::WaitUntil(_) => &self.counters.retries,
            _ => &self.counters.given_up,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

impl fmt::Debug for Retry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Retry")
            .field("rules", &self.rules)
            .field("budget", &self.budget)
            .field("giveup", &self.giveup)
            .finish()
    }
}

/// The retry bookkeeping of one call: retries used per rule and each
/// rule's position in its wait sequence.
///
/// Pure: fed `now` and the error (and the shared budget's state, which the
/// caller holds), it answers with a [`Decision`] — wait until an instant
/// and try again, or give up — and never sleeps, reads a clock or takes a
/// lock.
#[derive(Debug)]
pub struct RetryState<'a> {
    retry: &'a Retry,
    used: Vec<u32>,
    waits: Vec<Waits>,
    attempts: u32,
}

impl RetryState<'_> {
    /// Decides what to do about `error`, the outcome of the latest attempt,
    /// at `now`, and counts the retry if there is one: the first rule that
    /// matches and has retries left grants it, if `budget` (the state of
    /// the shared [`RetryBudget`], when there is one) allows a retry.
    ///
    /// Returns [`Decision::WaitUntil`] with [`Reason::Retrying`] and the
    /// instant to try again, or [`Decision::GiveUp`] with
    /// [`Reason::NoRuleMatches`], [`Reason::RetriesExhausted`],
    /// [`Reason::GiveUpPredicate`] or [`Reason::BudgetExhausted`].
    pub fn on_error(
        &mut self,
        now: Instant,
        error: &(dyn Error + 'static),
        mut budget: Option<&mut BudgetState>,
    ) -> Decision {
        let mut matched = false;
        for (i, rule) in self.retry.rules.iter().enumerate() {
            if !rule.matches(error) {
                continue;
            }
            matched = true;
            if rule.retries().is_some_and(|max| self.used[i] >= max) {
                continue;
            }
            if self.retry.giveup.as_ref().is_some_and(|g| g.matches(error)) {
                return Decision::GiveUp(Reason::GiveUpPredicate);
            }
            if let Some(budget) = budget.as_deref_mut()
                && !budget.try_withdraw(now)
            {
                return Decision::GiveUp(Reason::BudgetExhausted);
            }
            self.used[i] = self.used[i].saturating_add(1);
            self.attempts = self.attempts.saturating_add(1);
            // The sequence advances even when a hint overrides it, so the
            // next unhinted wait follows on.
            let wait = self.waits[i].next_hinted(rule.hinted_wait(error));
            return Decision::WaitUntil(Refusal::new(
                Reason::Retrying {
                    rule: i,
                    remaining: rule.retries().map(|max| max - self.used[i]),
                },
                Some(crate::rt::instant_after(now, wait)),
            ));
        }
        Decision::GiveUp(if matched {
            Reason::RetriesExhausted
        } else {
            Reason::NoRuleMatches
        })
    }

    /// Attempts started so far: 1 at [`Retry::start`], one more for every
    /// retry granted.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// Retries charged to each rule so far.
    pub fn retries_used(&self) -> &[u32] {
        &self.used
    }
}
