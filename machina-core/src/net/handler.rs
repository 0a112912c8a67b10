//! What a server does with each connection or datagram, and what a client
//! does with each connection it makes: [`ConnectionHandler`],
//! [`DatagramHandler`], [`StreamHandler`] — implemented by plain async
//! closures.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use crate::error::BoxError;
use crate::rt::{Connection, UdpIo};

/// A handler's future.
pub type HandlerFuture = std::pin::Pin<Box<dyn Future<Output = Result<(), BoxError>> + Send>>;

/// Serves one accepted connection; its error is logged and counted, never
/// fatal to the server.
///
/// Any `Fn(Connection, SocketAddr) -> impl Future<Output = Result<(),
/// BoxError>>` is one.
pub trait ConnectionHandler: Send + Sync + 'static {
    /// Serves `conn`, whose peer is `peer`, until it is done with it.
    fn handle(&self, conn: Connection, peer: SocketAddr) -> HandlerFuture;
}

impl<F, Fut> ConnectionHandler for F
where
    F: Fn(Connection, SocketAddr) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), BoxError>> + Send + 'static,
{
    fn handle(&self, conn: Connection, peer: SocketAddr) -> HandlerFuture {
        Box::pin(self(conn, peer))
    }
}

/// Where a datagram handler sends its answers: the server's own socket.
#[derive(Clone)]
pub struct Reply {
    pub(crate) socket: Arc<dyn UdpIo>,
}

impl Reply {
    /// Sends `datagram` to `target` from the server's socket.
    ///
    /// # Errors
    /// The socket's I/O error.
    pub async fn send_to(&self, datagram: &[u8], target: SocketAddr) -> std::io::Result<usize> {
        self.socket.send_to(datagram, target).await
    }

    /// The server's address.
    ///
    /// # Errors
    /// The OS's error reading it.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.socket.local_addr()
    }
}

impl std::fmt::Debug for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reply")
            .field("local_addr", &self.socket.local_addr().ok())
            .finish()
    }
}

/// Serves one datagram; its error is logged and counted, never fatal to
/// the server.
///
/// Any `Fn(Vec<u8>, SocketAddr, Reply) -> impl Future<Output = Result<(),
/// BoxError>>` is one.
pub trait DatagramHandler: Send + Sync + 'static {
    /// Serves `datagram` from `peer`; answers go through `reply`.
    fn handle(&self, datagram: Vec<u8>, peer: SocketAddr, reply: Reply) -> HandlerFuture;
}

impl<F, Fut> DatagramHandler for F
where
    F: Fn(Vec<u8>, SocketAddr, Reply) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), BoxError>> + Send + 'static,
{
    fn handle(&self, datagram: Vec<u8>, peer: SocketAddr, reply: Reply) -> HandlerFuture {
        Box::pin(self(datagram, peer, reply))
    }
}

/// Uses one connection a client made, until it is done with it or the
/// connection drops; a robust client then connects again.
///
/// Any `Fn(Connection) -> impl Future<Output = Result<(), BoxError>>` is
/// one.
pub trait StreamHandler: Send + Sync + 'static {
    /// Uses `conn`.
    fn handle(&self, conn: Connection) -> HandlerFuture;
}

impl<F, Fut> StreamHandler for F
where
    F: Fn(Connection) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), BoxError>> + Send + 'static,
{
    fn handle(&self, conn: Connection) -> HandlerFuture {
        Box::pin(self(conn))
    }
}

/// Runs `future` catching a panic, as the outcome a server counts.
pub(crate) async fn guarded(future: HandlerFuture) -> Outcome {
    use futures::FutureExt;
    match std::panic::AssertUnwindSafe(future).catch_unwind().await {
        Ok(Ok(())) => Outcome::Done,
        Ok(Err(error)) => Outcome::Failed(error),
        Err(payload) => Outcome::Panicked(crate::rt::panic_message(&*payload)),
    }
}

/// How a handler ended.
#[derive(Debug)]
pub(crate) enum Outcome {
    Done,
    Failed(BoxError),
    Panicked(String),
}
