//! The entrypoint's log writer (feature `logging`): non-blocking while the
//! entrypoint runs, standard error directly after it. Ending a run flushes
//! what is queued, and what is logged later is still written, not lost in
//! a channel nobody drains.

use std::io::{self, Write};
use std::sync::{Arc, Mutex, MutexGuard};

use tracing_appender::non_blocking::{NonBlocking, WorkerGuard};
use tracing_subscriber::fmt::MakeWriter;

type Slot = Arc<Mutex<Option<NonBlocking>>>;

fn lock(slot: &Slot) -> MutexGuard<'_, Option<NonBlocking>> {
    slot.lock().unwrap_or_else(|p| p.into_inner())
}

/// Makes the writer for each event: the queue while it is open.
#[derive(Clone)]
pub(super) struct StderrSwitch {
    queue: Slot,
}

/// Keeps the queue open; dropping it switches to direct writes, then
/// flushes the queue.
pub(super) struct QueueGuard {
    queue: Slot,
    worker: Option<WorkerGuard>,
}

/// A non-blocking standard-error writer and the guard that ends it.
pub(super) fn stderr_switch() -> (StderrSwitch, QueueGuard) {
    let (writer, worker) = tracing_appender::non_blocking(io::stderr());
    let queue = Arc::new(Mutex::new(Some(writer)));
    (
        StderrSwitch {
            queue: queue.clone(),
        },
        QueueGuard {
            queue,
            worker: Some(worker),
        },
    )
}

impl Drop for QueueGuard {
    fn drop(&mut self) {
        lock(&self.queue).take();
        // Waits until the worker has written everything queued.
        drop(self.worker.take());
    }
}

/// One event's writer.
pub(super) enum SwitchWriter {
    Queued(NonBlocking),
    Direct(io::Stderr),
}

impl<'a> MakeWriter<'a> for StderrSwitch {
    type Writer = SwitchWriter;

    fn make_writer(&'a self) -> SwitchWriter {
        match &*lock(&self.queue) {
            Some(queue) => SwitchWriter::Queued(queue.clone()),
            None => SwitchWriter::Direct(io::stderr()),
        }
    }
}

impl Write for SwitchWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            SwitchWriter::Queued(queue) => queue.write(buf),
            SwitchWriter::Direct(stderr) => stderr.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            SwitchWriter::Queued(queue) => queue.flush(),
            SwitchWriter::Direct(stderr) => stderr.flush(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_go_through_the_queue_then_directly_once_it_is_closed() {
        let (switch, guard) = stderr_switch();
        assert!(matches!(switch.make_writer(), SwitchWriter::Queued(_)));
        drop(guard);
        let mut writer = switch.make_writer();
        assert!(matches!(writer, SwitchWriter::Direct(_)));
        assert_eq!(writer.write(b"").unwrap(), 0);
    }
}
