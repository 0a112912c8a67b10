//! Waiting sequences: how long to wait before each new try, as a pure,
//! seedable iterator.
//!
//! One vocabulary for every "wait, then try again" in Machina: retry rules
//! (exmachina's `RetryFixed`, `RetryFibonacci`, `RetryRange`,
//! `RetryExponentialAndJitter`), backoff pauses (aiomisc `asyncbackoff`),
//! a `Loop`'s reconnect backoff (discord.ext.tasks) and the restarts of a
//! service's background task.
//!
//! - [`Wait`] says which sequence: a small `Copy` value.
//! - [`Waits`] is the sequence itself, an infinite `Iterator<Item =
//!   Duration>` drawing randomness from a [`RuntimeRng`] (so a seeded mock
//!   runtime replays it exactly), with an optional cap on every wait, a
//!   wait hinted by the error (a `Retry-After`, say) that replaces the
//!   next one, and [`reset`](Waits::reset) to start over.
//!
//! Nothing here sleeps or reads a clock; the layers that wait do.

use std::time::Duration;

use crate::rt::RuntimeRng;

/// Which waiting sequence.
///
/// # Examples
///
/// ```
/// use machina_core::waits::Wait;
/// use machina_core::rt::RuntimeRng;
/// use std::time::Duration;
///
/// let secs = |w: Wait| -> Vec<u64> {
///     w.waits(RuntimeRng::from_seed(0)).take(6).map(|d| d.as_secs()).collect()
/// };
/// assert_eq!(secs(Wait::Fibonacci { base: Duration::from_secs(1) }), [1, 1, 2, 3, 5, 8]);
/// assert_eq!(
///     secs(Wait::Exponential { base: Duration::from_secs(1), factor: 2, cap: Duration::from_secs(8) }),
///     [1, 2, 4, 8, 8, 8],
/// );
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Wait {
    /// The same wait every time (exmachina `RetryFixed`, aiomisc's
    /// `pause`).
    Fixed(Duration),
    /// `base` × 1, 1, 2, 3, 5, 8, … (exmachina `RetryFibonacci`: seconds,
    /// so `base` = 1 s).
    Fibonacci {
        /// The unit of the sequence.
        base: Duration,
    },
    /// Uniformly random in `[min, max]` (exmachina `RetryRange`); the
    /// bounds may come in either order.
    RandomRange {
        /// The shortest wait.
        min: Duration,
        /// The longest wait.
        max: Duration,
    },
    /// The first wait is exactly `base`; the n-th after it is uniform in
    /// `[0, min(cap, base·2ⁿ)]` (exmachina `RetryExponentialAndJitter`).
    ExponentialJitter {
        /// The first wait, and the unit of growth.
        base: Duration,
        /// The largest wait.
        cap: Duration,
    },
    /// `base`, `base·factor`, `base·factor²`, … up to `cap`, without
    /// randomness (a service task's restarts).
    Exponential {
        /// The first wait.
        base: Duration,
        /// The growth per wait (1 = fixed).
        factor: u32,
        /// The largest wait.
        cap: Duration,
    },
    /// The k-th wait (k = 1, 2, …) is uniform in `[0, min(cap, base·2ᵏ)]`
    /// ("full jitter"; discord.ext.tasks' reconnect backoff, whose cap is
    /// `base·2¹⁰`).
    FullJitter {
        /// The unit of growth.
        base: Duration,
        /// The largest bound.
        cap: Duration,
    },
}

impl Wait {
    /// The waits of this sequence, in order, drawing randomness from `rng`.
    ///
    /// # Examples
    ///
    /// ```
    /// use machina_core::waits::Wait;
    /// use machina_core::rt::RuntimeRng;
    /// use std::time::Duration;
    ///
    /// let mut waits = Wait::Fixed(Duration::from_secs(1))
    ///     .waits(RuntimeRng::from_seed(0))
    ///     .capped(Duration::from_millis(500));
    /// assert_eq!(waits.next(), Some(Duration::from_millis(500)));
    /// // A hint replaces the next wait, within the cap.
    /// assert_eq!(waits.next_hinted(Some(Duration::from_millis(200))), Duration::from_millis(200));
    /// assert_eq!(waits.next_hinted(Some(Duration::from_secs(9))), Duration::from_millis(500));
    /// ```
    pub fn waits(&self, rng: RuntimeRng) -> Waits {
        Waits {
            wait: *self,
            rng,
            cap: None,
            n: 0,
            fib: (0, 1),
        }
    }

    /// The longest wait this sequence can produce (`Duration::MAX` for an
    /// unbounded Fibonacci sequence).
    pub fn max_wait(&self) -> Duration {
        match *self {
            Wait::Fixed(d) => d,
            Wait::Fibonacci { .. } => Duration::MAX,
            Wait::RandomRange { min, max } => min.max(max),
            Wait::ExponentialJitter { base, cap } => base.max(cap),
            Wait::Exponential { base, factor, cap } => {
                if factor <= 1 {
                    base
                } else {
                    base.max(cap)
                }
            }
            Wait::FullJitter { cap, .. } => cap,
        }
    }
}

