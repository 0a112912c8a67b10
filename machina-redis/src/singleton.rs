//! [`Singleton`]: an emit that runs on exactly one replica per tick — a
//! [`TickGate`] backed by a leader lease in Redis.
//!
//! At each of its ticks, every replica asks Redis (one script): the
//! replica that holds the emit's leader lease — or takes it, `SET NX PX`
//! semantics, when nobody holds it — runs the tick, unless a tick ran less
//! than half a period ago (so a new leader whose schedule is out of phase
//! with the old one's does not run a second tick in the same period); the
//! others skip it. The leader renews its lease every third of the TTL in
//! the background, so a leader that dies or is cut off is replaced within
//! the TTL; a leader that stops gracefully resigns at once.
//!
//! Every new leader gets a larger **fencing token**, handed to the body
//! with the tick's shared number ([`Event::fence`](machina_core::bot::Event::fence)).
//! A resource the body writes to can refuse a stale leader's writes by
//! comparing tokens; [`Singleton::fenced_hset`] is such a write in Redis.
//!
//! When Redis cannot be reached the tick is skipped: a replica that cannot
//! tell whether it leads never runs.

use std::fmt;
use std::sync::{Arc, LazyLock, Mutex, Weak};
use std::time::Duration;

use machina_core::BoxError;
use machina_core::bot::{Admission, Fence, GateFuture, TickGate};
use machina_core::rt::{Runtime, SpawnError};

use crate::client::Redis;
use crate::closed::Closed;
use crate::error::RedisError;
use crate::keys::EmitKeys;
use crate::sync::lock;

/// The tick script (`scripts/lead.lua`).
static LEAD: LazyLock<redis::Script> =
    LazyLock::new(|| redis::Script::new(include_str!("scripts/lead.lua")));
/// The renew/resign script (`scripts/hold.lua`).
static HOLD: LazyLock<redis::Script> =
    LazyLock::new(|| redis::Script::new(include_str!("scripts/hold.lua")));
/// The fenced write (`scripts/fenced_write.lua`).
static FENCED_WRITE: LazyLock<redis::Script> =
    LazyLock::new(|| redis::Script::new(include_str!("scripts/fenced_write.lua")));

/// A singleton emit's gate; see the module docs. Cheap to clone; one per
/// emit (its keys are the emit's name).
///
/// # Examples
///
/// ```no_run
/// use machina_core::bot::{Event, Machina};
/// use machina_redis::{Redis, Singleton};
/// use std::time::Duration;
///
/// # fn demo(rt: machina_core::rt::Runtime) -> Result<(), machina_core::BoxError> {
/// let redis = Redis::open("redis://127.0.0.1:6379/")?.prefix("my-bot");
/// let mut bot = Machina::builder(&rt);
/// bot.emit("report", "1m")?
///     .gate(Singleton::builder(&redis, &rt, "report", Duration::from_secs(60)).build()?)
///     .register(|event: Event| async move {
///         let fence = event.fence().expect("a gated emit has a fence");
///         println!("tick {} under token {}", fence.tick, fence.token);
///     })?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Singleton {
    inner: Arc<Inner>,
}

struct Inner {
    redis: Redis,
    rt: Runtime,
    emit: String,
    keys: EmitKeys,
    replica: String,
    ttl: Duration,
    min_gap: Duration,
    remember: Duration,
    /// `"<replica> <token>"` while this replica leads.
    holding: Mutex<Option<String>>,
    closed: Arc<Closed>,
}

/// Why a singleton gate could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SingletonError {
    /// The period or the lease TTL is too short to work with.
    #[error(
        "invalid singleton emit {emit:?}: {what}; use a period of at least 2 ms and a lease TTL of at least 30 ms"
    )]
    Config {
        /// The emit's name.
        emit: String,
        /// What is wrong.
        what: String,
    },
    /// The runtime refused the renewal task.
    #[error("cannot start the lease renewal of singleton emit {emit:?}: {source}")]
    Spawn {
        /// The emit's name.
        emit: String,
        /// The runtime's error.
        #[source]
        source: SpawnError,
    },
}

