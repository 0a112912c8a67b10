//! Crossing between async code and threads (aiomisc `threaded_separate`,
//! `threaded_iterable`, `sync_wait_coroutine`): a closure on a fresh
//! thread of its own, a blocking iterator as a bounded async stream, and
//! waiting on a future from a blocking thread.
//!
//! For a closure on the executor's blocking pool (aiomisc `threaded`), use
//! [`Runtime::spawn_blocking`].

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::channel::mpsc;
use futures::{SinkExt, Stream};

use super::join::{BlockingCell, JoinHandle, JoinState};
use super::runtime::Runtime;

/// Why a thread helper could not start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ThreadError {
    /// The operating system refused a thread.
    #[error("could not start a thread: {0}")]
    Spawn(String),
    /// A stream buffer of zero items.
    #[error("invalid threaded iterable: max_size is 0; use at least 1")]
    ZeroBuffer,
}

impl Runtime {
    /// Runs `work` on a new thread of its own (not the executor's blocking
    /// pool), for long work that should not hold a pool thread. A panic is
    /// [`JoinError::Panicked`](super::JoinError::Panicked).
    ///
    /// # Examples
    ///
    /// ```
    /// # let mock = machina_core::testing::MockRuntime::new();
    /// # let rt = mock.runtime();
    /// // (`rt` is any Machina runtime.)
    /// let handle = rt.threaded_separate(|| std::thread::current().name().map(str::to_owned)).unwrap();
    /// let name = futures::executor::block_on(handle).unwrap();
    /// assert_eq!(name.as_deref(), Some("machina-threaded"));
    /// ```
    ///
    /// # Errors
    /// [`ThreadError::Spawn`] if the thread cannot be started.
    pub fn threaded_separate<F, T>(&self, work: F) -> Result<JoinHandle<T>, ThreadError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let state = JoinState::new();
        let cell = BlockingCell::new(work, state.clone());
        std::thread::Builder::new()
            .name("machina-threaded".to_owned())
            .spawn(move || cell.run())
            .map_err(|e| ThreadError::Spawn(e.to_string()))?;
        Ok(JoinHandle::new(state))
    }

    /// Runs `iter` on a thread of its own and yields its items as a stream;
    /// at most `max_size` items wait in between (the thread blocks when the
    /// buffer is full). Dropping the stream stops the thread at its next
    /// item.
    ///
    /// # Examples
    ///
    /// ```
    /// use futures::StreamExt;
    /// # let mock = machina_core::testing::MockRuntime::new();
    /// # let rt = mock.runtime();
    ///
    /// // A blocking reader, read as an async stream, 16 lines in between.
    /// let lines = ["a", "b", "c"].map(String::from);
    /// let stream = rt.threaded_iterable(lines, 16).unwrap();
    /// let got: Vec<String> = futures::executor::block_on(stream.collect());
    /// assert_eq!(got, ["a", "b", "c"]);
    /// ```
    ///
    /// # Errors
    /// [`ThreadError::ZeroBuffer`] for a zero `max_size`,
    /// [`ThreadError::Spawn`] if the thread cannot be started.
    pub fn threaded_iterable<I>(
        &self,
        iter: I,
        max_size: usize,
    ) -> Result<ThreadedStream<I::Item>, ThreadError>
    where
        I: IntoIterator + Send + 'static,
        I::Item: Send + 'static,
    {
        if max_size == 0 {
            return Err(ThreadError::ZeroBuffer);
        }
        // A futures channel holds `buffer + 1` items for its one sender.
        let (mut sender, receiver) = mpsc::channel(max_size - 1);
        std::thread::Builder::new()
            .name("machina-iterable".to_owned())
            .spawn(move || {
                for item in iter {
                    // Blocks while the buffer is full; fails once the
                    // stream is gone, which ends the thread.
                    if futures::executor::block_on(sender.send(item)).is_err() {
                        return;
                    }
                }
            })
            .map_err(|e| ThreadError::Spawn(e.to_string()))?;
        Ok(ThreadedStream { receiver })
    }
}

/// Waits on `future` from a blocking thread (aiomisc
/// `sync_wait_coroutine`): for code in [`Runtime::spawn_blocking`] or
/// [`Runtime::threaded_separate`] that needs a value from async code.
/// Never call it from an async task: it blocks the thread until the future
/// is done.
///
/// # Examples
///
/// ```
/// use machina_core::rt::sync_wait;
///
/// let (tx, rx) = futures::channel::oneshot::channel();
/// let worker = std::thread::spawn(move || sync_wait(rx).unwrap() + 1);
/// tx.send(41).unwrap();
/// assert_eq!(worker.join().unwrap(), 42);
/// ```
pub fn sync_wait<F: std::future::Future>(future: F) -> F::Output {
    futures::executor::block_on(future)
}

/// The items of a blocking iterator run by
/// [`Runtime::threaded_iterable`].
pub struct ThreadedStream<T> {
    receiver: mpsc::Receiver<T>,
}

impl<T> Stream for ThreadedStream<T> {
    type Item = T;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        Pin::new(&mut self.receiver).poll_next(cx)
    }
}

impl<T> fmt::Debug for ThreadedStream<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThreadedStream").finish_non_exhaustive()
    }
}
