//! [`Sockets`]: the third half of the runtime boundary — TCP listeners,
//! TCP connections and UDP sockets, as an adapter's executor provides
//! them, behind small object-safe traits over `futures-io`.
//!
//! The network services in [`crate::net`] are written once against these
//! traits; an adapter supplies an implementation (`tokio::net` in
//! machina-tokio, async-io's sockets through `async-net` for smol and
//! async-std: [`IoSockets`](crate::rt::IoSockets), feature `io`) and puts
//! it in its [`Runtime`](super::Runtime)
//! ([`with_sockets`](super::Runtime::with_sockets)). The mock runtime has
//! none: a service that needs sockets fails to start on it with
//! [`NoSockets`].
//!
//! What this module does not own: servers, clients, TLS, handlers (all in
//! [`crate::net`]).

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;

use futures::io::{AsyncRead, AsyncWrite};

/// A boxed future borrowing its receiver.
pub type IoFuture<'a, T> = Pin<Box<dyn Future<Output = io::Result<T>> + Send + 'a>>;

/// A byte stream both ways: what a TCP (or TLS) connection is to its
/// handler. Every `futures-io` reader-writer that can cross threads is
/// one.
pub trait ByteStream: AsyncRead + AsyncWrite + Send + Unpin {}

impl<T: AsyncRead + AsyncWrite + Send + Unpin + ?Sized> ByteStream for T {}

/// A connection as the network services hand it out.
pub type Connection = Box<dyn ByteStream>;

/// A bound TCP listener.
pub trait TcpListen: Send + Sync {
    /// The address it is bound to (with the port the OS chose for port 0).
    ///
    /// # Errors
    /// The OS's error reading it.
    fn local_addr(&self) -> io::Result<SocketAddr>;

    /// Waits for the next connection and its peer's address. Dropping the
    /// future before it completes loses no connection.
    fn accept(&self) -> IoFuture<'_, (Connection, SocketAddr)>;
}

/// A bound UDP socket.
pub trait UdpIo: Send + Sync {
    /// The address it is bound to.
    ///
    /// # Errors
    /// The OS's error reading it.
    fn local_addr(&self) -> io::Result<SocketAddr>;

    /// Receives one datagram into `buf`: its length and sender. A datagram
    /// longer than `buf` is cut to it.
    fn recv_from<'a>(&'a self, buf: &'a mut [u8]) -> IoFuture<'a, (usize, SocketAddr)>;

    /// Sends `buf` as one datagram to `target`.
    fn send_to<'a>(&'a self, buf: &'a [u8], target: SocketAddr) -> IoFuture<'a, usize>;
}

/// Makes sockets on an executor's reactor.
///
/// # Examples
///
/// A runtime with sockets hands them to the network services; the mock
/// runtime has none:
///
/// ```
/// use machina_core::testing::MockRuntime;
///
/// let rt = MockRuntime::new().runtime();
/// let err = rt.sockets().err().unwrap();
/// assert!(err.to_string().contains("mock"));
/// ```
pub trait Sockets: Send + Sync + 'static {
    /// Binds a TCP listener to `addr` (port 0: any free port).
    fn bind_tcp(&self, addr: SocketAddr) -> IoFuture<'static, Box<dyn TcpListen>>;

    /// Connects to `addr`, a `host:port` (names are resolved off the
    /// async threads) or an IP address with a port.
    fn connect_tcp(&self, addr: String) -> IoFuture<'static, Connection>;

    /// Binds a UDP socket to `addr`.
    fn bind_udp(&self, addr: SocketAddr) -> IoFuture<'static, Box<dyn UdpIo>>;
}

/// The runtime has no sockets (the mock runtime, or a runtime built
/// without them).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the {runtime} runtime has no sockets: network services need a runtime from machina-tokio, machina-smol or machina-async-std (or one built with Runtime::with_sockets)"
)]
pub struct NoSockets {
    /// The runtime's label.
    pub runtime: String,
}

impl From<NoSockets> for io::Error {
    fn from(error: NoSockets) -> Self {
        io::Error::new(io::ErrorKind::Unsupported, error)
    }
}