/// Configures a [`Singleton`].
#[derive(Debug)]
#[must_use = "call .build() to get the gate"]
pub struct SingletonBuilder {
    redis: Redis,
    rt: Runtime,
    emit: String,
    period: Duration,
    ttl: Duration,
}

impl SingletonBuilder {
    /// How long the leader lease lives without renewal (default 10 s): how
    /// soon another replica takes over from a leader that died.
    pub fn lease_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// Makes the gate and starts its lease renewal, which ends (resigning
    /// the lease) when the last clone is dropped.
    ///
    /// # Errors
    /// [`SingletonError`] for a period under 2 ms or a TTL under 30 ms, or
    /// a runtime that refuses the task.
    pub fn build(self) -> Result<Singleton, SingletonError> {
        let refuse = |what: String| SingletonError::Config {
            emit: self.emit.clone(),
            what,
        };
        if self.period < Duration::from_millis(2) {
            return Err(refuse(format!("the period {:?} is too short", self.period)));
        }
        if self.ttl < Duration::from_millis(30) {
            return Err(refuse(format!("the lease TTL {:?} is too short", self.ttl)));
        }
        let inner = Arc::new(Inner {
            keys: self.redis.keys().emit(&self.emit),
            replica: format!("{:016x}", self.rt.rng().next_u64()),
            min_gap: self.period / 2,
            remember: (self.period * 10).max(self.ttl * 2),
            redis: self.redis,
            rt: self.rt,
            emit: self.emit,
            ttl: self.ttl,
            holding: Mutex::new(None),
            closed: Arc::new(Closed::default()),
        });
        let renewal = renew(Arc::downgrade(&inner), inner.closed.clone());
        inner
            .rt
            .spawn_named("machina-redis singleton", renewal)
            .map_err(|source| SingletonError::Spawn {
                emit: inner.emit.clone(),
                source,
            })?
            .detach();
        Ok(Singleton { inner })
    }
}

impl Singleton {
    /// Starts configuring the gate of the emit `emit`, which ticks every
    /// `period`, kept in `redis`, its renewal on `rt`.
    pub fn builder(redis: &Redis, rt: &Runtime, emit: &str, period: Duration) -> SingletonBuilder {
        SingletonBuilder {
            redis: redis.clone(),
            rt: rt.clone(),
            emit: emit.to_owned(),
            period,
            ttl: Duration::from_secs(10),
        }
    }

    /// This replica's id (the first word of the leader key's value).
    pub fn replica(&self) -> &str {
        &self.inner.replica
    }

    /// Whether this replica led at its last tick or renewal.
    pub fn is_leader(&self) -> bool {
        lock(&self.inner.holding).is_some()
    }

    /// The keys of this emit.
    pub fn keys(&self) -> &EmitKeys {
        &self.inner.keys
    }

    /// One tick's decision: the lead script.
    async fn tick(&self) -> Result<Admission, RedisError> {
        let inner = &self.inner;
        let mut connection = inner.redis.connection().await?;
        let answer: Vec<u64> = LEAD
            .key(&inner.keys.leader)
            .key(&inner.keys.token)
            .key(&inner.keys.last)
            .arg(&inner.replica)
            .arg(inner.ttl.as_millis().to_string())
            .arg(inner.min_gap.as_micros().to_string())
            .arg(inner.remember.as_millis().to_string())
            .invoke_async(&mut connection)
            .await
            .map_err(|e| inner.redis.error(e))?;
        match answer.as_slice() {
            [1, token, tick] => {
                self.set_holding(Some(*token));
                Ok(Admission::Run(Fence {
                    token: *token,
                    tick: *tick,
                }))
            }
            [0, 0, 0] => {
                self.set_holding(None);
                Ok(Admission::Skip)
            }
            [0, token, 0] => {
                self.set_holding(Some(*token));
                Ok(Admission::Skip)
            }
            other => Err(RedisError::Unexpected {
                server: inner.redis.server().to_owned(),
                what: "the singleton's tick script",
                answer: format!("{other:?}"),
            }),
        }
    }

    fn set_holding(&self, token: Option<u64>) {
        let value = token.map(|token| format!("{} {token}", self.inner.replica));
        let mut holding = lock(&self.inner.holding);
        if holding.is_some() && value.is_none() {
            tracing::info!(emit = %self.inner.emit, "another replica leads the singleton emit now");
        }
        *holding = value;
    }

