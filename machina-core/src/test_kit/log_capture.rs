//! Test support: a `tracing` subscriber that keeps the events logged on
//! the current thread, so tests can check what Machina logs (no
//! `tracing-subscriber` needed).

use std::fmt;
use std::sync::{Arc, Mutex};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Event, Level, Metadata, Subscriber};

/// One event: where it came from, its level, and its fields as text
/// (strings as they are, other values by `Debug`).
#[derive(Debug, Clone)]
pub(crate) struct Captured {
    pub(crate) target: String,
    pub(crate) level: Level,
    pub(crate) fields: Vec<(&'static str, String)>,
}

impl Captured {
    /// The value of field `name`.
    pub(crate) fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every field as `name=value; `.
    pub(crate) fn text(&self) -> String {
        self.fields
            .iter()
            .map(|(n, v)| format!("{n}={v}; "))
            .collect()
    }
}

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
    fn register_callsite(&self, _: &'static Metadata<'static>) -> Interest {
        // Other tests run on other threads without this subscriber: ask per
        // event rather than caching "always" for every thread.
        Interest::sometimes()
    }

    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut fields = Fields(Vec::new());
        event.record(&mut fields);
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Captured {
                target: event.metadata().target().to_owned(),
                level: *event.metadata().level(),
                fields: fields.0,
            });
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}

/// Runs `f` with the capturing subscriber on this thread; returns its
/// value and the events logged meanwhile.
pub(crate) fn capture<R>(f: impl FnOnce() -> R) -> (R, Vec<Captured>) {
    let events = Arc::new(Mutex::new(Vec::new()));
    let value = tracing::subscriber::with_default(Capture(events.clone()), f);
    let events = std::mem::take(&mut *events.lock().unwrap_or_else(|p| p.into_inner()));
    (value, events)
}