/// The infinite iterator of a [`Wait`]'s durations; see the module docs.
#[derive(Debug, Clone)]
pub struct Waits {
    wait: Wait,
    rng: RuntimeRng,
    cap: Option<Duration>,
    /// Waits produced so far.
    n: u32,
    /// The Fibonacci pair (previous, current), in units of `base`.
    fib: (u64, u64),
}

impl Waits {
    /// Caps every wait, hinted or not, at `cap`.
    #[must_use]
    pub fn capped(mut self, cap: Duration) -> Self {
        self.cap = Some(cap);
        self
    }

    /// The cap, if any.
    pub fn cap(&self) -> Option<Duration> {
        self.cap
    }

    /// The next wait, or `hint` in its place when there is one; either way
    /// the sequence advances (so the next unhinted wait follows on) and the
    /// cap applies.
    pub fn next_hinted(&mut self, hint: Option<Duration>) -> Duration {
        let sequenced = self.draw();
        self.limit(hint.unwrap_or(sequenced))
    }

    /// Waits produced since the start (or the last reset).
    pub fn produced(&self) -> u32 {
        self.n
    }

    /// Starts the sequence over (the random stream goes on).
    pub fn reset(&mut self) {
        self.n = 0;
        self.fib = (0, 1);
    }

    /// The sequence this iterates.
    pub fn wait(&self) -> Wait {
        self.wait
    }

    fn limit(&self, wait: Duration) -> Duration {
        match self.cap {
            Some(cap) => wait.min(cap),
            None => wait,
        }
    }

    fn draw(&mut self) -> Duration {
        let n = self.n;
        self.n = self.n.saturating_add(1);
        match self.wait {
            Wait::Fixed(d) => d,
            Wait::Fibonacci { base } => {
                let (prev, cur) = self.fib;
                self.fib = (cur, prev.saturating_add(cur));
                base.saturating_mul(u32::try_from(cur).unwrap_or(u32::MAX))
            }
            Wait::RandomRange { min, max } => self.rng.duration_between(min, max),
            Wait::ExponentialJitter { base, cap } => {
                if n == 0 {
                    base
                } else {
                    self.rng
                        .duration_between(Duration::ZERO, doubled(base, n).min(cap))
                }
            }
            Wait::Exponential { base, factor, cap } => {
                let mut wait = base;
                for _ in 0..n.min(64) {
                    if wait >= cap {
                        break;
                    }
                    wait = wait.saturating_mul(factor.max(1));
                }
                if wait > cap { cap.max(base) } else { wait }
            }
            Wait::FullJitter { base, cap } => self
                .rng
                .duration_between(Duration::ZERO, doubled(base, n + 1).min(cap)),
        }
    }
}

/// `base·2ⁿ`, saturating.
fn doubled(base: Duration, n: u32) -> Duration {
    base.saturating_mul(1u32.checked_shl(n.min(31)).unwrap_or(u32::MAX))
}

impl Iterator for Waits {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let wait = self.draw();
        Some(self.limit(wait))
    }
}

