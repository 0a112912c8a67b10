//! Logging set-up for a program run by an [`Entrypoint`](super::Entrypoint)
//! (aiomisc's `log_level` / `log_format`), with `tracing-subscriber` and a
//! non-blocking writer (feature `logging`).
//!
//! Configured from the builder and, over it, from the environment:
//! `MACHINA_LOG_LEVEL` (a `tracing` filter such as `info` or
//! `machina_core=debug,warn`) and `MACHINA_LOG_FORMAT` (`plain`, `color`,
//! `json`, or `journald` with feature `journald`). Nothing is installed
//! when the application has set up `tracing` itself.
//!
//! `journald` sends each event to the systemd journal's native socket
//! (`/run/systemd/journal/socket`) with `tracing-journald`, keeping its
//! fields; levels map to priorities ERROR 3, WARN 4, INFO 5, DEBUG 6,
//! TRACE 7. The socket is checked when the configuration is resolved, so a
//! program asked to log to a journal that is not there stops with
//! [`LogError::Journald`] before anything starts, instead of logging
//! nowhere.

use std::fmt;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

use super::env_config::EnvConfig;

/// How log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LogFormat {
    /// Plain text.
    Plain,
    /// Text with colours.
    Color,
    /// One JSON object per line.
    Json,
    /// The systemd journal (feature `journald`; see the module docs).
    Journald,
}

/// A logging configuration that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LogError {
    /// An unknown format name.
    #[error("unknown log format {0:?}; use plain, color, json or journald")]
    Format(String),
    /// `journald` was asked for, but Machina was built without its
    /// `journald` feature.
    #[error("log format journald needs Machina's `journald` feature")]
    JournaldNotBuilt,
    /// `journald` was asked for, but the journal's socket cannot be reached.
    #[error(
        "cannot reach the systemd journal at /run/systemd/journal/socket: {reason}; \
         run under systemd or choose another log format"
    )]
    Journald {
        /// The operating system's error.
        reason: String,
    },
    /// A level or filter `tracing` cannot parse.
    #[error("invalid log level {level:?}: {reason}; use e.g. info, debug or my_crate=debug,warn")]
    Level {
        /// What was given.
        level: String,
        /// Why it was refused.
        reason: String,
    },
}

/// Keeps the non-blocking writer running; dropping it flushes the log,
/// and later events are written to standard error directly.
pub struct LogGuard {
    _guard: Option<super::log_writer::QueueGuard>,
}

impl fmt::Debug for LogGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogGuard").finish_non_exhaustive()
    }
}

/// A logging configuration; see the module docs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    level: String,
    format: LogFormat,
    syslog_identifier: Option<String>,
    sentry: bool,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".to_owned(),
            format: LogFormat::Plain,
            syslog_identifier: None,
            sentry: false,
        }
    }
}

impl LogConfig {
    /// `info`, plain text.
    pub fn new() -> Self {
        LogConfig::default()
    }

    /// The level or filter.
    pub fn level(mut self, level: impl Into<String>) -> Self {
        self.level = level.into();
        self
    }

    /// The format.
    pub fn format(mut self, format: LogFormat) -> Self {
        self.format = format;
        self
    }

    /// The `SYSLOG_IDENTIFIER` of journal entries (format `journald`);
    /// the program's file name by default.
    pub fn syslog_identifier(mut self, identifier: impl Into<String>) -> Self {
        self.syslog_identifier = Some(identifier.into());
        self
    }

    /// Whether to add [`sentry_layer`](super::sentry_layer) to the
    /// subscriber (feature `sentry`; the entrypoint turns it on when it has
    /// started a Sentry client). Without the feature it changes nothing.
    pub fn report_to_sentry(mut self, report: bool) -> Self {
        self.sentry = report;
        self
    }

    /// This configuration with the environment's `MACHINA_LOG_LEVEL` and
    /// `MACHINA_LOG_FORMAT` (as read into `env`) applied over it, checked.
    ///
    /// # Errors
    /// [`LogError`] for an unknown format, a level that does not parse, or
    /// a journal that cannot be reached (format `journald`).
    pub fn apply_env(mut self, env: &EnvConfig) -> Result<Self, LogError> {
        if let Some(level) = env.log_level() {
            self.level = level.to_owned();
        }
        if let Some(format) = env.log_format() {
            self.format = parse_format(format)?;
        }
        self.check()?;
        Ok(self)
    }

