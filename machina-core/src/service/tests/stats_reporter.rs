//! The stats reporter on virtual time: a report every period, one line
//! per component, with a loop's lateness percentiles.

use std::time::Duration;

use super::super::*;
use crate::limit::{ConcurrentGroup, Limits};
use crate::loops::Loop;
use crate::schedule::Schedule;
use crate::stats::Stats;
use crate::testing::MockRuntime;

#[test]
fn a_report_every_period_with_one_line_per_component() {
    let mock = MockRuntime::new();
    let rt = mock.runtime();
    let group = ConcurrentGroup::new(&rt, "api", Limits::new().max_in_flight(2)).unwrap();
    let lp = Loop::builder(&rt, "tick", Schedule::after("1s").unwrap())
        .count(3)
        .build(|_lp: Loop| async {});
    let stats = Stats::new();
    stats.add_group(&group);
    stats.add_loop(&lp);
    let stack = Supervisor::builder(&rt)
        .service(
            "stats",
            StatsReporter::new(stats, Duration::from_secs(60)),
            &[],
        )
        .build()
        .unwrap();
    let t0 = rt.now();
    let (times, events) = crate::test_kit::log_capture::capture(|| {
        mock.block_on(async {
            stack.start().await.unwrap();
            let run = lp.start().unwrap();
            run.await.unwrap().unwrap();
            drop(group.try_acquire().unwrap());
            rt.sleep(Duration::from_secs(125)).await;
            stack.stop().await;
            rt.now() - t0
        })
        .unwrap()
    });
    assert_eq!(times, Duration::from_secs(127));
    let lines: Vec<String> = events
        .iter()
        .filter(|e| e.target == "machina::stats")
        .filter_map(|e| e.field("message").map(str::to_owned))
        .collect();
    // Reports at 0, 60 and 120 s: two lines each.
    assert_eq!(lines.len(), 6, "{lines:?}");
    assert!(lines[0].starts_with("group api: acquired=0"), "{lines:?}");
    // The first report comes as the stack starts, before the loop runs.
    assert!(
        lines[1].starts_with("loop tick: runs=0 iterations=0"),
        "{lines:?}"
    );
    assert!(lines[2].starts_with("group api: acquired=1"), "{lines:?}");
    assert_eq!(
        lines[2..4],
        lines[4..6],
        "nothing moved between 60 and 120 s"
    );
    assert!(
        lines[5].contains("iterations=3") && lines[5].contains("lateness_seconds_p99=0"),
        "{lines:?}"
    );
}
