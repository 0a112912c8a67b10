//! The pure [`StackPlan`]: validation, start and stop stages, and what a
//! full stop may stop next; and [`Supervisor::shutdown`], which follows the
//! plan within a deadline, on exact virtual instants.

use std::sync::Arc;
use std::time::Duration;

use super::super::*;
use super::{Log, ms};
use crate::rt::Runtime;
use crate::testing::MockRuntime;

fn plan<const N: usize>(services: [(&str, &[&str]); N]) -> StackPlan {
    StackPlan::new(services.map(|(name, deps)| (name, deps.to_vec()))).unwrap()
}

#[test]
fn stages_of_a_chain_a_diamond_and_independent_services() {
    let chain = plan([("a", &[]), ("b", &["a"]), ("c", &["b"])]);
    assert_eq!(chain.start_stages(), [["a"], ["b"], ["c"]]);
    assert_eq!(chain.stop_stages(), [["c"], ["b"], ["a"]]);

    let diamond = plan([
        ("base", &[]),
        ("left", &["base"]),
        ("right", &["base"]),
        ("top", &["left", "right"]),
        ("alone", &[]),
    ]);
    assert_eq!(
        diamond.start_stages(),
        [vec!["base", "alone"], vec!["left", "right"], vec!["top"]]
    );
    // A service stops once its dependents have: `alone` has none, so it
    // stops in the first stage, with `top` — not last, as reversing the
    // start stages would have it.
    assert_eq!(
        diamond.stop_stages(),
        [vec!["top", "alone"], vec!["left", "right"], vec!["base"]]
    );
    assert_eq!(diamond.dependents("base"), ["left", "right"]);
    assert_eq!(diamond.dependencies("top"), ["left", "right"]);
    assert!(diamond.dependencies("nobody").is_empty());
    assert_eq!(diamond.len(), 5);
    assert!(StackPlan::default().start_stages().is_empty());
}

#[test]
fn a_longest_chain_decides_the_stage() {
    // d needs a directly and through b -> c: it starts after c.
    let p = plan([("a", &[]), ("b", &["a"]), ("c", &["b"]), ("d", &["a", "c"])]);
    assert_eq!(p.start_stages(), [["a"], ["b"], ["c"], ["d"]]);
    assert_eq!(p.stop_stages(), [["d"], ["c"], ["b"], ["a"]]);
}

#[test]
fn bad_graphs_are_refused_with_what_is_wrong() {
    let dup = StackPlan::new([("a", Vec::<&str>::new()), ("a", Vec::new())]).unwrap_err();
    assert_eq!(dup, GraphError::Duplicate("a".into()));
    let unknown = StackPlan::new([("a", vec!["ghost"])]).unwrap_err();
    assert_eq!(
        unknown,
        GraphError::UnknownDependency {
            service: "a".into(),
            missing: "ghost".into()
        }
    );
    let cycle = StackPlan::new([
        ("root", Vec::<&str>::new()),
        ("a", vec!["root", "c"]),
        ("b", vec!["a"]),
        ("c", vec!["b"]),
    ])
    .unwrap_err();
    assert_eq!(
        cycle,
        GraphError::Cycle(vec!["a".into(), "c".into(), "b".into(), "a".into()])
    );
    let self_loop = StackPlan::new([("a", vec!["a"])]).unwrap_err();
    assert_eq!(self_loop, GraphError::Cycle(vec!["a".into(), "a".into()]));
}

#[test]
fn what_a_full_stop_may_stop_now() {
    let p = plan([
        ("db", &[]),
        ("api", &["db"]),
        ("jobs", &["db"]),
        ("cron", &[]),
    ]);
    // Newest first; db waits for its dependents, running or stopping.
    assert_eq!(
        p.stoppable_now(&["db", "api", "jobs", "cron"], &[]),
        ["cron", "jobs", "api"]
    );
    assert!(p.stoppable_now(&["db"], &["api"]).is_empty());
    assert_eq!(p.stoppable_now(&["db"], &[]), ["db"]);
}

#[test]
fn services_added_and_removed_keep_the_plan_valid() {
    let mut p = plan([("db", &[])]);
    p.add("cache", &["db"]).unwrap();
    assert_eq!(p.start_stages(), [["db"], ["cache"]]);
    assert_eq!(
        p.add("cache", &[]),
        Err(GraphError::Duplicate("cache".into()))
    );
    assert!(matches!(
        p.add("x", &["ghost"]),
        Err(GraphError::UnknownDependency { .. })
    ));
    p.remove("db");
    // The dangling dependency orders nothing any more.
    assert_eq!(p.start_stages(), [["cache"]]);
    assert!(!p.contains("db"));
}

