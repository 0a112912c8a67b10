//! The counters of a server or client, kept as atomics next to the loop
//! that updates them, and their snapshots: [`ServerStats`],
//! [`ClientStats`].

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};

use super::handler::Outcome;

/// What a TCP or UDP server has done since it was built.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerStats {
    /// Connections accepted (TCP) or datagrams received (UDP).
    pub accepted: u64,
    /// Handlers running now.
    pub active: u64,
    /// Handlers that returned `Ok`.
    pub finished: u64,
    /// Handlers that returned an error.
    pub failed: u64,
    /// Handlers that panicked.
    pub panicked: u64,
    /// Handlers cancelled at the end of a drain.
    pub cancelled: u64,
    /// Errors accepting (or receiving), after which the server went on.
    pub accept_errors: u64,
    /// TLS handshakes that failed or timed out.
    pub handshake_failures: u64,
}

#[derive(Debug, Default)]
pub(crate) struct ServerCounters {
    pub(crate) accepted: AtomicU64,
    pub(crate) active: AtomicU64,
    pub(crate) finished: AtomicU64,
    pub(crate) failed: AtomicU64,
    pub(crate) panicked: AtomicU64,
    pub(crate) cancelled: AtomicU64,
    pub(crate) accept_errors: AtomicU64,
    pub(crate) handshake_failures: AtomicU64,
}

pub(crate) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl ServerCounters {
    /// Counts how a handler of `service` for `peer` ended, and logs a
    /// failure (`what`: "connection", "datagram").
    pub(crate) fn record(&self, outcome: Outcome, service: &str, peer: SocketAddr, what: &str) {
        match outcome {
            Outcome::Done => bump(&self.finished),
            Outcome::Failed(error) => {
                bump(&self.failed);
                tracing::warn!(service, %peer, %error, "{what} handler failed");
            }
            Outcome::Panicked(message) => {
                bump(&self.panicked);
                tracing::error!(service, %peer, panic = %message, "{what} handler panicked");
            }
        }
    }

    pub(crate) fn snapshot(&self) -> ServerStats {
        let read = |c: &AtomicU64| c.load(Ordering::Relaxed);
        ServerStats {
            accepted: read(&self.accepted),
            active: read(&self.active),
            finished: read(&self.finished),
            failed: read(&self.failed),
            panicked: read(&self.panicked),
            cancelled: read(&self.cancelled),
            accept_errors: read(&self.accept_errors),
            handshake_failures: read(&self.handshake_failures),
        }
    }
}

impl ServerStats {
    /// As `(counter, value)` pairs for [`Stats`](crate::stats::Stats).
    pub(crate) fn samples(&self) -> Vec<(&'static str, f64)> {
        vec![
            ("accepted", self.accepted as f64),
            ("active", self.active as f64),
            ("finished", self.finished as f64),
            ("failed", self.failed as f64),
            ("panicked", self.panicked as f64),
            ("cancelled", self.cancelled as f64),
            ("accept_errors", self.accept_errors as f64),
            ("handshake_failures", self.handshake_failures as f64),
        ]
    }
}

/// One running handler, counted active until it is dropped (so a
/// cancelled handler is not left counted).
pub(crate) struct ActiveGuard<'a>(pub(crate) &'a ServerCounters);

impl<'a> ActiveGuard<'a> {
    pub(crate) fn enter(counters: &'a ServerCounters) -> Self {
        counters.active.fetch_add(1, Ordering::Relaxed);
        ActiveGuard(counters)
    }
}

impl Drop for ActiveGuard<'_> {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What a client has done since it was built.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClientStats {
    /// Connections made.
    pub connects: u64,
    /// Connections made after the first (after a drop or a failure).
    pub reconnects: u64,
    /// Connection attempts that failed or timed out.
    pub connect_failures: u64,
    /// Handler runs that ended with an error or a panic.
    pub handler_failures: u64,
    /// Whether a connection is open now (1) or not (0).
    pub connected: u64,
}

#[derive(Debug, Default)]
pub(crate) struct ClientCounters {
    pub(crate) connects: AtomicU64,
    pub(crate) reconnects: AtomicU64,
    pub(crate) connect_failures: AtomicU64,
    pub(crate) handler_failures: AtomicU64,
    pub(crate) connected: AtomicU64,
}

impl ClientCounters {
    pub(crate) fn snapshot(&self) -> ClientStats {
        let read = |c: &AtomicU64| c.load(Ordering::Relaxed);
        ClientStats {
            connects: read(&self.connects),
            reconnects: read(&self.reconnects),
            connect_failures: read(&self.connect_failures),
            handler_failures: read(&self.handler_failures),
            connected: read(&self.connected),
        }
    }
}

impl ClientStats {
    /// As `(counter, value)` pairs for [`Stats`](crate::stats::Stats).
    pub(crate) fn samples(&self) -> Vec<(&'static str, f64)> {
        vec![
            ("connects", self.connects as f64),
            ("reconnects", self.reconnects as f64),
            ("connect_failures", self.connect_failures as f64),
            ("handler_failures", self.handler_failures as f64),
            ("connected", self.connected as f64),
        ]
    }
}
