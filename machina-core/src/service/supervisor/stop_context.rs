//! [`StopContext`]: what a service gets when it is stopped — its name, why,
//! the shared [`Context`] and the runtime — as [`ServiceContext`] is what
//! it gets when it starts.
//!
//! [`ServiceContext`]: super::ServiceContext

use std::fmt;
use std::sync::Arc;

use super::StopReason;
use crate::rt::Runtime;
use crate::service::context::Context;

/// What a service's [`stop`](super::Service::stop) gets: why it is being
/// stopped, its name, the values shared by all services, and the runtime
/// (for the clock, sleeps and tasks) — so a service needs nothing smuggled
/// in through its constructor to stop.
///
/// # Examples
///
/// ```
/// use machina_core::service::{Service, ServiceContext, ServiceFuture, StopContext, StopReason, Supervisor};
/// use machina_core::testing::MockRuntime;
/// use std::sync::Arc;
/// use std::time::Duration;
///
/// struct Flushes;
/// impl Service for Flushes {
///     fn start(self: Arc<Self>, _ctx: ServiceContext) -> ServiceFuture {
///         Box::pin(async { Ok(()) })
///     }
///     fn stop(self: Arc<Self>, ctx: StopContext) -> ServiceFuture {
///         Box::pin(async move {
///             assert_eq!(*ctx.reason(), StopReason::Shutdown);
///             assert_eq!(ctx.name(), "flusher");
///             ctx.runtime().sleep(Duration::from_millis(20)).await; // flush
///             Ok(())
///         })
///     }
/// }
///
/// let mock = MockRuntime::new();
/// let stack = Supervisor::builder(&mock.runtime()).service("flusher", Flushes, &[]).build().unwrap();
/// mock.block_on(async {
///     stack.start().await.unwrap();
///     assert!(stack.stop().await.is_clean());
/// }).unwrap();
/// assert_eq!(mock.elapsed(), Duration::from_millis(20));
/// ```
#[derive(Clone)]
pub struct StopContext {
    pub(super) name: Arc<str>,
    pub(super) reason: StopReason,
    pub(super) context: Context,
    pub(super) runtime: Runtime,
}

impl StopContext {
    /// Why the service is being stopped.
    pub fn reason(&self) -> &StopReason {
        &self.reason
    }

    /// The service's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The values shared by all services.
    pub fn context(&self) -> &Context {
        &self.context
    }

    /// The runtime.
    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }
}

impl fmt::Debug for StopContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StopContext")
            .field("name", &self.name)
            .field("reason", &self.reason)
            .finish_non_exhaustive()
    }
}
