//! [`TickGate`]: who runs an emit's tick when one bot runs as several
//! replicas. Before each tick, an emit with a gate asks it; the gate
//! answers "run, with this fencing token and tick number" on exactly one
//! replica and "skip" on the others (a Redis leader lease, say:
//! `machina_redis::Singleton`). An emit without a gate runs every tick.

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use crate::error::BoxError;

/// A boxed future a [`TickGate`] answers with.
pub type GateFuture<'a> = Pin<Box<dyn Future<Output = Result<Admission, BoxError>> + Send + 'a>>;

/// A gate's answer for one tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Admission {
    /// This replica runs the tick.
    Run(Fence),
    /// Another replica runs it (or ran it already): skip.
    Skip,
}

/// What a replica that runs a tick holds: the fencing token of its
/// leadership (larger for every new leader, so a resource can refuse the
/// writes of a stale one) and the tick's number (one more than the last
/// tick run by any replica).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Fence {
    /// The leadership's fencing token.
    pub token: u64,
    /// The tick's number, shared by every replica.
    pub tick: u64,
}

/// Decides, before each tick of an emit, whether this replica runs it.
///
/// An error skips the tick (with a warning): a replica that cannot tell
/// whether it leads does not run — the gate fails closed.
///
/// # Examples
///
/// A gate that lets every other tick through:
///
/// ```
/// use machina_core::bot::{Admission, Event, Fence, GateFuture, Machina, TickGate};
/// use machina_core::testing::MockRuntime;
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use std::sync::{Arc, Mutex};
///
/// #[derive(Debug, Default)]
/// struct EveryOther(AtomicU64);
/// impl TickGate for EveryOther {
///     fn admit<'a>(&'a self, _emit: &'a str) -> GateFuture<'a> {
///         let n = self.0.fetch_add(1, Ordering::Relaxed);
///         Box::pin(async move {
///             Ok(if n % 2 == 0 { Admission::Run(Fence { token: 1, tick: n / 2 + 1 }) } else { Admission::Skip })
///         })
///     }
/// }
///
/// let mock = MockRuntime::new();
/// let ran = Arc::new(Mutex::new(Vec::new()));
/// let mut bot = Machina::builder(&mock.runtime());
/// let seen = ran.clone();
/// bot.emit("tick", "1s")?
///     .count(4)
///     .gate(EveryOther::default())
///     .register(move |event: Event| {
///         let seen = seen.clone();
///         async move { seen.lock().unwrap().push(event.fence().unwrap().tick) }
///     })?;
/// let bot = bot.build();
/// mock.block_on(bot.run())??;
/// assert_eq!(*ran.lock().unwrap(), [1, 2]);
/// # Ok::<(), machina_core::BoxError>(())
/// ```
pub trait TickGate: Send + Sync + fmt::Debug + 'static {
    /// Whether this replica runs the tick of `emit` that is due now.
    fn admit<'a>(&'a self, emit: &'a str) -> GateFuture<'a>;
}

#[cfg(all(test, feature = "test-util"))]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::bot::{Event, Machina};
    use crate::testing::MockRuntime;

    /// Fails on the 2nd and 3rd ticks, runs the others with a growing tick.
    #[derive(Debug, Default)]
    struct Flaky(Mutex<u64>);

    impl TickGate for Flaky {
        fn admit<'a>(&'a self, _emit: &'a str) -> GateFuture<'a> {
            let n = {
                let mut n = self.0.lock().unwrap();
                *n += 1;
                *n
            };
            Box::pin(async move {
                if n == 2 || n == 3 {
                    Err("store unreachable".into())
                } else {
                    Ok(Admission::Run(Fence { token: 7, tick: n }))
                }
            })
        }
    }

    /// A gate that cannot decide skips the tick (fails closed) with one
    /// warning per outage, the emit goes on, and an emit without a gate
    /// has no fence.
    #[test]
    fn a_gate_error_skips_the_tick_and_the_emit_goes_on() {
        let mock = MockRuntime::new();
        let ran = Arc::new(Mutex::new(Vec::new()));
        let mut bot = Machina::builder(&mock.runtime());
        let seen = ran.clone();
        bot.emit("gated", "1s")
            .unwrap()
            .count(5)
            .gate(Flaky::default())
            .register(move |event: Event| {
                let seen = seen.clone();
                async move {
                    seen.lock()
                        .unwrap()
                        .push(event.fence().map(|f| (f.token, f.tick)))
                }
            })
            .unwrap();
        let seen = ran.clone();
        bot.emit("plain", "1s")
            .unwrap()
            .count(1)
            .register(move |event: Event| {
                let seen = seen.clone();
                async move {
                    seen.lock()
                        .unwrap()
                        .push(event.fence().map(|f| (f.token, f.tick)))
                }
            })
            .unwrap();
        let bot = bot.build();
        let (outcome, events) = crate::test_kit::log_capture::capture(|| mock.block_on(bot.run()));
        outcome.unwrap().unwrap();
        let mut ran = ran.lock().unwrap().clone();
        ran.sort();
        assert_eq!(ran, [None, Some((7, 1)), Some((7, 4)), Some((7, 5))]);
        // Two failing ticks: one warning, then one line when it recovers.
        let about_gate: Vec<_> = events
            .iter()
            .filter(|e| e.field("message").is_some_and(|m| m.contains("gate")))
            .map(|e| (e.level, e.field("emit").unwrap_or_default().to_owned()))
            .collect();
        assert_eq!(
            about_gate,
            [
                (tracing::Level::WARN, "gated".to_owned()),
                (tracing::Level::DEBUG, "gated".to_owned()),
                (tracing::Level::INFO, "gated".to_owned()),
            ]
        );
    }
}
