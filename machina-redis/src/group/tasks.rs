//! A shared group's two background tasks in a replica: the subscription
//! to its release channel (which wakes the waiters), and the renewal of
//! the leases it holds. Both hold the group weakly and end when it is
//! dropped.

use std::sync::{Arc, LazyLock, Weak};

use machina_core::rt::SpawnError;

use super::GroupInner;
use crate::subscription::{News, follow};
use crate::sync::{either, lock};

/// The renewal script (`scripts/renew.lua`).
static RENEW: LazyLock<redis::Script> =
    LazyLock::new(|| redis::Script::new(include_str!("../scripts/renew.lua")));

/// Starts both tasks for `group`.
pub(super) fn start(group: &Arc<GroupInner>) -> Result<(), SpawnError> {
    let rt = &group.rt;
    rt.spawn_named(
        "machina-redis subscription",
        subscribe(Arc::downgrade(group)),
    )?
    .detach();
    rt.spawn_named("machina-redis renewal", renew(Arc::downgrade(group)))?
        .detach();
    Ok(())
}

/// Listens on the group's channel: each message (a release) wakes the
/// waiters; so does every new subscription, and every loss of one, since a
/// release may have been missed meanwhile.
async fn subscribe(group: Weak<GroupInner>) {
    let Some(first) = group.upgrade() else { return };
    let (client, channel, rt, closing) = (
        first.redis.client().clone(),
        first.keys.freed.clone(),
        first.rt.clone(),
        first.closed.clone(),
    );
    drop(first);
    follow(client, channel, rt, &closing, |news| {
        if let Some(group) = group.upgrade() {
            if let News::Message(_) = news {
                lock(&group.stats).notifications += 1;
            }
            group.freed.notify(usize::MAX);
        }
    })
    .await;
}

/// Every third of the TTL, extends the leases held, in one round trip;
/// a lease found expired is dropped from the held set and counted lost.
async fn renew(group: Weak<GroupInner>) {
    let Some(first) = group.upgrade() else { return };
    let (rt, closing, period) = (first.rt.clone(), first.closed.clone(), first.lease_ttl / 3);
    drop(first);
    loop {
        let mut stop = false;
        either(rt.sleep(period), async {
            closing.wait().await;
            stop = true;
        })
        .await;
        if stop {
            return;
        }
        let Some(group) = group.upgrade() else { return };
        let held: Vec<String> = lock(&group.held).iter().cloned().collect();
        if held.is_empty() {
            continue;
        }
        let outcome = async {
            let mut connection = group.redis.connection().await?;
            let mut call = RENEW.key(&group.keys.leases);
            call.arg(group.lease_ttl.as_micros().to_string());
            for id in &held {
                call.arg(id);
            }
            call.invoke_async::<Vec<String>>(&mut connection)
                .await
                .map_err(|e| group.redis.error(e))
        };
        match outcome.await {
            Ok(lost) if lost.is_empty() => {}
            Ok(lost) => {
                tracing::warn!(group = %group.name, lost = lost.len(), "leases expired before renewal (cut off from Redis for longer than the TTL); their slots may have been given away");
                let mut held = lock(&group.held);
                for id in &lost {
                    held.remove(id);
                }
                drop(held);
                lock(&group.stats).leases_lost += lost.len() as u64;
            }
            Err(error) => {
                tracing::debug!(group = %group.name, %error, "lease renewal failed; trying again next period");
            }
        }
    }
}
