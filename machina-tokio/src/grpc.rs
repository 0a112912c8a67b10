//! [`GrpcService`] (feature `grpc`): tonic services as a Machina service
//! (aiomisc `GRPCService`), with the standard health service
//! (`grpc.health.v1.Health`, from `tonic-health`) — `SERVING` once bound,
//! `NOT_SERVING` from the moment a stop begins — and the same bounded
//! drain as [`HttpService`](crate::http::HttpService).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::response::Response;
use machina_core::net::{BindAddr, NetError};
use machina_core::service::{Service, ServiceContext, ServiceFuture, StopContext};
use tonic::service::Routes;
use tonic::transport::server::TcpIncoming;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use crate::http::DEFAULT_DRAIN_TIMEOUT;
use crate::served::{CountLayer, RequestStats, Served, bind};

/// tonic services served as a [`Service`]; see the module docs. Clones
/// share the service.
///
/// # Examples
///
/// ```
/// use machina_tokio::grpc::GrpcService;
/// use tonic::service::Routes;
///
/// // Routes::new(MyServer::new(my_impl)).add_service(…) with real services.
/// let grpc = GrpcService::builder("127.0.0.1:0", Routes::default()).build().unwrap();
/// assert_eq!(grpc.local_addr(), None); // bound when it starts
/// let _reporter = grpc.health(); // per-service statuses, if wanted
/// ```
#[derive(Clone)]
pub struct GrpcService {
    inner: Arc<Inner>,
}

struct Inner {
    addr: SocketAddr,
    /// The caller's services and the health service.
    routes: Routes,
    health: HealthReporter,
    drain_timeout: Duration,
    served: Arc<Served>,
}

/// Configures a [`GrpcService`].
#[must_use = "call .build() to get the service"]
#[derive(Debug)]
pub struct GrpcServiceBuilder {
    addr: Result<SocketAddr, NetError>,
    routes: Routes,
    drain_timeout: Duration,
}

impl GrpcService {
    /// `routes` served on `addr`, with the health service added.
    pub fn builder(addr: impl BindAddr, routes: Routes) -> GrpcServiceBuilder {
        GrpcServiceBuilder {
            addr: addr.socket_addr(),
            routes,
            drain_timeout: DEFAULT_DRAIN_TIMEOUT,
        }
    }

    /// The address it is bound to while it runs.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.inner.served.local_addr()
    }

    /// The health service's reporter: the whole server (`""`) is set by
    /// the service itself; set each of yours as it sees fit.
    pub fn health(&self) -> HealthReporter {
        self.inner.health.clone()
    }

    /// Its counters now (`server_errors`: answers with an HTTP 5xx, not
    /// gRPC error statuses, which travel in trailers).
    pub fn stats(&self) -> RequestStats {
        self.inner.served.stats()
    }

    /// Adds its counters to `stats` (kind `"grpc"`).
    pub fn add_to(&self, stats: &machina_core::stats::Stats, name: impl Into<String>) {
        self.inner.served.add_to(stats, "grpc", name);
    }
}

impl GrpcServiceBuilder {
    /// How long a stop lets calls in progress finish (default 5 s); calls
    /// still running then end with `UNAVAILABLE`.
    pub fn drain_timeout(mut self, timeout: Duration) -> Self {
        self.drain_timeout = timeout;
        self
    }

    /// The service.
    ///
    /// # Errors
    /// [`NetError::Address`] for an address that is not `ip:port`.
    pub fn build(self) -> Result<GrpcService, NetError> {
        let (health, health_server) = tonic_health::server::health_reporter();
        Ok(GrpcService {
            inner: Arc::new(Inner {
                addr: self.addr?,
                routes: self.routes.add_service(health_server),
                health,
                drain_timeout: self.drain_timeout,
                served: Arc::default(),
            }),
        })
    }
}

/// A call cut off at the end of a drain: `UNAVAILABLE`.
fn unavailable() -> Response {
    tonic::Status::unavailable("the server is shutting down").into_http::<axum::body::Body>()
}

impl Service for GrpcService {
    fn start(self: Arc<Self>, ctx: ServiceContext) -> ServiceFuture {
        Box::pin(async move {
            let inner = &self.inner;
            let listener = bind("gRPC", inner.addr)?;
            let local = listener.local_addr()?;
            let run = inner.served.begin(local);
            inner
                .health
                .set_service_status("", ServingStatus::Serving)
                .await;
            tracing::info!(service = ctx.name(), addr = %local, "serving gRPC");
            ctx.ready();
            let router = inner.routes.clone().into_axum_router().layer(CountLayer {
                served: inner.served.clone(),
                cut: run.cut.clone(),
                cut_answer: unavailable,
            });
            let serve = tonic::transport::Server::builder()
                .add_routes(Routes::from(router))
                .serve_with_incoming_shutdown(
                    TcpIncoming::from(listener).with_nodelay(Some(true)),
                    run.stop.clone().cancelled_owned(),
                );
            inner
                .served
                .drive(run, serve, ctx.runtime(), inner.drain_timeout, ctx.name())
                .await
        })
    }

    fn stop(self: Arc<Self>, _ctx: StopContext) -> ServiceFuture {
        Box::pin(async move {
            self.inner
                .health
                .set_service_status("", ServingStatus::NotServing)
                .await;
            self.inner.served.stop().await;
            Ok(())
        })
    }

    fn graceful_shutdown_timeout(&self) -> Option<Duration> {
        Some(self.inner.drain_timeout + Duration::from_secs(2))
    }
}

impl std::fmt::Debug for GrpcService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrpcService")
            .field("addr", &self.inner.addr)
            .field("local_addr", &self.local_addr())
            .field("drain_timeout", &self.inner.drain_timeout)
            .finish_non_exhaustive()
    }
}
