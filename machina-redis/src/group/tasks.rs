//! A shared group's two background tasks in a replica: the subscription
//! to its release channel (which wakes the waiters), and the renewal of
//! the leases it holds. Both hold the group weakly and end when it is
//! dropped.

use std::sync::{Arc, LazyLock, Weak};
use std::time::Duration;

use futures::StreamExt;
use machina_core::rt::SpawnError;
use machina_core::waits::Wait;

use super::{GroupInner, either, lock};

/// The renewal script (`scripts/renew.lua`).
static RENEW: LazyLock<redis::Script> =
    LazyLock::new(|| redis::Script::new(include_str!("../scripts/renew.lua")));

/// How long to wait between tries to subscribe again.
const RESUBSCRIBE: Wait = Wait::Exponential {
    base: Duration::from_millis(50),
    factor: 2,
    cap: Duration::from_secs(2),
};

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
/// waiters; so does every new subscription, since a release may have been
/// missed while there was none.
async fn subscribe(group: Weak<GroupInner>) {
    let Some(first) = group.upgrade() else { return };
    let (client, channel, rt, name, closing) = (
        first.redis.client().clone(),
        first.keys.freed.clone(),
        first.rt.clone(),
        first.name.clone(),
        first.closed.clone(),
    );
    let mut waits = RESUBSCRIBE.waits(rt.rng().clone());
    drop(first);
    loop {
        let listen = async {
            let mut pubsub = client.get_async_pubsub().await?;
            pubsub.subscribe(&channel).await?;
            waits.reset();
            wake(&group, false);
            let mut messages = pubsub.on_message();
            while messages.next().await.is_some() {
                wake(&group, true);
            }
            Ok::<(), redis::RedisError>(())
        };
        let mut ended = false;
        either(
            async {
                match listen.await {
                    Ok(()) => tracing::debug!(group = %name, "release subscription ended; subscribing again"),
                    Err(error) => tracing::debug!(group = %name, %error, "release subscription failed; trying again"),
                }
            },
            async {
                closing.wait().await;
                ended = true;
            },
        )
        .await;
        if ended || closing.is_closed() {
            return;
        }
        // Waiters must not count on a channel that is gone.
        wake(&group, false);
        let pause = waits.next().unwrap_or(Duration::from_secs(1));
        either(rt.sleep(pause), closing.wait()).await;
    }
}

/// Wakes the group's waiters, if it is still there.
fn wake(group: &Weak<GroupInner>, message: bool) {
    if let Some(group) = group.upgrade() {
        if message {
            lock(&group.stats).notifications += 1;
        }
        group.freed.notify(usize::MAX);
    }
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
