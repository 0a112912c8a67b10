//! Error reporting to Sentry (aiomisc's `RavenSender`; feature `sentry`):
//! the [`sentry`](https://docs.rs/sentry) crate with its `tracing` layer.
//!
//! An [`Entrypoint`](super::Entrypoint) built by an adapter's
//! `entrypoint()` (or given [`SentryConfig`] through
//! [`EntrypointBuilder::sentry`](super::EntrypointBuilder::sentry)) starts
//! a Sentry client when a DSN is set — `SENTRY_DSN` in the environment, or
//! [`SentryConfig::dsn`] — and adds [`sentry_layer`] to the `tracing`
//! subscriber it installs. With no DSN nothing is started and one debug
//! line says so.
//!
//! What is reported:
//! - every `ERROR` event, and every `WARN` event that carries an `error`
//!   field and names an execute, a loop, a service, an emit, a group or a
//!   pool — a failed execute, a loop's handled error, a background task
//!   restarted after a failure — as a Sentry event whose tags are those
//!   names (`execute`, `loop`, `service`, `emit`, `group`, `pool`);
//! - other `WARN` and `INFO` events as breadcrumbs, sent with the next
//!   event; `DEBUG` and `TRACE` are not sent;
//! - with the `panic` integration (on), a panic, caught or not.
//!
//! On shutdown the entrypoint flushes what is queued, on the runtime's
//! blocking pool, within what is left of the shutdown timeout (one second
//! after a forced exit), so a program that stops does not lose its last
//! reports, and a Sentry that does not answer cannot hold the exit up.
//!
//! A program that sets up `tracing` itself adds [`sentry_layer`] to its
//! own subscriber; the entrypoint then still starts and flushes the client.
//!
//! The DSN is a secret of sorts (it lets anyone send events to the
//! project): no error or log line of Machina prints it.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sentry::integrations::tracing::{EventFilter, EventMapping};
use sentry::types::Dsn;
use tracing::field::{Field, Visit};
use tracing::{Level, Metadata, Subscriber};
use tracing_subscriber::registry::LookupSpan;

use super::env_config::EnvConfig;
use crate::rt::Runtime;

/// The fields whose values become an event's tags: the names of the parts
/// of a bot or a stack that failed.
pub const TAG_FIELDS: [&str; 6] = ["execute", "loop", "service", "emit", "group", "pool"];

/// A Sentry configuration that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SentryError {
    /// The DSN does not parse (it is not repeated here: it is a secret).
    #[error("invalid Sentry DSN: {reason}; expected https://<public key>@<host>/<project id>")]
    Dsn {
        /// Why it was refused.
        reason: String,
    },
    /// The sample rate is not between 0 and 1.
    #[error("invalid Sentry sample rate {0}; use a number from 0.0 to 1.0")]
    SampleRate(String),
}

/// Where and how to report to Sentry; see the module docs.
///
/// # Examples
///
/// ```
/// use machina_core::service::{EnvConfig, SentryConfig};
///
/// let env = EnvConfig::from_lookup(|name| match name {
///     EnvConfig::SENTRY_DSN => Some("https://key@sentry.example/42".to_owned()),
///     EnvConfig::SENTRY_ENVIRONMENT => Some("staging".to_owned()),
///     _ => None,
/// });
/// let config = SentryConfig::new().release("bot@1.2.0").apply_env(&env).unwrap();
/// assert!(config.is_enabled());
/// assert_eq!(config.environment_name(), Some("staging"));
///
/// let typo = EnvConfig::from_lookup(|name| {
///     (name == EnvConfig::SENTRY_DSN).then(|| "sentry.example/42".to_owned())
/// });
/// let err = SentryConfig::new().apply_env(&typo).unwrap_err();
/// assert!(!err.to_string().contains("sentry.example"), "the DSN is not printed");
/// ```
#[derive(Clone, Default, PartialEq)]
pub struct SentryConfig {
    dsn: Option<String>,
    environment: Option<String>,
    release: Option<String>,
    sample_rate: Option<f32>,
}

impl fmt::Debug for SentryConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SentryConfig")
            .field("dsn", &self.dsn.as_ref().map(|_| "<set>"))
            .field("environment", &self.environment)
            .field("release", &self.release)
            .field("sample_rate", &self.sample_rate)
            .finish()
    }
}

