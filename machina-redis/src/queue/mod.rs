//! [`RedisQueue`]: executes submitted by name to a Redis Stream that every
//! replica consumes in one consumer group.
//!
//! - **Submit** anywhere: [`submit`](RedisQueue::submit) (fire and
//!   forget) or [`call`](RedisQueue::call) (await the result). Arguments
//!   and results are JSON (`serde`). A full queue
//!   ([`max_len`](RedisQueueBuilder::max_len)) refuses the submit: nothing
//!   accepted is ever trimmed away.
//! - **Consume** on every replica: [`handle`](RedisQueue::handle) names the
//!   bot's executes the queue may run, and [`consumer`](RedisQueue::consumer)
//!   is a service that reads the stream and runs each entry through its
//!   execute's whole call stack (groups, breaker, retry), as a task of the
//!   bot.
//! - **At least once**: an entry is acknowledged (with its result kept for
//!   the caller, atomically) only after its handler ends. An entry a
//!   consumer left unacknowledged longer than
//!   [`claim_after`](RedisQueueBuilder::claim_after) — the replica died —
//!   is claimed by another (`XAUTOCLAIM`); one delivered more than
//!   [`max_deliveries`](RedisQueueBuilder::max_deliveries) times goes to
//!   the dead-letter stream instead, as does an entry naming an execute
//!   nobody handles or with arguments that do not decode (the caller is
//!   told why).
//! - With AOF on, what Redis accepted survives its restart: the stream
//!   and its pending entries are Redis' own data.
//!
//! Keys: [`keys`](crate::keys); scripts: `submit.lua`, `claim.lua`,
//! `done.lua`, `bury.lua` in this crate's `scripts/`.

mod consumer;
mod replies;

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use machina_core::bot::Execute;
use machina_core::rt::Runtime;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::client::Redis;
use crate::error::RedisError;
use crate::keys::QueueKeys;
use crate::sync::lock;

pub use consumer::QueueConsumer;

/// The submit script (`scripts/submit.lua`).
static SUBMIT: LazyLock<redis::Script> =
    LazyLock::new(|| redis::Script::new(include_str!("../scripts/submit.lua")));

/// The consumer group every replica reads in.
pub(crate) const GROUP: &str = "machina";

/// What a handler made of an entry.
pub(crate) enum Handled {
    /// The execute ran: its result, or its error's message.
    Done(Result<serde_json::Value, String>),
    /// The arguments do not decode: the entry is dead-lettered.
    Undecodable(String),
}

/// Runs one entry's JSON arguments through an execute.
pub(crate) type Handler =
    Arc<dyn Fn(&str) -> Pin<Box<dyn Future<Output = Handled> + Send>> + Send + Sync>;

/// What can go wrong with a shared queue.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QueueError {
    /// Redis could not be reached or refused.
    #[error(transparent)]
    Redis(#[from] RedisError),
    /// The queue holds its maximum: the entry was not added.
    #[error("queue {queue:?} is full ({max} entries wait); try again later")]
    Full {
        /// The queue's name.
        queue: String,
        /// Its maximum length.
        max: u64,
    },
    /// The arguments do not serialise.
    #[error("the arguments of {execute:?} do not serialise: {reason}")]
    Encode {
        /// The execute named.
        execute: String,
        /// Why.
        reason: String,
    },
    /// The execute ran and failed (after its own retries).
    #[error("execute {execute:?} failed on a consumer: {message}")]
    Failed {
        /// The execute.
        execute: String,
        /// The error's message.
        message: String,
    },
    /// The entry was moved to the dead-letter stream (unknown execute,
    /// arguments that do not decode).
    #[error("execute {execute:?} was not run: {reason}; the entry is in the dead-letter stream")]
    DeadLettered {
        /// The execute named.
        execute: String,
        /// Why.
        reason: String,
    },
    /// The result does not decode as the type asked for.
    #[error("the result of {execute:?} does not decode: {reason}")]
    Decode {
        /// The execute.
        execute: String,
        /// Why.
        reason: String,
    },
    /// A second handler for the same execute name.
    #[error("queue {queue:?} already handles an execute named {execute:?}")]
    Duplicate {
        /// The queue's name.
        queue: String,
        /// The execute's name.
        execute: String,
    },
    /// A setting the queue cannot work with.
    #[error("invalid shared queue {queue:?}: {what}")]
    Config {
        /// The queue's name.
        queue: String,
        /// What is wrong.
        what: String,
    },
}

