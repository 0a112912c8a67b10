//! [`CoarseClock`]: the monotonic clock read cheaply, a few milliseconds
//! behind, for bookkeeping that tolerates it.

use std::time::{Duration, Instant};

/// The monotonic clock at the kernel's tick (Linux
/// `CLOCK_MONOTONIC_COARSE`): a read costs a few nanoseconds instead of
/// the tens a precise read can cost on a virtual machine, and the instant
/// it gives is up to [`resolution`](Self::resolution) behind the precise
/// one (one tick, 1–4 ms) — never ahead of it.
///
/// Adapters use it for [`Timer::coarse_now`](super::Timer::coarse_now);
/// Machina reads it only where an instant a few milliseconds early is
/// harmless (which bucket of a circuit breaker's window a success lands
/// in), never for a deadline, a window of starts or a tick. Elsewhere than
/// Linux it is the precise clock, with a resolution of zero.
///
/// # Examples
///
/// ```
/// use machina_core::rt::{CoarseClock, SystemTimer, Timer};
///
/// let clock = CoarseClock::new();
/// let coarse = clock.now();
/// let precise = SystemTimer::new().now();
/// assert!(coarse <= precise);
/// assert!(precise - coarse <= clock.resolution() + std::time::Duration::from_millis(50));
/// ```
#[derive(Debug, Clone, Copy)]
pub struct CoarseClock {
    /// An instant of the precise clock …
    base: Instant,
    /// … and the coarse clock's reading of the same clock just after it
    /// (ns): `CLOCK_MONOTONIC` is what `Instant` reads on Linux, so the
    /// two differ by the time between the reads.
    #[cfg(target_os = "linux")]
    base_nanos: u64,
    resolution: Duration,
}

impl Default for CoarseClock {
    fn default() -> Self {
        CoarseClock::new()
    }
}

/// The precise clock, read where the process reads it (`SystemTimer`).
fn precise_now() -> Instant {
    super::Timer::now(&super::SystemTimer::new())
}

/// A monotonic clock's reading in nanoseconds. The kernel's monotonic
/// clocks count from boot, never negative, with `tv_nsec` below a
/// billion: the plain conversion is exact for 584 years of uptime.
#[cfg(target_os = "linux")]
#[inline]
fn monotonic_nanos(id: rustix::time::ClockId) -> u64 {
    let ts = rustix::time::clock_gettime(id);
    (ts.tv_sec as u64)
        .wrapping_mul(1_000_000_000)
        .wrapping_add(ts.tv_nsec as u64)
}

impl CoarseClock {
    /// A coarse clock anchored to the precise one now.
    pub fn new() -> Self {
        #[cfg(target_os = "linux")]
        {
            use rustix::time::{ClockId, clock_getres};
            let base = precise_now();
            // The precise reading just after `base`: a coarse reading is
            // at most this one, so an instant made from it is never later
            // than the precise clock.
            let base_nanos = monotonic_nanos(ClockId::Monotonic);
            let res = clock_getres(ClockId::MonotonicCoarse);
            let resolution = Duration::new(
                u64::try_from(res.tv_sec).unwrap_or(0),
                u32::try_from(res.tv_nsec).unwrap_or(0),
            );
            CoarseClock {
                base,
                base_nanos,
                resolution,
            }
        }
        #[cfg(not(target_os = "linux"))]
        {
            CoarseClock {
                base: precise_now(),
                resolution: Duration::ZERO,
            }
        }
    }

    /// The current instant, up to [`resolution`](Self::resolution) behind
    /// the precise clock, never ahead of it.
    #[inline]
    pub fn now(&self) -> Instant {
        #[cfg(target_os = "linux")]
        {
            let nanos = monotonic_nanos(rustix::time::ClockId::MonotonicCoarse);
            match nanos.checked_sub(self.base_nanos) {
                Some(after) => self.base + Duration::from_nanos(after),
                // A tick not yet past the anchor: the anchor's own instant
                // is the best bound that is never ahead.
                None => self
                    .base
                    .checked_sub(Duration::from_nanos(self.base_nanos - nanos))
                    .unwrap_or(self.base),
            }
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = self.base;
            precise_now()
        }
    }

    /// Nanoseconds from [`anchor`](Self::anchor) to a coarse reading now
    /// (0 for a reading not yet past the anchor): with
    /// `anchor() + Duration::from_nanos(..)` an instant, and as a plain
    /// number cheap to compare.
    #[inline]
    pub fn elapsed_nanos(&self) -> u64 {
        #[cfg(target_os = "linux")]
        {
            monotonic_nanos(rustix::time::ClockId::MonotonicCoarse).saturating_sub(self.base_nanos)
        }
        #[cfg(not(target_os = "linux"))]
        {
            u64::try_from(self.base.elapsed().as_nanos()).unwrap_or(u64::MAX)
        }
    }

    /// Nanoseconds from [`anchor`](Self::anchor) to a *precise* reading
    /// now (0 for a reading not past the anchor): what
    /// [`FastClock`](super::FastClock) anchors its counter to.
    pub(crate) fn precise_elapsed_nanos(&self) -> u64 {
        #[cfg(target_os = "linux")]
        {
            monotonic_nanos(rustix::time::ClockId::Monotonic).saturating_sub(self.base_nanos)
        }
        #[cfg(not(target_os = "linux"))]
        {
            u64::try_from(self.base.elapsed().as_nanos()).unwrap_or(u64::MAX)
        }
    }

    /// The process's coarse clock, anchored on first use: the one
    /// [`Timer::coarse_nanos`](super::Timer::coarse_nanos) counts from.
    #[inline]
    pub fn global() -> &'static CoarseClock {
        static CLOCK: std::sync::OnceLock<CoarseClock> = std::sync::OnceLock::new();
        CLOCK.get_or_init(CoarseClock::new)
    }

    /// The precise instant the clock was anchored at.
    pub fn anchor(&self) -> Instant {
        self.base
    }

    /// How far behind the precise clock a reading may be.
    pub fn resolution(&self) -> Duration {
        self.resolution
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_ahead_and_at_most_a_tick_behind() {
        let clock = CoarseClock::new();
        let mut last = clock.now();
        for _ in 0..20_000 {
            let before = precise_now();
            let coarse = clock.now();
            let after = precise_now();
            assert!(coarse <= after, "ahead of the precise clock");
            // A tick, plus room for the thread being descheduled.
            assert!(
                before.saturating_duration_since(coarse)
                    <= clock.resolution() + Duration::from_millis(100),
                "{:?} behind",
                before - coarse
            );
            assert!(coarse >= last, "went backwards");
            last = coarse;
        }
    }

    #[test]
    fn moves_with_the_precise_clock() {
        let clock = CoarseClock::new();
        let start = clock.now();
        // Wait on the precise clock (no thread sleep in the core).
        let until = precise_now() + Duration::from_millis(30);
        while precise_now() < until {
            std::hint::spin_loop();
        }
        let moved = clock.now() - start;
        assert!(
            moved >= Duration::from_millis(30) - clock.resolution(),
            "{moved:?}"
        );
    }
}
