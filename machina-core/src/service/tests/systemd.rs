//! systemd's notify protocol on virtual time: what is sent, when, and
//! that a sink's failure or the absence of systemd changes nothing else.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::super::*;
use super::{Scripted, ms};
use crate::rt::Runtime;
use crate::testing::MockRuntime;

/// Records each message with the virtual instant it was sent at.
#[derive(Clone)]
struct Recorded {
    rt: Runtime,
    t0: Instant,
    sent: Arc<Mutex<Vec<(Duration, SdMessage)>>>,
    fail: bool,
}

impl Recorded {
    fn new(rt: &Runtime) -> Self {
        Recorded {
            rt: rt.clone(),
            t0: rt.now(),
            sent: Arc::default(),
            fail: false,
        }
    }

    fn sent(&self) -> Vec<(Duration, SdMessage)> {
        self.sent.lock().unwrap().clone()
    }
}

impl SdSink for Recorded {
    fn send(&self, messages: &[SdMessage]) -> std::io::Result<()> {
        let at = self.rt.now() - self.t0;
        let mut sent = self.sent.lock().unwrap();
        sent.extend(messages.iter().map(|m| (at, m.clone())));
        if self.fail {
            return Err(std::io::Error::other("no one listens"));
        }
        Ok(())
    }
}

#[test]
fn ready_after_the_start_stopping_at_the_shutdown_and_pings_at_half_the_watchdog() {
    let mock = MockRuntime::new();
    let rt = mock.runtime();
    let log = Arc::default();
    let sink = Recorded::new(&rt);
    let mut db = Scripted::new("db", &rt, &log);
    db.start_ms = 300;
    let entrypoint = Entrypoint::builder(&rt)
        .service("db", db, &[])
        .plugin(Systemd::with_sink(
            sink.clone(),
            Some(Duration::from_secs(4)),
        ))
        .build()
        .unwrap();
    let outcome = mock
        .block_on(entrypoint.run(rt.sleep(Duration::from_secs(5))))
        .unwrap();
    assert_eq!(outcome.exit_code, 0);
    let sent = sink.sent();
    let pings: Vec<Duration> = sent
        .iter()
        .filter(|(_, m)| *m == SdMessage::Watchdog)
        .map(|(at, _)| *at)
        .collect();
    // Every 2 s from the watchdog's start, until the shutdown stops it.
    assert_eq!(pings, [ms(0), ms(2000), ms(4000)]);
    let others: Vec<(Duration, SdMessage)> = sent
        .into_iter()
        .filter(|(_, m)| *m != SdMessage::Watchdog)
        .collect();
    assert_eq!(
        others,
        [
            (ms(300), SdMessage::Ready),
            // The watchdog is ready at once, the db after 300 ms.
            (
                ms(300),
                SdMessage::Status("running: sd-watchdog, db".into())
            ),
            // The main future (a 5 s sleep from t0) ends the run.
            (ms(5000), SdMessage::Stopping),
            (ms(5000), SdMessage::Status("stopping".into())),
        ]
    );
}

#[test]
fn a_failed_start_is_never_reported_ready() {
    let mock = MockRuntime::new();
    let rt = mock.runtime();
    let log = Arc::default();
    let sink = Recorded::new(&rt);
    let mut db = Scripted::new("db", &rt, &log);
    db.fail_start = true;
    let outcome = mock
        .block_on(
            Entrypoint::builder(&rt)
                .service("db", db, &[])
                .plugin(Systemd::with_sink(sink.clone(), None))
                .build()
                .unwrap()
                .run(async {}),
        )
        .unwrap();
    assert_eq!(outcome.exit_code, 1);
    assert!(sink.sent().is_empty(), "{:?}", sink.sent());
}

#[test]
fn a_sink_that_fails_is_logged_and_changes_nothing_else() {
    let mock = MockRuntime::new();
    let rt = mock.runtime();
    let mut sink = Recorded::new(&rt);
    sink.fail = true;
    let entrypoint = Entrypoint::builder(&rt)
        .plugin(Systemd::with_sink(
            sink.clone(),
            Some(Duration::from_secs(2)),
        ))
        .build()
        .unwrap();
    let (outcome, events) = crate::test_kit::log_capture::capture(|| {
        mock.block_on(entrypoint.run(rt.sleep(ms(3500)))).unwrap()
    });
    assert_eq!(outcome.exit_code, 0);
    // Pings at 0, 1, 2 and 3 s were all tried.
    assert_eq!(
        sink.sent()
            .iter()
            .filter(|(_, m)| *m == SdMessage::Watchdog)
            .count(),
        4
    );
    assert!(
        events
            .iter()
            .any(|e| e.field("message") == Some("systemd notification not sent")),
        "{events:?}"
    );
}

#[test]
fn off_systemd_nothing_is_added_to_the_stack() {
    let mock = MockRuntime::new();
    let rt = mock.runtime();
    let entrypoint = Entrypoint::builder(&rt)
        .plugin(Systemd::off())
        .build()
        .unwrap();
    assert!(entrypoint.supervisor().plan().is_empty());
    let outcome = mock.block_on(entrypoint.run(async {})).unwrap();
    assert_eq!(outcome.exit_code, 0);
}
