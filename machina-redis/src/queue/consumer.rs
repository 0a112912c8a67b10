//! [`QueueConsumer`]: a replica's consumer of a shared queue, as a
//! service. It reads new entries in the queue's consumer group on a
//! connection of its own (a blocking read must not hold up the shared
//! one), claims entries other consumers left idle, runs each through its
//! handler as a task — at most `concurrency` at once — and acknowledges it
//! with its result when the handler ends. Stopping it stops the reading
//! and waits for the entries under way; an entry read but not finished
//! stays pending in Redis for another replica: nothing is dropped.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use machina_core::limit::{ConcurrentGroup, Limits, Permit};
use machina_core::rt::JoinHandle;
use machina_core::service::{Service, ServiceContext, ServiceFuture, StopContext};
use redis::AsyncConnectionConfig;
use redis::aio::MultiplexedConnection;
use redis::streams::StreamReadReply;

use super::{GROUP, Handled, QueueInner, RedisQueue, Reply};
use crate::closed::Closed;
use crate::error::RedisError;
use crate::sync::{RECONNECT, either, lock};

/// The claim script (`scripts/claim.lua`).
static CLAIM: LazyLock<redis::Script> =
    LazyLock::new(|| redis::Script::new(include_str!("../scripts/claim.lua")));
/// The acknowledgement script (`scripts/done.lua`).
static DONE: LazyLock<redis::Script> =
    LazyLock::new(|| redis::Script::new(include_str!("../scripts/done.lua")));
/// The dead-letter script (`scripts/bury.lua`).
static BURY: LazyLock<redis::Script> =
    LazyLock::new(|| redis::Script::new(include_str!("../scripts/bury.lua")));

/// One entry of the stream.
#[derive(Debug, Clone)]
struct Entry {
    id: String,
    fields: HashMap<String, String>,
}

impl Entry {
    fn field(&self, name: &str) -> &str {
        self.fields.get(name).map_or("", String::as_str)
    }

    /// The fields as the dead-letter stream keeps them.
    fn flat(&self) -> Vec<String> {
        ["execute", "args", "reply"]
            .into_iter()
            .flat_map(|name| [name.to_owned(), self.field(name).to_owned()])
            .collect()
    }
}

/// A replica's consumer of a [`RedisQueue`]; see the module docs. Run it
/// as a service of the program (`Entrypoint::service`), or with
/// [`run`](Self::run) and [`stop`](Self::stop).
pub struct QueueConsumer {
    queue: RedisQueue,
    stopping: Arc<Closed>,
    finished: Arc<Closed>,
    running: Mutex<bool>,
}

impl fmt::Debug for QueueConsumer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QueueConsumer")
            .field("queue", &self.queue)
            .finish_non_exhaustive()
    }
}

impl QueueConsumer {
    pub(super) fn new(queue: RedisQueue) -> Self {
        QueueConsumer {
            queue,
            stopping: Arc::default(),
            finished: Arc::default(),
            running: Mutex::new(false),
        }
    }

    /// Makes the consumer group if there is none (from the stream's first
    /// entry, so nothing submitted before any consumer ran is skipped).
    ///
    /// # Errors
    /// [`RedisError`] if Redis cannot be reached.
    pub async fn prepare(&self) -> Result<(), RedisError> {
        let inner = &self.queue.inner;
        let mut connection = inner.redis.connection().await?;
        create_group(inner, &mut connection).await
    }

    /// Consumes until [`stop`](Self::stop), then waits for the entries
    /// under way. Redis going away is waited out (reconnecting with
    /// backoff), never an error.
    pub async fn run(&self) {
        *lock(&self.running) = true;
        consume(&self.queue.inner, &self.stopping).await;
        self.finished.close();
    }

    /// Asks [`run`](Self::run) to end, and waits until it has (entries
    /// under way finished and acknowledged) if it was running.
    pub async fn stop(&self) {
        self.stopping.close();
        if *lock(&self.running) {
            self.finished.wait().await;
        }
    }
}

impl Service for QueueConsumer {
    fn start(self: Arc<Self>, ctx: ServiceContext) -> ServiceFuture {
        Box::pin(async move {
            self.prepare().await?;
            let consumer = self.clone();
            ctx.spawn(async move {
                consumer.run().await;
                Ok(())
            });
            Ok(())
        })
    }

    fn stop(self: Arc<Self>, _ctx: StopContext) -> ServiceFuture {
        Box::pin(async move {
            QueueConsumer::stop(&self).await;
            Ok(())
        })
    }
}

async fn create_group(
    queue: &QueueInner,
    connection: &mut MultiplexedConnection,
) -> Result<(), RedisError> {
    let made: Result<(), redis::RedisError> = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(&queue.keys.stream)
        .arg(GROUP)
        .arg("0")
        .arg("MKSTREAM")
        .query_async(connection)
        .await;
    match made {
        Ok(()) => Ok(()),
        Err(error) if error.code() == Some("BUSYGROUP") => Ok(()),
        Err(error) => Err(queue.redis.error(error)),
    }
}

