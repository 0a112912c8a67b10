//! What the HTTP and gRPC services share: binding a tokio listener, the
//! stop/drained hand-off between a service's stop and its serving loop,
//! the request counters with the middleware that keeps them (and cuts a
//! request off when a drain runs out), and the drain bounded by a
//! timeout.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::Request;
use axum::response::Response;
use bytes::Bytes;
use futures::channel::oneshot;
use futures::future::{Either, select};
use http_body::Body as _;
use machina_core::BoxError;
use machina_core::net::NetError;
use machina_core::rt::Runtime;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

/// What an HTTP or gRPC service has served since it was built.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RequestStats {
    /// Requests received.
    pub requests: u64,
    /// Requests in progress now.
    pub active: u64,
    /// Answers with a 5xx status.
    pub server_errors: u64,
    /// Requests cut off at the end of a drain.
    pub cut_off: u64,
}

impl RequestStats {
    pub(crate) fn samples(&self) -> Vec<(&'static str, f64)> {
        vec![
            ("requests", self.requests as f64),
            ("active", self.active as f64),
            ("server_errors", self.server_errors as f64),
            ("cut_off", self.cut_off as f64),
        ]
    }
}

/// The serving state of one service: its counters, the address it is
/// bound to, and the running loop's stop token and drained signal.
#[derive(Debug, Default)]
pub(crate) struct Served {
    counters: Counters,
    local: Mutex<Option<SocketAddr>>,
    running: Mutex<Option<(CancellationToken, oneshot::Receiver<()>)>>,
}

#[derive(Debug, Default)]
struct Counters {
    requests: AtomicU64,
    active: AtomicU64,
    server_errors: AtomicU64,
    cut_off: AtomicU64,
}

/// One run of a serving loop: fire `cut` to end requests in progress.
pub(crate) struct Run {
    pub(crate) stop: CancellationToken,
    pub(crate) cut: CancellationToken,
    drained: oneshot::Sender<()>,
}

/// Binds `addr` on the current tokio runtime.
pub(crate) fn bind(kind: &str, addr: SocketAddr) -> Result<tokio::net::TcpListener, BoxError> {
    if tokio::runtime::Handle::try_current().is_err() {
        return Err(format!(
            "an {kind} service runs on a tokio runtime (machina_tokio::runtime()): it needs tokio's I/O"
        )
        .into());
    }
    let listener =
        std::net::TcpListener::bind(addr).map_err(|source| NetError::Bind { addr, source })?;
    listener.set_nonblocking(true)?;
    Ok(tokio::net::TcpListener::from_std(listener)?)
}

impl Served {
    pub(crate) fn local_addr(&self) -> Option<SocketAddr> {
        *self.local.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn stats(&self) -> RequestStats {
        let c = &self.counters;
        RequestStats {
            requests: c.requests.load(Ordering::Relaxed),
            active: c.active.load(Ordering::Relaxed),
            server_errors: c.server_errors.load(Ordering::Relaxed),
            cut_off: c.cut_off.load(Ordering::Relaxed),
        }
    }

    /// Adds these counters to `stats` under `kind` and `name`.
    pub(crate) fn add_to(
        self: &Arc<Self>,
        stats: &machina_core::stats::Stats,
        kind: &'static str,
        name: impl Into<String>,
    ) {
        let this = self.clone();
        stats.add(kind, name, move || this.stats().samples());
    }

    /// Registers a run bound to `local`.
    pub(crate) fn begin(&self, local: SocketAddr) -> Run {
        let (drained, drained_rx) = oneshot::channel();
        let stop = CancellationToken::new();
        *self.running.lock().unwrap_or_else(|p| p.into_inner()) = Some((stop.clone(), drained_rx));
        *self.local.lock().unwrap_or_else(|p| p.into_inner()) = Some(local);
        Run {
            stop,
            cut: CancellationToken::new(),
            drained,
        }
    }

    /// Tells the running loop to stop and waits until it has drained.
    pub(crate) async fn stop(&self) {
        let running = self
            .running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some((stop, drained)) = running {
            stop.cancel();
            let _ = drained.await;
        }
    }

    /// Runs `serve` (which ends once `run.stop` fires and its connections
    /// close) to its end — or, when the drain timeout after the stop runs
    /// out, cuts off the requests still running and gives it one more
    /// second.
    pub(crate) async fn drive<E: Into<BoxError>>(
        &self,
        run: Run,
        serve: impl Future<Output = Result<(), E>>,
        runtime: &Runtime,
        drain: Duration,
        service: &str,
    ) -> Result<(), BoxError> {
        let mut serve = std::pin::pin!(serve);
        let drain_ends = std::pin::pin!(async {
            run.stop.cancelled().await;
            runtime.sleep(drain).await;
        });
        let outcome = match select(serve.as_mut(), drain_ends).await {
            Either::Left((outcome, _)) => outcome,
            Either::Right(_) => {
                let active = self.counters.active.load(Ordering::Relaxed);
                tracing::warn!(service, drain_timeout = ?drain, active, "requests still running at the end of the drain were cut off");
                run.cut.cancel();
                runtime
                    .timeout(Duration::from_secs(1), serve)
                    .await
                    .unwrap_or(Ok(()))
            }
        };
        *self.local.lock().unwrap_or_else(|p| p.into_inner()) = None;
        let _ = run.drained.send(());
        outcome.map_err(Into::into)
    }
}

/// A response body that ends with an error when `cut` fires: a stream
/// that would otherwise hold a drained server open.
struct CutBody {
    inner: axum::body::Body,
    cut: CancellationToken,
    /// Made the first time the body waits (a body ready at once, the
    /// usual case, costs no allocation).
    waiting: Option<Pin<Box<WaitForCancellationFutureOwned>>>,
}

impl CutBody {
    fn new(inner: axum::body::Body, cut: CancellationToken) -> Self {
        CutBody {
            inner,
            cut,
            waiting: None,
        }
    }
}

impl http_body::Body for CutBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(frame);
        }
        let this = &mut *self;
        let cut = this.cut.clone();
        let waiting = this
            .waiting
            .get_or_insert_with(|| Box::pin(cut.cancelled_owned()));
        match waiting.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(axum::Error::new(
                "the answer was cut off at the end of the drain",
            )))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// The layer that counts each request and cuts it off when a drain runs
