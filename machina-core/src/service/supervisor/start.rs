//! Starting: every registered service once its dependencies are ready,
//! independent ones in parallel; a failure cancels what is still starting
//! and (in [`Supervisor::start_until`]) rolls back what started; a
//! service's start runs as its own task, and readiness is announced once.

use std::collections::HashMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};

use futures::channel::{mpsc, oneshot};
use futures::{FutureExt, StreamExt};

use super::{
    Entry, FailureSink, Launched, ServiceContext, StartError, StopReason, Supervisor, lock,
    panic_error,
};
use crate::error::BoxError;

/// How [`Supervisor::start_until`] ended without an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StartOutcome {
    /// Every service is ready.
    All,
    /// Interrupted: the services not yet ready were cancelled.
    Interrupted,
}

/// A service whose start is under way. If the start is abandoned (its
/// future dropped) the start task and its background tasks are aborted, so
/// nothing keeps running unowned.
pub(crate) struct Starting(pub(super) Option<Launched>);

impl Starting {
    pub(super) fn take(&mut self) -> Launched {
        self.0.take().expect("a Starting is taken once")
    }
}

impl Drop for Starting {
    fn drop(&mut self) {
        if let Some(launched) = self.0.take() {
            launched.task.abort();
            for task in lock(&launched.tasks).iter() {
                task.abort();
            }
        }
    }
}

/// A start's news for the supervisor.
pub(super) enum News {
    Ready(usize),
    Failed(usize, BoxError),
}

impl Supervisor {
    /// Starts every service once its dependencies are ready, independent
    /// ones in parallel. If one fails, the others still starting are
    /// cancelled, the started ones are stopped dependents first (the
    /// failing one's `stop` is not called), and the error says what was
    /// rolled back.
    ///
    /// # Errors
    /// [`StartError`] as described.
    pub async fn start(&self) -> Result<(), StartError> {
        match self.start_until(futures::future::pending()).await {
            Ok(StartOutcome::All | StartOutcome::Interrupted) => Ok(()),
            Err(error) => Err(error),
        }
    }

    /// [`start`](Self::start), unless `interrupt` completes first: then the
    /// services still starting are cancelled (and awaited), the ones that
    /// are ready keep running — stop them with [`stop`](Self::stop) or
    /// [`stop_because`](Self::stop_because) — and the result is
    /// [`StartOutcome::Interrupted`].
    ///
    /// # Errors
    /// [`StartError`] as [`start`](Self::start).
    pub async fn start_until(
        &self,
        interrupt: impl Future<Output = ()>,
    ) -> Result<StartOutcome, StartError> {
        match self.start_without_rollback(interrupt).await {
            Ok(started) => Ok(started),
            Err((service, error)) => {
                let stop_report = self
                    .stop_all(StopReason::StartFailed {
                        service: service.clone(),
                    })
                    .await;
                Err(StartError {
                    service,
                    error,
                    rolled_back: stop_report.stopped.clone(),
                    stop_report,
                })
            }
        }
    }

