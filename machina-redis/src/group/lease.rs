//! A shared group's leases in this replica: [`PendingLease`] while the
//! decision is under way (released if its answer is lost), and the lease
//! a [`Permit`] holds (released, without waiting, when the permit drops).

use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use machina_core::limit::{Lease, Permit};

use super::GroupInner;
use crate::sync::lock;

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
    /// Without an in-flight cap there is no lease in Redis (only the start
    /// log and the bucket), so nothing to renew or give back.
    pub(super) fn into_permit(mut self) -> Permit {
        let id = self.id.take().unwrap_or_default();
        if !self.group.keeps_leases() {
            return Permit::from_lease(Box::new(NoLease));
        }
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

/// The permit of a group without an in-flight cap.
#[derive(Debug)]
struct NoLease;

impl Lease for NoLease {
    fn release(self: Box<Self>) {}
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

/// How long a release waits for a decision of this replica to carry it
/// before it is sent on its own.
const CARRY_WINDOW: Duration = Duration::from_millis(1);

/// Gives a lease back without waiting (a permit's drop must not block):
/// the id is queued, this replica's waiters are woken (their next
/// decision carries it), and unless a decision takes it within
/// [`CARRY_WINDOW`] a task sends it alone. If Redis cannot be reached the
/// lease is no longer renewed and expires by its TTL.
fn release(group: &Arc<GroupInner>, id: String) {
    lock(&group.released).push(id);
    group.freed.notify(usize::MAX);
    if group.flush_scheduled.swap(true, Ordering::AcqRel) {
        return;
    }
    let flush = flush(group.clone());
    match group.rt.spawn_named("machina-redis release", flush) {
        Ok(handle) => handle.detach(),
        Err(error) => {
            group.flush_scheduled.store(false, Ordering::Release);
            tracing::debug!(%error, "lease release not spawned; it expires by its TTL");
        }
    }
}

/// Sends the releases no decision carried.
async fn flush(group: Arc<GroupInner>) {
    group.rt.sleep(CARRY_WINDOW).await;
    group.flush_scheduled.store(false, Ordering::Release);
    let ids = std::mem::take(&mut *lock(&group.released));
    if ids.is_empty() {
        return;
    }
    let outcome = async {
        let mut connection = group.redis.connection().await?;
        let mut call = RELEASE.key(&group.keys.leases);
        call.arg(&group.keys.freed);
        for id in &ids {
            call.arg(id);
        }
        call.invoke_async::<i64>(&mut connection)
            .await
            .map_err(|e| group.redis.error(e))
    };
    if let Err(error) = outcome.await {
        tracing::debug!(group = %group.name, leases = ids.len(), %error, "leases not released; they expire by their TTL");
    }
}
