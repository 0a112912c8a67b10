//! Tasks of the mock runtime, how they are woken, and the [`Spawn`]
//! implementation that creates them.
//!
//! A task is an `Arc<Task>`: its future behind a lock, a `queued` flag that
//! makes waking idempotent, and a weak link back to the executor's shared
//! state. The executor's ready queue and live set hold strong references;
//! wakers are the task itself.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::Wake;

use super::executor::{Shared, lock};
use crate::rt::{BlockingFn, BoxFuture, Spawn, SpawnError};

pub(crate) struct Task {
    pub(crate) id: u64,
    pub(crate) name: Option<Box<str>>,
    pub(crate) future: Mutex<Option<BoxFuture>>,
    /// Set while the task sits in the ready queue, so that many wakes
    /// between two polls queue it once.
    pub(crate) queued: AtomicBool,
    shared: Weak<Shared>,
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
        if let Some(shared) = self.shared.upgrade() {
            let mut state = lock(&shared.state);
            if !state.closed {
                state.ready.push_back(self);
            }
        }
    }
}

impl Wake for Task {
    fn wake(self: Arc<Self>) {
        self.schedule();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if !self.queued.load(Ordering::Acquire) {
            self.clone().schedule();
        }
    }
}

/// The mock runtime's [`Spawn`]: queues tasks on its executor, and runs
/// blocking work as a task of its own so that it stays deterministic.
pub(crate) struct MockSpawner {
    pub(crate) shared: Weak<Shared>,
}

impl MockSpawner {
    fn spawn_task(&self, name: Option<&str>, future: BoxFuture) -> Result<(), SpawnError> {
        let gone = SpawnError::Shutdown { executor: "mock" };
        let shared = self.shared.upgrade().ok_or(gone.clone())?;
        let mut state = lock(&shared.state);
        if state.closed {
            return Err(gone);
        }
        state.next_task_id += 1;
        let task = Arc::new(Task {
            id: state.next_task_id,
            name: name.map(Into::into),
            future: Mutex::new(Some(future)),
            queued: AtomicBool::new(true),
            shared: self.shared.clone(),
        });
        state.live.insert(task.id, task.clone());
        state.ready.push_back(task);
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

    fn spawn_blocking(&self, f: BlockingFn) -> Result<(), SpawnError> {
        self.spawn_task(Some("blocking"), Box::pin(async move { f() }))
    }
}
