//! [`LoopControl`]: how a service's stop reaches the loop its start runs
//! (an accept loop, a receive loop, a reconnect loop), and how the stop
//! learns the loop has drained.

use std::sync::Mutex;
use std::time::Duration;

use futures::channel::oneshot;
use futures::future::{Either, select};

use crate::rt::Runtime;

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
