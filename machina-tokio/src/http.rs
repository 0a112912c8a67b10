//! [`HttpService`] (feature `http`): an axum [`Router`] as a Machina
//! service (aiomisc's aiohttp/ASGI services) — ready once bound, a
//! graceful drain at stop bounded by a timeout, requests counted.
//!
//! HTTP is tokio-only: axum and hyper's server run on tokio's I/O. On
//! smol and async-std, the core's `TcpServer` serves any protocol, and
//! the health endpoints (`net::HealthService`, feature `health`) run on
//! every runtime.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures::channel::oneshot;
use futures::future::{Either, select};
use machina_core::net::{BindAddr, NetError};
use machina_core::service::{Service, ServiceContext, ServiceFuture, StopContext};
use tokio_util::sync::CancellationToken;

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
/// - [`HttpStats`]: requests, those in progress, 5xx answers, requests
///   cut off.
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
    counters: Arc<Counters>,
    local: Mutex<Option<SocketAddr>>,
    /// The running server's stop token and its "drained" signal.
    running: Mutex<Option<(CancellationToken, oneshot::Receiver<()>)>>,
}

/// Configures an [`HttpService`].
#[must_use = "call .build() to get the service"]
pub struct HttpServiceBuilder {
    addr: Result<SocketAddr, NetError>,
    router: Router,
    drain_timeout: Duration,
}

/// What an [`HttpService`] has served since it was built.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct HttpStats {
    /// Requests received.
    pub requests: u64,
    /// Requests in progress now.
    pub active: u64,
    /// Answers with a 5xx status.
    pub server_errors: u64,
    /// Requests cut off at the end of a drain.
    pub cut_off: u64,
}

#[derive(Debug, Default)]
struct Counters {
    requests: AtomicU64,
    active: AtomicU64,
    server_errors: AtomicU64,
    cut_off: AtomicU64,
}

impl HttpService {
    /// `router` served on `addr`.
    pub fn builder(addr: impl BindAddr, router: Router) -> HttpServiceBuilder {
        HttpServiceBuilder {
            addr: addr.socket_addr(),
            router,
            drain_timeout: DEFAULT_DRAIN_TIMEOUT,
        }
    }

    /// The address it is bound to while it runs.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        *self.inner.local.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Its counters now.
    pub fn stats(&self) -> HttpStats {
        let c = &self.inner.counters;
        HttpStats {
            requests: c.requests.load(Ordering::Relaxed),
            active: c.active.load(Ordering::Relaxed),
            server_errors: c.server_errors.load(Ordering::Relaxed),
            cut_off: c.cut_off.load(Ordering::Relaxed),
        }
    }

    /// Adds its counters to `stats` (kind `"http"`).
    pub fn add_to(&self, stats: &machina_core::stats::Stats, name: impl Into<String>) {
        let this = self.clone();
        stats.add("http", name, move || {
            let s = this.stats();
            vec![
                ("requests", s.requests as f64),
                ("active", s.active as f64),
                ("server_errors", s.server_errors as f64),
                ("cut_off", s.cut_off as f64),
            ]
        });
    }
}

impl HttpServiceBuilder {
    /// How long a stop lets requests in progress finish (default 5 s);
    /// the service's stop timeout is this plus two seconds.
    pub fn drain_timeout(mut self, timeout: Duration) -> Self {
        self.drain_timeout = timeout;
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
                counters: Arc::default(),
                local: Mutex::new(None),
                running: Mutex::new(None),
            }),
        })
    }
}

/// Counts a request, and answers 503 in its place if `cut` fires first.
async fn counted(
    counters: Arc<Counters>,
    cut: CancellationToken,
    request: Request,
    next: Next,
) -> Response {
    counters.requests.fetch_add(1, Ordering::Relaxed);
    counters.active.fetch_add(1, Ordering::Relaxed);
    let _active = ActiveGuard(&counters);
    let run = std::pin::pin!(next.run(request));
    let response = match select(run, std::pin::pin!(cut.cancelled())).await {
        Either::Left((response, _)) => response,
        Either::Right(_) => {
            counters.cut_off.fetch_add(1, Ordering::Relaxed);
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
    };
    if response.status().is_server_error() {
        counters.server_errors.fetch_add(1, Ordering::Relaxed);
    }
    response
}

struct ActiveGuard<'a>(&'a Counters);

impl Drop for ActiveGuard<'_> {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Service for HttpService {
    fn start(self: Arc<Self>, ctx: ServiceContext) -> ServiceFuture {
        Box::pin(async move {
            let inner = &self.inner;
            let bind_error = |source| NetError::Bind {
                addr: inner.addr,
                source,
            };
            if tokio::runtime::Handle::try_current().is_err() {
                return Err("an HttpService runs on a tokio runtime (machina_tokio::runtime()); axum needs tokio's I/O".into());
            }
            let listener = std::net::TcpListener::bind(inner.addr).map_err(bind_error)?;
            listener.set_nonblocking(true)?;
            let listener = tokio::net::TcpListener::from_std(listener)?;
            let local = listener.local_addr()?;
            let stop = CancellationToken::new();
            let cut = CancellationToken::new();
            let (drained_tx, drained_rx) = oneshot::channel();
            *inner.running.lock().unwrap_or_else(|p| p.into_inner()) =
                Some((stop.clone(), drained_rx));
            *inner.local.lock().unwrap_or_else(|p| p.into_inner()) = Some(local);
            tracing::info!(service = ctx.name(), addr = %local, "serving HTTP");
            ctx.ready();

            let counters = inner.counters.clone();
            let cut_requests = cut.clone();
            let app =
                inner
                    .router
                    .clone()
                    .layer(axum::middleware::from_fn(move |request, next| {
                        counted(counters.clone(), cut_requests.clone(), request, next)
                    }));
            let serve = axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(stop.clone().cancelled_owned())
            .into_future();
            let mut serve = std::pin::pin!(serve);
            let runtime = ctx.runtime().clone();
            let drain = inner.drain_timeout;
            let drain_ends = std::pin::pin!(async {
                stop.cancelled().await;
                runtime.sleep(drain).await;
            });
            let outcome = match select(serve.as_mut(), drain_ends).await {
                Either::Left((outcome, _)) => outcome,
                Either::Right(_) => {
                    tracing::warn!(service = ctx.name(), drain_timeout = ?drain, active = inner.counters.active.load(Ordering::Relaxed), "requests still running at the end of the drain were cut off");
                    cut.cancel();
                    match runtime.timeout(Duration::from_secs(1), serve).await {
                        Ok(outcome) => outcome,
                        Err(_) => Ok(()),
                    }
                }
            };
            *inner.local.lock().unwrap_or_else(|p| p.into_inner()) = None;
            let _ = drained_tx.send(());
            outcome.map_err(Into::into)
        })
    }

    fn stop(self: Arc<Self>, _ctx: StopContext) -> ServiceFuture {
        Box::pin(async move {
            let running = self
                .inner
                .running
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take();
            if let Some((stop, drained)) = running {
                stop.cancel();
                let _ = drained.await;
            }
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