/// Takes `stop_ms` to stop (or never, for `None`) and logs the virtual
/// span of its stop.
struct Stopping {
    name: &'static str,
    rt: Runtime,
    stop_ms: Option<u64>,
    log: Log,
}

impl Service for Stopping {
    fn start(self: Arc<Self>, _ctx: ServiceContext) -> ServiceFuture {
        Box::pin(async { Ok(()) })
    }

    fn stop(self: Arc<Self>, ctx: StopContext) -> ServiceFuture {
        Box::pin(async move {
            self.log
                .lock()
                .unwrap()
                .push(format!("{} told {:?}", self.name, ctx.reason()));
            match self.stop_ms {
                Some(n) => self.rt.sleep(ms(n)).await,
                None => std::future::pending().await,
            }
            Ok(())
        })
    }

    fn graceful_shutdown_timeout(&self) -> Option<Duration> {
        Some(Duration::from_secs(3600))
    }
}

fn stack_of(
    rt: &Runtime,
    log: &Log,
    services: &[(&'static str, Option<u64>, &[&str])],
) -> Supervisor {
    let mut builder = Supervisor::builder(rt);
    for (name, stop_ms, deps) in services {
        let service = Stopping {
            name,
            rt: rt.clone(),
            stop_ms: *stop_ms,
            log: log.clone(),
        };
        builder = builder.service(name, service, deps);
    }
    builder.build().unwrap()
}

/// Starts `stack`, then shuts it down with a deadline `deadline_ms` away
/// and `interrupt`; returns the report and how long the shutdown took.
fn start_then_shut_down(
    mock: &MockRuntime,
    stack: &Supervisor,
    deadline_ms: u64,
    interrupt: impl std::future::Future<Output = ()>,
) -> (StopReport, Duration) {
    let rt = mock.runtime();
    mock.block_on(async {
        stack.start().await.unwrap();
        let t0 = rt.now();
        let report = stack
            .shutdown(StopReason::Signal, t0 + ms(deadline_ms), interrupt)
            .await;
        (report, rt.now() - t0)
    })
    .unwrap()
}

#[test]
fn a_stage_of_two_100ms_stops_takes_100ms() {
    let mock = MockRuntime::new();
    let rt = mock.runtime();
    let log = Log::default();
    let stack = stack_of(&rt, &log, &[("a", Some(100), &[]), ("b", Some(100), &[])]);
    assert_eq!(stack.plan().stop_stages(), [["a", "b"]]);
    let (report, took) = start_then_shut_down(&mock, &stack, 1000, std::future::pending());
    assert_eq!(took, ms(100));
    assert!(report.is_clean());
    assert_eq!(report.cut_short, None);
    let mut stopped = report.stopped.clone();
    stopped.sort();
    assert_eq!(stopped, ["a", "b"]);
}

#[test]
fn a_shutdown_past_its_deadline_names_what_did_not_stop() {
    // db <- api, db <- stuck: api stops (100 ms), stuck never does, so db
    // is never reached; the deadline at 500 ms ends it.
    let mock = MockRuntime::new();
    let rt = mock.runtime();
    let log = Log::default();
    let stack = stack_of(
        &rt,
        &log,
        &[
            ("db", Some(10), &[]),
            ("api", Some(100), &["db"]),
            ("stuck", None, &["db"]),
        ],
    );
    let (report, took) = start_then_shut_down(&mock, &stack, 500, std::future::pending());
    assert_eq!(took, ms(500));
    assert_eq!(report.cut_short, Some(CutShort::Deadline));
    assert_eq!(report.stopped, ["api"]);
    assert_eq!(report.not_stopped, ["stuck", "db"]);
    assert!(!report.is_clean());
    let mut told = log.lock().unwrap().clone();
    told.sort();
    // db was never told to stop: its dependent never finished.
    assert_eq!(told, ["api told Signal", "stuck told Signal"]);
}

#[test]
fn an_interrupt_already_there_stops_nothing() {
    let mock = MockRuntime::new();
    let rt = mock.runtime();
    let log = Log::default();
    let stack = stack_of(
        &rt,
        &log,
        &[("a", Some(100), &[]), ("b", Some(100), &["a"])],
    );
    let (report, took) = start_then_shut_down(&mock, &stack, 1000, std::future::ready(()));
    assert_eq!(took, Duration::ZERO);
    assert_eq!(report.cut_short, Some(CutShort::Interrupted));
    assert_eq!(report.not_stopped, ["b", "a"]);
    assert!(report.stopped.is_empty());
    assert!(log.lock().unwrap().is_empty(), "no stop was called");
    assert_eq!(mock.elapsed(), Duration::ZERO);
}
