//! [`Retry`]: an ordered set of rules, and [`RetryState`], the pure
//! per-call bookkeeping that turns each failure into a decision.

use std::error::Error;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::budget::RetryBudget;
use super::rule::Rule;
use super::wait::Waits;
use crate::rt::RuntimeRng;

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Decision {
    /// Wait, then try again.
    Retry {
        /// How long to wait.
        wait: Duration,
        /// Index of the rule the failure was charged to.
        rule: usize,
        /// Retries that rule has left after this one (`None` = unlimited).
        remaining: Option<u32>,
    },
    /// Stop and report the error.
    GiveUp(GiveUpReason),
}

/// Why a failure is not retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum GiveUpReason {
    /// No rule matches the error.
    NoRuleMatches,
    /// Every matching rule has used up its retries.
    RetriesExhausted,
    /// The retry budget is spent: too many recent calls were retries.
    BudgetExhausted,
}

/// Retry rules for a call (exmachina `Retry`): each failure is charged to
/// the **first** rule that matches it and still has retries; the call gives
/// up when none does. So the total number of attempts is at most 1 + the
/// sum of the retries of the rules that matched. Counters start fresh for
/// every top-level call.
///
/// # Examples
///
/// ```
/// use machina_core::retry::{Decision, Retry, Rule};
/// use machina_core::rt::RuntimeRng;
/// use std::time::Duration;
///
/// let retry = Retry::new()
///     .rule(Rule::fixed(Duration::from_secs(1)).on::<std::io::Error>().retries(2))
///     .rule(Rule::fibonacci().unlimited());
/// let mut state = retry.start(RuntimeRng::from_seed(0));
/// let io = std::io::Error::other("reset");
/// assert!(matches!(state.on_error(&io), Decision::Retry { rule: 0, .. }));
/// assert!(matches!(state.on_error(&io), Decision::Retry { rule: 0, remaining: Some(0), .. }));
/// // Rule 0 is spent: the next io error falls through to the catch-all.
/// assert!(matches!(state.on_error(&io), Decision::Retry { rule: 1, wait, .. } if wait == Duration::from_secs(1)));
/// ```
#[derive(Clone, Default)]
pub struct Retry {
    rules: Vec<Rule>,
    budget: Option<RetryBudget>,
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
            waits: self
                .rules
                .iter()
                .map(|r| r.wait().waits(rng.clone()))
                .collect(),
            attempts: 1,
        }
    }
}

impl fmt::Debug for Retry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Retry")
            .field("rules", &self.rules)
            .field("budget", &self.budget)
            .finish()
    }
}

/// The retry bookkeeping of one call: retries used per rule and each
/// rule's position in its wait sequence. Pure: it never sleeps.
#[derive(Debug)]
pub struct RetryState<'a> {
    retry: &'a Retry,
    used: Vec<u32>,
    waits: Vec<Waits>,
    attempts: u32,
}

impl RetryState<'_> {
    /// Decides what to do about `error`, the outcome of the latest attempt,
    /// and counts the retry if there is one.
    pub fn on_error(&mut self, error: &(dyn Error + 'static)) -> Decision {
        let mut matched = false;
        for (i, rule) in self.retry.rules.iter().enumerate() {
            if !rule.matches(error) {
                continue;
            }
            matched = true;
            if rule.retries().is_some_and(|max| self.used[i] >= max) {
                continue;
            }
            if let Some(budget) = &self.retry.budget
                && !budget.try_withdraw()
            {
                self.retry.counters.given_up.fetch_add(1, Ordering::Relaxed);
                return Decision::GiveUp(GiveUpReason::BudgetExhausted);
            }
            self.used[i] = self.used[i].saturating_add(1);
            self.retry.counters.retries.fetch_add(1, Ordering::Relaxed);
            self.attempts = self.attempts.saturating_add(1);
            // The sequence advances even when a hint overrides it, so the
            // next unhinted wait follows on.
            let sequenced = self.waits[i].next().unwrap_or_default();
            let mut wait = rule.hinted_wait(error).unwrap_or(sequenced);
            if let Some(cap) = rule.max_wait() {
                wait = wait.min(cap);
            }
            return Decision::Retry {
                wait,
                rule: i,
                remaining: rule.retries().map(|max| max - self.used[i]),
            };
        }
        self.retry.counters.given_up.fetch_add(1, Ordering::Relaxed);
        Decision::GiveUp(if matched {
            GiveUpReason::RetriesExhausted
        } else {
            GiveUpReason::NoRuleMatches
        })
    }

    /// Attempts started so far: 1 at [`Retry::start`], one more for every
    /// `Retry` decision.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// Retries charged to each rule so far.
    pub fn retries_used(&self) -> &[u32] {
        &self.used
    }
}
