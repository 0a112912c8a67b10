//! [`Stats`]: one snapshot of the counters of every component a program
//! registers (aiomisc `get_statistics`), and (feature `metrics`) their
//! export to the `metrics` facade, so any `metrics` exporter (Prometheus,
//! StatsD, …) can publish them.
//!
//! The counters themselves live in the components, as cheap atomics or
//! next to state they already lock; `Stats` only knows where to read them.
//! There is no global registry: a program makes a `Stats` and adds what it
//! wants reported.

use std::fmt;
use std::sync::{Arc, Mutex};

use crate::bot::Machina;
use crate::breaker::CircuitBreaker;
use crate::limit::ConcurrentGroup;
use crate::loops::Loop;
use crate::net::{RobustClient, TcpServer, UdpServer};
use crate::pool::{Manager, Pool};
use crate::retry::Retry;

/// One counter of one component.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The kind of component: `"group"`, `"breaker"`, `"loop"`, `"bot"`,
    /// `"retry"`, `"pool"`, or a caller's own.
    pub kind: &'static str,
    /// The component's name.
    pub name: String,
    /// The counter's name, such as `"acquired"`.
    pub counter: &'static str,
    /// Its value.
    pub value: f64,
}

type Reader = Box<dyn Fn() -> Vec<(&'static str, f64)> + Send + Sync>;

struct Source {
    kind: &'static str,
    name: String,
    read: Reader,
}

/// A set of components whose counters are read together; clones share
/// the set.
///
/// # Examples
///
/// ```
/// use machina_core::limit::{ConcurrentGroup, Limits};
/// use machina_core::stats::Stats;
/// use machina_core::testing::MockRuntime;
///
/// let mock = MockRuntime::new();
/// let group = ConcurrentGroup::new(&mock.runtime(), "api", Limits::new().max_in_flight(2)).unwrap();
/// let stats = Stats::new();
/// stats.add_group(&group);
/// drop(group.try_acquire().unwrap());
/// let acquired = stats.snapshot().into_iter().find(|s| s.counter == "acquired").unwrap();
/// assert_eq!((acquired.name.as_str(), acquired.value), ("api", 1.0));
/// ```
#[derive(Clone, Default)]
pub struct Stats {
    sources: Arc<Mutex<Vec<Source>>>,
}

impl Stats {
    /// An empty set.
    pub fn new() -> Self {
        Stats::default()
    }

    /// Adds a component of `kind` named `name`, read by `read`.
    pub fn add(
        &self,
        kind: &'static str,
        name: impl Into<String>,
        read: impl Fn() -> Vec<(&'static str, f64)> + Send + Sync + 'static,
    ) {
        self.sources
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Source {
                kind,
                name: name.into(),
                read: Box::new(read),
            });
    }

    /// Adds a concurrent group: acquired, waited, wait time (seconds),
    /// rejected, abandoned, in flight, waiting.
    pub fn add_group(&self, group: &ConcurrentGroup) {
        let g = group.clone();
        self.add("group", group.name(), move || {
            let s = g.stats();
            vec![
                ("acquired", s.acquired as f64),
                ("waited", s.waited as f64),
                ("wait_seconds", s.wait_time.as_secs_f64()),
                ("rejected", s.rejected as f64),
                ("abandoned", s.abandoned as f64),
                ("in_flight", f64::from(g.in_flight())),
                ("waiting", g.waiting() as f64),
            ]
        });
    }

    /// Adds a circuit breaker: passing (calls let through while passing,
    /// counted as they end: calls in flight are not in it yet), broken
    /// rejected, recovering admitted and rejected, trips.
    pub fn add_breaker(&self, breaker: &CircuitBreaker) {
        let b = breaker.clone();
        self.add("breaker", breaker.name(), move || {
            let s = b.stats();
            vec![
                ("passing", s.passing as f64),
                ("broken_rejected", s.broken_rejected as f64),
                ("recovering_admitted", s.recovering_admitted as f64),
                ("recovering_rejected", s.recovering_rejected as f64),
                ("trips", s.trips as f64),
            ]
        });
    }

    /// Adds a loop: runs, iterations, retried errors, failed runs,
    /// lateness (total, max, and the p50 and p99 bounds, seconds).
    pub fn add_loop(&self, lp: &Loop) {
        let l = lp.clone();
        self.add("loop", lp.name(), move || {
            let s = l.stats();
            vec![
                ("runs", s.runs as f64),
                ("iterations", s.iterations as f64),
                ("retried_errors", s.retried_errors as f64),
                ("failed_runs", s.failed_runs as f64),
                ("lateness_seconds_total", s.lateness_total.as_secs_f64()),
                ("lateness_seconds_max", s.lateness_max.as_secs_f64()),
                (
                    "lateness_seconds_p50",
                    s.lateness_quantile(0.5).unwrap_or_default().as_secs_f64(),
                ),
                (
                    "lateness_seconds_p99",
                    s.lateness_quantile(0.99).unwrap_or_default().as_secs_f64(),
                ),
            ]
        });
    }

    /// Adds a bot: its spawned executes (ok, failed, cancelled) and emit
    /// runs.
    pub fn add_bot(&self, name: impl Into<String>, bot: &Machina) {
        let b = bot.clone();
        self.add("bot", name, move || {
            let s = b.stats();
            vec![
                ("executes_ok", s.executes_ok as f64),
                ("executes_failed", s.executes_failed as f64),
                ("executes_cancelled", s.executes_cancelled as f64),
                ("emit_runs", s.emit_runs as f64),
            ]
        });
    }

    /// Adds a retry policy: retries granted, failures given up on.
    pub fn add_retry(&self, name: impl Into<String>, retry: &Retry) {
        let r = retry.clone();
        self.add("retry", name, move || {
            let s = r.stats();
            vec![
                ("retries", s.retries as f64),
                ("given_up", s.given_up as f64),
            ]
        });
    }

    /// Adds a pool: size, idle, max size.
    pub fn add_pool<M: Manager>(&self, name: impl Into<String>, pool: &Pool<M>) {
        let p = pool.clone();
        self.add("pool", name, move || {
            vec![
                ("size", p.size() as f64),
                ("idle", p.idle() as f64),
                ("max_size", p.max_size() as f64),
            ]
        });
    }

    /// Adds a TCP server (kind `"tcp_server"`): accepted, active,
    /// finished, failed, panicked, cancelled, accept errors, handshake
    /// failures.
    pub fn add_tcp_server(&self, name: impl Into<String>, server: &TcpServer) {
        let s = server.clone();
        self.add("tcp_server", name, move || s.stats().samples());
    }

    /// Adds a UDP server (kind `"udp_server"`; `accepted` counts
    /// datagrams).
    pub fn add_udp_server(&self, name: impl Into<String>, server: &UdpServer) {
        let s = server.clone();
        self.add("udp_server", name, move || s.stats().samples());
    }

    /// Adds a robust client (kind `"client"`): connects, reconnects,
    /// connect failures, handler failures, connected.
    pub fn add_client(&self, name: impl Into<String>, client: &RobustClient) {
        let c = client.clone();
        self.add("client", name, move || c.stats().samples());
    }

    /// Reads every counter of every component now.
    pub fn snapshot(&self) -> Vec<Sample> {
        let sources = self.sources.lock().unwrap_or_else(|p| p.into_inner());
        sources
            .iter()
            .flat_map(|source| {
                (source.read)().into_iter().map(|(counter, value)| Sample {
                    kind: source.kind,
                    name: source.name.clone(),
                    counter,
                    value,
                })
            })
            .collect()
    }

    /// Publishes a snapshot to the `metrics` facade, as gauges named
    /// `machina_<kind>_<counter>` with a `name` label.
    #[cfg(feature = "metrics")]
    pub fn export(&self) {
        for sample in self.snapshot() {
            metrics::gauge!(
                format!("machina_{}_{}", sample.kind, sample.counter),
                "name" => sample.name
            )
            .set(sample.value);
        }
    }
}

impl fmt::Debug for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sources = self.sources.lock().unwrap_or_else(|p| p.into_inner());
        f.debug_list()
            .entries(sources.iter().map(|s| (s.kind, &s.name)))
            .finish()
    }
}

