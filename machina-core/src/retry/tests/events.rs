//! The `tracing` events of `Retry::call`: one per retry with the error,
//! the wait and the retries left, and one when it gives up.

#[allow(unused_imports, reason = "each area uses part of the shared prelude")]
use super::*;

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

/// One event of the retry module: its level and its fields, as text.
#[derive(Debug)]
struct Captured {
    level: Level,
    fields: Vec<(&'static str, String)>,
}

impl Captured {
    fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A subscriber that keeps the retry module's events (no dependency on
/// `tracing-subscriber`).
struct Capture(Arc<Mutex<Vec<Captured>>>);

struct Fields(Vec<(&'static str, String)>);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.push((field.name(), format!("{value:?}")));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.push((field.name(), value.to_owned()));
    }
}

impl Subscriber for Capture {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        if !event.metadata().target().starts_with("machina_core::retry") {
            return;
        }
        let mut fields = Fields(Vec::new());
        event.record(&mut fields);
        self.0.lock().unwrap().push(Captured {
            level: *event.metadata().level(),
            fields: fields.0,
        });
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}

/// Runs `f` with a capturing subscriber on this thread; returns the
/// retry module's events.
fn capture(f: impl FnOnce()) -> Vec<Captured> {
    let events = Arc::new(Mutex::new(Vec::new()));
    tracing::subscriber::with_default(Capture(events.clone()), f);
    std::mem::take(&mut *events.lock().unwrap())
}

#[test]
fn each_retry_emits_an_event_with_the_error_the_wait_and_the_retries_left() {
    let mock = MockRuntime::new();
    let retry = Retry::new()
        .rule(Rule::fixed(secs(5)).on::<DiskError>().retries(1))
        .rule(Rule::fixed(secs(2)).on::<HttpError>().retries(2));
    let events = capture(|| {
        let script = [fail(http(503)), fail(http(502)), fail(http(504))];
        let (result, starts) = call(&mock, &retry, script);
        assert!(result.is_err());
        assert_eq!(starts, [0, 2, 4].map(secs));
    });
    assert_eq!(events.len(), 3, "{events:?}");
    let retries: Vec<_> = events.iter().filter(|e| e.level == Level::WARN).collect();
    assert_eq!(retries.len(), 2, "{events:?}");
    for (event, (error, attempt, remaining)) in retries
        .iter()
        .zip([("http 503", "1", "1"), ("http 502", "2", "0")])
    {
        assert_eq!(event.field("message"), Some("call failed; retrying"));
        assert_eq!(event.field("error"), Some(error), "{event:?}");
        assert_eq!(event.field("wait"), Some("2s"), "{event:?}");
        assert_eq!(event.field("remaining"), Some(remaining), "{event:?}");
        assert_eq!(event.field("rule"), Some("1"), "{event:?}");
        assert_eq!(event.field("attempt"), Some(attempt), "{event:?}");
    }
    let gave_up = &events[2];
    assert_eq!(gave_up.level, Level::DEBUG);
    assert_eq!(gave_up.field("message"), Some("call failed; not retrying"));
    assert_eq!(gave_up.field("error"), Some("http 504"));
    assert_eq!(gave_up.field("attempts"), Some("3"));
    assert_eq!(gave_up.field("reason"), Some("RetriesExhausted"));
}

#[test]
fn an_unlimited_rule_reports_unlimited_retries_left() {
    let mock = MockRuntime::new();
    let retry = Retry::new().rule(Rule::fibonacci_with_base(ms(250)).unlimited());
    let events = capture(|| {
        let (result, _) = call(&mock, &retry, [fail(disk()), ok()]);
        assert!(result.is_ok());
    });
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].field("remaining"), Some("unlimited"));
    assert_eq!(events[0].field("wait"), Some("250ms"));
    assert_eq!(events[0].field("error"), Some("disk full"));
}

#[test]
fn success_emits_no_event() {
    let mock = MockRuntime::new();
    let retry = Retry::new().rule(Rule::fixed(secs(1)).retries(1));
    let events = capture(|| {
        call(&mock, &retry, [ok()]).0.unwrap();
    });
    assert!(events.is_empty(), "{events:?}");
}