/// out: a plain tower layer with a concrete future (nothing boxed per
/// request unless a handler or a streamed body actually waits).
#[derive(Clone)]
pub(crate) struct CountLayer {
    pub(crate) served: Arc<Served>,
    pub(crate) cut: CancellationToken,
    /// The answer in place of a request cut off.
    pub(crate) cut_answer: fn() -> Response,
}

impl<S> tower::Layer<S> for CountLayer {
    type Service = CountService<S>;

    fn layer(&self, inner: S) -> CountService<S> {
        CountService {
            inner,
            layer: self.clone(),
        }
    }
}

/// [`CountLayer`]'s service.
#[derive(Clone)]
pub(crate) struct CountService<S> {
    inner: S,
    layer: CountLayer,
}

impl<S> tower::Service<Request> for CountService<S>
where
    S: tower::Service<Request, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Counted<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let counters = &self.layer.served.counters;
        counters.requests.fetch_add(1, Ordering::Relaxed);
        counters.active.fetch_add(1, Ordering::Relaxed);
        Counted {
            inner: self.inner.call(request),
            layer: self.layer.clone(),
            waiting: None,
            active: true,
        }
    }
}

/// A request in progress: the handler's future, raced against the cut
/// once it waits.
#[pin_project::pin_project(PinnedDrop)]
pub(crate) struct Counted<F> {
    #[pin]
    inner: F,
    layer: CountLayer,
    waiting: Option<Pin<Box<WaitForCancellationFutureOwned>>>,
    /// Still counted active (until it answers or is dropped).
    active: bool,
}

impl<F, E> Future for Counted<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let counters = &this.layer.served.counters;
        let response = match this.inner.poll(cx) {
            Poll::Ready(Ok(response)) => response,
            Poll::Ready(Err(error)) => {
                *this.active = false;
                counters.active.fetch_sub(1, Ordering::Relaxed);
                return Poll::Ready(Err(error));
            }
            Poll::Pending => {
                let cut = this.layer.cut.clone();
                let waiting = this
                    .waiting
                    .get_or_insert_with(|| Box::pin(cut.cancelled_owned()));
                if waiting.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                counters.cut_off.fetch_add(1, Ordering::Relaxed);
                (this.layer.cut_answer)()
            }
        };
        *this.active = false;
        counters.active.fetch_sub(1, Ordering::Relaxed);
        if response.status().is_server_error() {
            counters.server_errors.fetch_add(1, Ordering::Relaxed);
        }
        // A streamed answer (of unknown length) outlives its handler: it
        // is cut off too. A body of known length is sent as it is.
        let response = if response.body().size_hint().exact().is_some() {
            response
        } else {
            let cut = this.layer.cut.clone();
            response.map(|body| axum::body::Body::new(CutBody::new(body, cut)))
        };
        Poll::Ready(Ok(response))
    }
}

#[pin_project::pinned_drop]
impl<F> PinnedDrop for Counted<F> {
    fn drop(self: Pin<&mut Self>) {
        let this = self.project();
        if *this.active {
            this.layer
                .served
                .counters
                .active
                .fetch_sub(1, Ordering::Relaxed);
        }
    }
}
