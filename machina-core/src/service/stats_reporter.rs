//! [`StatsReporter`]: a service that logs a compact summary of a
//! [`Stats`] set every so often (aiomisc's `MemoryTracer`/`Profiler`
//! services, in Rust terms: counters rather than heap tracing).

use std::fmt::Write;
use std::sync::Arc;
use std::time::Duration;

use super::supervisor::{Service, ServiceContext, ServiceFuture};
use crate::rt::MissedTick;
use crate::stats::{Sample, Stats};

/// Logs one line per component of `stats` every `every` (at `info`, target
/// `machina::stats`), starting when the stack has started it.
///
/// # Examples
///
/// ```
/// use machina_core::limit::{ConcurrentGroup, Limits};
/// use machina_core::service::{StatsReporter, Supervisor};
/// use machina_core::stats::Stats;
/// use machina_core::testing::MockRuntime;
/// use std::time::Duration;
///
/// let mock = MockRuntime::new();
/// let rt = mock.runtime();
/// let group = ConcurrentGroup::new(&rt, "api", Limits::new().max_in_flight(2)).unwrap();
/// let stats = Stats::new();
/// stats.add_group(&group);
/// drop(group.try_acquire().unwrap());
/// let line = StatsReporter::summary(&stats);
/// assert!(line.contains("group api: acquired=1"), "{line}");
///
/// let stack = Supervisor::builder(&rt)
///     .service("stats", StatsReporter::new(stats, Duration::from_secs(60)), &[])
///     .build()
///     .unwrap();
/// mock.block_on(async {
///     stack.start().await.unwrap();
///     rt.sleep(Duration::from_secs(150)).await; // reports at 0, 60 and 120 s
///     stack.stop().await;
/// }).unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct StatsReporter {
    stats: Stats,
    every: Duration,
}

impl StatsReporter {
    /// Reports `stats` every `every` (at least 1 ms).
    pub fn new(stats: Stats, every: Duration) -> Self {
        StatsReporter {
            stats,
            every: every.max(Duration::from_millis(1)),
        }
    }

    /// The summary a report logs: one `kind name: counter=value …` line per
    /// component, in the order they were added.
    pub fn summary(stats: &Stats) -> String {
        let mut out = String::new();
        let mut current: Option<(&'static str, String)> = None;
        for Sample {
            kind,
            name,
            counter,
            value,
        } in stats.snapshot()
        {
            if current.as_ref() != Some(&(kind, name.clone())) {
                if current.is_some() {
                    out.push('\n');
                }
                let _ = write!(out, "{kind} {name}:");
                current = Some((kind, name));
            }
            let _ = write!(out, " {counter}={value}");
        }
        out
    }
}

impl Service for StatsReporter {
    fn start(self: Arc<Self>, ctx: ServiceContext) -> ServiceFuture {
        let rt = ctx.runtime().clone();
        let this = self.clone();
        ctx.spawn(async move {
            let mut ticks = rt.interval(this.every, MissedTick::Skip)?;
            loop {
                ticks.tick().await;
                for line in Self::summary(&this.stats).lines() {
                    tracing::info!(target: "machina::stats", "{line}");
                }
            }
        });
        Box::pin(async { Ok(()) })
    }
}
