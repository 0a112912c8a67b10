//! [`WorkerPool`]: a bounded pool of dedicated threads for CPU-bound or
//! blocking jobs, with an async submit-and-await API.
//!
//! aiomisc needs *process* pools because of Python's global interpreter
//! lock; Rust threads run in parallel, so a pool of threads does the same
//! job without serialising arguments across processes. Use it for work
//! that must not share the executor's blocking pool (long CPU-bound jobs,
//! libraries that want a thread of their own); for occasional blocking
//! calls, [`Runtime::spawn_blocking`](crate::rt::Runtime::spawn_blocking)
//! is enough.
//!
//! - **Backpressure**: at most `queue` jobs wait; `submit` waits for room.
//! - **Panic isolation**: a panicking job is an error for its caller; its
//!   thread is retired and a fresh one takes its place.
//! - **Graceful close**: [`WorkerPool::close`] refuses new jobs, lets the
//!   queued ones finish, and waits for every thread to end.
//!
//! Jobs run on real threads, so await them from a real executor (or
//! `futures::executor::block_on`): the mock runtime cannot see a thread
//! finish and would report the wait as a deadlock.

use std::fmt;
use std::future::poll_fn;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};
use std::thread;

use futures::SinkExt;
use futures::StreamExt;
use futures::channel::{mpsc, oneshot};

use crate::rt::panic_message;

/// A job as a worker thread runs it; returns whether it panicked.
type Job = Box<dyn FnOnce() -> bool + Send + 'static>;

/// A pool that could not be made or used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WorkerError {
    /// Zero threads or a zero queue.
    #[error("invalid worker pool: {0} is 0; use at least 1")]
    Zero(&'static str),
    /// The operating system refused a thread.
    #[error("could not start a worker thread: {0}")]
    Thread(String),
    /// The pool was closed; the job was not run.
    #[error("the worker pool {0:?} is closed; the job was not run")]
    Closed(String),
    /// The job panicked (its worker thread was replaced).
    #[error("job panicked: {0}")]
    Panicked(String),
}

/// Worker threads alive, and who waits for them all to end.
#[derive(Default)]
struct Alive {
    count: usize,
    waiters: Vec<Waker>,
}

type Shared<T> = Arc<Mutex<T>>;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

struct Inner {
    name: String,
    /// The one sender: every submit sends through it, one at a time, so
    /// the channel's bound is the queue's (a futures channel grants each
    /// sender clone a slot of its own, which would unbound it).
    sender: futures::lock::Mutex<Option<mpsc::Sender<Job>>>,
    open: std::sync::atomic::AtomicBool,
    /// Jobs in the queue, not yet started (briefly negative when a worker
    /// starts a job before its submitter has counted it).
    queued: Arc<std::sync::atomic::AtomicI64>,
    alive: Shared<Alive>,
}

/// A bounded pool of worker threads; see the module docs.
///
/// # Examples
///
/// ```
/// use machina_core::workers::WorkerPool;
///
/// let pool = WorkerPool::new("crunch", 2, 8).unwrap();
/// let sum = futures::executor::block_on(pool.submit(|| (1..=100u64).sum::<u64>())).unwrap();
/// assert_eq!(sum, 5050);
/// futures::executor::block_on(pool.close());
/// ```
#[derive(Clone)]
pub struct WorkerPool {
    inner: Arc<Inner>,
}

/// Marks a worker thread gone when it ends, however it ends.
struct Exit(Shared<Alive>);

impl Drop for Exit {
    fn drop(&mut self) {
        let waiters = {
            let mut alive = lock(&self.0);
            alive.count -= 1;
            if alive.count == 0 {
                std::mem::take(&mut alive.waiters)
            } else {
                Vec::new()
            }
        };
        waiters.into_iter().for_each(Waker::wake);
    }
}

fn worker_loop(name: String, receiver: Shared<mpsc::Receiver<Job>>, alive: Shared<Alive>) {
    let _exit = Exit(alive.clone());
    loop {
        let job = {
            let mut receiver = lock(&receiver);
            futures::executor::block_on(receiver.next())
        };
        let Some(job) = job else { return };
        if job() {
            // A panic may leave thread-local state broken: retire this
            // thread and start a fresh one in its place.
            tracing::warn!(pool = %name, "a job panicked; replacing its worker thread");
            if let Err(error) = spawn_worker(&name, receiver.clone(), alive.clone()) {
                tracing::error!(pool = %name, %error, "could not replace a worker thread");
            }
            return;
        }
    }
}

