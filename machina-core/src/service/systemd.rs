//! [`Systemd`]: a program under systemd says when it is ready, when it is
//! stopping and how it is doing, and pings the watchdog — systemd's
//! notify protocol (aiomisc's `SDWatchdogService`), as an entrypoint
//! [`Plugin`]. Where the messages go is an [`SdSink`]: systemd's socket
//! through the `sd-notify` crate ([`NotifySocket`], feature `systemd`), or
//! any sink of a test's own.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::entrypoint::{EntrypointBuilder, Plugin};
use super::periodic::PeriodicService;
use crate::error::BoxError;
use crate::rt::MissedTick;
use crate::schedule::Schedule;

/// A message of systemd's notify protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SdMessage {
    /// `READY=1`: the services have started.
    Ready,
    /// `STOPPING=1`: the shutdown has begun.
    Stopping,
    /// `STATUS=…`: a line for `systemctl status`.
    Status(String),
    /// `WATCHDOG=1`: still alive.
    Watchdog,
}

/// Where notify messages go.
pub trait SdSink: Send + Sync + 'static {
    /// Sends `messages` as one notification.
    ///
    /// # Errors
    /// The I/O error of sending; the caller logs it and goes on.
    fn send(&self, messages: &[SdMessage]) -> std::io::Result<()>;
}

/// systemd's notify socket (the one `NOTIFY_SOCKET` names), through the
/// `sd-notify` crate, which reads that variable when it sends.
#[cfg(all(unix, feature = "systemd"))]
#[derive(Debug, Clone, Copy, Default)]
pub struct NotifySocket;

#[cfg(all(unix, feature = "systemd"))]
impl SdSink for NotifySocket {
    fn send(&self, messages: &[SdMessage]) -> std::io::Result<()> {
        use sd_notify::NotifyState;
        let states: Vec<NotifyState<'_>> = messages
            .iter()
            .map(|m| match m {
                SdMessage::Ready => NotifyState::Ready,
                SdMessage::Stopping => NotifyState::Stopping,
                SdMessage::Status(status) => NotifyState::Status(status),
                SdMessage::Watchdog => NotifyState::Watchdog,
            })
            .collect();
        sd_notify::notify(&states)
    }
}

/// systemd integration for an [`Entrypoint`](super::Entrypoint), as a
/// [`Plugin`]: `READY=1` with a `STATUS=` line once every service has
/// started, `STOPPING=1` with another when the shutdown begins, and — when
/// systemd asks for a watchdog — a service that sends `WATCHDOG=1` every
/// half of its interval. Off systemd (no `NOTIFY_SOCKET`) it does nothing,
/// after one debug log.
///
/// # Examples
///
/// A sink that records, and a watchdog of 10 s: pings every 5 s of
/// virtual time.
///
/// ```
/// use machina_core::service::{Entrypoint, SdMessage, SdSink, Systemd};
/// use machina_core::testing::MockRuntime;
/// use std::sync::{Arc, Mutex};
/// use std::time::Duration;
///
/// #[derive(Default, Clone)]
/// struct Recorded(Arc<Mutex<Vec<SdMessage>>>);
/// impl SdSink for Recorded {
///     fn send(&self, messages: &[SdMessage]) -> std::io::Result<()> {
///         self.0.lock().unwrap().extend_from_slice(messages);
///         Ok(())
///     }
/// }
///
/// let mock = MockRuntime::new();
/// let rt = mock.runtime();
/// let sent = Recorded::default();
/// let entrypoint = Entrypoint::builder(&rt)
///     .plugin(Systemd::with_sink(sent.clone(), Some(Duration::from_secs(10))))
///     .build()
///     .unwrap();
/// mock.block_on(entrypoint.run(rt.sleep(Duration::from_secs(12)))).unwrap();
/// let sent = sent.0.lock().unwrap().clone();
/// let pings = sent.iter().filter(|m| **m == SdMessage::Watchdog).count();
/// assert_eq!(pings, 3); // at 0, 5 and 10 s
/// assert!(sent.contains(&SdMessage::Ready) && sent.contains(&SdMessage::Stopping));
/// ```
#[derive(Clone)]
pub struct Systemd {
    sink: Option<Arc<dyn SdSink>>,
    watchdog: Option<Duration>,
}

impl Systemd {
    /// From the settings an adapter read from the environment: systemd's
    /// socket if `NOTIFY_SOCKET` is set (else a no-op), and its watchdog if
    /// `WATCHDOG_USEC` is meant for this process.
    #[cfg(all(unix, feature = "systemd"))]
    pub fn from_env(env: &super::EnvConfig) -> Self {
        match env.notify_socket() {
            Some(_) => Systemd {
                sink: Some(Arc::new(NotifySocket)),
                watchdog: env.watchdog(),
            },
            None => Systemd::off(),
        }
    }

    /// Notifications to `sink`, with watchdog pings every half of
    /// `watchdog` if given.
    pub fn with_sink(sink: impl SdSink, watchdog: Option<Duration>) -> Self {
        Systemd {
            sink: Some(Arc::new(sink)),
            watchdog,
        }
    }

    /// No notifications at all (not under systemd).
    pub fn off() -> Self {
        Systemd {
            sink: None,
            watchdog: None,
        }
    }
}

impl fmt::Debug for Systemd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Systemd")
            .field("on", &self.sink.is_some())
            .field("watchdog", &self.watchdog)
            .finish()
    }
}

/// Sends `messages` to `sink`; a failure is logged, never fatal.
fn send(sink: &dyn SdSink, messages: &[SdMessage]) {
    if let Err(error) = sink.send(messages) {
        tracing::warn!(%error, ?messages, "systemd notification not sent");
    }
}

impl Plugin for Systemd {
    fn register(self: Box<Self>, entrypoint: EntrypointBuilder) -> EntrypointBuilder {
        let Some(sink) = self.sink else {
            tracing::debug!("not under systemd (no NOTIFY_SOCKET): no notifications");
            return entrypoint;
        };
        let (ready, stopping) = (sink.clone(), sink.clone());
        let entrypoint = entrypoint
            .post_start(move |hook| {
                let sink = ready.clone();
                let status = format!("running: {}", hook.services().join(", "));
                async move { send(&*sink, &[SdMessage::Ready, SdMessage::Status(status)]) }
            })
            .pre_stop(move |_hook| {
                let sink = stopping.clone();
                async move {
                    send(
                        &*sink,
                        &[SdMessage::Stopping, SdMessage::Status("stopping".into())],
                    )
                }
            });
        match self.watchdog {
            Some(interval) => {
                // Every half of the interval, on a fixed grid: the one
                // periodic engine, as a service of the stack.
                let period = (interval / 2).max(Duration::from_millis(1));
                let every = Schedule::FixedRate(period, MissedTick::Skip);
                let pings = PeriodicService::with_schedule("sd-watchdog", every, move || {
                    send(&*sink, &[SdMessage::Watchdog]);
                    std::future::ready(Ok::<(), BoxError>(()))
                });
                entrypoint.service("sd-watchdog", pings, &[])
            }
            None => entrypoint,
        }
    }
}
