//! The runtime's seedable source of randomness.
//!
//! Jitter, random-range waits and the breaker's admission ramp all draw from
//! the [`RuntimeRng`] of their [`Runtime`](super::Runtime), so a test on the
//! mock runtime with a seed replays the same "random" decisions every time.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::rngs::{SmallRng, SysRng};
use rand::{SeedableRng, TryRng};

/// A shared, seedable random number generator.
///
/// Clones share one stream. It implements [`rand::TryRng`] (and so
/// [`rand::Rng`] and [`rand::RngExt`]), and offers the few draws Machina's
/// policies need directly.
///
/// # Examples
///
/// ```
/// use machina_core::rt::RuntimeRng;
/// use std::time::Duration;
///
/// let a = RuntimeRng::from_seed(7);
/// let b = RuntimeRng::from_seed(7);
/// let draw = |r: &RuntimeRng| r.duration_between(Duration::ZERO, Duration::from_secs(1));
/// assert_eq!(draw(&a), draw(&b));
/// ```
#[derive(Clone)]
pub struct RuntimeRng {
    inner: Arc<Mutex<SmallRng>>,
}

impl RuntimeRng {
    /// A generator whose whole stream is fixed by `seed`.
    pub fn from_seed(seed: u64) -> Self {
        RuntimeRng {
            inner: Arc::new(Mutex::new(SmallRng::seed_from_u64(seed))),
        }
    }

    /// A generator seeded from the operating system's entropy source.
    pub fn from_entropy() -> Self {
        let rng = SmallRng::try_from_rng(&mut SysRng).unwrap_or_else(|err| {
            tracing::warn!(%err, "no OS entropy for the runtime RNG; using a fixed seed");
            SmallRng::seed_from_u64(0x006d_6163_6869_6e61)
        });
        RuntimeRng {
            inner: Arc::new(Mutex::new(rng)),
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut SmallRng) -> R) -> R {
        let mut rng = self
            .inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&mut rng)
    }

    /// A uniformly random `u64`.
    pub fn next_u64(&self) -> u64 {
        self.with(rand::Rng::next_u64)
    }

    /// A uniformly random float in `[0, 1)`.
    pub fn next_f64(&self) -> f64 {
        // 53 random bits: every representable step of [0, 1) equally likely.
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// A uniformly random integer in `[0, bound)`; `0` when `bound` is 0.
    pub fn below(&self, bound: u64) -> u64 {
        if bound == 0 {
            return 0;
        }
        // Lemire's multiply-shift with rejection: unbiased for every bound.
        let threshold = bound.wrapping_neg() % bound;
        loop {
            let m = u128::from(self.next_u64()) * u128::from(bound);
            if (m as u64) >= threshold {
                return (m >> 64) as u64;
            }
        }
    }

    /// A uniformly random duration in `[low, high]` (nanosecond steps);
    /// the bounds may come in either order.
    pub fn duration_between(&self, low: Duration, high: Duration) -> Duration {
        let (low, high) = if low <= high {
            (low, high)
        } else {
            (high, low)
        };
        let span = (high - low).as_nanos();
        let span = u64::try_from(span).unwrap_or(u64::MAX - 1);
        low + Duration::from_nanos(self.below(span + 1))
    }
}

impl TryRng for RuntimeRng {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        Ok(self.with(rand::Rng::next_u32))
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        Ok(RuntimeRng::next_u64(self))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        self.with(|r| rand::Rng::fill_bytes(r, dst));
        Ok(())
    }
}

impl std::fmt::Debug for RuntimeRng {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuntimeRng").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream_and_different_seed_differs() {
        let a: Vec<u64> = (0..8)
            .map(|_| RuntimeRng::from_seed(1))
            .map(|r| r.next_u64())
            .collect();
        assert!(a.windows(2).all(|w| w[0] == w[1]));
        let r1 = RuntimeRng::from_seed(1);
        let r2 = RuntimeRng::from_seed(2);
        let s1: Vec<u64> = (0..4).map(|_| r1.next_u64()).collect();
        let s2: Vec<u64> = (0..4).map(|_| r2.next_u64()).collect();
        assert_ne!(s1, s2);
    }

    #[test]
    fn clones_share_one_stream() {
        let a = RuntimeRng::from_seed(3);
        let b = a.clone();
        let fresh = RuntimeRng::from_seed(3);
        let first = fresh.next_u64();
        let second = fresh.next_u64();
        assert_eq!(a.next_u64(), first);
        assert_eq!(b.next_u64(), second);
    }

    #[test]
    fn draws_stay_in_bounds() {
        let r = RuntimeRng::from_seed(9);
        for _ in 0..10_000 {
            let f = r.next_f64();
            assert!((0.0..1.0).contains(&f));
            assert!(r.below(7) < 7);
            let d = r.duration_between(Duration::from_millis(5), Duration::from_millis(2));
            assert!(d >= Duration::from_millis(2) && d <= Duration::from_millis(5));
        }
        assert_eq!(r.below(0), 0);
        assert_eq!(
            r.duration_between(Duration::from_secs(1), Duration::from_secs(1)),
            Duration::from_secs(1)
        );
    }

    #[test]
    fn below_is_roughly_uniform() {
        let r = RuntimeRng::from_seed(11);
        let mut counts = [0u32; 4];
        for _ in 0..40_000 {
            counts[r.below(4) as usize] += 1;
        }
        for c in counts {
            assert!((9_000..11_000).contains(&c), "{counts:?}");
        }
    }
}
