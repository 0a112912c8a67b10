//! The entrypoint's hooks: what each gets ([`HookContext`]) and how a list
//! of them runs (in order; a panicking hook is logged, the next one runs).
//! When each runs is in the parent module's docs.

use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;

use futures::FutureExt;

use super::super::context::Context;
use super::super::supervisor::Supervisor;
use crate::rt::Runtime;

type HookFuture = Pin<Box<dyn Future<Output = ()> + Send>>;
pub(super) type Hook = Arc<dyn Fn(HookContext) -> HookFuture + Send + Sync>;

/// What a hook gets: the services involved (see the module docs) and the
/// entrypoint they belong to.
#[derive(Clone)]
pub struct HookContext {
    services: Vec<String>,
    supervisor: Arc<Supervisor>,
    runtime: Runtime,
}

impl HookContext {
    /// The services this hook is about.
    pub fn services(&self) -> &[String] {
        &self.services
    }

    /// The values shared by the entrypoint's services.
    pub fn context(&self) -> &Context {
        self.supervisor.context()
    }

    /// The entrypoint's supervisor (what runs, what is stopping).
    pub fn supervisor(&self) -> &Arc<Supervisor> {
        &self.supervisor
    }

    /// The entrypoint's runtime.
    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }
}

impl fmt::Debug for HookContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HookContext")
            .field("services", &self.services)
            .finish_non_exhaustive()
    }
}

#[derive(Default, Clone)]
pub(super) struct Hooks {
    pub(super) pre_start: Vec<Hook>,
    pub(super) post_start: Vec<Hook>,
    pub(super) pre_stop: Vec<Hook>,
    pub(super) post_stop: Vec<Hook>,
}

/// Runs `hooks` in order; a panicking hook is logged and the next one
/// runs (a hook never stops a start or a shutdown half-way).
pub(super) async fn run_hooks(hooks: &[Hook], services: &[String], supervisor: &Arc<Supervisor>) {
    for hook in hooks {
        let context = HookContext {
            services: services.to_vec(),
            supervisor: supervisor.clone(),
            runtime: supervisor.runtime().clone(),
        };
        // A hook may panic making its future, or while it runs.
        let made = std::panic::catch_unwind(AssertUnwindSafe(|| hook(context)));
        let ran = match made {
            Ok(run) => AssertUnwindSafe(run).catch_unwind().await,
            Err(payload) => Err(payload),
        };
        if let Err(payload) = ran {
            let message = crate::rt::panic_message(&*payload);
            tracing::error!(panic = %message, "an entrypoint hook panicked");
        }
    }
}