impl SentryConfig {
    /// No DSN (so nothing is reported until one is set), the client's
    /// defaults for the rest.
    pub fn new() -> Self {
        SentryConfig::default()
    }

    /// The project's DSN (`SENTRY_DSN` overrides it).
    pub fn dsn(mut self, dsn: impl Into<String>) -> Self {
        self.dsn = Some(dsn.into());
        self
    }

    /// The environment events are filed under, e.g. `production`
    /// (`SENTRY_ENVIRONMENT` overrides it).
    pub fn environment(mut self, environment: impl Into<String>) -> Self {
        self.environment = Some(environment.into());
        self
    }

    /// The release events are filed under, e.g. `my-bot@1.2.0`
    /// (`SENTRY_RELEASE` overrides it).
    pub fn release(mut self, release: impl Into<String>) -> Self {
        self.release = Some(release.into());
        self
    }

    /// The share of error events sent, from 0.0 to 1.0 (default 1.0).
    pub fn sample_rate(mut self, rate: f32) -> Self {
        self.sample_rate = Some(rate);
        self
    }

    /// Whether a DSN is set (else nothing is started).
    pub fn is_enabled(&self) -> bool {
        self.dsn.is_some()
    }

    /// The environment in force, if one is set.
    pub fn environment_name(&self) -> Option<&str> {
        self.environment.as_deref()
    }

    /// This configuration with `SENTRY_DSN`, `SENTRY_ENVIRONMENT` and
    /// `SENTRY_RELEASE` (as read into `env`) applied over it, checked. An
    /// empty `SENTRY_DSN` turns reporting off.
    ///
    /// # Errors
    /// [`SentryError`] for a DSN that does not parse or a sample rate out
    /// of range.
    pub fn apply_env(mut self, env: &EnvConfig) -> Result<Self, SentryError> {
        if let Some(dsn) = env.sentry_dsn() {
            self.dsn = (!dsn.trim().is_empty()).then(|| dsn.trim().to_owned());
        }
        if let Some(environment) = env.sentry_environment() {
            self.environment = Some(environment.to_owned());
        }
        if let Some(release) = env.sentry_release() {
            self.release = Some(release.to_owned());
        }
        self.check()?;
        Ok(self)
    }

    fn parsed_dsn(&self) -> Result<Option<Dsn>, SentryError> {
        self.dsn
            .as_deref()
            .map(|dsn| {
                Dsn::from_str(dsn).map_err(|e| SentryError::Dsn {
                    reason: e.to_string(),
                })
            })
            .transpose()
    }

    fn check(&self) -> Result<(), SentryError> {
        self.parsed_dsn()?;
        match self.sample_rate {
            Some(rate) if !(0.0..=1.0).contains(&rate) => {
                Err(SentryError::SampleRate(rate.to_string()))
            }
            _ => Ok(()),
        }
    }

    /// Starts the client and binds it to the process's main hub, if a DSN
    /// is set; `Ok(None)` (with one debug line) if not.
    ///
    /// # Errors
    /// [`SentryError`] as [`apply_env`](Self::apply_env).
    pub fn init(&self) -> Result<Option<SentryGuard>, SentryError> {
        self.check()?;
        let Some(dsn) = self.parsed_dsn()? else {
            tracing::debug!("no Sentry DSN set; errors are not reported to Sentry");
            return Ok(None);
        };
        let options = sentry::ClientOptions {
            dsn: Some(dsn),
            environment: self.environment.clone().map(Cow::Owned),
            release: self.release.clone().map(Cow::Owned),
            sample_rate: self.sample_rate.unwrap_or(1.0),
            // The entrypoint flushes within the shutdown timeout; dropping
            // the guard afterwards must not wait again.
            shutdown_timeout: Duration::ZERO,
            ..sentry::ClientOptions::default()
        };
        let guard = sentry::init(options);
        // `init` binds the client to this thread's hub; threads whose hub
        // is made later copy the process's main hub, so bind it there too
        // (the entrypoint may run on any thread).
        let client = sentry::Hub::current().client();
        if let Some(client) = &client {
            sentry::Hub::main().bind_client(Some(client.clone()));
        }
        tracing::debug!(
            environment = ?self.environment,
            release = ?self.release,
            "reporting errors to Sentry"
        );
        Ok(Some(SentryGuard {
            client,
            guard: Some(guard),
            stuck: AtomicBool::new(false),
        }))
    }
}

