//! Cron schedules on the mock runtime's calendar clock: across midnight
//! and a month end, across a daylight-saving change, and refused specs.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use jiff::Timestamp;
use jiff::tz::TimeZone;

use crate::loops::{Loop, LoopEnd};
use crate::schedule::{Schedule, ScheduleError};
use crate::testing::MockRuntime;

fn at(rfc3339: &str) -> SystemTime {
    SystemTime::from(rfc3339.parse::<Timestamp>().expect("a timestamp"))
}

fn local(time: SystemTime, zone: &str) -> String {
    let zoned = Timestamp::try_from(time)
        .expect("in range")
        .to_zoned(TimeZone::get(zone).expect("zone"));
    zoned.strftime("%Y-%m-%d %H:%M %Z").to_string()
}

/// Runs a loop on `schedule` for `count` instant runs from `start`;
/// returns the calendar time of each run.
fn runs(start: &str, schedule: Schedule, count: u64) -> Vec<SystemTime> {
    runs_taking(start, schedule, count, Duration::ZERO)
}

/// As [`runs`], each run taking `work` of virtual time.
fn runs_taking(start: &str, schedule: Schedule, count: u64, work: Duration) -> Vec<SystemTime> {
    let mock = MockRuntime::builder().start_time(at(start)).build();
    let rt = mock.runtime();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let lp = Loop::builder(&rt, "cron", schedule)
        .count(count)
        .build(move |lp: Loop| {
            let log = log.clone();
            async move {
                log.lock().unwrap().push(lp.runtime().calendar_now());
                lp.runtime().sleep(work).await;
            }
        });
    let end = mock
        .block_on(lp.start().unwrap())
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(end, LoopEnd::Completed);
    seen.lock().unwrap().clone()
}

#[test]
fn a_daily_schedule_crosses_midnight_and_the_month_end() {
    let times = runs(
        "2026-01-31T23:00:00Z",
        Schedule::cron("0 0 0 * * *", "UTC").unwrap(),
        2,
    );
    let shown: Vec<_> = times.iter().map(|t| local(*t, "UTC")).collect();
    assert_eq!(shown, ["2026-02-01 00:00 UTC", "2026-02-02 00:00 UTC"]);
}

#[test]
fn an_hourly_schedule_follows_local_time_across_the_dst_change() {
    // Europe/Berlin springs forward on 2026-03-29 at 02:00 local (01:00 UTC):
    // there is no 02:00 that night.
    let times = runs(
        "2026-03-28T22:30:00Z",
        Schedule::cron("0 0 * * * *", "Europe/Berlin").unwrap(),
        4,
    );
    let shown: Vec<_> = times.iter().map(|t| local(*t, "Europe/Berlin")).collect();
    assert_eq!(
        shown,
        [
            "2026-03-29 00:00 CET",
            "2026-03-29 01:00 CET",
            "2026-03-29 03:00 CEST",
            "2026-03-29 04:00 CEST"
        ]
    );
    // One real hour apart throughout.
    for pair in times.windows(2) {
        assert_eq!(
            pair[1].duration_since(pair[0]).unwrap(),
            Duration::from_secs(3600)
        );
    }
}

#[test]
fn five_field_patterns_run_on_whole_minutes() {
    let times = runs(
        "2026-06-01T12:00:30Z",
        Schedule::cron("*/15 * * * *", "UTC").unwrap(),
        3,
    );
    let shown: Vec<_> = times.iter().map(|t| local(*t, "UTC")).collect();
    assert_eq!(
        shown,
        [
            "2026-06-01 12:15 UTC",
            "2026-06-01 12:30 UTC",
            "2026-06-01 12:45 UTC"
        ]
    );
}

#[test]
fn bad_specs_are_refused_at_registration() {
    let err = Schedule::cron("61 * * * *", "UTC").unwrap_err();
    assert!(matches!(err, ScheduleError::Cron(_)));
    assert!(
        err.to_string()
            .contains("invalid cron pattern \"61 * * * *\""),
        "{err}"
    );
    let err = Schedule::cron("* * * * *", "Mars/Olympus").unwrap_err();
    assert!(
        err.to_string()
            .contains("unknown time zone \"Mars/Olympus\""),
        "{err}"
    );
    let lp = Loop::builder(
        &MockRuntime::new().runtime(),
        "c",
        Schedule::cron("* * * * *", "UTC").unwrap(),
    )
    .build(|_lp: Loop| async {});
    assert_eq!(
        lp.change_interval("1s").unwrap_err(),
        ScheduleError::NoInterval
    );
}

#[test]
fn matches_missed_while_a_body_overran_are_skipped() {
    let schedule = Schedule::cron("*/5 * * * *", "UTC").unwrap();
    // Each run takes 7 minutes, overrunning the next five-minute slot.
    let times = runs_taking(
        "2026-06-01T12:00:00Z",
        schedule,
        3,
        Duration::from_secs(7 * 60),
    );
    let shown: Vec<_> = times.iter().map(|t| local(*t, "UTC")).collect();
    assert_eq!(
        shown,
        [
            "2026-06-01 12:05 UTC",
            "2026-06-01 12:15 UTC",
            "2026-06-01 12:25 UTC"
        ]
    );
}

/// Found by the `cron` fuzz target: a seconds field of a lone comma parsed
/// as a field that matches nothing, and looking for the next match took
/// minutes of CPU.
#[test]
fn a_field_with_an_empty_list_item_is_refused_at_once() {
    for pattern in [
        ",      * *                   5           *               3           *         ",
        ", * * * * *",
        "0 5, * * * *",
        "0 1,,2 * * *",
        // Found by the fuzz target too: a day-of-week of a lone `+`.
        "        *                   2        5                   2        +  \n         ",
        "0 0 * * +",
    ] {
        let err = crate::schedule::CronSchedule::new(pattern, "UTC").unwrap_err();
        assert!(err.to_string().contains("empty item"), "{pattern:?}: {err}");
    }
    assert!(crate::schedule::CronSchedule::new("0 1,2 * * *", "UTC").is_ok());
    assert!(crate::schedule::CronSchedule::new("0 0 * * +1", "UTC").is_ok());
}