/// The reading loop; see the module docs.
async fn consume(queue: &Arc<QueueInner>, stopping: &Closed) {
    let config = queue.config;
    let slots = match ConcurrentGroup::new(
        &queue.rt,
        "machina-redis queue",
        Limits::new().max_in_flight(config.concurrency),
    ) {
        Ok(slots) => slots,
        Err(error) => {
            tracing::error!(queue = %queue.name, %error, "cannot bound the consumer");
            return;
        }
    };
    let mut running: Vec<JoinHandle<()>> = Vec::new();
    let mut connection: Option<MultiplexedConnection> = None;
    let mut outage = RECONNECT.waits(queue.rt.rng().clone());
    let claim_every = config.claim_after / 2;
    let mut next_claim = queue.rt.now();
    while !stopping.is_closed() {
        running.retain(|task| !task.is_finished());
        let mut conn = match &connection {
            Some(conn) => conn.clone(),
            None => match connect(queue).await {
                Ok(conn) => {
                    outage.reset();
                    connection = Some(conn.clone());
                    conn
                }
                Err(error) => {
                    tracing::warn!(queue = %queue.name, %error, "cannot reach Redis; the consumer tries again");
                    let pause = outage.next().unwrap_or(Duration::from_secs(1));
                    either(queue.rt.sleep(pause), stopping.wait()).await;
                    continue;
                }
            },
        };
        // A free slot first: read only what can run.
        let permit = {
            let mut permit = None;
            either(
                async { permit = Some(slots.acquire().await) },
                stopping.wait(),
            )
            .await;
            match permit {
                Some(permit) => permit,
                None => break,
            }
        };
        let entries = if queue.rt.now() >= next_claim {
            next_claim = queue.rt.now() + claim_every;
            claim(queue, &mut conn).await.inspect(|claimed| {
                lock(&queue.stats).claimed += claimed.len() as u64;
            })
        } else {
            let free = config.concurrency.saturating_sub(slots.in_flight()) as usize + 1;
            let mut read = None;
            either(
                async { read = Some(read_new(queue, &mut conn, free.min(config.batch)).await) },
                stopping.wait(),
            )
            .await;
            match read {
                Some(read) => read,
                None => break,
            }
        };
        let entries = match entries {
            Ok(entries) => entries,
            Err(error) => {
                if error.is_unavailable() {
                    connection = None;
                } else if error.to_string().contains("NOGROUP") {
                    // Redis lost the group (restarted without AOF).
                    let _ = create_group(queue, &mut conn).await;
                    continue;
                }
                tracing::warn!(queue = %queue.name, %error, "reading the queue failed; the consumer tries again");
                let pause = outage.next().unwrap_or(Duration::from_secs(1));
                either(queue.rt.sleep(pause), stopping.wait()).await;
                continue;
            }
        };
        let mut permit = Some(permit);
        for entry in entries {
            let held = match permit.take() {
                Some(held) => held,
                None => slots.acquire().await,
            };
            match queue
                .rt
                .spawn_named("machina-redis entry", run_entry(queue.clone(), entry, held))
            {
                Ok(task) => running.push(task),
                Err(error) => {
                    tracing::error!(queue = %queue.name, %error, "cannot run a queue entry; it stays pending for another consumer");
                }
            }
        }
    }
    for task in running {
        let _ = task.await;
    }
}

/// A connection for this consumer alone: its blocking reads wait longer
/// than the shared connection's answers may.
async fn connect(queue: &QueueInner) -> Result<MultiplexedConnection, RedisError> {
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(2)))
        .set_response_timeout(Some(queue.config.block + Duration::from_secs(2)));
    queue
        .redis
        .client()
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .map_err(|e| RedisError::from_client(queue.redis.server(), e))
}

/// New entries for this consumer, waiting up to the block time.
async fn read_new(
    queue: &QueueInner,
    conn: &mut MultiplexedConnection,
    count: usize,
) -> Result<Vec<Entry>, RedisError> {
    let reply: Option<StreamReadReply> = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg(GROUP)
        .arg(&queue.consumer_name)
        .arg("COUNT")
        .arg(count.max(1))
        .arg("BLOCK")
        .arg(queue.config.block.as_millis() as u64)
        .arg("STREAMS")
        .arg(&queue.keys.stream)
        .arg(">")
        .query_async(conn)
        .await
        .map_err(|e| RedisError::from_client(queue.redis.server(), e))?;
    let entries = reply
        .into_iter()
        .flat_map(|reply| reply.keys)
        .flat_map(|key| key.ids)
        .map(|id| Entry {
            fields: id
                .map
                .iter()
                .filter_map(|(k, v)| {
                    redis::from_redis_value::<String>(v.clone())
                        .ok()
                        .map(|v| (k.clone(), v))
                })
                .collect(),
            id: id.id,
        })
        .collect();
    Ok(entries)
}

