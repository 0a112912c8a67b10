//! Tasks of the mock runtime, how they are woken, and the [`Spawn`]
//! implementation that creates them.
//!
//! A task is an `Arc<Task>`: its future behind a lock, a `queued` flag that
//! makes waking idempotent, and a link back to the executor's shared state.
//! Wakes made on the thread that is running the executor go to a
//! thread-local queue without taking the executor's lock (the common case:
//! a timer firing, or one task waking another); wakes from anywhere else
//! take the lock.

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use futures::task::ArcWake;

use super::executor::{Queued, Shared, lock};
use crate::rt::{BlockingFn, BoxFuture, Spawn, SpawnError};

pub(crate) struct Task {
    pub(crate) id: u64,
    pub(crate) name: Option<Box<str>>,
    pub(crate) future: Mutex<Option<BoxFuture>>,
    /// Set while the task sits in a ready queue, so that many wakes between
    /// two polls queue it once.
    pub(crate) queued: AtomicBool,
    shared: Arc<Shared>,
}

/// The ready queue of the executor running on this thread, if any.
pub(crate) struct LocalQueue {
    /// `Shared::id` of the running executor; 0 when none runs here.
    pub(crate) owner: usize,
    pub(crate) tasks: Vec<Queued>,
}

thread_local! {
    pub(crate) static LOCAL: RefCell<LocalQueue> = const {
        RefCell::new(LocalQueue { owner: 0, tasks: Vec::new() })
    };
}

impl Task {
    pub(crate) fn label(&self) -> String {
        match &self.name {
            Some(name) => format!("{name}#{}", self.id),
            None => format!("task#{}", self.id),
        }
    }

    fn schedule(self: Arc<Self>) {
        if self.queued.swap(true, Ordering::AcqRel) {
            return;
        }
        let owner = self.shared.id();
        let remote = LOCAL.with(|local| match local.try_borrow_mut() {
            Ok(mut local) if local.owner == owner => {
                let seq = self.shared.ready_seq.fetch_add(1, Ordering::Relaxed);
                local.tasks.push((seq, self));
                None
            }
            _ => Some(self),
        });
        if let Some(task) = remote {
            let shared = task.shared.clone();
            let mut state = lock(&shared.state);
            if !state.closed {
                // Numbered under the lock, so the shared queue stays sorted.
                let seq = shared.ready_seq.fetch_add(1, Ordering::Relaxed);
                state.ready.push_back((seq, task));
            }
        }
    }
}

impl ArcWake for Task {
    fn wake(self: Arc<Self>) {
        self.schedule();
    }

    fn wake_by_ref(arc_self: &Arc<Self>) {
        if !arc_self.queued.load(Ordering::Acquire) {
            arc_self.clone().schedule();
        }
    }
}

/// The mock runtime's [`Spawn`]: queues tasks on its executor, and runs
/// blocking work as a task of its own so that it stays deterministic.
pub(crate) struct MockSpawner {
    pub(crate) shared: Arc<Shared>,
}

impl MockSpawner {
    fn spawn_task(&self, name: Option<&str>, future: BoxFuture) -> Result<(), SpawnError> {
        let task = {
            let mut state = lock(&self.shared.state);
            if state.closed {
                return Err(SpawnError::Shutdown { executor: "mock" });
            }
            state.next_task_id += 1;
            let task = Arc::new(Task {
                id: state.next_task_id,
                name: name.map(Into::into),
                future: Mutex::new(Some(future)),
                queued: AtomicBool::new(false),
                shared: self.shared.clone(),
            });
            state.live.insert(task.id, task.clone());
            task
        };
        // Through the same path as a wake, so that spawns and wakes made by
        // running tasks keep one FIFO order.
        task.schedule();
        Ok(())
    }
}

impl Spawn for MockSpawner {
    fn spawn_detached(&self, task: BoxFuture) -> Result<(), SpawnError> {
        self.spawn_task(None, task)
    }

    fn spawn_detached_named(&self, name: &str, task: BoxFuture) -> Result<(), SpawnError> {
        self.spawn_task(Some(name), task)
    }

    fn spawn_task(&self, task: crate::rt::Task) -> Result<(), SpawnError> {
        MockSpawner::spawn_task(self, None, Box::pin(task))
    }

    fn spawn_task_named(&self, name: &str, task: crate::rt::Task) -> Result<(), SpawnError> {
        MockSpawner::spawn_task(self, Some(name), Box::pin(task))
    }

    fn spawn_blocking(&self, f: BlockingFn) -> Result<(), SpawnError> {
        self.spawn_task(Some("blocking"), Box::pin(async move { f() }))
    }
}
