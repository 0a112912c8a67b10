//! [`RetryBudget`]: at most a share of recent calls may be retries, so a
//! failing dependency is not hammered by every caller retrying at once.

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Why a budget could not be made.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum BudgetError {
    /// The ratio was negative or not a number.
    #[error(
        "invalid retry budget ratio {0}: use a finite number of at least 0 (0.1 = retries may be 10% of calls)"
    )]
    Ratio(f64),
    /// The window was zero.
    #[error("invalid retry budget window: zero; use a window such as 10s")]
    ZeroWindow,
}

/// The pure state of a budget: calls and retries per time bucket.
#[derive(Debug, Clone)]
pub struct BudgetState {
    ratio: f64,
    min_retries: u32,
    bucket: Duration,
    buckets_per_window: u32,
    /// (bucket start, calls, retries), oldest first.
    buckets: VecDeque<(Instant, u64, u64)>,
}

const BUCKETS: u32 = 10;

impl BudgetState {
    /// Retries may be at most `ratio` × the calls of the last `window`, plus
    /// `min_retries` per window so that a quiet service can still retry.
    ///
    /// # Errors
    /// [`BudgetError`] for a negative or NaN ratio or a zero window.
    pub fn new(ratio: f64, window: Duration, min_retries: u32) -> Result<Self, BudgetError> {
        if !(ratio.is_finite() && ratio >= 0.0) {
            return Err(BudgetError::Ratio(ratio));
        }
        if window.is_zero() {
            return Err(BudgetError::ZeroWindow);
        }
        Ok(BudgetState {
            ratio,
            min_retries,
            bucket: (window / BUCKETS).max(Duration::from_nanos(1)),
            buckets_per_window: BUCKETS,
            buckets: VecDeque::new(),
        })
    }

    fn current(&mut self, now: Instant) -> &mut (Instant, u64, u64) {
        let window = self.bucket * self.buckets_per_window;
        while let Some(&(start, _, _)) = self.buckets.front() {
            if start + window > now {
                break;
            }
            self.buckets.pop_front();
        }
        let needs_new = self
            .buckets
            .back()
            .is_none_or(|&(start, _, _)| start + self.bucket <= now);
        if needs_new {
            self.buckets.push_back((now, 0, 0));
        }
        self.buckets.back_mut().expect("a bucket was just ensured")
    }

    /// Records a top-level call at `now`.
    pub fn deposit(&mut self, now: Instant) {
        self.current(now).1 += 1;
    }

    /// Records a retry at `now` if the budget allows one; returns whether
    /// it did.
    pub fn try_withdraw(&mut self, now: Instant) -> bool {
        self.current(now);
        let (calls, retries) = self
            .buckets
            .iter()
            .fold((0u64, 0u64), |(c, r), &(_, bc, br)| (c + bc, r + br));
        let allowed = f64::from(self.min_retries) + self.ratio * calls as f64;
        if (retries + 1) as f64 > allowed {
            return false;
        }
        self.current(now).2 += 1;
        true
    }
}

/// A retry budget shared by every call of a [`Retry`](super::Retry) (and
/// by any other `Retry` given a clone): a [`BudgetState`] behind a lock.
/// The retry layer hands the state to the pure
/// [`RetryState`](super::RetryState) with the instant of each decision.
///
/// # Examples
///
/// ```
/// use machina_core::retry::RetryBudget;
/// use std::time::{Duration, Instant};
///
/// // Retries may be 20% of the calls of the last 10 s, plus 1.
/// let budget = RetryBudget::new(0.2, Duration::from_secs(10), 1).unwrap();
/// let now = Instant::now();
/// for _ in 0..10 { budget.deposit(now); }
/// let granted = (0..10).filter(|_| budget.try_withdraw(now)).count();
/// assert_eq!(granted, 3); // 1 + 20% of 10
/// ```
#[derive(Clone)]
pub struct RetryBudget {
    state: Arc<Mutex<BudgetState>>,
}

impl RetryBudget {
    /// A shared budget; see [`BudgetState::new`].
    ///
    /// # Errors
    /// [`BudgetError`] for a negative or NaN ratio or a zero window.
    pub fn new(ratio: f64, window: Duration, min_retries: u32) -> Result<Self, BudgetError> {
        Ok(RetryBudget {
            state: Arc::new(Mutex::new(BudgetState::new(ratio, window, min_retries)?)),
        })
    }

    /// Runs `f` on the state, under the lock.
    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut BudgetState) -> R) -> R {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut state)
    }

    /// Records a top-level call at `now`.
    pub fn deposit(&self, now: Instant) {
        self.with(|s| s.deposit(now));
    }

    /// Records a retry at `now` if the budget allows one; returns whether
    /// it did.
    pub fn try_withdraw(&self, now: Instant) -> bool {
        self.with(|s| s.try_withdraw(now))
    }
}

impl fmt::Debug for RetryBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryBudget").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_are_a_share_of_recent_calls() {
        let t0 = crate::rt::Timer::now(&crate::rt::SystemTimer::new());
        let s = |n| t0 + Duration::from_secs(n);
        let mut b = BudgetState::new(0.5, Duration::from_secs(10), 0).unwrap();
        assert!(!b.try_withdraw(t0), "no calls, no minimum: no retry");
        for _ in 0..4 {
            b.deposit(t0);
        }
        assert!(b.try_withdraw(s(1)));
        assert!(b.try_withdraw(s(2)));
        assert!(!b.try_withdraw(s(3)), "50% of 4 calls is 2 retries");
        // Once the calls have left the window, so has the allowance.
        b.deposit(s(10));
        assert!(
            !b.try_withdraw(s(10)),
            "2 retries still in the window vs 0.5 allowed"
        );
        for _ in 0..5 {
            b.deposit(s(13));
        }
        assert!(
            b.try_withdraw(s(13)),
            "old retries expired: 6 calls allow 3"
        );
    }

    #[test]
    fn the_minimum_lets_a_quiet_service_retry() {
        let t0 = crate::rt::Timer::now(&crate::rt::SystemTimer::new());
        let mut b = BudgetState::new(0.0, Duration::from_secs(1), 2).unwrap();
        assert!(b.try_withdraw(t0));
        assert!(b.try_withdraw(t0));
        assert!(!b.try_withdraw(t0));
        assert!(b.try_withdraw(t0 + Duration::from_secs(1)));
    }

    #[test]
    fn bad_budgets_are_refused() {
        assert_eq!(
            BudgetState::new(-0.1, Duration::from_secs(1), 0).unwrap_err(),
            BudgetError::Ratio(-0.1)
        );
        assert!(BudgetState::new(f64::NAN, Duration::from_secs(1), 0).is_err());
        assert_eq!(
            BudgetState::new(0.1, Duration::ZERO, 0).unwrap_err(),
            BudgetError::ZeroWindow
        );
    }
}
