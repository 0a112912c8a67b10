//! [`HttpService`] (feature `http`): an axum [`Router`] as a Machina
//! service (aiomisc's aiohttp/ASGI services) — ready once bound, a
//! graceful drain at stop bounded by a timeout, requests counted.
//!
//! HTTP is tokio-only: axum and hyper's server run on tokio's I/O. On
//! smol and async-std, the core's `TcpServer` serves any protocol, and
//! the health endpoints (`net::HealthService`, feature `health`) run on
//! every runtime.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use std::future::Future;
use std::pin::Pin;

use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use axum::{Router, ServiceExt};
use machina_core::net::{BindAddr, NetError};
use machina_core::service::{Service, ServiceContext, ServiceFuture, StopContext};

pub use crate::served::RequestStats;
use crate::served::{CountLayer, Served, bind};

/// The default time a stop lets requests in progress finish.
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// An axum [`Router`] served as a [`Service`]; see the module docs.
/// Clones share the service.
///
/// - **Ready once bound** ([`local_addr`](Self::local_addr) tells the
///   port chosen for port 0).
/// - **Stop**: the listener closes, idle connections close, requests in
///   progress get the drain timeout; any still running then are cut off
///   (their handler is dropped, the client gets a 503 and the connection
///   closes), so a stop is bounded.
/// - [`RequestStats`]: requests, those in progress, 5xx answers,
///   requests cut off.
///
/// # Examples
///
/// ```
/// use axum::{Router, routing::get};
/// use machina_tokio::http::HttpService;
///
/// let app = Router::new().route("/", get(|| async { "hello" }));
/// let web = HttpService::builder("127.0.0.1:0", app).build().unwrap();
/// assert_eq!(web.local_addr(), None); // bound when it starts
/// ```
#[derive(Clone)]
pub struct HttpService {
    inner: Arc<Inner>,
}

struct Inner {
    addr: SocketAddr,
    router: Router,
    drain_timeout: Duration,
    connect_info: bool,
    served: Arc<Served>,
}

/// Configures an [`HttpService`].
#[must_use = "call .build() to get the service"]
pub struct HttpServiceBuilder {
    addr: Result<SocketAddr, NetError>,
    router: Router,
    drain_timeout: Duration,
    connect_info: bool,
}

impl HttpService {
    /// `router` served on `addr`.
    pub fn builder(addr: impl BindAddr, router: Router) -> HttpServiceBuilder {
        HttpServiceBuilder {
            addr: addr.socket_addr(),
            router,
            drain_timeout: DEFAULT_DRAIN_TIMEOUT,
            connect_info: false,
        }
    }

    /// The address it is bound to while it runs.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.inner.served.local_addr()
    }

    /// Its counters now.
    pub fn stats(&self) -> RequestStats {
        self.inner.served.stats()
    }

    /// Adds its counters to `stats` (kind `"http"`).
    pub fn add_to(&self, stats: &machina_core::stats::Stats, name: impl Into<String>) {
        self.inner.served.add_to(stats, "http", name);
    }
}

impl HttpServiceBuilder {
    /// How long a stop lets requests in progress finish (default 5 s);
    /// the service's stop timeout is this plus two seconds.
    pub fn drain_timeout(mut self, timeout: Duration) -> Self {
        self.drain_timeout = timeout;
        self
    }

    /// Gives handlers the peer's address (axum's
    /// `ConnectInfo<SocketAddr>` extractor); off by default, as with
    /// `axum::serve` (it costs an extension per request).
    pub fn connect_info(mut self, on: bool) -> Self {
        self.connect_info = on;
        self
    }

    /// The service.
    ///
    /// # Errors
    /// [`NetError::Address`] for an address that is not `ip:port`.
    pub fn build(self) -> Result<HttpService, NetError> {
        Ok(HttpService {
            inner: Arc::new(Inner {
                addr: self.addr?,
                router: self.router,
                drain_timeout: self.drain_timeout,
                connect_info: self.connect_info,
                served: Arc::default(),
            }),
        })
    }
}

/// A 503 that closes the connection.
fn shutting_down() -> Response {
    let mut response = (
        axum::http::StatusCode::SERVICE_UNAVAILABLE,
        "the server is shutting down\n",
    )
        .into_response();
    response.headers_mut().insert(
        axum::http::header::CONNECTION,
        axum::http::HeaderValue::from_static("close"),
    );
    response
}

impl Service for HttpService {
    fn start(self: Arc<Self>, ctx: ServiceContext) -> ServiceFuture {
        Box::pin(async move {
            let inner = &self.inner;
            let listener = bind("HTTP", inner.addr)?;
            let local = listener.local_addr()?;
            let run = inner.served.begin(local);
            tracing::info!(service = ctx.name(), addr = %local, "serving HTTP");
            ctx.ready();
            // One layer around the whole router (not one per route).
            let app = tower::Layer::layer(
                &CountLayer {
                    served: inner.served.clone(),
                    cut: run.cut.clone(),
                    cut_answer: shutting_down,
                },
                inner.router.clone(),
            );
            let shutdown = run.stop.clone().cancelled_owned();
            let serve: Pin<Box<dyn Future<Output = std::io::Result<()>> + Send>> = if inner
                .connect_info
            {
                let app =
                    ServiceExt::<Request>::into_make_service_with_connect_info::<SocketAddr>(app);
                Box::pin(
                    axum::serve(listener, app)
                        .with_graceful_shutdown(shutdown)
                        .into_future(),
                )
            } else {
                let app = ServiceExt::<Request>::into_make_service(app);
                Box::pin(
                    axum::serve(listener, app)
                        .with_graceful_shutdown(shutdown)
                        .into_future(),
                )
            };
            inner
                .served
                .drive(run, serve, ctx.runtime(), inner.drain_timeout, ctx.name())
                .await
        })
    }

    fn stop(self: Arc<Self>, _ctx: StopContext) -> ServiceFuture {
        Box::pin(async move {
            self.inner.served.stop().await;
            Ok(())
        })
    }

    fn graceful_shutdown_timeout(&self) -> Option<Duration> {
        Some(self.inner.drain_timeout + Duration::from_secs(2))
    }
}

impl std::fmt::Debug for HttpService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpService")
            .field("addr", &self.inner.addr)
            .field("local_addr", &self.local_addr())
            .field("drain_timeout", &self.inner.drain_timeout)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for HttpServiceBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpServiceBuilder")
            .field("addr", &self.addr)
            .field("drain_timeout", &self.drain_timeout)
            .finish_non_exhaustive()
    }
}