    /// `HSET key field value` in Redis, refused (`Ok(false)`) if `fence`
    /// is older than the emit's current fencing token — a write only the
    /// current leader can make. `key` must hash to the emit's slot on a
    /// Redis Cluster (use a key starting with the emit's hash tag).
    ///
    /// # Errors
    /// [`RedisError`] if Redis cannot be reached.
    pub async fn fenced_hset(
        &self,
        fence: Fence,
        key: &str,
        field: &str,
        value: &str,
    ) -> Result<bool, RedisError> {
        let inner = &self.inner;
        let mut connection = inner.redis.connection().await?;
        let written: i64 = FENCED_WRITE
            .key(&inner.keys.token)
            .key(key)
            .arg(fence.token)
            .arg(field)
            .arg(value)
            .invoke_async(&mut connection)
            .await
            .map_err(|e| inner.redis.error(e))?;
        Ok(written == 1)
    }

    /// The emit's current fencing token (that of the latest leader).
    ///
    /// # Errors
    /// [`RedisError`] if Redis cannot be reached.
    pub async fn current_token(&self) -> Result<u64, RedisError> {
        let inner = &self.inner;
        let mut connection = inner.redis.connection().await?;
        let token: Option<u64> = redis::cmd("GET")
            .arg(&inner.keys.token)
            .query_async(&mut connection)
            .await
            .map_err(|e| inner.redis.error(e))?;
        Ok(token.unwrap_or(0))
    }
}

impl TickGate for Singleton {
    fn admit<'a>(&'a self, _emit: &'a str) -> GateFuture<'a> {
        Box::pin(async move { self.tick().await.map_err(BoxError::from) })
    }
}

impl fmt::Debug for Singleton {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Singleton")
            .field("emit", &self.inner.emit)
            .field("replica", &self.inner.replica)
            .field("ttl", &self.inner.ttl)
            .field("leader", &self.is_leader())
            .finish_non_exhaustive()
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.closed.close();
        // Resign, so that another replica takes over at its next tick
        // instead of after the TTL.
        let Some(value) = lock(&self.holding).take() else {
            return;
        };
        let (redis, leader) = (self.redis.clone(), self.keys.leader.clone());
        let resign = async move {
            let Ok(mut connection) = redis.connection().await else {
                return;
            };
            let _: Result<i64, _> = HOLD
                .key(&leader)
                .arg(&value)
                .arg(0)
                .arg("resign")
                .invoke_async(&mut connection)
                .await;
        };
        if let Ok(handle) = self.rt.spawn_named("machina-redis resign", resign) {
            handle.detach();
        }
    }
}

/// Every third of the TTL, renews the lease while this replica leads.
async fn renew(singleton: Weak<Inner>, closed: Arc<Closed>) {
    let Some(first) = singleton.upgrade() else {
        return;
    };
    let (rt, period) = (first.rt.clone(), first.ttl / 3);
    drop(first);
    loop {
        crate::sync::either(closed.wait(), rt.sleep(period)).await;
        if closed.is_closed() {
            return;
        }
        let Some(inner) = singleton.upgrade() else {
            return;
        };
        let Some(value) = lock(&inner.holding).clone() else {
            continue;
        };
        let renewed = async {
            let mut connection = inner.redis.connection().await?;
            HOLD.key(&inner.keys.leader)
                .arg(&value)
                .arg(inner.ttl.as_millis().to_string())
                .arg("renew")
                .invoke_async::<i64>(&mut connection)
                .await
                .map_err(|e| inner.redis.error(e))
        };
        match renewed.await {
            Ok(1) => {}
            Ok(_) => {
                tracing::warn!(emit = %inner.emit, "the singleton emit's leader lease was lost (expired); another replica may lead");
                let mut holding = lock(&inner.holding);
                if holding.as_deref() == Some(value.as_str()) {
                    *holding = None;
                }
            }
            Err(error) => {
                tracing::debug!(emit = %inner.emit, %error, "leader lease not renewed; trying again next period");
            }
        }
    }
}