/// A running Sentry client (from [`SentryConfig::init`]); dropping it
/// closes the client without waiting, so flush first. After a flush that
/// did not finish it is not closed at all: its transport thread, blocked
/// on a Sentry that does not answer, ends with the process.
#[must_use = "dropping the guard closes the Sentry client"]
pub struct SentryGuard {
    client: Option<Arc<sentry::Client>>,
    guard: Option<sentry::ClientInitGuard>,
    /// A flush did not finish: the transport's thread is still sending.
    stuck: AtomicBool,
}

impl Drop for SentryGuard {
    fn drop(&mut self) {
        // Closing the client joins its transport thread, which waits for
        // the request under way; after a flush that timed out that may be
        // a Sentry that never answers, and the exit would hang. The thread
        // is left to end with the process instead.
        if self.stuck.load(Ordering::Relaxed) {
            std::mem::forget(self.guard.take());
        }
    }
}

impl fmt::Debug for SentryGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SentryGuard").finish_non_exhaustive()
    }
}

impl SentryGuard {
    /// Sends what is queued, waiting at most `limit`, on `rt`'s blocking
    /// pool; whether everything was sent.
    pub async fn flush(&self, rt: &Runtime, limit: Duration) -> bool {
        let Some(client) = self.client.clone().filter(|c| c.is_enabled()) else {
            return true;
        };
        let flushed = match rt.spawn_blocking(move || client.flush(Some(limit))) {
            Ok(flushed) => flushed.await.unwrap_or(false),
            Err(error) => {
                tracing::warn!(%error, "cannot flush Sentry's queue");
                false
            }
        };
        if !flushed {
            self.stuck.store(true, Ordering::Relaxed);
        }
        flushed
    }

    /// Whether the client sends events (it has a valid DSN).
    pub fn is_enabled(&self) -> bool {
        self.client.as_ref().is_some_and(|c| c.is_enabled())
    }
}

/// The `tracing` layer that reports to Sentry as the module docs say; the
/// entrypoint adds it to the subscriber it installs, and a program with a
/// subscriber of its own adds it there.
///
/// # Examples
///
/// ```
/// use tracing_subscriber::layer::SubscriberExt as _;
///
/// let subscriber = tracing_subscriber::registry().with(machina_core::service::sentry_layer());
/// tracing::subscriber::with_default(subscriber, || {
///     tracing::warn!(execute = "fetch", error = "timed out", "execute failed");
/// });
/// ```
pub fn sentry_layer<S>() -> sentry::integrations::tracing::SentryLayer<S>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    sentry::integrations::tracing::layer().event_mapper(|event, ctx| {
        let what = what_to_send(event.metadata());
        if what.contains(EventFilter::Event) {
            let mut report = sentry::integrations::tracing::event_from_event(event, &ctx);
            let mut names = Names::default();
            event.record(&mut names);
            report.tags.extend(names.0);
            EventMapping::Event(report)
        } else if what.contains(EventFilter::Breadcrumb) {
            EventMapping::Breadcrumb(sentry::integrations::tracing::breadcrumb_from_event(
                event, &ctx,
            ))
        } else {
            EventMapping::Ignore
        }
    })
}

/// What an event becomes in Sentry: see the module docs.
pub fn what_to_send(metadata: &Metadata<'_>) -> EventFilter {
    let fields = metadata.fields();
    match *metadata.level() {
        Level::ERROR => EventFilter::Event,
        Level::WARN
            if fields.field("error").is_some()
                && TAG_FIELDS.iter().any(|name| fields.field(name).is_some()) =>
        {
            EventFilter::Event
        }
        Level::WARN | Level::INFO => EventFilter::Breadcrumb,
        _ => EventFilter::Ignore,
    }
}

/// The values of an event's [`TAG_FIELDS`].
#[derive(Default)]
struct Names(BTreeMap<String, String>);

