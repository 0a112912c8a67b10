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
/// | `NOTIFY_SOCKET` | systemd's notify socket: [`Systemd`](super::Systemd) sends `READY=1` and the rest there |
/// | `WATCHDOG_USEC`, `WATCHDOG_PID` | systemd's watchdog: pings every half of it, if meant for this process |
/// | `SENTRY_DSN`, `SENTRY_ENVIRONMENT`, `SENTRY_RELEASE` | where and under which names to report errors to Sentry, feature `sentry` ([`SentryConfig`](super::SentryConfig)) |
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
#[derive(Clone, Default, PartialEq, Eq)]
pub struct EnvConfig {
    shutdown_timeout: Option<String>,
    log_level: Option<String>,
    log_format: Option<String>,
    notify_socket: Option<String>,
    watchdog_usec: Option<String>,
    watchdog_pid: Option<String>,
    sentry_dsn: Option<String>,
    sentry_environment: Option<String>,
    sentry_release: Option<String>,
}

/// The DSN is a secret: shown only as set or not.
impl std::fmt::Debug for EnvConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnvConfig")
            .field("shutdown_timeout", &self.shutdown_timeout)
            .field("log_level", &self.log_level)
            .field("log_format", &self.log_format)
            .field("notify_socket", &self.notify_socket)
            .field("watchdog_usec", &self.watchdog_usec)
            .field("watchdog_pid", &self.watchdog_pid)
            .field("sentry_dsn", &self.sentry_dsn.as_ref().map(|_| "<set>"))
            .field("sentry_environment", &self.sentry_environment)
            .field("sentry_release", &self.sentry_release)
            .finish()
    }
}

impl EnvConfig {
    /// The variable naming the shutdown timeout.
    pub const SHUTDOWN_TIMEOUT: &'static str = "MACHINA_SHUTDOWN_TIMEOUT";
    /// The variable naming the log level or filter.
    pub const LOG_LEVEL: &'static str = "MACHINA_LOG_LEVEL";
    /// The variable naming the log format.
    pub const LOG_FORMAT: &'static str = "MACHINA_LOG_FORMAT";
    /// systemd's notify socket.
    pub const NOTIFY_SOCKET: &'static str = "NOTIFY_SOCKET";
    /// systemd's watchdog interval, in microseconds.
    pub const WATCHDOG_USEC: &'static str = "WATCHDOG_USEC";
    /// The process systemd's watchdog is meant for.
    pub const WATCHDOG_PID: &'static str = "WATCHDOG_PID";
    /// The Sentry project's DSN (empty: reporting off).
    pub const SENTRY_DSN: &'static str = "SENTRY_DSN";
    /// The environment Sentry files events under.
    pub const SENTRY_ENVIRONMENT: &'static str = "SENTRY_ENVIRONMENT";
    /// The release Sentry files events under.
    pub const SENTRY_RELEASE: &'static str = "SENTRY_RELEASE";

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
            notify_socket: lookup(Self::NOTIFY_SOCKET),
            watchdog_usec: lookup(Self::WATCHDOG_USEC),
            watchdog_pid: lookup(Self::WATCHDOG_PID),
            sentry_dsn: lookup(Self::SENTRY_DSN),
            sentry_environment: lookup(Self::SENTRY_ENVIRONMENT),
            sentry_release: lookup(Self::SENTRY_RELEASE),
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

    /// systemd's notify socket, if set (and not empty).
    pub fn notify_socket(&self) -> Option<&str> {
        self.notify_socket.as_deref().filter(|s| !s.is_empty())
    }

    /// systemd's watchdog interval, if one is set for this process: a
    /// `WATCHDOG_USEC` of at least one microsecond, and no `WATCHDOG_PID`
    /// or this process's id. A value that does not parse counts as unset
    /// (systemd writes these; a person rarely does).
    ///
    /// # Examples
    ///
    /// ```
    /// use machina_core::service::EnvConfig;
    /// use std::time::Duration;
    ///
    /// let pid = std::process::id().to_string();
    /// let env = EnvConfig::from_lookup(|name| match name {
    ///     EnvConfig::WATCHDOG_USEC => Some("30000000".to_owned()),
    ///     EnvConfig::WATCHDOG_PID => Some(pid.clone()),
    ///     _ => None,
    /// });
    /// assert_eq!(env.watchdog(), Some(Duration::from_secs(30)));
    /// let elsewhere = EnvConfig::from_lookup(|name| match name {
    ///     EnvConfig::WATCHDOG_USEC => Some("30000000".to_owned()),
    ///     EnvConfig::WATCHDOG_PID => Some("1".to_owned()),
    ///     _ => None,
    /// });
    /// assert_eq!(elsewhere.watchdog(), None);
    /// ```
    pub fn watchdog(&self) -> Option<Duration> {
        let usec: u64 = self.watchdog_usec.as_deref()?.trim().parse().ok()?;
        let ours = match self.watchdog_pid.as_deref() {
            None => true,
            Some(pid) => pid.trim().parse::<u32>().ok() == Some(std::process::id()),
        };
        (ours && usec > 0).then(|| Duration::from_micros(usec))
    }

    /// The Sentry DSN, if set (it is a secret: do not log it).
    pub fn sentry_dsn(&self) -> Option<&str> {
        self.sentry_dsn.as_deref()
    }

    /// The Sentry environment, if set.
    pub fn sentry_environment(&self) -> Option<&str> {
        self.sentry_environment.as_deref()
    }

    /// The Sentry release, if set.
    pub fn sentry_release(&self) -> Option<&str> {
        self.sentry_release.as_deref()
    }
}
