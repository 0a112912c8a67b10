//! [`Readiness`]: a read-only view of whether a stack is ready — every
//! registered service running and none stopping — for a `/readyz`
//! endpoint or an orchestrator's probe. It does not keep the stack alive.

use std::sync::{Mutex, Weak};

use super::{Lifecycle, lock};

/// Whether a stack is ready now; see [`Readiness::check`]. Cheap to
/// clone; it holds the stack weakly.
#[derive(Clone)]
pub struct Readiness {
    pub(super) life: Weak<Mutex<Lifecycle>>,
}

/// What [`Readiness::check`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReadyState {
    /// Every registered service is running and no stop is under way.
    pub ready: bool,
    /// Registered services that are not running (yet, or any more).
    pub not_running: Vec<String>,
    /// Services whose stop is under way.
    pub stopping: Vec<String>,
    /// A full stop has begun.
    pub shutting_down: bool,
}

impl Readiness {
    /// Reads the stack's state now. A stack that is gone is not ready.
    pub fn check(&self) -> ReadyState {
        let Some(life) = self.life.upgrade() else {
            return ReadyState {
                ready: false,
                not_running: Vec::new(),
                stopping: Vec::new(),
                shutting_down: true,
            };
        };
        let life = lock(&life);
        let not_running: Vec<String> = life
            .plan
            .services()
            .filter(|name| !life.running.iter().any(|r| &*r.name == *name))
            .map(str::to_owned)
            .collect();
        let stopping: Vec<String> = life.stopping.iter().map(|s| s.to_string()).collect();
        ReadyState {
            ready: not_running.is_empty() && stopping.is_empty() && !life.closing,
            not_running,
            stopping,
            shutting_down: life.closing,
        }
    }
}

impl std::fmt::Debug for Readiness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Readiness").field(&self.check()).finish()
    }
}
