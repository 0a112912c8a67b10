//! The wait sequences of retry rules: pure, infinite iterators of
//! [`Duration`], seedable through the runtime's random generator.

use std::time::Duration;

use crate::rt::RuntimeRng;

/// How long a rule waits before each retry (exmachina's `RetryFixed`,
/// `RetryFibonacci`, `RetryRange`, `RetryExponentialAndJitter`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Wait {
    /// The same wait every time.
    Fixed(Duration),
    /// `base` × 1, 1, 2, 3, 5, 8, … (exmachina: seconds, so `base` = 1 s).
    Fibonacci {
        /// The unit of the sequence.
        base: Duration,
    },
    /// Uniformly random in `[min, max]`.
    RandomRange {
        /// The shortest wait.
        min: Duration,
        /// The longest wait.
        max: Duration,
    },
    /// The first wait is exactly `base`; the n-th after it is uniform in
    /// `[0, min(cap, base·2ⁿ)]` ("full jitter").
    ExponentialJitter {
        /// The first wait, and the unit of growth.
        base: Duration,
        /// The largest wait.
        cap: Duration,
    },
}

impl Wait {
    /// The waits of this rule, in order, drawing randomness from `rng`.
    ///
    /// # Examples
    ///
    /// ```
    /// use machina_core::retry::Wait;
    /// use machina_core::rt::RuntimeRng;
    /// use std::time::Duration;
    ///
    /// let secs: Vec<u64> = Wait::Fibonacci { base: Duration::from_secs(1) }
    ///     .waits(RuntimeRng::from_seed(0))
    ///     .take(6)
    ///     .map(|d| d.as_secs())
    ///     .collect();
    /// assert_eq!(secs, [1, 1, 2, 3, 5, 8]);
    /// ```
    pub fn waits(&self, rng: RuntimeRng) -> Waits {
        Waits {
            wait: *self,
            rng,
            n: 0,
            fib: (0, 1),
        }
    }

    /// The longest wait this rule can produce (`Duration::MAX` for an
    /// unbounded Fibonacci sequence).
    pub fn max_wait(&self) -> Duration {
        match *self {
            Wait::Fixed(d) => d,
            Wait::Fibonacci { .. } => Duration::MAX,
            Wait::RandomRange { min, max } => min.max(max),
            Wait::ExponentialJitter { base, cap } => base.max(cap),
        }
    }
}

/// The infinite iterator of a [`Wait`]'s durations.
#[derive(Debug, Clone)]
pub struct Waits {
    wait: Wait,
    rng: RuntimeRng,
    /// Waits produced so far.
    n: u32,
    /// The Fibonacci pair (previous, current), in units of `base`.
    fib: (u64, u64),
}

impl Iterator for Waits {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let n = self.n;
        self.n = self.n.saturating_add(1);
        Some(match self.wait {
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
                    let grown =
                        base.saturating_mul(1u32.checked_shl(n.min(31)).unwrap_or(u32::MAX));
                    self.rng.duration_between(Duration::ZERO, grown.min(cap))
                }
            }
        })
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

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

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
}