/// Entries other consumers left idle past `claim_after`, now this one's
/// (those delivered too often went to the dead-letter stream instead).
async fn claim(
    queue: &QueueInner,
    conn: &mut MultiplexedConnection,
) -> Result<Vec<Entry>, RedisError> {
    let config = queue.config;
    let claimed: Vec<(String, Vec<String>)> = CLAIM
        .key(&queue.keys.stream)
        .key(&queue.keys.dead)
        .arg(GROUP)
        .arg(&queue.consumer_name)
        .arg(config.claim_after.as_millis() as u64)
        .arg(config.batch)
        .arg(config.max_deliveries)
        .arg(config.dead_max_len)
        .arg(&queue.keys.result_prefix)
        .arg(config.result_ttl.as_millis() as u64)
        .arg(&queue.keys.done)
        .invoke_async(conn)
        .await
        .map_err(|e| RedisError::from_client(queue.redis.server(), e))?;
    Ok(claimed
        .into_iter()
        .map(|(id, flat)| Entry {
            id,
            fields: flat
                .chunks(2)
                .filter_map(|pair| match pair {
                    [k, v] => Some((k.clone(), v.clone())),
                    _ => None,
                })
                .collect(),
        })
        .collect())
}

/// Runs one entry and acknowledges it with its result.
async fn run_entry(queue: Arc<QueueInner>, entry: Entry, permit: Permit) {
    let execute = entry.field("execute").to_owned();
    let handler = lock(&queue.handlers).get(&execute).cloned();
    let outcome = match handler {
        None => Handled::Undecodable(format!("no consumer handles an execute named {execute:?}")),
        Some(handler) => handler(entry.field("args")).await,
    };
    let acknowledged = match outcome {
        Handled::Done(result) => {
            let failed = result.is_err();
            let reply = match result {
                Ok(value) => Reply::Ok(value),
                Err(message) => Reply::Err(message),
            };
            let done = finish(&queue, &entry, &reply).await;
            if let Ok(first) = done {
                let mut stats = lock(&queue.stats);
                stats.handled += 1;
                stats.failed += u64::from(failed);
                stats.acknowledged_twice += u64::from(!first);
            }
            done.map(|_| ())
        }
        Handled::Undecodable(reason) => {
            let buried = bury(&queue, &entry, &reason).await;
            if buried.is_ok() {
                lock(&queue.stats).dead_lettered += 1;
                tracing::warn!(queue = %queue.name, %execute, %reason, "queue entry moved to the dead-letter stream");
            }
            buried
        }
    };
    if let Err(error) = acknowledged {
        tracing::warn!(queue = %queue.name, %execute, entry = %entry.id, %error, "entry not acknowledged; it will be delivered again");
    }
    drop(permit);
}

/// The reply key of an entry, or `""` when nobody waits.
fn reply_key(queue: &QueueInner, entry: &Entry) -> String {
    match entry.field("reply") {
        "" => String::new(),
        token => format!("{}{token}", queue.keys.result_prefix),
    }
}

/// `done.lua`: whether this was the entry's first acknowledgement.
async fn finish(queue: &QueueInner, entry: &Entry, reply: &Reply) -> Result<bool, RedisError> {
    let json = serde_json::to_string(reply).unwrap_or_else(|e| format!("{{\"err\":\"{e}\"}}"));
    let mut connection = queue.redis.connection().await?;
    let acked: i64 = DONE
        .key(&queue.keys.stream)
        .key(reply_key(queue, entry))
        .arg(GROUP)
        .arg(&entry.id)
        .arg(json)
        .arg(queue.config.result_ttl.as_millis() as u64)
        .arg(&queue.keys.done)
        .arg(entry.field("reply"))
        .invoke_async(&mut connection)
        .await
        .map_err(|e| queue.redis.error(e))?;
    Ok(acked == 1)
}

/// `bury.lua`: the entry to the dead-letter stream, the caller told why.
async fn bury(queue: &QueueInner, entry: &Entry, reason: &str) -> Result<(), RedisError> {
    let json = serde_json::to_string(&Reply::Dead(reason.to_owned())).unwrap_or_default();
    let mut connection = queue.redis.connection().await?;
    let mut call = BURY.key(&queue.keys.stream);
    call.key(&queue.keys.dead)
        .key(reply_key(queue, entry))
        .arg(GROUP)
        .arg(&entry.id)
        .arg(reason)
        .arg(json)
        .arg(queue.config.result_ttl.as_millis() as u64)
        .arg(&queue.keys.done)
        .arg(entry.field("reply"))
        .arg(queue.config.dead_max_len);
    for field in entry.flat() {
        call.arg(field);
    }
    call.invoke_async::<i64>(&mut connection)
        .await
        .map_err(|e| queue.redis.error(e))?;
    Ok(())
}
