//! [`RobustClient`]: a client connection kept up as a service (aiomisc
//! `RobustTCPClient` / `RobustTLSClient`) — it connects, hands the
//! handler the connection, and when the connection drops or cannot be
//! made, waits (the shared [`Wait`] vocabulary) and connects again with a
//! fresh one, counting it all in [`ClientStats`].

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures::channel::oneshot;
use futures::future::{Either, select};

use super::client::TcpClient;
use super::control::LoopControl;
use super::counters::{ClientCounters, ClientStats, bump};
use super::handler::{Outcome, StreamHandler, guarded};
use crate::service::{Service, ServiceContext, ServiceFuture, StopContext};
use crate::waits::Wait;

/// The default waits between connects: 100 ms doubling to at most 10 s.
pub const DEFAULT_RECONNECT_WAITS: Wait = Wait::Exponential {
    base: Duration::from_millis(100),
    factor: 2,
    cap: Duration::from_secs(10),
};

/// When a [`RobustClient`]'s start returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ReadyWhen {
    /// Once the first connection is made (its dependents can use it at
    /// once); until then the start keeps trying.
    #[default]
    Connected,
    /// At once; connecting goes on in the background.
    Started,
}

/// A connection kept up as a [`Service`]; see the module docs. Clones
/// share the client.
///
/// Each connection goes to the handler; when the handler returns (the
/// peer closed, or it is done), fails or panics, the client waits and
/// connects again. A successful connect starts the waits over. At stop,
/// the handler's run is cancelled.
///
/// # Examples
///
/// ```
/// use machina_core::net::{ReadyWhen, RobustClient, TcpClient};
/// use machina_core::waits::Wait;
/// use std::time::Duration;
///
/// let feed = RobustClient::builder(TcpClient::builder("127.0.0.1:9000").build().unwrap(), |conn| async move {
///     let _ = conn; // read the feed until the server closes it
///     Ok(())
/// })
/// .waits(Wait::Fixed(Duration::from_secs(1)))
/// .ready_when(ReadyWhen::Started)
/// .build();
/// assert_eq!(feed.stats().connects, 0);
/// ```
#[derive(Clone)]
pub struct RobustClient {
    inner: Arc<Inner>,
}

struct Inner {
    client: TcpClient,
    handler: Arc<dyn StreamHandler>,
    waits: Wait,
    ready_when: ReadyWhen,
    counters: ClientCounters,
    control: LoopControl,
}

/// Configures a [`RobustClient`].
#[must_use = "call .build() to get the client"]
pub struct RobustClientBuilder {
    client: TcpClient,
    handler: Arc<dyn StreamHandler>,
    waits: Wait,
    ready_when: ReadyWhen,
}

impl RobustClient {
    /// Keeps connections of `client` going to `handler`.
    pub fn builder(client: TcpClient, handler: impl StreamHandler) -> RobustClientBuilder {
        RobustClientBuilder {
            client,
            handler: Arc::new(handler),
            waits: DEFAULT_RECONNECT_WAITS,
            ready_when: ReadyWhen::default(),
        }
    }

    /// Its counters now.
    pub fn stats(&self) -> ClientStats {
        self.inner.counters.snapshot()
    }

    /// Whether a connection is open now.
    pub fn is_connected(&self) -> bool {
        self.inner.counters.connected.load(Ordering::Relaxed) == 1
    }
}

impl RobustClientBuilder {
    /// The waits before each new connect (default
    /// [`DEFAULT_RECONNECT_WAITS`]).
    pub fn waits(mut self, waits: Wait) -> Self {
        self.waits = waits;
        self
    }

    /// When its start returns (default [`ReadyWhen::Connected`]).
    pub fn ready_when(mut self, ready_when: ReadyWhen) -> Self {
        self.ready_when = ready_when;
        self
    }

    /// The client.
    pub fn build(self) -> RobustClient {
        RobustClient {
            inner: Arc::new(Inner {
                client: self.client,
                handler: self.handler,
                waits: self.waits,
                ready_when: self.ready_when,
                counters: ClientCounters::default(),
                control: LoopControl::default(),
            }),
        }
    }
}

impl Service for RobustClient {
    fn start(self: Arc<Self>, ctx: ServiceContext) -> ServiceFuture {
        Box::pin(async move {
            let inner = &self.inner;
            let mut armed = inner.control.arm();
            if inner.ready_when == ReadyWhen::Started {
                ctx.ready();
            }
            keep_connected(inner, &ctx, &mut armed.stop).await;
            inner.counters.connected.store(0, Ordering::Relaxed);
            let _ = armed.drained.send(());
            Ok(())
        })
    }

    fn stop(self: Arc<Self>, _ctx: StopContext) -> ServiceFuture {
        Box::pin(async move {
            self.inner.control.stop().await;
            Ok(())
        })
    }
}

/// Connects, runs the handler, waits, and again, until the stop signal.
async fn keep_connected(inner: &Inner, ctx: &ServiceContext, stop: &mut oneshot::Receiver<()>) {
    let runtime = ctx.runtime();
    let service = ctx.name();
    let addr = inner.client.addr();
    let mut waits = inner.waits.waits(runtime.rng().clone());
    let mut connected_before = false;
    loop {
        let connect = std::pin::pin!(inner.client.connect(runtime));
        match select(connect, &mut *stop).await {
            Either::Left((Ok(conn), _)) => {
                bump(&inner.counters.connects);
                if connected_before {
                    bump(&inner.counters.reconnects);
                    tracing::info!(service, addr, "reconnected");
                } else {
                    tracing::info!(service, addr, "connected");
                }
                connected_before = true;
                waits.reset();
                inner.counters.connected.store(1, Ordering::Relaxed);
                ctx.ready();
                let run = std::pin::pin!(guarded(inner.handler.handle(conn)));
                let outcome = match select(run, &mut *stop).await {
                    Either::Left((outcome, _)) => outcome,
                    Either::Right(_) => return,
                };
                inner.counters.connected.store(0, Ordering::Relaxed);
                match outcome {
                    Outcome::Done => tracing::info!(service, addr, "connection closed"),
                    Outcome::Failed(error) => {
                        bump(&inner.counters.handler_failures);
                        tracing::warn!(service, addr, %error, "connection handler failed");
                    }
                    Outcome::Panicked(message) => {
                        bump(&inner.counters.handler_failures);
                        tracing::error!(service, addr, panic = %message, "connection handler panicked");
                    }
                }
            }
            Either::Left((Err(error), _)) => {
                bump(&inner.counters.connect_failures);
                tracing::warn!(service, addr, %error, "connect failed");
            }
            Either::Right(_) => return,
        }
        let wait = waits.next().unwrap_or_default();
        tracing::debug!(service, addr, ?wait, "connecting again after a wait");
        if let Either::Right(_) = select(runtime.sleep(wait), &mut *stop).await {
            return;
        }
    }
}

impl std::fmt::Debug for RobustClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RobustClient")
            .field("client", &self.inner.client)
            .field("waits", &self.inner.waits)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for RobustClientBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RobustClientBuilder")
            .field("client", &self.client)
            .field("waits", &self.waits)
            .finish_non_exhaustive()
    }
}
