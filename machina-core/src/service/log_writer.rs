//! The entrypoint's log writer (feature `logging`): non-blocking while the
//! entrypoint runs, standard error directly after it. Ending a run flushes
//! what is queued, and what is logged later is still written, not lost in
//! a channel nobody drains.
//!
//! Each event's write holds a read lock on the queue; closing it takes the
//! write lock and keeps it until the queue is flushed, so no event is
//! written to a closed queue, and none written directly overtakes the
//! queued ones. The queue is not lossy: a full queue slows the logger down
//! rather than dropping lines.

use std::io::{self, Write};
use std::sync::{Arc, RwLock, RwLockReadGuard};

use tracing_appender::non_blocking::{NonBlocking, NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::fmt::MakeWriter;

type Slot = Arc<RwLock<Option<NonBlocking>>>;

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
    let (writer, worker) = NonBlockingBuilder::default()
        .lossy(false)
        .finish(io::stderr());
    let queue = Arc::new(RwLock::new(Some(writer)));
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
        // Held until the worker has written everything queued: writers
        // wait meanwhile, then write directly, in order.
        let mut queue = self.queue.write().unwrap_or_else(|p| p.into_inner());
        queue.take();
        drop(self.worker.take());
        drop(queue);
    }
}

/// One event's writer.
pub(super) enum SwitchWriter<'a> {
    /// The queue, held open for this write.
    Queued {
        writer: NonBlocking,
        _open: RwLockReadGuard<'a, Option<NonBlocking>>,
    },
    Direct(io::Stderr),
}

impl<'a> MakeWriter<'a> for StderrSwitch {
    type Writer = SwitchWriter<'a>;

    fn make_writer(&'a self) -> SwitchWriter<'a> {
        let open = self.queue.read().unwrap_or_else(|p| p.into_inner());
        match &*open {
            Some(queue) => SwitchWriter::Queued {
                writer: queue.clone(),
                _open: open,
            },
            None => SwitchWriter::Direct(io::stderr()),
        }
    }
}

impl Write for SwitchWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            SwitchWriter::Queued { writer, .. } => writer.write(buf),
            SwitchWriter::Direct(stderr) => stderr.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            SwitchWriter::Queued { writer, .. } => writer.flush(),
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
        assert!(matches!(switch.make_writer(), SwitchWriter::Queued { .. }));
        // A write in progress holds the queue open: closing cannot take it
        // away meanwhile, and completes once the write is done.
        let writing = switch.make_writer();
        assert!(switch.queue.try_write().is_err(), "held open by the write");
        let closer = std::thread::spawn(move || drop(guard));
        drop(writing);
        closer.join().unwrap();
        let mut writer = switch.make_writer();
        assert!(matches!(writer, SwitchWriter::Direct(_)));
        assert_eq!(writer.write(b"").unwrap(), 0);
    }
}