#[cfg(all(test, feature = "test-util"))]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::breaker::CircuitBreaker;
    use crate::limit::Limits;
    use crate::loops::Loop;
    use crate::retry::Rule;
    use crate::schedule::Schedule;
    use crate::testing::MockRuntime;

    fn value(samples: &[Sample], kind: &str, counter: &str) -> f64 {
        samples
            .iter()
            .find(|s| s.kind == kind && s.counter == counter)
            .map(|s| s.value)
            .unwrap_or_else(|| panic!("no {kind}.{counter}"))
    }

    #[test]
    fn one_snapshot_reads_every_registered_component() {
        let mock = MockRuntime::new();
        let rt = mock.runtime();
        let stats = Stats::new();
        let group = ConcurrentGroup::new(
            &rt,
            "api",
            Limits::new().max_starts(1, Duration::from_secs(1)),
        )
        .unwrap();
        let breaker = CircuitBreaker::builder("db")
            .min_calls(1)
            .build(&rt)
            .unwrap();
        let retry = Retry::new().rule(Rule::fixed(Duration::from_secs(1)).retries(1));
        let lp = Loop::builder(
            &rt,
            "tick",
            Schedule::fixed_rate("1s", crate::rt::MissedTick::Burst).unwrap(),
        )
        .count(3)
        .build(|lp: Loop| async move {
            // The second iteration starts 500 ms late.
            if lp.current_loop() == 0 {
                lp.runtime().sleep(Duration::from_millis(1500)).await;
            }
        });
        stats.add_group(&group);
        stats.add_breaker(&breaker);
        stats.add_retry("fetch", &retry);
        stats.add_loop(&lp);
        stats.add("custom", "mine", || vec![("answer", 42.0)]);
        mock.block_on(async {
            drop(group.acquire().await);
            drop(group.acquire().await); // waits a second for the window
            breaker
                .enter()
                .unwrap()
                .failure(&std::io::Error::other("x"));
            assert!(breaker.enter().is_err());
            let _ = retry
                .call(&rt, || async { Err::<(), _>(std::io::Error::other("x")) })
                .await;
            lp.start().unwrap().await.unwrap().unwrap();
        })
        .unwrap();
        let s = stats.snapshot();
        assert_eq!(value(&s, "group", "acquired"), 2.0);
        assert_eq!(value(&s, "group", "waited"), 1.0);
        assert_eq!(value(&s, "group", "wait_seconds"), 1.0);
        assert_eq!(value(&s, "breaker", "trips"), 1.0);
        assert_eq!(value(&s, "breaker", "broken_rejected"), 1.0);
        assert_eq!(value(&s, "retry", "retries"), 1.0);
        assert_eq!(value(&s, "retry", "given_up"), 1.0);
        assert_eq!(value(&s, "loop", "iterations"), 3.0);
        assert_eq!(value(&s, "loop", "runs"), 1.0);
        assert_eq!(value(&s, "loop", "lateness_seconds_max"), 0.5);
        assert_eq!(value(&s, "custom", "answer"), 42.0);
        assert!(format!("{stats:?}").contains("\"api\""));
    }

    #[cfg(feature = "metrics")]
    #[test]
    fn export_publishes_every_sample_as_a_labelled_gauge() {
        use metrics::{
            Counter, Gauge, GaugeFn, Histogram, Key, KeyName, Metadata, Recorder, SharedString,
            Unit,
        };

        /// A gauge as published: name, labels, value.
        type Published = (String, Vec<(String, String)>, f64);
        #[derive(Default)]
        struct Capture(Mutex<Vec<Published>>);
        struct Slot(Arc<Capture>, usize);
        impl GaugeFn for Slot {
            fn increment(&self, _: f64) {}
            fn decrement(&self, _: f64) {}
            fn set(&self, value: f64) {
                self.0.0.lock().unwrap()[self.1].2 = value;
            }
        }
        struct Rec(Arc<Capture>);
        impl Recorder for Rec {
            fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
            fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
            fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
            fn register_counter(&self, _: &Key, _: &Metadata<'_>) -> Counter {
                Counter::noop()
            }
            fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
                let mut seen = self.0.0.lock().unwrap();
                let labels = key
                    .labels()
                    .map(|l| (l.key().to_owned(), l.value().to_owned()))
                    .collect();
                seen.push((key.name().to_owned(), labels, f64::NAN));
                Gauge::from_arc(Arc::new(Slot(self.0.clone(), seen.len() - 1)))
            }
            fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
                Histogram::noop()
            }
        }

        let stats = Stats::new();
        stats.add("custom", "mine", || vec![("answer", 42.0), ("half", 0.5)]);
        let capture = Arc::new(Capture::default());
        let recorder = Rec(capture.clone());
        metrics::with_local_recorder(&recorder, || stats.export());
        let seen = capture.0.lock().unwrap().clone();
        let label = vec![("name".to_owned(), "mine".to_owned())];
        assert_eq!(
            seen,
            [
                ("machina_custom_answer".to_owned(), label.clone(), 42.0),
                ("machina_custom_half".to_owned(), label, 0.5),
            ]
        );
    }
}
