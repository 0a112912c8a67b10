//! [`MockStack`]: a service stack started on a mock runtime, to drive
//! through virtual time in a test.

use std::time::Duration;

use machina_core::Runtime;
use machina_core::service::{GraphError, StartError, StopReport, Supervisor, SupervisorBuilder};
use machina_core::testing::{MockError, MockRuntime};

/// Why a [`MockStack`] could not start or be driven.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MockStackError {
    /// The services' graph was refused.
    #[error(transparent)]
    Graph(#[from] GraphError),
    /// A service's start failed (and the stack was rolled back).
    #[error(transparent)]
    Start(Box<StartError>),
    /// The mock runtime could not finish (a deadlock, or virtual time past
    /// its limit).
    #[error(transparent)]
    Mock(#[from] MockError),
}

/// A service stack, started on a mock runtime: move virtual time with
/// [`advance`](Self::advance), look at the services through
/// [`supervisor`](Self::supervisor), and [`stop`](Self::stop) it.
///
/// # Examples
///
/// ```
/// use machina_core::service::{PeriodicService};
/// use machina_test::MockStack;
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicU32, Ordering};
/// use std::time::Duration;
///
/// let ticks = Arc::new(AtomicU32::new(0));
/// let counter = ticks.clone();
/// let every_minute = PeriodicService::new("tick", "1m", move || {
///     let counter = counter.clone();
///     async move {
///         counter.fetch_add(1, Ordering::SeqCst);
///         Ok::<(), std::io::Error>(())
///     }
/// })
/// .unwrap();
/// let stack = MockStack::start(|stack| stack.service("tick", every_minute, &[])).unwrap();
/// stack.advance(Duration::from_secs(600)).unwrap(); // ten virtual minutes
/// assert_eq!(ticks.load(Ordering::SeqCst), 11); // at 0, 1, ..., 10 minutes
/// let report = stack.stop().unwrap();
/// assert_eq!(report.stopped, ["tick"]);
/// ```
#[derive(Debug)]
pub struct MockStack {
    mock: MockRuntime,
    supervisor: Supervisor,
}

impl MockStack {
    /// Builds the stack `build` describes on a fresh mock runtime and
    /// starts it (in virtual time, so slow starts cost nothing).
    ///
    /// # Errors
    /// [`MockStackError`] for a refused graph or a failed start.
    pub fn start(
        build: impl FnOnce(SupervisorBuilder) -> SupervisorBuilder,
    ) -> Result<Self, MockStackError> {
        Self::start_on(MockRuntime::new(), build)
    }

    /// [`start`](Self::start) on `mock` (a seeded one, or one whose
    /// calendar starts at a chosen date).
    ///
    /// # Errors
    /// As [`start`](Self::start).
    pub fn start_on(
        mock: MockRuntime,
        build: impl FnOnce(SupervisorBuilder) -> SupervisorBuilder,
    ) -> Result<Self, MockStackError> {
        let supervisor = build(Supervisor::builder(&mock.runtime())).build()?;
        mock.block_on(supervisor.start())?
            .map_err(|e| MockStackError::Start(Box::new(e)))?;
        Ok(MockStack { mock, supervisor })
    }

    /// The mock runtime the stack runs on.
    pub fn mock(&self) -> &MockRuntime {
        &self.mock
    }

    /// A handle to that runtime.
    pub fn runtime(&self) -> Runtime {
        self.mock.runtime()
    }

    /// The stack's supervisor.
    pub fn supervisor(&self) -> &Supervisor {
        &self.supervisor
    }

    /// Runs the services for `duration` of virtual time.
    ///
    /// # Errors
    /// [`MockError`] as [`MockRuntime::advance`].
    pub fn advance(&self, duration: Duration) -> Result<(), MockError> {
        self.mock.advance(duration)
    }

    /// Stops every service, dependents first, and reports how.
    ///
    /// # Errors
    /// [`MockError`] if the stop cannot finish on the mock runtime.
    pub fn stop(&self) -> Result<StopReport, MockError> {
        self.mock.block_on(self.supervisor.stop())
    }
}