    /// Checks the level, and for `journald` that the journal is there.
    fn check(&self) -> Result<(), LogError> {
        self.filter()?;
        if self.format == LogFormat::Journald {
            self.journald_layer()?;
        }
        Ok(())
    }

    fn filter(&self) -> Result<EnvFilter, LogError> {
        /// The longest filter accepted.
        const MAX_FILTER_LEN: usize = 256;
        let refused = |reason: String| LogError::Level {
            level: self.level.clone(),
            reason,
        };
        // tracing-subscriber's directive parser slices the string by bytes
        // and panics inside a multi-byte character (found by the `env` fuzz
        // target); levels, targets and span names are ASCII anyway.
        if let Some(c) = self
            .level
            .chars()
            .find(|c| !c.is_ascii() || c.is_ascii_control())
        {
            return Err(refused(format!(
                "{c:?} is not printable ASCII; a filter is levels, targets and span names"
            )));
        }
        // Field values in a filter are regular expressions, and some long
        // ones take the parser minutes (found by the `env` fuzz target);
        // a real filter is far shorter.
        if self.level.len() > MAX_FILTER_LEN {
            return Err(refused(format!(
                "it is {} bytes long; a filter may be at most {MAX_FILTER_LEN}",
                self.level.len()
            )));
        }
        match std::panic::catch_unwind(|| EnvFilter::try_new(&self.level)) {
            Ok(parsed) => parsed.map_err(|e| refused(e.to_string())),
            Err(_) => Err(refused("the filter parser could not read it".to_owned())),
        }
    }

    #[cfg(feature = "journald")]
    fn journald_layer(&self) -> Result<tracing_journald::Layer, LogError> {
        let layer = tracing_journald::layer().map_err(|e| LogError::Journald {
            reason: e.to_string(),
        })?;
        Ok(match &self.syslog_identifier {
            Some(identifier) => layer.with_syslog_identifier(identifier.clone()),
            None => layer,
        })
    }

    #[cfg(not(feature = "journald"))]
    fn journald_layer(&self) -> Result<std::convert::Infallible, LogError> {
        Err(LogError::JournaldNotBuilt)
    }

    /// The level or filter in force.
    pub fn level_filter(&self) -> &str {
        &self.level
    }

    /// The format in force.
    pub fn log_format(&self) -> LogFormat {
        self.format
    }

    /// Installs the subscriber as the global one, unless the program set
    /// one up already (then `Ok(None)`): text and JSON go to standard error
    /// through a non-blocking writer (direct writes once the guard is
    /// dropped), `journald` straight to the journal's socket (one datagram
    /// per event).
    ///
    /// # Errors
    /// [`LogError::Level`] if the level does not parse; for `journald`,
    /// [`LogError::Journald`] or [`LogError::JournaldNotBuilt`].
    pub fn install(&self) -> Result<Option<LogGuard>, LogError> {
        let filter = self.filter()?;
        let ansi = match self.format {
            LogFormat::Journald => return self.install_journald(filter),
            LogFormat::Plain | LogFormat::Json => false,
            LogFormat::Color => true,
        };
        let (writer, guard) = super::log_writer::stderr_switch();
        let builder = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(writer)
            .with_ansi(ansi);
        // `try_init` fails when a global subscriber exists: the program's
        // own, which then logs, as it wants.
        let installed = if self.format == LogFormat::Json {
            builder.json().finish().with(self.sentry_layer()).try_init()
        } else {
            builder.finish().with(self.sentry_layer()).try_init()
        };
        Ok(installed.ok().map(|()| LogGuard {
            _guard: Some(guard),
        }))
    }

    #[cfg(feature = "journald")]
    fn install_journald(&self, filter: EnvFilter) -> Result<Option<LogGuard>, LogError> {
        let layer = self.journald_layer()?;
        let installed = tracing_subscriber::registry()
            .with(filter)
            .with(layer)
            .with(self.sentry_layer())
            .try_init();
        Ok(installed.ok().map(|()| LogGuard { _guard: None }))
    }

    /// Sentry's layer, if asked for (and built).
    #[cfg(feature = "sentry")]
    fn sentry_layer<S>(&self) -> Option<sentry::integrations::tracing::SentryLayer<S>>
    where
        S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    {
        self.sentry.then(super::sentry::sentry_layer)
    }