/// A shared queue's counts in this replica.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct QueueStats {
    /// Entries this replica submitted.
    pub submitted: u64,
    /// Entries this replica's consumer handled (ran and acknowledged).
    pub handled: u64,
    /// Of those, the ones whose execute failed.
    pub failed: u64,
    /// Entries claimed from another consumer after they sat idle.
    pub claimed: u64,
    /// Entries this replica moved to the dead-letter stream.
    pub dead_lettered: u64,
    /// Entries handled here that another consumer had acknowledged first
    /// (claimed from a consumer that was slow, not dead).
    pub acknowledged_twice: u64,
}

/// A shared execute queue; see the module docs. Cheap to clone.
///
/// # Examples
///
/// ```no_run
/// use machina_core::bot::Machina;
/// use machina_redis::{Redis, RedisQueue};
///
/// # async fn demo(rt: machina_core::rt::Runtime) -> Result<(), machina_core::BoxError> {
/// let redis = Redis::open("redis://127.0.0.1:6379/")?.prefix("my-bot");
/// let mut bot = Machina::builder(&rt);
/// let double = bot.execute("double", |n: u64| async move { Ok::<_, std::io::Error>(n * 2) }).register()?;
/// let bot = bot.build();
///
/// let queue = RedisQueue::builder(&redis, &rt, "jobs").build()?;
/// queue.handle(&double)?; // this replica runs "double" entries
/// // ... run `queue.consumer()` as a service of the program, then, anywhere:
/// let four: u64 = queue.call("double", &2u64).await?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct RedisQueue {
    pub(crate) inner: Arc<QueueInner>,
}

pub(crate) struct QueueInner {
    pub(crate) name: String,
    pub(crate) redis: Redis,
    pub(crate) rt: Runtime,
    pub(crate) keys: QueueKeys,
    pub(crate) config: QueueConfig,
    pub(crate) consumer_name: String,
    pub(crate) handlers: Mutex<HashMap<String, Handler>>,
    pub(crate) replies: replies::Replies,
    pub(crate) stats: Mutex<QueueStats>,
}

/// A queue's settings.
#[derive(Debug, Clone, Copy)]
pub(crate) struct QueueConfig {
    pub(crate) max_len: u64,
    pub(crate) claim_after: Duration,
    pub(crate) max_deliveries: u32,
    pub(crate) result_ttl: Duration,
    pub(crate) batch: usize,
    pub(crate) block: Duration,
    pub(crate) concurrency: u32,
    pub(crate) dead_max_len: u64,
}

/// Configures a [`RedisQueue`].
#[derive(Debug)]
#[must_use = "call .build() to get the queue"]
pub struct RedisQueueBuilder {
    redis: Redis,
    rt: Runtime,
    name: String,
    config: QueueConfig,
    consumer_name: Option<String>,
}

impl RedisQueueBuilder {
    /// The most entries that may wait (default 100 000); a submit beyond
    /// it is refused with [`QueueError::Full`]. 0: no limit.
    pub fn max_len(mut self, max: u64) -> Self {
        self.config.max_len = max;
        self
    }

    /// How long an entry may sit unacknowledged on a consumer before
    /// another claims it (default 30 s): longer than the slowest handler.
    pub fn claim_after(mut self, idle: Duration) -> Self {
        self.config.claim_after = idle;
        self
    }

    /// How many deliveries an entry gets before it goes to the dead-letter
    /// stream (default 5).
    pub fn max_deliveries(mut self, max: u32) -> Self {
        self.config.max_deliveries = max;
        self
    }

    /// How long a result waits for its caller (default 10 min).
    pub fn result_ttl(mut self, ttl: Duration) -> Self {
        self.config.result_ttl = ttl;
        self
    }

