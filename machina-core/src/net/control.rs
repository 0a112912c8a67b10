//! [`LoopControl`]: how a service's stop reaches the loop its start runs
//! (an accept loop, a receive loop, a reconnect loop), and how the stop
//! learns the loop has drained; [`Serving`], the part of a run the TCP
//! and UDP servers share.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::channel::oneshot;
use futures::future::{Either, select};

use super::counters::ServerCounters;
use super::tasks::Tasks;
use crate::rt::Runtime;
use crate::service::ServiceContext;

/// The stop side of a running loop; empty while none runs.
#[derive(Debug, Default)]
pub(crate) struct LoopControl {
    running: Mutex<Option<(oneshot::Sender<()>, oneshot::Receiver<()>)>>,
}

/// The loop's side: the stop signal to watch, and the drained signal to
/// give (dropping it unsent also releases the stop).
pub(crate) struct Armed {
    pub(crate) stop: oneshot::Receiver<()>,
    pub(crate) drained: oneshot::Sender<()>,
}

impl LoopControl {
    /// Registers a new run of the loop.
    pub(crate) fn arm(&self) -> Armed {
        let (stop_tx, stop) = oneshot::channel();
        let (drained, drained_rx) = oneshot::channel();
        *self.running.lock().unwrap_or_else(|p| p.into_inner()) = Some((stop_tx, drained_rx));
        Armed { stop, drained }
    }

    /// Tells the running loop to stop and waits until it has drained (at
    /// once when none runs).
    pub(crate) async fn stop(&self) {
        let running = self
            .running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some((stop, drained)) = running {
            let _ = stop.send(());
            let _ = drained.await;
        }
    }
}

/// Waits 100 ms unless stopped first; whether it was stopped.
pub(crate) async fn pause(runtime: &Runtime, stop: &mut oneshot::Receiver<()>) -> bool {
    let sleep = runtime.sleep(Duration::from_millis(100));
    matches!(select(sleep, stop).await, Either::Right(_))
}

/// What a TCP or UDP server keeps about its runs: the counters, the
/// address it is bound to while it runs, the stop hand-off, and the drain
/// timeout — with the start and end of a run that both servers share.
#[derive(Debug)]
pub(crate) struct Serving {
    pub(crate) counters: Arc<ServerCounters>,
    pub(crate) drain_timeout: Duration,
    local: Mutex<Option<SocketAddr>>,
    control: LoopControl,
}

/// One run of a server's loop: its stop signal, its handler tasks, and
/// the drained signal its end gives.
pub(crate) struct Run {
    pub(crate) stop: oneshot::Receiver<()>,
    pub(crate) tasks: Tasks,
    drained: oneshot::Sender<()>,
}

impl Serving {
    pub(crate) fn new(drain_timeout: Duration) -> Self {
        Serving {
            counters: Arc::default(),
            drain_timeout,
            local: Mutex::new(None),
            control: LoopControl::default(),
        }
    }

    /// The address bound by the running start.
    pub(crate) fn local_addr(&self) -> Option<SocketAddr> {
        *self.local.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn set_local(&self, local: Option<SocketAddr>) {
        *self.local.lock().unwrap_or_else(|p| p.into_inner()) = local;
    }

    /// A run bound to `local` begins: says where it listens and that the
    /// service is ready.
    pub(crate) fn begin(&self, ctx: &ServiceContext, local: SocketAddr, listening: &str) -> Run {
        let Armed { stop, drained } = self.control.arm();
        self.set_local(Some(local));
        tracing::info!(service = ctx.name(), addr = %local, "{listening}");
        ctx.ready();
        Run {
            stop,
            tasks: Tasks::new(),
            drained,
        }
    }

    /// The run's loop has stopped (its socket closed): drains the handlers
    /// of `what` within the drain timeout and releases the stop.
    pub(crate) async fn end(&self, ctx: &ServiceContext, mut run: Run, what: &str) {
        self.set_local(None);
        run.tasks
            .drain_counted(
                ctx.runtime(),
                self.drain_timeout,
                &self.counters,
                ctx.name(),
                what,
            )
            .await;
        let _ = run.drained.send(());
    }

    /// A service's stop: ends the running loop and waits for its drain.
    pub(crate) async fn stop(&self) {
        self.control.stop().await;
    }

    /// A service's stop timeout: the drain and a second more.
    pub(crate) fn stop_timeout(&self) -> Duration {
        self.drain_timeout + Duration::from_secs(1)
    }
}
