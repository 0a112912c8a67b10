//! The running core of a bot ([`BotCore`]): its runtime, its registry once
//! built, and the book of what is running — emits started and ended,
//! executes begun and finished, the run's counters and who waits for the
//! bot to go idle. [`Machina`](super::Machina) runs and shuts down on it;
//! emits, executes and events call into it.

use std::future::poll_fn;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::task::{Poll, Waker};

use super::book::{EntryId, ExecuteBook};
use super::emit::Emit;
use super::error::{BotError, ExecuteError};
use super::registry::{ErasedExecute, Registry};
use crate::loops::{LoopEnd, SharedError};
use crate::rt::{AbortHandle, Runtime};

/// What is running now, and what has happened.
#[derive(Default)]
pub(super) struct Activity {
    pub(super) executes: ExecuteBook,
    pub(super) emits_running: usize,
    pub(super) emit_errors: Vec<(String, SharedError)>,
    pub(super) stats: RunStats,
    pub(super) idle_wakers: Vec<Waker>,
    /// What the last [`Machina::shutdown`](super::Machina::shutdown) reported.
    pub(super) last_shutdown: Option<super::ShutdownReport>,
}

/// Counters of a bot's run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct RunStats {
    /// Spawned executes that returned a value (calls made with
    /// [`Execute::call`](super::Execute::call) in the caller's task are not
    /// counted here: they are the caller's).
    pub executes_ok: u64,
    /// Spawned executes that failed or panicked (each is also logged).
    pub executes_failed: u64,
    /// Spawned executes that were cancelled.
    pub executes_cancelled: u64,
    /// Emit runs that ended (however they ended): one per start of an
    /// emit, however many iterations it made.
    pub emit_runs: u64,
}

/// The shared heart of a bot: its runtime, registry and activity.
pub(crate) struct BotCore {
    pub(crate) runtime: Runtime,
    /// Where the bot's ticks and calls are recorded, if anywhere (shared
    /// with its emits, which hold no handle to the bot itself).
    pub(crate) timeline: Arc<OnceLock<crate::timeline::Timeline>>,
    pub(super) registry: OnceLock<Registry>,
    pub(super) activity: Mutex<Activity>,
}

impl BotCore {
    pub(super) fn activity(&self) -> MutexGuard<'_, Activity> {
        self.activity.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn registry(&self) -> &Registry {
        // Events and spawns exist only once the bot is built, which sets it.
        self.registry.get_or_init(Registry::default)
    }

    pub(crate) fn emit(&self, name: &str) -> Result<Emit, BotError> {
        let registry = self.registry();
        registry
            .emit_index
            .get(name)
            .map(|&i| registry.emits[i].clone())
            .ok_or_else(|| BotError::Unknown {
                kind: "emit",
                name: name.to_owned(),
                known: registry.emits.iter().map(|e| e.name().to_owned()).collect(),
            })
    }

    pub(crate) fn execute(&self, name: &str) -> Result<&ErasedExecute, BotError> {
        let executes = &self.registry().executes;
        executes.get(name).ok_or_else(|| {
            let mut known: Vec<_> = executes.keys().cloned().collect();
            known.sort();
            BotError::Unknown {
                kind: "execute",
                name: name.to_owned(),
                known,
            }
        })
    }

    /// Starts `emit` and watches its run. A running emit is left alone.
    pub(crate) fn start_emit(self: &Arc<Self>, emit: &Emit) -> Result<(), BotError> {
        if emit.lp.is_running() {
            tracing::warn!(emit = emit.name(), "emit is already running; start ignored");
            return Ok(());
        }
        let run = match emit.lp.start() {
            Ok(run) => run,
            Err(crate::loops::LoopError::AlreadyRunning { .. }) => return Ok(()),
            Err(crate::loops::LoopError::Spawn { source, .. }) => return Err(source.into()),
        };
        self.activity().emits_running += 1;
        let core = self.clone();
        let name = emit.name().to_owned();
        let watcher = self.runtime.spawn_named("emit-watcher", async move {
            let outcome = run.await;
            core.emit_finished(name, outcome);
        });
        match watcher {
            Ok(handle) => {
                handle.detach();
                Ok(())
            }
            Err(err) => {
                emit.lp.cancel();
                self.emit_finished(emit.name().to_owned(), Ok(Ok(LoopEnd::Cancelled)));
                Err(err.into())
            }
        }
    }