    /// How many entries this replica runs at once (default 16).
    pub fn concurrency(mut self, n: u32) -> Self {
        self.config.concurrency = n;
        self
    }

    /// This replica's consumer name (default: random per queue handle).
    /// A replica restarted under the same name takes back its own pending
    /// entries at once.
    pub fn consumer_name(mut self, name: impl Into<String>) -> Self {
        self.consumer_name = Some(name.into());
        self
    }

    /// Makes the queue handle (nothing is sent to Redis yet).
    ///
    /// # Errors
    /// [`QueueError::Config`] for zero deliveries, zero concurrency, or a
    /// claim time under 10 ms.
    pub fn build(self) -> Result<RedisQueue, QueueError> {
        let refuse = |what: &str| QueueError::Config {
            queue: self.name.clone(),
            what: what.to_owned(),
        };
        let config = self.config;
        if config.max_deliveries == 0 {
            return Err(refuse("max_deliveries is 0, so no entry would ever run"));
        }
        if config.concurrency == 0 {
            return Err(refuse("concurrency is 0, so no entry would ever run"));
        }
        if config.claim_after < Duration::from_millis(10) {
            return Err(refuse("claim_after must be at least 10 ms"));
        }
        let consumer_name = self
            .consumer_name
            .unwrap_or_else(|| format!("{:016x}", self.rt.rng().next_u64()));
        Ok(RedisQueue {
            inner: Arc::new(QueueInner {
                keys: self.redis.keys().queue(&self.name),
                replies: replies::Replies::default(),
                name: self.name,
                redis: self.redis,
                rt: self.rt,
                config,
                consumer_name,
                handlers: Mutex::new(HashMap::new()),
                stats: Mutex::new(QueueStats::default()),
            }),
        })
    }
}

impl RedisQueue {
    /// Starts configuring the shared queue `name`, kept in `redis`, its
    /// tasks on `rt`.
    pub fn builder(redis: &Redis, rt: &Runtime, name: &str) -> RedisQueueBuilder {
        RedisQueueBuilder {
            redis: redis.clone(),
            rt: rt.clone(),
            name: name.to_owned(),
            config: QueueConfig {
                max_len: 100_000,
                claim_after: Duration::from_secs(30),
                max_deliveries: 5,
                result_ttl: Duration::from_secs(600),
                batch: 32,
                block: Duration::from_millis(500),
                concurrency: 16,
                dead_max_len: 10_000,
            },
            consumer_name: None,
        }
    }

    /// The queue's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// This replica's consumer name.
    pub fn consumer_name(&self) -> &str {
        &self.inner.consumer_name
    }

    /// The keys of this queue.
    pub fn keys(&self) -> &QueueKeys {
        &self.inner.keys
    }

    /// This replica's counts.
    pub fn stats(&self) -> QueueStats {
        *lock(&self.inner.stats)
    }

    /// Lets this replica's consumer run entries naming `execute`: their
    /// JSON arguments are decoded as `A`, the execute is spawned as a task
    /// of its bot (its groups, breaker and retry apply), and its result is
    /// encoded for the caller.
    ///
    /// # Errors
    /// [`QueueError::Duplicate`] if an execute of that name is handled
    /// already.
    pub fn handle<A, T>(&self, execute: &Execute<A, T>) -> Result<(), QueueError>
    where
        A: DeserializeOwned + Clone + Send + 'static,
        T: Serialize + Send + 'static,
    {
        let name = execute.name().to_owned();
        let execute = execute.clone();
        let handler: Handler = Arc::new(move |args: &str| {
            let decoded = serde_json::from_str::<A>(args);
            let task = decoded.map(|args| execute.spawn(args));
            Box::pin(async move {
                let task = match task {
                    Ok(Ok(task)) => task,
                    Ok(Err(error)) => return Handled::Done(Err(error.to_string())),
                    Err(error) => {
                        return Handled::Undecodable(format!(
                            "the arguments do not decode: {error}"
                        ));
                    }
                };
                Handled::Done(match task.await {
                    Ok(value) => serde_json::to_value(value)
                        .map_err(|e| format!("the result does not serialise: {e}")),
                    Err(error) => Err(error.to_string()),
                })
            })
        });
        let mut handlers = lock(&self.inner.handlers);
        if handlers.contains_key(&name) {
            return Err(QueueError::Duplicate {
                queue: self.inner.name.clone(),
                execute: name,
            });
        }
        handlers.insert(name, handler);
        Ok(())
    }