    /// [`start_until`](Self::start_until) without the rollback: on a
    /// failure the services still starting (and the failed one's tasks)
    /// are cancelled, the ready ones keep running, and the failed service
    /// and its error are returned — for a caller that bounds the rollback
    /// itself (the entrypoint, by its shutdown timeout and signals).
    pub(crate) async fn start_without_rollback(
        &self,
        interrupt: impl Future<Output = ()>,
    ) -> Result<StartOutcome, (String, BoxError)> {
        let mut interrupt = std::pin::pin!(interrupt.fuse());
        let (plan, entries) = {
            let mut life = self.life();
            life.closing = false;
            (life.plan.clone(), life.entries.clone())
        };
        let n = entries.len();
        let position: HashMap<&str, usize> = entries
            .iter()
            .enumerate()
            .map(|(i, e)| (&*e.name, i))
            .collect();
        let mut ready = vec![false; n];
        let mut launched = vec![false; n];
        let mut starting: HashMap<usize, Starting> = HashMap::new();
        let (news_tx, mut news_rx) = mpsc::unbounded::<News>();
        let mut done = 0;
        while done < n {
            for (i, entry) in entries.iter().enumerate() {
                if launched[i] {
                    continue;
                }
                let deps = plan.dependencies(&entry.name);
                // A dependency stopped and removed on a running stack
                // (`stop_service`) is gone from the graph: the dependent
                // cannot start.
                if let Some(gone) = deps.iter().find(|d| !position.contains_key(d.as_str())) {
                    launched[i] = true;
                    let error = format!("its dependency {gone:?} was removed from the stack");
                    let _ = news_tx.unbounded_send(News::Failed(i, error.into()));
                    continue;
                }
                if deps.iter().all(|d| ready[position[d.as_str()]]) {
                    launched[i] = true;
                    match self.launch(entry, i, news_tx.clone()) {
                        Ok(started) => {
                            starting.insert(i, Starting(Some(started)));
                        }
                        Err(error) => {
                            let _ = news_tx.unbounded_send(News::Failed(i, error));
                        }
                    }
                }
            }
            let news = futures::select_biased! {
                news = news_rx.next() => news,
                () = interrupt => {
                    for (_, mut sibling) in starting.drain() {
                        sibling.take().cancel().await;
                    }
                    return Ok(StartOutcome::Interrupted);
                }
            };
            match news {
                Some(News::Ready(i)) => {
                    ready[i] = true;
                    done += 1;
                    if let Some(mut started) = starting.remove(&i) {
                        self.life().running.push(started.take());
                    }
                }
                Some(News::Failed(i, error)) => {
                    // The failed start has ended on its own, but tasks it
                    // spawned may run on: cancel them, and the siblings
                    // still starting.
                    for (_, mut unfinished) in starting.drain() {
                        unfinished.take().cancel().await;
                    }
                    return Err((entries[i].name.to_string(), error));
                }
                None => break,
            }
        }
        Ok(StartOutcome::All)
    }

    /// Spawns the start of service `i`, reporting its readiness or failure.
    pub(super) fn launch(
        &self,
        entry: &Entry,
        i: usize,
        news: mpsc::UnboundedSender<News>,
    ) -> Result<Launched, BoxError> {
        use std::sync::atomic::{AtomicBool, Ordering};

        let (ready_tx, ready_rx) = oneshot::channel();
        let tasks = Arc::new(Mutex::new(Vec::new()));
        let stopping = Arc::new(AtomicBool::new(false));
        let failures = FailureSink {
            name: entry.name.clone(),
            stopping: stopping.clone(),
            tx: self.failures_tx.clone(),
        };
        let ctx = ServiceContext {
            name: entry.name.clone(),
            context: self.context.clone(),
            runtime: self.runtime.clone(),
            ready: Arc::new(Mutex::new(Some(ready_tx))),
            tasks: tasks.clone(),
            failures: failures.clone(),
            readiness: self.readiness(),
        };
        let start = entry.service.clone().start(ctx);
        // Readiness is announced once: by `ctx.ready()` or by `start`
        // returning `Ok`, whichever comes first.
        let announced = Arc::new(AtomicBool::new(false));
        let (flag, news_from_task) = (announced.clone(), news.clone());
        let task = self.runtime.spawn_named(&entry.name, async move {
            let outcome = AssertUnwindSafe(start)
                .catch_unwind()
                .await
                .unwrap_or_else(|payload| Err(panic_error(payload)));
            match outcome {
                Ok(()) => {
                    if !flag.swap(true, Ordering::SeqCst) {
                        let _ = news_from_task.unbounded_send(News::Ready(i));
                    }
                }
                Err(error) if flag.swap(true, Ordering::SeqCst) => {
                    // It failed after it was ready: a background failure.
                    failures.report(error);
                }
                Err(error) => {
                    let _ = news_from_task.unbounded_send(News::Failed(i, error));
                }
            }
        })?;
        let watcher = self.runtime.spawn(async move {
            if ready_rx.await.is_ok() && !announced.swap(true, Ordering::SeqCst) {
                let _ = news.unbounded_send(News::Ready(i));
            }
        });
        match watcher {
            Ok(watcher) => watcher.detach(),
            Err(error) => {
                task.abort();
                return Err(error.into());
            }
        }
        Ok(Launched {
            name: entry.name.clone(),
            service: entry.service.clone(),
            task,
            tasks,
            stopping,
        })
    }
}