/// Seconds as a [`Duration`], clamping negative and non-finite values to
/// zero (exmachina accepts floats, and clamps negative range bounds).
pub(crate) fn clamped_secs(secs: f64) -> Duration {
    if secs.is_finite() && secs > 0.0 {
        Duration::try_from_secs_f64(secs).unwrap_or(Duration::MAX)
    } else {
        Duration::ZERO
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::test_kit::ms;

    #[test]
    fn fixed_is_constant() {
        let w: Vec<_> = Wait::Fixed(ms(250))
            .waits(RuntimeRng::from_seed(1))
            .take(4)
            .collect();
        assert_eq!(w, [ms(250); 4]);
    }

    #[test]
    fn fibonacci_scales_with_its_base_and_saturates() {
        let w: Vec<_> = Wait::Fibonacci { base: ms(100) }
            .waits(RuntimeRng::from_seed(1))
            .take(7)
            .collect();
        assert_eq!(w, [100, 100, 200, 300, 500, 800, 1300].map(ms));
        let far = Wait::Fibonacci {
            base: Duration::from_secs(1),
        }
        .waits(RuntimeRng::from_seed(1))
        .nth(200)
        .unwrap();
        assert!(far >= Duration::from_secs(u64::from(u32::MAX)));
    }

    #[test]
    fn random_range_stays_inside_and_is_seeded() {
        let wait = Wait::RandomRange {
            min: ms(200),
            max: ms(500),
        };
        let a: Vec<_> = wait.waits(RuntimeRng::from_seed(7)).take(1000).collect();
        let b: Vec<_> = wait.waits(RuntimeRng::from_seed(7)).take(1000).collect();
        assert_eq!(a, b);
        assert!(a.iter().all(|d| (ms(200)..=ms(500)).contains(d)));
        assert!(a.iter().any(|d| *d < ms(260)) && a.iter().any(|d| *d > ms(440)));
        let reversed: Vec<_> = Wait::RandomRange {
            min: ms(500),
            max: ms(200),
        }
        .waits(RuntimeRng::from_seed(7))
        .take(100)
        .collect();
        assert!(reversed.iter().all(|d| (ms(200)..=ms(500)).contains(d)));
    }

    #[test]
    fn exponential_jitter_starts_at_base_then_grows_to_the_cap() {
        let wait = Wait::ExponentialJitter {
            base: ms(100),
            cap: ms(1000),
        };
        let mut draws = vec![Vec::new(); 8];
        for seed in 0..400 {
            for (n, d) in wait.waits(RuntimeRng::from_seed(seed)).take(8).enumerate() {
                draws[n].push(d);
            }
        }
        assert!(
            draws[0].iter().all(|d| *d == ms(100)),
            "first wait is exactly base"
        );
        for (n, ds) in draws.iter().enumerate().skip(1) {
            let bound = (ms(100) * (1 << n)).min(ms(1000));
            assert!(
                ds.iter().all(|d| *d <= bound),
                "wait {n} within [0, {bound:?}]"
            );
            // Uniform over the whole range: some draws land in its top tenth.
            assert!(
                ds.iter().any(|d| *d >= bound * 9 / 10),
                "wait {n} reaches near {bound:?}"
            );
        }
    }

    #[test]
    fn negative_and_odd_seconds_clamp_to_zero() {
        assert_eq!(clamped_secs(-3.0), Duration::ZERO);
        assert_eq!(clamped_secs(f64::NAN), Duration::ZERO);
        assert_eq!(clamped_secs(1.5), ms(1500));
        assert_eq!(clamped_secs(f64::INFINITY), Duration::ZERO);
    }

    #[test]
    fn exponential_grows_by_its_factor_to_the_cap() {
        let w: Vec<_> = Wait::Exponential {
            base: ms(100),
            factor: 2,
            cap: ms(6400),
        }
        .waits(RuntimeRng::from_seed(1))
        .take(9)
        .collect();
        assert_eq!(
            w,
            [100, 200, 400, 800, 1600, 3200, 6400, 6400, 6400].map(ms)
        );
        let flat: Vec<_> = Wait::Exponential {
            base: ms(100),
            factor: 1,
            cap: ms(50),
        }
        .waits(RuntimeRng::from_seed(1))
        .take(3)
        .collect();
        assert_eq!(flat, [ms(100); 3], "a cap below base leaves base");
        let huge = Wait::Exponential {
            base: Duration::from_secs(1),
            factor: 10,
            cap: Duration::MAX,
        }
        .waits(RuntimeRng::from_seed(1))
        .nth(1000)
        .unwrap();
        assert_eq!(huge, Duration::MAX, "saturates, never overflows");
    }

    #[test]
    fn full_jitter_bounds_double_from_twice_base_to_the_cap() {
        let wait = Wait::FullJitter {
            base: ms(10),
            cap: ms(10 * 1024),
        };
        let mut max_seen = [Duration::ZERO; 12];
        for seed in 0..300 {
            for (k, d) in wait.waits(RuntimeRng::from_seed(seed)).take(12).enumerate() {
                let bound = (ms(10) * (1 << (k + 1).min(10))).min(ms(10 * 1024));
                assert!(d <= bound, "wait {k}: {d:?} > {bound:?}");
                max_seen[k] = max_seen[k].max(d);
            }
        }
        assert!(
            max_seen[11] > ms(9000),
            "the cap is reached: {:?}",
            max_seen[11]
        );
    }

    #[test]
    fn caps_hints_and_reset() {
        let mut w = Wait::Fibonacci { base: ms(100) }
            .waits(RuntimeRng::from_seed(1))
            .capped(ms(250));
        assert_eq!(w.cap(), Some(ms(250)));
        let firsts: Vec<_> = w.by_ref().take(4).collect();
        assert_eq!(firsts, [100, 100, 200, 250].map(ms));
        assert_eq!(w.produced(), 4);
        // A hint replaces the wait but the sequence moves on.
        assert_eq!(w.next_hinted(Some(ms(7))), ms(7));
        assert_eq!(
            w.next_hinted(Some(ms(999))),
            ms(250),
            "hints are capped too"
        );
        assert_eq!(w.next_hinted(None), ms(250));
        w.reset();
        assert_eq!(w.next(), Some(ms(100)));
        assert_eq!(w.wait(), Wait::Fibonacci { base: ms(100) });
    }

    #[test]
    fn max_wait_of_each_sequence() {
        assert_eq!(Wait::Fixed(ms(3)).max_wait(), ms(3));
        assert_eq!(Wait::Fibonacci { base: ms(1) }.max_wait(), Duration::MAX);
        assert_eq!(
            Wait::RandomRange {
                min: ms(9),
                max: ms(2)
            }
            .max_wait(),
            ms(9)
        );
        assert_eq!(
            Wait::ExponentialJitter {
                base: ms(5),
                cap: ms(4)
            }
            .max_wait(),
            ms(5)
        );
        assert_eq!(
            Wait::Exponential {
                base: ms(5),
                factor: 2,
                cap: ms(40)
            }
            .max_wait(),
            ms(40)
        );
        assert_eq!(
            Wait::FullJitter {
                base: ms(5),
                cap: ms(40)
            }
            .max_wait(),
            ms(40)
        );
    }
}