    pub(super) fn emit_finished(
        &self,
        name: String,
        outcome: Result<Result<LoopEnd, SharedError>, crate::rt::JoinError>,
    ) {
        let wakers = {
            let mut activity = self.activity();
            activity.emits_running -= 1;
            activity.stats.emit_runs += 1;
            match outcome {
                Ok(Ok(_)) => {}
                Ok(Err(error)) => activity.emit_errors.push((name, error)),
                Err(join) => activity.emit_errors.push((name, Arc::new(join))),
            }
            activity.take_idle_wakers()
        };
        wakers.into_iter().for_each(Waker::wake);
    }

    /// Books a spawned execute named `name`, aborted through `abort`
    /// (one lock section: the task's join state is made before it is
    /// spawned, so its abort handle is known here).
    pub(crate) fn begin_execute(&self, name: Arc<str>, abort: AbortHandle) -> EntryId {
        self.activity().executes.insert(name, abort)
    }

    pub(super) fn end_execute(&self, id: EntryId, outcome: Option<Result<(), &ExecuteError>>) {
        let (name, wakers) = {
            let mut activity = self.activity();
            let Some(name) = activity.executes.remove(id) else {
                return;
            };
            match outcome {
                Some(Ok(())) => activity.stats.executes_ok += 1,
                Some(Err(ExecuteError::Cancelled { .. })) | None => {
                    activity.stats.executes_cancelled += 1;
                }
                Some(Err(_)) => activity.stats.executes_failed += 1,
            }
            (name, activity.take_idle_wakers())
        };
        // Logged outside the lock: a subscriber (Sentry's, say) may take
        // its time.
        match outcome {
            Some(Ok(())) => {}
            Some(Err(ExecuteError::Cancelled { .. })) | None => {
                tracing::debug!(execute = %name, "execute cancelled");
            }
            Some(Err(error)) => tracing::warn!(execute = %name, %error, "execute failed"),
        }
        wakers.into_iter().for_each(Waker::wake);
    }

    /// Completes when no emit runs and no spawned execute is in flight.
    pub(super) async fn idle(&self) {
        poll_fn(|cx| {
            let mut activity = self.activity();
            if activity.is_idle() {
                return Poll::Ready(());
            }
            if !activity.idle_wakers.iter().any(|w| w.will_wake(cx.waker())) {
                activity.idle_wakers.push(cx.waker().clone());
            }
            Poll::Pending
        })
        .await;
    }
}

impl Activity {
    pub(super) fn is_idle(&self) -> bool {
        self.emits_running == 0 && self.executes.len() == 0
    }

    pub(super) fn take_idle_wakers(&mut self) -> Vec<Waker> {
        if self.is_idle() {
            std::mem::take(&mut self.idle_wakers)
        } else {
            Vec::new()
        }
    }
}

/// Ends a spawned execute's entry in the bot's book, also when its task is
/// dropped before it finishes (abort, shutdown).
pub(crate) struct ExecuteGuard {
    pub(super) core: Arc<BotCore>,
    pub(super) id: EntryId,
    pub(super) done: bool,
}

impl ExecuteGuard {
    pub(crate) fn new(core: Arc<BotCore>, id: EntryId) -> Self {
        ExecuteGuard {
            core,
            id,
            done: false,
        }
    }

    pub(crate) fn finish(mut self, error: Option<&ExecuteError>) {
        self.done = true;
        self.core
            .end_execute(self.id, Some(error.map_or(Ok(()), Err)));
    }
}

impl Drop for ExecuteGuard {
    fn drop(&mut self) {
        if !self.done {
            self.core.end_execute(self.id, None);
        }
    }
}
