//! Network services and clients (aiomisc's `TCPServer`, `UDPServer`,
//! `TLSServer`, `TCPClient`, `TLSClient`, `RobustTCPClient`), written once
//! over `futures-io` and the runtime's [`Sockets`](crate::rt::Sockets), so
//! they run the same on tokio, smol and async-std.
//!
//! - [`TcpServer`]: a handler task per connection; ready once bound (port
//!   0 works: [`TcpServer::local_addr`]); at stop the listener closes,
//!   open connections get a drain timeout, the rest are cancelled;
//!   handler errors and panics are counted, never fatal; an optional
//!   connection limit (any [`Group`](crate::limit::Group)).
//! - [`UdpServer`]: a handler task per datagram, answering through
//!   [`Reply`].
//! - [`TcpClient`]: a connect with a timeout; [`RobustClient`]: a
//!   connection kept up as a service, reconnecting with the shared
//!   [`Wait`](crate::waits::Wait)s and counting it in [`ClientStats`].
//! - TLS (feature `tls`): [`ServerTls`] and [`ClientTls`], rustls through
//!   `futures-rustls`.
//! - `HealthService` (feature `health`): `/healthz`, `/readyz` and
//!   `/metrics` for orchestrators and Prometheus.
//!
//! What this module does not own: the sockets themselves (the adapters
//! supply them), HTTP and gRPC (machina-tokio's `http` and `grpc`
//! features).
//!
//! This module departs from the design's `service::net` path: clients are
//! not services, and the servers are used as often outside a supervisor's
//! list as in it.

mod addr;
mod client;
mod control;
mod counters;
mod error;
mod handler;
#[cfg(feature = "health")]
mod health;
#[cfg(feature = "health")]
mod http1;
mod robust_client;
mod tasks;
mod tcp_server;
#[cfg(feature = "tls")]
mod tls;
mod udp_server;

pub use addr::BindAddr;
pub use client::{DEFAULT_CONNECT_TIMEOUT, TcpClient, TcpClientBuilder};
pub use counters::{ClientStats, ServerStats};
pub use error::NetError;
pub use handler::{ConnectionHandler, DatagramHandler, HandlerFuture, Reply, StreamHandler};
#[cfg(feature = "health")]
pub use health::{HealthService, HealthServiceBuilder};
pub use robust_client::{DEFAULT_RECONNECT_WAITS, ReadyWhen, RobustClient, RobustClientBuilder};
pub use tcp_server::{
    DEFAULT_DRAIN_TIMEOUT, DEFAULT_HANDSHAKE_TIMEOUT, TcpServer, TcpServerBuilder,
};
#[cfg(feature = "tls")]
pub use tls::{ClientTls, ServerTls};
pub use udp_server::{DEFAULT_MAX_DATAGRAM, UdpServer, UdpServerBuilder};
