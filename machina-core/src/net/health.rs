//! [`HealthService`] (feature `health`): the endpoints an orchestrator
//! and Prometheus ask a long-running program for, on every runtime —
//! `/healthz` (the process is up), `/readyz` (every service of the stack
//! running, none stopping; it turns to 503 as soon as a shutdown begins)
//! and `/metrics` (a [`Stats`] set in the Prometheus text format, through
//! the `metrics` facade and `metrics-exporter-prometheus`).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusRecorder};

use super::addr::BindAddr;
use super::error::NetError;
use super::http1::{ReadError, RequestReader, Response, write_response};
use super::tcp_server::TcpServer;
use crate::error::BoxError;
use crate::rt::{Connection, Runtime};
use crate::service::{Readiness, Service, ServiceContext, ServiceFuture, StopContext};
use crate::stats::Stats;

/// How long an idle keep-alive connection stays open.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// Health, readiness and metrics over HTTP/1.1, as a [`Service`]; see the
/// module docs. Clones share the service.
///
/// Register it with no dependencies, so it starts first and stops last:
/// `/readyz` then says 503 while the rest start, 200 once all run, and
/// 503 again from the moment a shutdown begins, while the others stop.
///
/// | path | answer |
/// | --- | --- |
/// | `GET /healthz` | 200 `ok` |
/// | `GET /readyz` | 200 `ready`, or 503 naming what is not running or stopping |
/// | `GET /metrics` | 200, the [`Stats`] as gauges `machina_<kind>_<counter>{name="…"}` |
/// | anything else | 404 (405 for a method other than GET or HEAD) |
///
/// # Examples
///
/// ```
/// use machina_core::net::HealthService;
/// use machina_core::stats::Stats;
///
/// let stats = Stats::new();
/// let health = HealthService::builder("127.0.0.1:0").stats(stats.clone()).build().unwrap();
/// assert_eq!(health.local_addr(), None); // bound when it starts
/// ```
#[derive(Clone)]
pub struct HealthService {
    server: TcpServer,
    running: Arc<Mutex<Option<Running>>>,
}

/// What the endpoints learn from the stack when the service starts.
#[derive(Clone)]
struct Running {
    readiness: Readiness,
    runtime: Runtime,
}

/// Configures a [`HealthService`].
#[must_use = "call .build() to get the service"]
#[derive(Debug)]
pub struct HealthServiceBuilder {
    addr: Result<SocketAddr, NetError>,
    stats: Stats,
    drain_timeout: Duration,
}

impl HealthService {
    /// Endpoints on `addr` (port 0: any free port).
    pub fn builder(addr: impl BindAddr) -> HealthServiceBuilder {
        HealthServiceBuilder {
            addr: addr.socket_addr(),
            stats: Stats::new(),
            drain_timeout: Duration::from_secs(1),
        }
    }

    /// The address it is bound to while it runs.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.server.local_addr()
    }

    /// The server underneath (its counters: scrapes and probes served).
    pub fn server(&self) -> &TcpServer {
        &self.server
    }
}

impl HealthServiceBuilder {
    /// The components `/metrics` reports (default: none).
    pub fn stats(mut self, stats: Stats) -> Self {
        self.stats = stats;
        self
    }

    /// How long a stop lets an answer in progress finish (default 1 s).
    pub fn drain_timeout(mut self, timeout: Duration) -> Self {
        self.drain_timeout = timeout;
        self
    }

    /// The service.
    ///
    /// # Errors
    /// [`NetError::Address`] for an address that is not `ip:port`.
    pub fn build(self) -> Result<HealthService, NetError> {
        let running: Arc<Mutex<Option<Running>>> = Arc::default();
        let endpoints = Arc::new(Endpoints {
            stats: self.stats,
            recorder: PrometheusBuilder::new().build_recorder(),
            running: running.clone(),
        });
        let server = TcpServer::builder(self.addr?, move |conn: Connection, _peer: SocketAddr| {
            let endpoints = endpoints.clone();
            async move { endpoints.serve(conn).await }
        })
        .drain_timeout(self.drain_timeout)
        .build()?;
        Ok(HealthService { server, running })
    }
}

/// What the endpoints read.
struct Endpoints {
    stats: Stats,
    /// A recorder of this service's own: the `Stats` are exported into it
    /// at each scrape, whatever global recorder the program has.
    recorder: PrometheusRecorder,
    running: Arc<Mutex<Option<Running>>>,
}

impl Endpoints {
    /// Answers requests on one connection until the client closes it or
    /// stays idle too long.
    async fn serve(&self, mut conn: Connection) -> Result<(), BoxError> {
        let Some(Running { readiness, runtime }) = self.running() else {
            return Ok(());
        };
        let mut reader = RequestReader::new();
        loop {
            let Ok(request) = runtime.timeout(IDLE_TIMEOUT, reader.next(&mut conn)).await else {
                return Ok(()); // idle
            };
            let request = match request {
                Ok(request) => request,
                Err(ReadError::Closed) => return Ok(()),
                Err(ReadError::Bad(status)) => {
                    let answer = Response::text(status, "bad request\n");
                    write_response(&mut conn, &answer, false, false).await?;
                    return Ok(());
                }
                Err(ReadError::Io(error)) => return Err(error.into()),
            };
            let head_only = request.method == "HEAD";
            let answer = if request.method != "GET" && !head_only {
                Response::text(405, "only GET and HEAD\n")
            } else {
                self.answer(&request.path, &readiness)
            };
            write_response(&mut conn, &answer, head_only, request.keep_alive).await?;
            if !request.keep_alive {
                return Ok(());
            }
        }
    }

    fn running(&self) -> Option<Running> {
        self.running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn answer(&self, path: &str, readiness: &Readiness) -> Response {
        match path {
            "/healthz" | "/livez" => Response::text(200, "ok\n"),
            "/readyz" => readyz(readiness),
            "/metrics" => {
                metrics::with_local_recorder(&self.recorder, || self.stats.export());
                Response {
                    status: 200,
                    content_type: "text/plain; version=0.0.4; charset=utf-8",
                    body: self.recorder.handle().render(),
                }
            }
            _ => Response::text(404, "not found: try /healthz, /readyz or /metrics\n"),
        }
    }
}

fn readyz(readiness: &Readiness) -> Response {
    let state = readiness.check();
    if state.ready {
        return Response::text(200, "ready\n");
    }
    let mut why = Vec::new();
    if state.shutting_down {
        why.push("shutting down".to_owned());
    }
    if !state.not_running.is_empty() {
        why.push(format!("not running: {}", state.not_running.join(", ")));
    }
    if !state.stopping.is_empty() {
        why.push(format!("stopping: {}", state.stopping.join(", ")));
    }
    Response::text(503, format!("not ready: {}\n", why.join("; ")))
}

impl Service for HealthService {
    fn start(self: Arc<Self>, ctx: ServiceContext) -> ServiceFuture {
        *self.running.lock().unwrap_or_else(|p| p.into_inner()) = Some(Running {
            readiness: ctx.readiness(),
            runtime: ctx.runtime().clone(),
        });
        Arc::new(self.server.clone()).start(ctx)
    }

    fn stop(self: Arc<Self>, ctx: StopContext) -> ServiceFuture {
        Arc::new(self.server.clone()).stop(ctx)
    }

    fn graceful_shutdown_timeout(&self) -> Option<Duration> {
        self.server.graceful_shutdown_timeout()
    }
}

impl std::fmt::Debug for HealthService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HealthService")
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}