    /// Sentry's layer: none without the feature.
    #[cfg(not(feature = "sentry"))]
    fn sentry_layer(&self) -> Option<tracing_subscriber::layer::Identity> {
        None
    }

    #[cfg(not(feature = "journald"))]
    fn install_journald(&self, _filter: EnvFilter) -> Result<Option<LogGuard>, LogError> {
        Err(LogError::JournaldNotBuilt)
    }
}

/// A format name as `MACHINA_LOG_FORMAT` spells it.
fn parse_format(name: &str) -> Result<LogFormat, LogError> {
    Ok(match name.to_ascii_lowercase().as_str() {
        "plain" => LogFormat::Plain,
        "color" | "colour" => LogFormat::Color,
        "json" => LogFormat::Json,
        "journald" | "journal" => LogFormat::Journald,
        _ => return Err(LogError::Format(name.to_owned())),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_levels_and_formats_are_refused_with_the_way_out() {
        let err = LogConfig::new().level("info,=[").resolve_without_env();
        assert!(matches!(err, Err(LogError::Level { .. })), "{err:?}");
        let ok = LogConfig::new()
            .level("machina_core=debug,warn")
            .format(LogFormat::Json);
        assert_eq!(ok.clone().resolve_without_env(), Ok(ok));
        assert!(
            LogError::Format("xml".into())
                .to_string()
                .contains("plain, color, json or journald")
        );
    }

    #[test]
    fn format_names_parse_case_blind_and_unknown_ones_are_refused() {
        assert_eq!(parse_format("JSON"), Ok(LogFormat::Json));
        assert_eq!(parse_format("colour"), Ok(LogFormat::Color));
        assert_eq!(parse_format("journald"), Ok(LogFormat::Journald));
        assert_eq!(parse_format("Plain"), Ok(LogFormat::Plain));
        assert_eq!(
            parse_format("syslog"),
            Err(LogError::Format("syslog".into()))
        );
    }

    #[cfg(not(feature = "journald"))]
    #[test]
    fn journald_without_the_feature_is_refused() {
        let config = LogConfig::new().format(LogFormat::Journald);
        assert_eq!(
            config.resolve_without_env(),
            Err(LogError::JournaldNotBuilt)
        );
    }

    impl LogConfig {
        /// `apply_env` with no settings from the environment.
        fn resolve_without_env(self) -> Result<Self, LogError> {
            self.apply_env(&EnvConfig::default())
        }
    }

    /// Found by the `env` fuzz target: this level made tracing-subscriber's
    /// parser panic (a byte index inside 'ί'); it is refused with an error.
    #[test]
    fn a_level_the_filter_parser_cannot_read_is_refused_not_a_panic() {
        let err = LogConfig::new()
            .level("\n441\0\\([ί],7a-\\")
            .resolve_without_env()
            .unwrap_err();
        assert!(err.to_string().contains("not printable ASCII"), "{err}");
    }

    /// Found by the `env` fuzz target: a long filter full of field
    /// patterns took tracing-subscriber minutes to parse.
    #[test]
    fn a_filter_too_long_to_be_real_is_refused_at_once() {
        let long = format!("info,{}", "a[{x=....}]&".repeat(30));
        let err = LogConfig::new()
            .level(long)
            .resolve_without_env()
            .unwrap_err();
        assert!(err.to_string().contains("at most 256"), "{err}");
        assert!(
            LogConfig::new()
                .level("machina_core=debug,tokio=warn,info")
                .resolve_without_env()
                .is_ok()
        );
    }

    #[test]
    fn the_environment_overrides_the_configuration_and_is_checked() {
        let env = EnvConfig::from_lookup(|name| match name {
            EnvConfig::LOG_LEVEL => Some("warn".to_owned()),
            EnvConfig::LOG_FORMAT => Some("json".to_owned()),
            _ => None,
        });
        let config = LogConfig::new().level("debug").apply_env(&env).unwrap();
        assert_eq!(
            config,
            LogConfig::new().level("warn").format(LogFormat::Json)
        );
        let typo = EnvConfig::from_lookup(|name| {
            (name == EnvConfig::LOG_FORMAT).then(|| "xml".to_owned())
        });
        assert_eq!(
            LogConfig::new().apply_env(&typo),
            Err(LogError::Format("xml".into()))
        );
    }
}
