//! [`EnvConfig`]: the settings a program takes from its environment —
//! read in one place, once, by an adapter's `entrypoint()`, and handed to
//! the [`EntrypointBuilder`](super::EntrypointBuilder). The core's logic
//! never reads the environment, so a test or an embedding program decides
//! what it sees.

use std::time::Duration;

use super::entrypoint::EntrypointError;

/// The variables Machina reads from the process environment, as read.
///
/// An adapter's `entrypoint()` reads them with [`from_env`](Self::from_env)
/// and hands them to [`EntrypointBuilder::env`](super::EntrypointBuilder::env);
/// [`EntrypointBuilder::build`](super::EntrypointBuilder::build) checks
/// them, so a typo stops the program before anything starts.
///
/// | variable | meaning |
/// | --- | --- |
/// | `MACHINA_SHUTDOWN_TIMEOUT` | how long the whole shutdown may take, e.g. `10s` or `1m30s`; overrides the builder's |
/// | `MACHINA_LOG_LEVEL` | a level or a `tracing` filter (`info`, `machina_core=debug,warn`), feature `logging` |
/// | `MACHINA_LOG_FORMAT` | `plain`, `color`, `json` or `journald`, feature `logging` |
///
/// # Examples
///
/// ```
/// use machina_core::service::EnvConfig;
/// use std::time::Duration;
///
/// let env = EnvConfig::from_lookup(|name| match name {
///     "MACHINA_SHUTDOWN_TIMEOUT" => Some("1m30s".to_owned()),
///     _ => None,
/// });
/// assert_eq!(env.shutdown_timeout().unwrap(), Some(Duration::from_secs(90)));
/// assert_eq!(env.log_level(), None);
///
/// let typo = EnvConfig::from_lookup(|name| {
///     (name == "MACHINA_SHUTDOWN_TIMEOUT").then(|| "1x".to_owned())
/// });
/// assert!(typo.shutdown_timeout().unwrap_err().to_string().contains("\"1x\""));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnvConfig {
    shutdown_timeout: Option<String>,
    log_level: Option<String>,
    log_format: Option<String>,
}

impl EnvConfig {
    /// The variable naming the shutdown timeout.
    pub const SHUTDOWN_TIMEOUT: &'static str = "MACHINA_SHUTDOWN_TIMEOUT";
    /// The variable naming the log level or filter.
    pub const LOG_LEVEL: &'static str = "MACHINA_LOG_LEVEL";
    /// The variable naming the log format.
    pub const LOG_FORMAT: &'static str = "MACHINA_LOG_FORMAT";

    /// Reads the variables from the process environment (a variable that
    /// is not valid Unicode counts as unset).
    pub fn from_env() -> Self {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the variables through `lookup` (for tests, or a program that
    /// keeps its settings elsewhere).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        EnvConfig {
            shutdown_timeout: lookup(Self::SHUTDOWN_TIMEOUT),
            log_level: lookup(Self::LOG_LEVEL),
            log_format: lookup(Self::LOG_FORMAT),
        }
    }

    /// The shutdown timeout, if set.
    ///
    /// # Errors
    /// [`EntrypointError::ShutdownTimeout`] for a value that does not
    /// parse as an interval.
    pub fn shutdown_timeout(&self) -> Result<Option<Duration>, EntrypointError> {
        self.shutdown_timeout
            .as_deref()
            .map(|value| {
                crate::schedule::parse_interval(value).map_err(|e| {
                    EntrypointError::ShutdownTimeout {
                        value: value.to_owned(),
                        reason: e.to_string(),
                    }
                })
            })
            .transpose()
    }

    /// The log level or filter, if set.
    pub fn log_level(&self) -> Option<&str> {
        self.log_level.as_deref()
    }

    /// The log format's name, if set.
    pub fn log_format(&self) -> Option<&str> {
        self.log_format.as_deref()
    }
}
