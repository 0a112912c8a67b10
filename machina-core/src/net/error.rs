//! [`NetError`]: what the network services and clients refuse or fail
//! with.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use crate::rt::NoSockets;

/// A network service or client that could not be set up, bind or connect.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NetError {
    /// An address without a port (or, to bind, not `ip:port`).
    #[error(
        "invalid socket address {given:?}: expected an address with a port, such as 127.0.0.1:8080 or [::1]:0"
    )]
    Address {
        /// What was given.
        given: String,
    },
    /// A setting that can never work (a zero timeout or buffer).
    #[error("invalid {setting}: {why}")]
    Setting {
        /// Which setting.
        setting: &'static str,
        /// What is wrong with it.
        why: &'static str,
    },
    /// The runtime has no sockets.
    #[error(transparent)]
    NoSockets(#[from] NoSockets),
    /// Binding failed (the address is in use, or not this machine's).
    #[error("could not bind {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS's error.
        source: io::Error,
    },
    /// Connecting failed.
    #[error("could not connect to {addr}: {source}")]
    Connect {
        /// The address.
        addr: String,
        /// The OS's (or the TLS handshake's) error.
        source: io::Error,
    },
    /// Connecting took longer than its timeout.
    #[error("connecting to {addr} timed out after {after:?}")]
    ConnectTimeout {
        /// The address.
        addr: String,
        /// The timeout.
        after: Duration,
    },
    /// A TLS certificate, key or configuration that rustls refuses.
    #[error("invalid TLS configuration: {0}")]
    Tls(String),
}