impl Visit for Names {
    fn record_str(&mut self, field: &Field, value: &str) {
        if TAG_FIELDS.contains(&field.name()) {
            self.0.insert(field.name().to_owned(), value.to_owned());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if TAG_FIELDS.contains(&field.name()) {
            // `%name` records a Display value, whose Debug is its Display.
            self.0.insert(field.name().to_owned(), format!("{value:?}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &'static [(&'static str, &'static str)]) -> EnvConfig {
        EnvConfig::from_lookup(move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        })
    }

    #[test]
    fn the_environment_overrides_the_configuration() {
        let config = SentryConfig::new()
            .dsn("https://a@one.example/1")
            .environment("dev")
            .release("r1")
            .apply_env(&env(&[
                (EnvConfig::SENTRY_DSN, "https://b@two.example/2"),
                (EnvConfig::SENTRY_RELEASE, "r2"),
            ]))
            .unwrap();
        assert_eq!(config.dsn.as_deref(), Some("https://b@two.example/2"));
        assert_eq!(config.environment_name(), Some("dev"));
        assert_eq!(config.release.as_deref(), Some("r2"));
        let off = SentryConfig::new()
            .dsn("https://a@one.example/1")
            .apply_env(&env(&[(EnvConfig::SENTRY_DSN, " ")]))
            .unwrap();
        assert!(!off.is_enabled());
    }

    #[test]
    fn a_bad_dsn_or_rate_is_refused_without_printing_the_dsn() {
        for bad in [
            "not a url",
            "https://sentry.example/1",
            "https://key@sentry.example/",
        ] {
            let err = SentryConfig::new()
                .dsn(bad)
                .apply_env(&EnvConfig::default())
                .unwrap_err();
            assert!(matches!(err, SentryError::Dsn { .. }), "{bad}: {err:?}");
            assert!(!err.to_string().contains("sentry.example"), "{err}");
        }
        let err = SentryConfig::new().sample_rate(1.5).init().unwrap_err();
        assert_eq!(err, SentryError::SampleRate("1.5".into()));
        let printed = format!(
            "{:?}",
            SentryConfig::new().dsn("https://secret@h.example/1")
        );
        assert!(!printed.contains("secret"), "{printed}");
    }

    #[test]
    fn no_dsn_starts_nothing() {
        assert!(SentryConfig::new().init().unwrap().is_none());
    }

    /// The filter: which events become Sentry events, which breadcrumbs.
    #[test]
    fn failures_with_names_are_events_other_warnings_breadcrumbs() {
        use std::sync::{Arc, Mutex};
        use tracing_subscriber::layer::{Context, SubscriberExt as _};

        struct Classify(Arc<Mutex<Vec<(String, u32)>>>);
        impl<S: Subscriber> tracing_subscriber::Layer<S> for Classify {
            fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
                let mut message = Message::default();
                event.record(&mut message);
                let what = what_to_send(event.metadata()).bits();
                self.0.lock().unwrap().push((message.0, what));
            }
        }
        #[derive(Default)]
        struct Message(String);
        impl Visit for Message {
            fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
                if field.name() == "message" {
                    self.0 = format!("{value:?}");
                }
            }
        }
        let seen = Arc::new(Mutex::new(Vec::new()));
        let subscriber = tracing_subscriber::registry().with(Classify(seen.clone()));
        tracing::subscriber::with_default(subscriber, || {
            tracing::error!("a");
            tracing::warn!(execute = "fetch", error = "boom", "b");
            tracing::warn!(r#loop = "poll", error = "boom", "c");
            tracing::warn!(error = "boom", "d");
            tracing::warn!(service = "db", "e");
            tracing::info!("f");
            tracing::debug!(execute = "fetch", error = "boom", "g");
        });
        let (event, crumb, ignore) = (
            EventFilter::Event.bits(),
            EventFilter::Breadcrumb.bits(),
            EventFilter::Ignore.bits(),
        );
        let expected: Vec<(String, u32)> = [
            ("a", event),
            ("b", event),
            ("c", event),
            ("d", crumb),
            ("e", crumb),
            ("f", crumb),
            ("g", ignore),
        ]
        .into_iter()
        .map(|(m, w)| (m.to_owned(), w))
        .collect();
        assert_eq!(*seen.lock().unwrap(), expected);
    }
}
