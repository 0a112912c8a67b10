//! Changing a running stack (aiomisc `start_services` / `stop_services`):
//! [`Supervisor::start_service`] adds and starts one service whose
//! dependencies are running; [`Supervisor::stop_service`] stops one that
//! no running service depends on.

use std::sync::Arc;

use futures::StreamExt;
use futures::channel::mpsc;

use super::stop::ReportTo;
use super::{
    Entry, GraphError, Launched, Lifecycle, News, Service, StartError, Starting, StopReason,
    StopReport, Supervisor,
};
use crate::error::BoxError;

/// Why a service could not be added to or removed from a running stack.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ChangeError {
    /// The name is taken, or a dependency is not registered.
    #[error(transparent)]
    Graph(#[from] GraphError),
    /// A dependency is registered but not running.
    #[error("service {service:?} depends on {dependency:?}, which is not running")]
    DependencyNotRunning {
        /// The service being added.
        service: String,
        /// The dependency that is not running.
        dependency: String,
    },
    /// The service's start failed; nothing else was touched.
    #[error(transparent)]
    Start(#[from] Box<StartError>),
    /// No running service has this name.
    #[error("no running service is named {0:?}")]
    NotRunning(String),
    /// Running services still depend on it; stop them first.
    #[error("service {service:?} is still needed by {dependents:?}; stop those first")]
    Needed {
        /// The service asked to stop.
        service: String,
        /// The running (or starting) services that depend on it.
        dependents: Vec<String>,
    },
    /// The stack is shutting down: no service is added or removed any
    /// more (the shutdown stops them all).
    #[error("the stack is shutting down; service {0:?} is left to it")]
    ShuttingDown(String),
}

impl Supervisor {
    /// Adds `service` under `name` to the running stack and starts it once
    /// its dependencies (which must be running) are; returns when it is
    /// ready. A failed start leaves the stack as it was.
    ///
    /// # Errors
    /// [`ChangeError::Graph`] for a taken name or an unknown dependency,
    /// [`ChangeError::DependencyNotRunning`], [`ChangeError::ShuttingDown`]
    /// once a full stop has begun, or [`ChangeError::Start`].
    ///
    /// # Examples
    ///
    /// ```
    /// use machina_core::service::{Service, ServiceContext, ServiceFuture, Supervisor};
    /// use machina_core::testing::MockRuntime;
    /// use std::sync::Arc;
    ///
    /// struct Noop;
    /// impl Service for Noop {
    ///     fn start(self: Arc<Self>, _ctx: ServiceContext) -> ServiceFuture {
    ///         Box::pin(async { Ok(()) })
    ///     }
    /// }
    /// let mock = MockRuntime::new();
    /// let stack = Supervisor::builder(&mock.runtime()).service("db", Noop, &[]).build().unwrap();
    /// mock.block_on(async {
    ///     stack.start().await.unwrap();
    ///     stack.start_service("cache", Noop, &["db"]).await.unwrap();
    ///     assert_eq!(stack.running_services(), ["db", "cache"]);
    ///     stack.stop_service("cache").await.unwrap();
    ///     assert_eq!(stack.running_services(), ["db"]);
    ///     stack.stop().await;
    /// }).unwrap();
    /// ```
    pub async fn start_service(
        &self,
        name: &str,
        service: impl Service,
        depends_on: &[&str],
    ) -> Result<(), ChangeError> {
        let entry = {
            let mut life = self.life();
            Self::startable(&life, name, depends_on)?;
            let entry = Entry {
                name: Arc::from(name),
                service: Arc::new(service),
            };
            life.plan.add(name, depends_on)?;
            life.entries.push(entry.clone());
            life.dynamic_starts.push(entry.name.clone());
            entry
        };
        let (news_tx, mut news_rx) = mpsc::unbounded();
        let failed = |error: BoxError| {
            Box::new(StartError {
                service: name.to_string(),
                error,
                rolled_back: Vec::new(),
                stop_report: StopReport::default(),
            })
        };
        // Until the start is settled, abandoning this future (a shutdown
        // drops the main future) aborts the start and forgets the service.
        let mut registered = Registered {
            supervisor: self,
            name,
            settled: false,
        };
        let mut launched = match self.launch(&entry, 0, news_tx) {
            Ok(launched) => Starting(Some(launched)),
            Err(error) => return Err(failed(error).into()),
        };
        let error = match news_rx.next().await {
            Some(News::Ready(_)) => {
                // Checked under the lock a full stop pops from: a stop that
                // began meanwhile either sees this service or refuses it.
                let joined = {
                    let mut life = self.life();
                    if !life.closing {
                        life.running.push(launched.take());
                    }
                    !life.closing
                };
                if joined {
                    registered.settle();
                    return Ok(());
                }
                launched.take().cancel().await;
                return Err(ChangeError::ShuttingDown(name.to_string()));
            }
            Some(News::Failed(_, error)) => error,
            None => "the start ended without saying ready or failed".into(),
        };
        launched.take().cancel().await;
        Err(failed(error).into())
    }

    /// Stops the running service `name` (its `stop` with
    /// [`StopReason::Removed`], bounded by its timeout, then its background
    /// work) and removes it, so it may be started again later.
    ///
    /// # Errors
    /// [`ChangeError::NotRunning`] for an unknown or stopped name, and
    /// [`ChangeError::Needed`] while running services depend on it.
    pub async fn stop_service(&self, name: &str) -> Result<StopReport, ChangeError> {
        // A full stop under way stops it anyway; and a service's own stop
        // calling this would otherwise wait for the turn it holds.
        if self.life().closing {
            return Err(ChangeError::ShuttingDown(name.to_string()));
        }
        let _turn = self.stop_turn.lock().await;
        let started = {
            let mut life = self.life();
            let position = Self::stoppable(&life, name)?;
            life.running.remove(position)
        };
        let report = std::sync::Mutex::new(StopReport::default());
        self.stop_one(started, StopReason::Removed, ReportTo::Own(&report), true)
            .await;
        Ok(report.into_inner().unwrap_or_else(|p| p.into_inner()))
    }

    /// Whether [`Supervisor::start_service`] would accept `name` with
    /// `depends_on` now (its start may still fail).
    ///
    /// # Errors
    /// As [`Supervisor::start_service`], but for the start itself.
    pub fn check_startable(&self, name: &str, depends_on: &[&str]) -> Result<(), ChangeError> {
        Self::startable(&self.life(), name, depends_on)
    }

    fn startable(life: &Lifecycle, name: &str, depends_on: &[&str]) -> Result<(), ChangeError> {
        if life.plan.contains(name) {
            return Err(GraphError::Duplicate(name.to_string()).into());
        }
        for dep in depends_on {
            if !life.plan.contains(dep) {
                return Err(GraphError::UnknownDependency {
                    service: name.to_string(),
                    missing: dep.to_string(),
                }
                .into());
            }
            if !life.running.iter().any(|r| &*r.name == *dep) {
                return Err(ChangeError::DependencyNotRunning {
                    service: name.to_string(),
                    dependency: dep.to_string(),
                });
            }
        }
        if life.closing {
            return Err(ChangeError::ShuttingDown(name.to_string()));
        }
        Ok(())
    }

    /// Whether [`Supervisor::stop_service`] would accept `name` now.
    ///
    /// # Errors
    /// As [`Supervisor::stop_service`].
    pub fn check_stoppable(&self, name: &str) -> Result<(), ChangeError> {
        Self::stoppable(&self.life(), name).map(|_| ())
    }

    /// The position of `name` among the running services, if it runs and
    /// no running or dynamically starting service depends on it.
    fn stoppable(life: &Lifecycle, name: &str) -> Result<usize, ChangeError> {
        let Some(position) = life.running.iter().position(|s| &*s.name == name) else {
            return Err(ChangeError::NotRunning(name.to_string()));
        };
        let dependents: Vec<String> = life
            .running
            .iter()
            .map(|s: &Launched| &s.name)
            .chain(&life.dynamic_starts)
            .filter(|service| life.plan.dependencies(service).iter().any(|d| d == name))
            .map(ToString::to_string)
            .collect();
        if dependents.is_empty() {
            Ok(position)
        } else {
            Err(ChangeError::Needed {
                service: name.to_string(),
                dependents,
            })
        }
    }
}

/// A service registered by a dynamic start that has not settled yet:
/// dropped unsettled, it is forgotten again.
struct Registered<'s> {
    supervisor: &'s Supervisor,
    name: &'s str,
    settled: bool,
}

impl Registered<'_> {
    fn settle(&mut self) {
        self.settled = true;
    }
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        let mut life = self.supervisor.life();
        life.dynamic_starts.retain(|n| &**n != self.name);
        if !self.settled {
            life.forget(self.name);
        }
    }
}