    /// Adds an entry for `execute` with `args`; no result is kept. The
    /// entry's id.
    ///
    /// # Errors
    /// [`QueueError::Full`], [`QueueError::Encode`], or
    /// [`QueueError::Redis`].
    pub async fn submit<A: Serialize + ?Sized>(
        &self,
        execute: &str,
        args: &A,
    ) -> Result<String, QueueError> {
        self.add(execute, args, "").await
    }

    /// Adds an entry for `execute` with `args` and waits for its result.
    ///
    /// # Errors
    /// [`QueueError::Failed`] when the execute failed, [`QueueError::DeadLettered`]
    /// when it could not run, [`QueueError::Decode`] when the result is not
    /// a `T`, and the errors of [`submit`](Self::submit).
    pub async fn call<A, T>(&self, execute: &str, args: &A) -> Result<T, QueueError>
    where
        A: Serialize + ?Sized,
        T: DeserializeOwned,
    {
        let inner = &self.inner;
        inner.replies.ensure_listening(inner).await?;
        let token = format!(
            "{:016x}{:016x}",
            inner.rt.rng().next_u64(),
            inner.rt.rng().next_u64()
        );
        let waiting = inner.replies.expect(&token);
        self.add(execute, args, &token).await?;
        let result = waiting.result(inner).await?;
        let decoded: Reply = serde_json::from_str(&result).map_err(|e| QueueError::Decode {
            execute: execute.to_owned(),
            reason: e.to_string(),
        })?;
        match decoded {
            Reply::Ok(value) => serde_json::from_value(value).map_err(|e| QueueError::Decode {
                execute: execute.to_owned(),
                reason: e.to_string(),
            }),
            Reply::Err(message) => Err(QueueError::Failed {
                execute: execute.to_owned(),
                message,
            }),
            Reply::Dead(reason) => Err(QueueError::DeadLettered {
                execute: execute.to_owned(),
                reason,
            }),
        }
    }

    async fn add<A: Serialize + ?Sized>(
        &self,
        execute: &str,
        args: &A,
        reply: &str,
    ) -> Result<String, QueueError> {
        let inner = &self.inner;
        let args = serde_json::to_string(args).map_err(|e| QueueError::Encode {
            execute: execute.to_owned(),
            reason: e.to_string(),
        })?;
        let mut connection = inner.redis.connection().await?;
        let id: String = SUBMIT
            .key(&inner.keys.stream)
            .arg(inner.config.max_len)
            .arg("execute")
            .arg(execute)
            .arg("args")
            .arg(args)
            .arg("reply")
            .arg(reply)
            .invoke_async(&mut connection)
            .await
            .map_err(|e| inner.redis.error(e))?;
        if id.is_empty() {
            return Err(QueueError::Full {
                queue: inner.name.clone(),
                max: inner.config.max_len,
            });
        }
        lock(&inner.stats).submitted += 1;
        Ok(id)
    }

    /// This replica's consumer, as a service: see [`QueueConsumer`].
    pub fn consumer(&self) -> QueueConsumer {
        QueueConsumer::new(self.clone())
    }
}

/// What a caller finds under its reply token.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Reply {
    /// The execute's value.
    Ok(serde_json::Value),
    /// The execute's error.
    Err(String),
    /// Dead-lettered, and why.
    Dead(String),
}

impl Drop for QueueInner {
    fn drop(&mut self) {
        self.replies.closed.close();
    }
}

impl fmt::Debug for RedisQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisQueue")
            .field("name", &self.inner.name)
            .field("consumer", &self.inner.consumer_name)
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}
