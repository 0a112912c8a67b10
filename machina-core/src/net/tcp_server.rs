//! [`TcpServer`]: a TCP (or, with [`ServerTls`](super::ServerTls), TLS)
//! server as a service (aiomisc `TCPServer`/`TLSServer`) — one handler
//! task per connection, ready once bound, a graceful drain at stop, an
//! optional connection limit.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::future::{Either, select};

use super::addr::BindAddr;
use super::control::{Run, Serving, pause};
use super::counters::{ActiveGuard, ServerStats, bump};
use super::error::NetError;
use super::handler::{ConnectionHandler, guarded};
use crate::limit::{Group, Permit};
use crate::rt::{Connection, IoFuture, Runtime, TcpListen};
use crate::service::{Service, ServiceContext, ServiceFuture, StopContext};

/// Turns an accepted connection into the one the handler gets (a TLS
/// handshake).
pub(crate) trait Upgrade: Send + Sync + 'static {
    fn upgrade(&self, conn: Connection) -> IoFuture<'static, Connection>;
}

/// The default time a stop lets open connections finish.
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(5);
/// The default time a TLS handshake may take.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A TCP server as a [`Service`]; see the module docs. Clones share the
/// server (keep one to read [`local_addr`](Self::local_addr) and
/// [`stats`](Self::stats) after handing one to the supervisor).
///
/// - **Ready once bound**: its start returns after the listener is
///   bound, so a dependent can connect at once, and
///   [`local_addr`](Self::local_addr) tells the port the OS chose for
///   port 0.
/// - **Each connection** runs the handler in a task of its own; an error
///   or a panic there is logged and counted ([`ServerStats`]), never
///   fatal to the server. An accept error is logged, counted and waited
///   out.
/// - **Stop**: the listener is closed (new connections are refused), open
///   connections get the drain timeout to finish, the rest are
///   cancelled.
/// - **Connection limit** ([`max_connections`](TcpServerBuilder::max_connections)):
///   a connection is accepted only with a permit of a group (held while
///   it is open), so the group's in-flight and start-rate limits bound
///   the open connections and the accept rate; the rest wait in the OS's
///   backlog.
///
/// # Examples
///
/// An echo server on any free port:
///
/// ```
/// use machina_core::net::TcpServer;
/// use futures::AsyncReadExt;
///
/// let echo = TcpServer::builder("127.0.0.1:0", |conn: machina_core::rt::Connection, _peer| async move {
///     let (reader, mut writer) = conn.split();
///     futures::io::copy(reader, &mut writer).await?;
///     Ok(())
/// })
/// .build()
/// .unwrap();
/// assert_eq!(echo.local_addr(), None); // bound when it starts
/// ```
#[derive(Clone)]
pub struct TcpServer {
    inner: Arc<Inner>,
}

struct Inner {
    addr: SocketAddr,
    handler: Arc<dyn ConnectionHandler>,
    handshake_timeout: Duration,
    limit: Option<Group>,
    upgrade: Option<Arc<dyn Upgrade>>,
    /// Counters, bound address, stop hand-off, drain timeout.
    serving: Serving,
}

/// Configures a [`TcpServer`].
#[must_use = "call .build() to get the server"]
pub struct TcpServerBuilder {
    addr: Result<SocketAddr, NetError>,
    handler: Arc<dyn ConnectionHandler>,
    drain_timeout: Duration,
    handshake_timeout: Duration,
    limit: Option<Group>,
    upgrade: Option<Arc<dyn Upgrade>>,
}

impl TcpServer {
    /// A server that will bind `addr` and run `handler` for each
    /// connection.
    pub fn builder(addr: impl BindAddr, handler: impl ConnectionHandler) -> TcpServerBuilder {
        TcpServerBuilder {
            addr: addr.socket_addr(),
            handler: Arc::new(handler),
            drain_timeout: DEFAULT_DRAIN_TIMEOUT,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            limit: None,
            upgrade: None,
        }
    }

    /// The address it is bound to while it runs (`None` before its start
    /// and after its stop).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.inner.serving.local_addr()
    }

    /// Its counters now.
    pub fn stats(&self) -> ServerStats {
        self.inner.serving.counters.snapshot()
    }

    /// The address it was told to bind.
    pub fn bind_addr(&self) -> SocketAddr {
        self.inner.addr
    }
}

impl TcpServerBuilder {
    /// How long a stop lets open connections finish before cancelling
    /// them (default 5 s). The server's stop timeout is this plus one
    /// second.
    pub fn drain_timeout(mut self, timeout: Duration) -> Self {
        self.drain_timeout = timeout;
        self
    }

    /// How long a TLS handshake may take (default 10 s).
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// Accepts a connection only with a permit of `group`, held while the
    /// connection is open.
    pub fn max_connections(mut self, group: impl Into<Group>) -> Self {
        self.limit = Some(group.into());
        self
    }

    /// Serves TLS: each connection's handshake runs (within the handshake
    /// timeout) before its handler.
    #[cfg(feature = "tls")]
    pub fn tls(mut self, tls: super::ServerTls) -> Self {
        self.upgrade = Some(Arc::new(tls));
        self
    }

