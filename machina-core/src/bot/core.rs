//! The running core of a bot ([`BotCore`]): its runtime, its registry once
//! built, and the book of what is running — emits started and ended,
//! executes begun and finished, the run's counters and who waits for the
//! bot to go idle. [`Machina`](super::Machina) runs and shuts down on it;
//! emits, executes and events call into it.

use std::future::poll_fn;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::task::{Poll, Waker};

use super::book::{Ended, EntryId, ExecuteBook};
use super::emit::Emit;
use super::error::{BotError, ExecuteError};
use super::registry::{ErasedExecute, Registry};
use crate::loops::{LoopEnd, SharedError};
use crate::rt::{AbortHandle, Runtime};

/// What is running now, and what has happened (the executes apart: see
/// [`BotCore::executes`]).
#[derive(Default)]
pub(super) struct Activity {
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
///
/// Aligned to a cache line: its reference count (written by every
/// spawned execute, as it starts and as it ends, on any worker) sits
/// alone on the line before the fields, which every call reads.
#[repr(align(64))]
pub(crate) struct BotCore {
    pub(crate) runtime: Runtime,
    /// Where the bot's ticks and calls are recorded, if anywhere (shared
    /// with its emits, whose loops hold the bot only weakly).
    pub(crate) timeline: Arc<OnceLock<crate::timeline::Timeline>>,
    pub(super) registry: OnceLock<Registry>,
    pub(super) activity: Mutex<Activity>,
    /// The spawned executes still running, and how those that ended did:
    /// sharded locks of their own, off the activity's lock (one is taken
    /// twice per spawned execute, on different threads).
    pub(super) executes: ExecuteBook,
    /// The executes' names, by the index each got at registration (what
    /// the book keeps of a running execute).
    pub(super) execute_names: Mutex<Vec<Arc<str>>>,
    /// Set while someone waits for the bot to go idle (from a waiter's
    /// poll to the wake-up that finds the bot idle; under the activity
    /// lock): then the removal that empties a shard of the book looks
    /// whether the whole bot is idle.
    pub(super) idle_waiting: AtomicBool,
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
            self.take_idle_wakers(&mut activity)
        };
        wakers.into_iter().for_each(Waker::wake);
    }

    /// Gives the execute `name` its index in the book.
    pub(super) fn add_execute_name(&self, name: Arc<str>) -> u32 {
        let mut names = self.execute_names.lock().unwrap_or_else(|p| p.into_inner());
        names.push(name);
        u32::try_from(names.len() - 1).unwrap_or(u32::MAX)
    }

    /// The name of the execute with book index `index`.
    pub(super) fn execute_name(&self, index: u32) -> Arc<str> {
        let names = self.execute_names.lock().unwrap_or_else(|p| p.into_inner());
        names
            .get(index as usize)
            .cloned()
            .unwrap_or_else(|| Arc::from("(unregistered execute)"))
    }

    /// Books a spawned execute (its name index `name`), aborted through
    /// `abort` (the task's allocation is made before it is spawned, so
    /// its abort handle is known here).
    pub(crate) fn begin_execute(&self, name: u32, abort: AbortHandle) -> EntryId {
        self.executes.insert(name, abort)
    }

    pub(super) fn end_execute(&self, id: EntryId, outcome: Option<Result<(), &ExecuteError>>) {
        let ended = match outcome {
            Some(Ok(())) => Ended::Ok,
            Some(Err(ExecuteError::Cancelled { .. })) | None => Ended::Cancelled,
            Some(Err(_)) => Ended::Failed,
        };
        let Some((name, shard_emptied)) = self.executes.remove(id, ended) else {
            return;
        };
        // Logged outside any lock: a subscriber (Sentry's, say) may take
        // its time.
        match outcome {
            Some(Ok(())) => {}
            Some(Err(ExecuteError::Cancelled { .. })) | None => {
                tracing::debug!(execute = %self.execute_name(name), "execute cancelled");
            }
            Some(Err(error)) => {
                tracing::warn!(execute = %self.execute_name(name), %error, "execute failed");
            }
        }
        // Sequentially consistent with `idle`, which sets the flag before
        // it reads the book: one of the two sees the other.
        if shard_emptied && self.idle_waiting.load(Ordering::SeqCst) {
            let wakers = self.take_idle_wakers(&mut self.activity());
            wakers.into_iter().for_each(Waker::wake);
        }
    }

    /// Completes when no emit runs and no spawned execute is in flight.
    pub(super) async fn idle(&self) {
        poll_fn(|cx| {
            let mut activity = self.activity();
            self.idle_waiting.store(true, Ordering::SeqCst);
            if self.is_idle(&activity) {
                if activity.idle_wakers.is_empty() {
                    self.idle_waiting.store(false, Ordering::SeqCst);
                }
                return Poll::Ready(());
            }
            if !activity.idle_wakers.iter().any(|w| w.will_wake(cx.waker())) {
                activity.idle_wakers.push(cx.waker().clone());
            }
            Poll::Pending
        })
        .await;
    }

    /// Whether no emit runs and no spawned execute is in flight.
    pub(super) fn is_idle(&self, activity: &Activity) -> bool {
        activity.emits_running == 0 && self.executes.is_empty()
    }

    /// The idle waiters to wake, if the bot is idle (then nobody waits
    /// any more: a waiter polled again sets the flag again).
    pub(super) fn take_idle_wakers(&self, activity: &mut Activity) -> Vec<Waker> {
        if self.is_idle(activity) {
            self.idle_waiting.store(false, Ordering::SeqCst);
            std::mem::take(&mut activity.idle_wakers)
        } else {
            Vec::new()
        }
    }

    /// The counters so far.
    pub(super) fn stats(&self, activity: &Activity) -> RunStats {
        let ended = self.executes.ended();
        RunStats {
            executes_ok: ended.ok,
            executes_failed: ended.failed,
            executes_cancelled: ended.cancelled,
            ..activity.stats
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
