//! The `tracing` events of `Retry::call` (emitted by the call driver):
//! one per retry with the error, the wait and the retries left, and one
//! when it gives up.

#[allow(unused_imports, reason = "each area uses part of the shared prelude")]
use super::*;

use crate::test_kit::log_capture::Captured;
use tracing::Level;

/// Runs `f` with a capturing subscriber on this thread; returns the
/// call driver's events.
fn capture(f: impl FnOnce()) -> Vec<Captured> {
    let ((), events) = crate::test_kit::log_capture::capture(f);
    events
        .into_iter()
        .filter(|e| e.target.starts_with("machina_core::call"))
        .collect()
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