    /// The server.
    ///
    /// # Errors
    /// [`NetError::Address`] for an address that is not `ip:port`,
    /// [`NetError::Setting`] for a zero handshake timeout.
    pub fn build(self) -> Result<TcpServer, NetError> {
        if self.handshake_timeout.is_zero() {
            return Err(NetError::Setting {
                setting: "handshake timeout",
                why: "a zero timeout would refuse every TLS connection",
            });
        }
        Ok(TcpServer {
            inner: Arc::new(Inner {
                addr: self.addr?,
                handler: self.handler,
                handshake_timeout: self.handshake_timeout,
                limit: self.limit,
                upgrade: self.upgrade,
                serving: Serving::new(self.drain_timeout),
            }),
        })
    }
}

impl Service for TcpServer {
    fn start(self: Arc<Self>, ctx: ServiceContext) -> ServiceFuture {
        Box::pin(async move {
            let inner = &self.inner;
            let sockets = ctx.runtime().sockets()?.clone();
            let listener = sockets
                .bind_tcp(inner.addr)
                .await
                .map_err(|source| NetError::Bind {
                    addr: inner.addr,
                    source,
                })?;
            let local = listener.local_addr()?;
            let mut run = inner.serving.begin(&ctx, local, "listening");
            accept_until_stopped(inner, ctx.runtime(), ctx.name(), &*listener, &mut run).await;
            drop(listener);
            inner.serving.end(&ctx, run, "connections").await;
            Ok(())
        })
    }

    fn stop(self: Arc<Self>, _ctx: StopContext) -> ServiceFuture {
        Box::pin(async move {
            self.inner.serving.stop().await;
            Ok(())
        })
    }

    fn graceful_shutdown_timeout(&self) -> Option<Duration> {
        Some(self.inner.serving.stop_timeout())
    }
}

/// Accepts connections and spawns their handlers until the stop signal.
async fn accept_until_stopped(
    inner: &Inner,
    runtime: &Runtime,
    service: &str,
    listener: &dyn TcpListen,
    run: &mut Run,
) {
    let Run { stop, tasks, .. } = run;
    loop {
        let permit = match &inner.limit {
            None => None,
            Some(group) => match select(group.limiter().acquire(), &mut *stop).await {
                Either::Left((Ok(permit), _)) => Some(permit),
                Either::Left((Err(error), _)) => {
                    tracing::warn!(service, %error, "the connection limit could not decide; accepting nothing for 100 ms");
                    if pause(runtime, &mut *stop).await {
                        return;
                    }
                    continue;
                }
                Either::Right(_) => return,
            },
        };
        let (conn, peer) = match select(listener.accept(), &mut *stop).await {
            Either::Left((Ok(accepted), _)) => accepted,
            Either::Left((Err(error), _)) => {
                bump(&inner.serving.counters.accept_errors);
                tracing::warn!(service, %error, "accept failed");
                // A peer that gave up before its accept is routine; running
                // out of descriptors or memory is waited out, not spun on.
                let routine = matches!(
                    error.kind(),
                    std::io::ErrorKind::ConnectionAborted
                        | std::io::ErrorKind::ConnectionReset
                        | std::io::ErrorKind::Interrupted
                );
                if !routine && pause(runtime, &mut *stop).await {
                    return;
                }
                continue;
            }
            Either::Right(_) => return,
        };
        bump(&inner.serving.counters.accepted);
        let connection =
            serve_connection(inner, runtime.clone(), service.into(), conn, peer, permit);
        match runtime.spawn_named(service, connection) {
            Ok(handle) => tasks.push(handle),
            Err(error) => {
                bump(&inner.serving.counters.failed);
                tracing::error!(service, %peer, %error, "could not spawn the connection's handler; closed it");
            }
        }
    }
}

/// One connection's task: the handshake, the handler, the counting.
fn serve_connection(
    inner: &Inner,
    runtime: Runtime,
    service: Arc<str>,
    conn: Connection,
    peer: SocketAddr,
    permit: Option<Permit>,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    let counters = inner.serving.counters.clone();
    let handler = inner.handler.clone();
    let upgrade = inner.upgrade.clone();
    let handshake_timeout = inner.handshake_timeout;
    async move {
        let _permit = permit;
        let _active = ActiveGuard::enter(&counters);
        let conn = match upgrade {
            None => conn,
            Some(upgrade) => match runtime
                .timeout(handshake_timeout, upgrade.upgrade(conn))
                .await
            {
                Ok(Ok(conn)) => conn,
                Ok(Err(error)) => {
                    bump(&counters.handshake_failures);
                    tracing::debug!(service = &*service, %peer, %error, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    bump(&counters.handshake_failures);
                    tracing::debug!(service = &*service, %peer, timeout = ?handshake_timeout, "TLS handshake timed out");
                    return;
                }
            },
        };
        let outcome = guarded(handler.handle(conn, peer)).await;
        counters.record(outcome, &service, peer, "connection");
    }
}

impl std::fmt::Debug for TcpServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpServer")
            .field("addr", &self.inner.addr)
            .field("local_addr", &self.local_addr())
            .field("tls", &self.inner.upgrade.is_some())
            .field("drain_timeout", &self.inner.serving.drain_timeout)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for TcpServerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpServerBuilder")
            .field("addr", &self.addr)
            .field("drain_timeout", &self.drain_timeout)
            .finish_non_exhaustive()
    }
}