fn spawn_worker(
    name: &str,
    receiver: Shared<mpsc::Receiver<Job>>,
    alive: Shared<Alive>,
) -> Result<(), WorkerError> {
    lock(&alive).count += 1;
    let thread_name = name.to_owned();
    let counted = alive.clone();
    let spawned = thread::Builder::new()
        .name(format!("{name}-worker"))
        .spawn(move || worker_loop(thread_name, receiver, counted));
    match spawned {
        Ok(_detached) => Ok(()),
        Err(error) => {
            drop(Exit(alive));
            Err(WorkerError::Thread(error.to_string()))
        }
    }
}

impl WorkerPool {
    /// A pool named `name` with `threads` worker threads and room for
    /// `queue` waiting jobs.
    ///
    /// # Errors
    /// [`WorkerError::Zero`] for zero threads or queue,
    /// [`WorkerError::Thread`] if a thread cannot be started.
    pub fn new(name: impl Into<String>, threads: usize, queue: usize) -> Result<Self, WorkerError> {
        if threads == 0 {
            return Err(WorkerError::Zero("threads"));
        }
        if queue == 0 {
            return Err(WorkerError::Zero("queue"));
        }
        let name = name.into();
        // With its one sender, a futures channel of `queue` takes `queue`
        // jobs before a send has to wait (the test of backpressure checks
        // this exact bound).
        let (sender, receiver) = mpsc::channel(queue);
        let receiver = Arc::new(Mutex::new(receiver));
        let alive: Shared<Alive> = Arc::default();
        let pool = WorkerPool {
            inner: Arc::new(Inner {
                name,
                sender: futures::lock::Mutex::new(Some(sender)),
                open: std::sync::atomic::AtomicBool::new(true),
                queued: Arc::default(),
                alive: alive.clone(),
            }),
        };
        for _ in 0..threads {
            if let Err(error) = spawn_worker(&pool.inner.name, receiver.clone(), alive.clone()) {
                // Let the threads already started end.
                if let Some(mut sender) = pool.inner.sender.try_lock() {
                    drop(sender.take());
                }
                return Err(error);
            }
        }
        Ok(pool)
    }

    /// Runs `job` on a worker thread and waits for its value; waits first
    /// for room in the queue if it is full. Dropping the future before the
    /// job is queued withdraws it.
    ///
    /// # Errors
    /// [`WorkerError::Closed`] after [`close`](Self::close),
    /// [`WorkerError::Panicked`] if the job panicked.
    pub async fn submit<T, F>(&self, job: F) -> Result<T, WorkerError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let closed = || WorkerError::Closed(self.inner.name.clone());
        let (tx, rx) = oneshot::channel();
        let queued = self.inner.queued.clone();
        let wrapped: Job = Box::new(move || {
            queued.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
            let outcome = catch_unwind(AssertUnwindSafe(job));
            let panicked = outcome.is_err();
            let _ = tx.send(outcome.map_err(|payload| panic_message(&*payload)));
            panicked
        });
        {
            // Submitters wait here in turn while the queue is full.
            let mut sender = self.inner.sender.lock().await;
            let sender = sender.as_mut().ok_or_else(closed)?;
            sender.send(wrapped).await.map_err(|_| closed())?;
            self.inner
                .queued
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        match rx.await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(message)) => Err(WorkerError::Panicked(message)),
            Err(_) => Err(closed()),
        }
    }

    /// Refuses new jobs, lets queued ones finish, and waits until every
    /// worker thread has ended.
    pub async fn close(&self) {
        self.inner
            .open
            .store(false, std::sync::atomic::Ordering::SeqCst);
        drop(self.inner.sender.lock().await.take());
        poll_fn(|cx| {
            let mut alive = lock(&self.inner.alive);
            if alive.count == 0 {
                return Poll::Ready(());
            }
            if !alive.waiters.iter().any(|w| w.will_wake(cx.waker())) {
                alive.waiters.push(cx.waker().clone());
            }
            Poll::Pending
        })
        .await;
    }

    /// Jobs waiting in the queue (not counting submits still waiting for
    /// room).
    pub fn queued(&self) -> usize {
        let n = self.inner.queued.load(std::sync::atomic::Ordering::SeqCst);
        usize::try_from(n).unwrap_or(0)
    }

    /// Worker threads alive now.
    pub fn threads(&self) -> usize {
        lock(&self.inner.alive).count
    }

    /// The pool's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }
}

impl fmt::Debug for WorkerPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkerPool")
            .field("name", &self.inner.name)
            .field(
                "open",
                &self.inner.open.load(std::sync::atomic::Ordering::SeqCst),
            )
            .field("threads", &self.threads())
            .finish_non_exhaustive()
    }
}
