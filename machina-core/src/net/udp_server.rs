//! [`UdpServer`]: a UDP socket as a service (aiomisc `UDPServer`) — one
//! handler task per datagram, answering through the server's socket;
//! ready once bound, drained at stop.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::future::{Either, select};

use super::addr::BindAddr;
use super::control::{Run, Serving, pause};
use super::counters::{ActiveGuard, ServerStats, bump};
use super::error::NetError;
use super::handler::{DatagramHandler, Reply, guarded};
use super::tcp_server::DEFAULT_DRAIN_TIMEOUT;
use crate::rt::{Runtime, UdpIo};
use crate::service::{Service, ServiceContext, ServiceFuture, StopContext};

/// The default size of the receive buffer: the largest UDP payload.
pub const DEFAULT_MAX_DATAGRAM: usize = 65_507;

/// A UDP server as a [`Service`]; see the module docs. Clones share the
/// server.
///
/// Each datagram runs the handler in a task of its own (an error or a
/// panic is logged and counted in [`ServerStats`]: `accepted` counts the
/// datagrams received); at stop, the socket stops receiving and running
/// handlers get the drain timeout.
///
/// # Examples
///
/// ```
/// use machina_core::net::{Reply, UdpServer};
///
/// let echo = UdpServer::builder("127.0.0.1:0", |datagram: Vec<u8>, peer, reply: Reply| async move {
///     reply.send_to(&datagram, peer).await?;
///     Ok(())
/// })
/// .build()
/// .unwrap();
/// assert_eq!(echo.local_addr(), None); // bound when it starts
/// ```
#[derive(Clone)]
pub struct UdpServer {
    inner: Arc<Inner>,
}

struct Inner {
    addr: SocketAddr,
    handler: Arc<dyn DatagramHandler>,
    max_datagram: usize,
    /// Counters, bound address, stop hand-off, drain timeout.
    serving: Serving,
}

/// Configures a [`UdpServer`].
#[must_use = "call .build() to get the server"]
pub struct UdpServerBuilder {
    addr: Result<SocketAddr, NetError>,
    handler: Arc<dyn DatagramHandler>,
    drain_timeout: Duration,
    max_datagram: usize,
}

impl UdpServer {
    /// A server that will bind `addr` and run `handler` for each datagram.
    pub fn builder(addr: impl BindAddr, handler: impl DatagramHandler) -> UdpServerBuilder {
        UdpServerBuilder {
            addr: addr.socket_addr(),
            handler: Arc::new(handler),
            drain_timeout: DEFAULT_DRAIN_TIMEOUT,
            max_datagram: DEFAULT_MAX_DATAGRAM,
        }
    }

    /// The address it is bound to while it runs.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.inner.serving.local_addr()
    }

    /// Its counters now (`accepted`: datagrams received).
    pub fn stats(&self) -> ServerStats {
        self.inner.serving.counters.snapshot()
    }
}

impl UdpServerBuilder {
    /// How long a stop lets running handlers finish (default 5 s).
    pub fn drain_timeout(mut self, timeout: Duration) -> Self {
        self.drain_timeout = timeout;
        self
    }

    /// The receive buffer: a longer datagram is cut to it (default
    /// 65 507 bytes).
    pub fn max_datagram(mut self, bytes: usize) -> Self {
        self.max_datagram = bytes;
        self
    }

    /// The server.
    ///
    /// # Errors
    /// [`NetError::Address`] for an address that is not `ip:port`,
    /// [`NetError::Setting`] for a zero `max_datagram`.
    pub fn build(self) -> Result<UdpServer, NetError> {
        if self.max_datagram == 0 {
            return Err(NetError::Setting {
                setting: "max_datagram",
                why: "a zero-byte buffer would cut every datagram to nothing",
            });
        }
        Ok(UdpServer {
            inner: Arc::new(Inner {
                addr: self.addr?,
                handler: self.handler,
                max_datagram: self.max_datagram,
                serving: Serving::new(self.drain_timeout),
            }),
        })
    }
}

impl Service for UdpServer {
    fn start(self: Arc<Self>, ctx: ServiceContext) -> ServiceFuture {
        Box::pin(async move {
            let inner = &self.inner;
            let sockets = ctx.runtime().sockets()?.clone();
            let socket: Arc<dyn UdpIo> = sockets
                .bind_udp(inner.addr)
                .await
                .map_err(|source| NetError::Bind {
                    addr: inner.addr,
                    source,
                })?
                .into();
            let local = socket.local_addr()?;
            let mut run = inner.serving.begin(&ctx, local, "listening (udp)");
            receive_until_stopped(inner, ctx.runtime(), ctx.name(), &socket, &mut run).await;
            inner.serving.end(&ctx, run, "datagrams").await;
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

async fn receive_until_stopped(
    inner: &Inner,
    runtime: &Runtime,
    service: &str,
    socket: &Arc<dyn UdpIo>,
    run: &mut Run,
) {
    let Run { stop, tasks, .. } = run;
    let mut buf = vec![0; inner.max_datagram];
    loop {
        let (len, peer) = match select(socket.recv_from(&mut buf), &mut *stop).await {
            Either::Left((Ok(received), _)) => received,
            Either::Left((Err(error), _)) => {
                bump(&inner.serving.counters.accept_errors);
                // An ICMP "port unreachable" for an earlier answer shows up
                // here on some systems: routine, not a reason to pause.
                tracing::debug!(service, %error, "receive failed");
                if error.kind() != std::io::ErrorKind::ConnectionReset && pause(runtime, stop).await
                {
                    return;
                }
                continue;
            }
            Either::Right(_) => return,
        };
        bump(&inner.serving.counters.accepted);
        let counters = inner.serving.counters.clone();
        let handler = inner.handler.clone();
        let reply = Reply {
            socket: socket.clone(),
        };
        let datagram = buf[..len].to_vec();
        let name: Arc<str> = service.into();
        let task = async move {
            let _active = ActiveGuard::enter(&counters);
            let outcome = guarded(handler.handle(datagram, peer, reply)).await;
            counters.record(outcome, &name, peer, "datagram");
        };
        match runtime.spawn_named(service, task) {
            Ok(handle) => tasks.push(handle),
            Err(error) => {
                bump(&inner.serving.counters.failed);
                tracing::error!(service, %peer, %error, "could not spawn the datagram's handler; dropped it");
            }
        }
    }
}

impl std::fmt::Debug for UdpServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UdpServer")
            .field("addr", &self.inner.addr)
            .field("local_addr", &self.local_addr())
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for UdpServerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UdpServerBuilder")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}
