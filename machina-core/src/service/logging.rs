//! Logging set-up for a program run by an [`Entrypoint`](super::Entrypoint)
//! (aiomisc's `log_level` / `log_format`), with `tracing-subscriber` and a
//! non-blocking writer (feature `logging`).
//!
//! Configured from the builder and, over it, from the environment:
//! `MACHINA_LOG_LEVEL` (a `tracing` filter such as `info` or
//! `machina_core=debug,warn`) and `MACHINA_LOG_FORMAT` (`plain`, `color`
//! or `json`). Nothing is installed when the application has set up
//! `tracing` itself.

use std::fmt;

use tracing_subscriber::EnvFilter;

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
}

/// A logging configuration that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LogError {
    /// An unknown format name.
    #[error("unknown log format {0:?}; use plain, color or json")]
    Format(String),
    /// A level or filter `tracing` cannot parse.
    #[error("invalid log level {level:?}: {reason}; use e.g. info, debug or my_crate=debug,warn")]
    Level {
        /// What was given.
        level: String,
        /// Why it was refused.
        reason: String,
    },
}

/// Keeps the non-blocking writer running; dropping it flushes the log.
pub struct LogGuard {
    _guard: tracing_appender::non_blocking::WorkerGuard,
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
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".to_owned(),
            format: LogFormat::Plain,
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

    /// This configuration with `MACHINA_LOG_LEVEL` and `MACHINA_LOG_FORMAT`
    /// applied over it, checked.
    ///
    /// # Errors
    /// [`LogError`] for an unknown format or a level that does not parse.
    pub fn resolve(mut self) -> Result<Self, LogError> {
        if let Ok(level) = std::env::var("MACHINA_LOG_LEVEL") {
            self.level = level;
        }
        if let Ok(format) = std::env::var("MACHINA_LOG_FORMAT") {
            self.format = match format.to_ascii_lowercase().as_str() {
                "plain" => LogFormat::Plain,
                "color" | "colour" => LogFormat::Color,
                "json" => LogFormat::Json,
                _ => return Err(LogError::Format(format)),
            };
        }
        EnvFilter::try_new(&self.level).map_err(|e| LogError::Level {
            level: self.level.clone(),
            reason: e.to_string(),
        })?;
        Ok(self)
    }

    /// The level or filter in force.
    pub fn level_filter(&self) -> &str {
        &self.level
    }

    /// The format in force.
    pub fn log_format(&self) -> LogFormat {
        self.format
    }

    /// Installs the subscriber, writing to standard error through a
    /// non-blocking writer, unless `tracing` is already set up (then
    /// `Ok(None)`).
    ///
    /// # Errors
    /// [`LogError::Level`] if the level does not parse.
    pub fn install(&self) -> Result<Option<LogGuard>, LogError> {
        if tracing::dispatcher::has_been_set() {
            return Ok(None);
        }
        let filter = EnvFilter::try_new(&self.level).map_err(|e| LogError::Level {
            level: self.level.clone(),
            reason: e.to_string(),
        })?;
        let (writer, guard) = tracing_appender::non_blocking(std::io::stderr());
        let builder = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(writer);
        // `try_init` fails only if another subscriber won a race to be the
        // global one; that one then logs, which is what was wanted.
        let _ = match self.format {
            LogFormat::Plain => builder.with_ansi(false).try_init(),
            LogFormat::Color => builder.with_ansi(true).try_init(),
            LogFormat::Json => builder.json().try_init(),
        };
        Ok(Some(LogGuard { _guard: guard }))
    }
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
                .contains("plain, color or json")
        );
    }

    impl LogConfig {
        /// `resolve` ignoring the environment (tests must not depend on it).
        fn resolve_without_env(self) -> Result<Self, LogError> {
            EnvFilter::try_new(&self.level).map_err(|e| LogError::Level {
                level: self.level.clone(),
                reason: e.to_string(),
            })?;
            Ok(self)
        }
    }
}
