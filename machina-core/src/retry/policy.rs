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
    pub fn rule(mut self, rule: Rule) -> Self {
        self.rules.push(rule);
        self
    }

    /// Limits retries across all calls sharing `budget`; see
    /// [`RetryBudget`].
    pub fn budget(mut self, budget: RetryBudget) -> Self {
        self.budget = Some(budget);
        self
    }

    /// Stops at once on errors `giveup` matches, instead of the retry a
    /// rule would grant (aiomisc `giveup`). It is asked only when a retry
    /// would actually be made: never after the last allowed attempt.
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
