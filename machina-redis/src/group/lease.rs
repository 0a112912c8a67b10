//! A shared group's leases in this replica: [`PendingLease`] while the
//! decision is under way (released if its answer is lost), and the lease
//! a [`Permit`] holds (released, without waiting, when the permit drops).

use std::fmt;
use std::sync::{Arc, LazyLock};

use machina_core::limit::{Lease, Permit};

use super::{GroupInner, lock};

/// The release script (`scripts/release.lua`).
static RELEASE: LazyLock<redis::Script> =
    LazyLock::new(|| redis::Script::new(include_str!("../scripts/release.lua")));

/// A lease asked for and not yet known to be granted or refused. Dropped
/// armed — the future was cancelled mid-call, or the connection broke
/// before the answer came — it releases the id, which may have been
/// granted: cancelling a call never leaks a slot.
pub(super) struct PendingLease {
    group: Arc<GroupInner>,
    id: Option<String>,
}

impl PendingLease {
    pub(super) fn new(group: &Arc<GroupInner>, id: String) -> Self {
        PendingLease {
            group: group.clone(),
            id: Some(id),
        }
    }

    pub(super) fn id(&self) -> &str {
        self.id.as_deref().unwrap_or_default()
    }

    /// The decision refused (or never reached Redis): nothing to release.
    pub(super) fn disarm(mut self) {
        self.id = None;
    }

    /// The lease was granted: held (and renewed) until the permit drops.
    pub(super) fn into_permit(mut self) -> Permit {
        let id = self.id.take().unwrap_or_default();
        lock(&self.group.held).insert(id.clone());
        Permit::from_lease(Box::new(HeldLease {
            group: self.group.clone(),
            id,
        }))
    }
}

impl Drop for PendingLease {
    fn drop(&mut self) {
        if let Some(id) = self.id.take() {
            release(&self.group, id);
        }
    }
}

/// A granted lease, held by a permit.
struct HeldLease {
    group: Arc<GroupInner>,
    id: String,
}

impl fmt::Debug for HeldLease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HeldLease")
            .field("group", &self.group.name)
            .field("id", &self.id)
            .finish()
    }
}

impl Lease for HeldLease {
    fn release(self: Box<Self>) {
        lock(&self.group.held).remove(&self.id);
        release(&self.group, self.id);
    }
}

/// Sends the release in a task of its own (a permit's drop must not
/// wait); it rides the shared multiplexed connection, pipelined with the
/// other commands. If Redis cannot be reached, the lease is no longer
/// renewed and expires by its TTL.
fn release(group: &Arc<GroupInner>, id: String) {
    let group = group.clone();
    let rt = group.rt.clone();
    let task = async move {
        let outcome = async {
            let mut connection = group.redis.connection().await?;
            RELEASE
                .key(&group.keys.leases)
                .arg(&id)
                .arg(&group.keys.freed)
                .invoke_async::<i64>(&mut connection)
                .await
                .map_err(|e| group.redis.error(e))
        };
        if let Err(error) = outcome.await {
            tracing::debug!(group = %group.name, lease = %id, %error, "lease not released; it expires by its TTL");
        }
    };
    match rt.spawn_named("machina-redis release", task) {
        Ok(handle) => handle.detach(),
        Err(error) => tracing::debug!(%error, "lease release not spawned; it expires by its TTL"),
    }
}
