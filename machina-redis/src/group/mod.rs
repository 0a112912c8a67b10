//! [`RedisGroup`]: a concurrent group shared by every replica of a bot,
//! kept in Redis, behind the same [`Limiter`] trait as a local group — so
//! `Machina::builder(..).group("api", redis_group)` and a call stack take
//! it unchanged.
//!
//! - **In flight** is a set of **leases** with a TTL: a replica renews the
//!   leases it holds every third of the TTL while their calls run, so a
//!   replica killed with `kill -9` gives its slots back within the TTL
//!   (plus one renewal period), and never earlier while it is alive.
//! - **Starts per window** is a start log (a sorted set of start times);
//!   **the token bucket** is GCRA on one theoretical arrival time.
//! - Each decision is **one script, one round trip**, on Redis' clock
//!   (`TIME`), so the replicas' clocks do not matter; it mirrors
//!   [`GroupPolicy`](machina_core::limit::GroupPolicy) exactly (a property
//!   test compares the two on the same arrivals).
//! - A permit's release rides this replica's next decision (the script
//!   gives the carried leases back first), or goes on its own a
//!   millisecond later if no decision comes: in steady use one script per
//!   decision covers the release too.
//! - A refusal says how long to wait; a waiter sleeps exactly that, or
//!   until a release is published on the group's channel — no polling. In
//!   a replica only the first waiter asks Redis; the others queue behind it
//!   locally, so a release wakes one request per replica, not a herd.
//! - When Redis cannot be reached, [`OnUnavailable`] decides: fail closed
//!   (the default), wait and try again with the shared waits vocabulary,
//!   or fall back to a local group. A lease whose grant may have been lost
//!   in a broken connection is released as soon as Redis answers again,
//!   and expires by its TTL if it never does: no slot leaks.
//!
//! Key names and scripts: [`keys`](crate::keys), and the `scripts/` folder
//! of this crate (documented at the top of each).

mod lease;
mod tasks;
#[cfg(test)]
mod tests;

use std::collections::HashSet;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use event_listener::Event;
use machina_core::decision::{Reason, Refusal};
use machina_core::limit::{
    ConcurrentGroup, Group, IntoGroup, LimitError, LimitFuture, Limiter, LimiterError, Limits,
    Permit,
};
use machina_core::rt::{Runtime, SpawnError};
use machina_core::waits::Wait;

use crate::client::Redis;
use crate::closed::Closed;
use crate::error::RedisError;
use crate::keys::GroupKeys;
use crate::sync::{either, lock};
use lease::PendingLease;

/// The decision script (`scripts/acquire.lua`).
static ACQUIRE: LazyLock<redis::Script> =
    LazyLock::new(|| redis::Script::new(include_str!("../scripts/acquire.lua")));

/// What a shared group does when Redis cannot be reached.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub enum OnUnavailable {
    /// Refuse the call with [`LimiterError::Unavailable`] (the default):
    /// nothing runs unlimited.
    #[default]
    FailClosed,
    /// Wait, trying again after each wait of the sequence, until Redis
    /// answers (`try_acquire` still refuses at once).
    Wait(Wait),
    /// Take a slot of this local group instead, until Redis answers again
    /// (size it as this replica's share of the quota).
    FallbackLocal(ConcurrentGroup),
}

/// A shared group's counts in this replica.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RedisGroupStats {
    /// Leases granted.
    pub granted: u64,
    /// Decisions that refused (each is one round trip).
    pub refused: u64,
    /// Decisions Redis could not make (unreachable, too slow).
    pub unavailable: u64,
    /// Calls given a local slot instead ([`OnUnavailable::FallbackLocal`]).
    pub fallbacks: u64,
    /// Leases found expired at renewal: this replica was cut off from
    /// Redis for longer than the TTL, and the slot may have been given to
    /// another replica while its call ran.
    pub leases_lost: u64,
    /// Release notifications received.
    pub notifications: u64,
    /// Leases held now.
    pub held: usize,
}

/// A concurrent group kept in Redis; see the module docs. Cheap to clone.
///
/// # Examples
///
/// ```no_run
/// use machina_core::bot::Machina;
/// use machina_core::limit::Limits;
/// use machina_redis::{Redis, RedisGroup};
/// use std::time::Duration;
///
/// # fn demo(rt: machina_core::rt::Runtime) -> Result<(), machina_core::BoxError> {
/// let redis = Redis::open("redis://127.0.0.1:6379/")?.prefix("my-bot");
/// let limits = Limits::new().max_in_flight(10).max_starts(50, Duration::from_secs(1));
/// let api = RedisGroup::builder(&redis, &rt, "api", limits).build()?;
/// let mut bot = Machina::builder(&rt);
/// bot.group("api", api)?; // every replica of the bot shares it
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct RedisGroup {
    inner: Arc<GroupInner>,
}

/// A shared group's state in this replica.
pub(crate) struct GroupInner {
    pub(crate) name: String,
    pub(crate) redis: Redis,
    pub(crate) rt: Runtime,
    pub(crate) keys: GroupKeys,
    limits: Limits,
    args: ScriptArgs,
    pub(crate) lease_ttl: Duration,
    on_unavailable: OnUnavailable,
    /// This replica's part of every lease id.
    replica: String,
    next_lease: AtomicU64,
    /// Lease ids held now (renewed while held).
    pub(crate) held: Mutex<HashSet<String>>,
    /// Lease ids released and not yet sent: the next decision carries
    /// them, or a flush a moment later.
    pub(crate) released: Mutex<Vec<String>>,
    pub(crate) flush_scheduled: AtomicBool,
    /// A release was published, or the subscription was (re)made.
    pub(crate) freed: Event,
    /// One waiter of this replica asks Redis at a time.
    turn: futures::lock::Mutex<()>,
    pub(crate) stats: Mutex<RedisGroupStats>,
    /// Set when the group is dropped; the background tasks end.
    pub(crate) closed: Arc<Closed>,
    /// Said once per outage.
    outage_logged: AtomicBool,
}

/// The limits as the decision script's arguments.
#[derive(Debug, Clone)]
struct ScriptArgs {
    ttl_us: u128,
    max_in_flight: u32,
    max_starts: u32,
    window_us: u128,
    interval_us: f64,
    tolerance_us: f64,
}

/// The decision script's "not now": why, and how long to wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Refused {
    pub(crate) reason: Reason,
    pub(crate) wait: Duration,
}

/// Why a shared group could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RedisGroupError {
    /// The limits could never admit a call.
    #[error(transparent)]
    Limits(#[from] LimitError),
    /// The lease TTL is too short to be renewed in time.
    #[error(
        "invalid lease TTL {ttl:?} for shared group {group:?}: use at least 30 ms (leases are renewed every third of it)"
    )]
    LeaseTtl {
        /// The group's name.
        group: String,
        /// The TTL given.
        ttl: Duration,
    },
    /// The runtime refused the group's background tasks.
    #[error("cannot start the background tasks of shared group {group:?}: {source}")]
    Spawn {
        /// The group's name.
        group: String,
        /// The runtime's error.
        #[source]
        source: SpawnError,
    },
}

/// Configures a [`RedisGroup`].
#[derive(Debug)]
#[must_use = "call .build() to get the group"]
pub struct RedisGroupBuilder {
    redis: Redis,
    rt: Runtime,
    name: String,
    limits: Limits,
    lease_ttl: Duration,
    on_unavailable: OnUnavailable,
}

impl RedisGroupBuilder {
    /// How long a lease lives without renewal (default 10 s): how soon the
    /// slots of a replica that died come back.
    pub fn lease_ttl(mut self, ttl: Duration) -> Self {
        self.lease_ttl = ttl;
        self
    }

    /// What to do when Redis cannot be reached (default
    /// [`OnUnavailable::FailClosed`]).
    pub fn on_unavailable(mut self, on_unavailable: OnUnavailable) -> Self {
        self.on_unavailable = on_unavailable;
        self
    }

    /// Makes the group and starts its two background tasks (the release
    /// subscription and the lease renewal), which end when the last clone
    /// of the group is dropped.
    ///
    /// # Errors
    /// [`RedisGroupError`] for limits that could never admit a call, a TTL
    /// under 30 ms, or a runtime that refuses tasks.
    pub fn build(self) -> Result<RedisGroup, RedisGroupError> {
        self.limits.validate(&self.name)?;
        if self.lease_ttl < Duration::from_millis(30) {
            return Err(RedisGroupError::LeaseTtl {
                group: self.name,
                ttl: self.lease_ttl,
            });
        }
        let (max_starts, window) = self.limits.starts_limit().unwrap_or((0, Duration::ZERO));
        let (interval_us, tolerance_us) = match self.limits.rate_limit() {
            Some((n, per, burst)) => {
                let interval = per.as_nanos() as f64 / 1000.0 / f64::from(n);
                (interval, interval * f64::from(burst))
            }
            None => (0.0, 0.0),
        };
        let args = ScriptArgs {
            ttl_us: self.lease_ttl.as_micros(),
            max_in_flight: self.limits.in_flight_limit().unwrap_or(0),
            max_starts,
            window_us: window.as_micros(),
            interval_us,
            tolerance_us,
        };
        let replica = format!("{:016x}", self.rt.rng().next_u64());
        let inner = Arc::new(GroupInner {
            keys: self.redis.keys().group(&self.name),
            name: self.name,
            redis: self.redis,
            rt: self.rt,
            limits: self.limits,
            args,
            lease_ttl: self.lease_ttl,
            on_unavailable: self.on_unavailable,
            replica,
            next_lease: AtomicU64::new(0),
            held: Mutex::new(HashSet::new()),
            released: Mutex::new(Vec::new()),
            flush_scheduled: AtomicBool::new(false),
            freed: Event::new(),
            turn: futures::lock::Mutex::new(()),
            stats: Mutex::new(RedisGroupStats::default()),
            closed: Arc::new(Closed::default()),
            outage_logged: AtomicBool::new(false),
        });
        tasks::start(&inner).map_err(|source| RedisGroupError::Spawn {
            group: inner.name.clone(),
            source,
        })?;
        Ok(RedisGroup { inner })
    }
}

impl RedisGroup {
    /// Starts configuring the shared group `name` with `limits`, kept in
    /// `redis`, its tasks on `rt`.
    pub fn builder(redis: &Redis, rt: &Runtime, name: &str, limits: Limits) -> RedisGroupBuilder {
        RedisGroupBuilder {
            redis: redis.clone(),
            rt: rt.clone(),
            name: name.to_owned(),
            limits,
            lease_ttl: Duration::from_secs(10),
            on_unavailable: OnUnavailable::FailClosed,
        }
    }

    /// The group's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The limits every replica shares.
    pub fn limits(&self) -> Limits {
        self.inner.limits
    }

    /// The keys of this group.
    pub fn keys(&self) -> &GroupKeys {
        &self.inner.keys
    }

    /// This replica's counts.
    pub fn stats(&self) -> RedisGroupStats {
        let mut stats = *lock(&self.inner.stats);
        stats.held = lock(&self.inner.held).len();
        stats
    }

    /// One decision at `now` microseconds instead of Redis' clock — for
    /// the tests that compare the script with the local policy.
    #[cfg(test)]
    pub(crate) async fn try_acquire_at(
        &self,
        now_us: u64,
    ) -> Result<Result<Permit, Refused>, RedisError> {
        self.inner.decide(Some(now_us)).await
    }

    async fn acquire_waiting(&self) -> Result<Permit, LimiterError> {
        let inner = &self.inner;
        let _turn = inner.turn.lock().await;
        let mut outage = None;
        loop {
            // Listening before asking: a release published while the
            // script runs is not missed.
            let freed = inner.freed.listen();
            match inner.decide(None).await {
                Ok(Ok(permit)) => return Ok(permit),
                Ok(Err(refused)) => {
                    outage = None;
                    either(freed, inner.rt.sleep(refused.wait)).await;
                }
                Err(error) => match &inner.on_unavailable {
                    OnUnavailable::FailClosed => return Err(inner.unavailable(error)),
                    OnUnavailable::FallbackLocal(local) => {
                        inner.log_outage(&error);
                        lock(&inner.stats).fallbacks += 1;
                        return Ok(local.acquire().await);
                    }
                    OnUnavailable::Wait(wait) => {
                        inner.log_outage(&error);
                        let waits =
                            outage.get_or_insert_with(|| wait.waits(inner.rt.rng().clone()));
                        let pause = waits.next().unwrap_or(Duration::from_secs(1));
                        inner.rt.sleep(pause).await;
                    }
                },
            }
        }
    }

    async fn try_acquire_once(&self) -> Result<Permit, LimiterError> {
        let inner = &self.inner;
        match inner.decide(None).await {
            Ok(Ok(permit)) => Ok(permit),
            // As a local group: an in-flight refusal names no instant (a
            // release frees the slot, whenever it comes).
            Ok(Err(refused)) => Err(LimiterError::Refused {
                group: inner.name.clone(),
                refusal: Refusal::new(
                    refused.reason,
                    (refused.reason != Reason::InFlight).then(|| inner.rt.now() + refused.wait),
                ),
            }),
            Err(error) => match &inner.on_unavailable {
                OnUnavailable::FallbackLocal(local) => {
                    inner.log_outage(&error);
                    lock(&inner.stats).fallbacks += 1;
                    local
                        .try_acquire()
                        .map_err(|refusal| LimiterError::Refused {
                            group: inner.name.clone(),
                            refusal,
                        })
                }
                _ => Err(inner.unavailable(error)),
            },
        }
    }
}

impl GroupInner {
    /// One round trip: the decision script, with a fresh lease id. A
    /// grant becomes a permit; an answer lost to a broken connection
    /// leaves the lease to be released (see `PendingLease`).
    async fn decide(
        self: &Arc<Self>,
        now_us: Option<u64>,
    ) -> Result<Result<Permit, Refused>, RedisError> {
        let id = format!(
            "{}:{}",
            self.replica,
            self.next_lease.fetch_add(1, Ordering::Relaxed)
        );
        let pending = PendingLease::new(self, id);
        let mut connection = match self.redis.connection().await {
            Ok(connection) => connection,
            Err(error) => {
                pending.disarm();
                lock(&self.stats).unavailable += 1;
                return Err(error);
            }
        };
        let args = &self.args;
        let carried = std::mem::take(&mut *lock(&self.released));
        let mut call = ACQUIRE.key(&self.keys.leases);
        call.key(&self.keys.starts)
            .key(&self.keys.tat)
            .arg(pending.id())
            .arg(args.ttl_us.to_string())
            .arg(args.max_in_flight)
            .arg(args.max_starts)
            .arg(args.window_us.to_string())
            .arg(format!("{:.3}", args.interval_us))
            .arg(format!("{:.3}", args.tolerance_us))
            .arg(now_us.map_or_else(String::new, |now| now.to_string()))
            .arg(&self.keys.freed)
            .arg(carried.len());
        for id in &carried {
            call.arg(id);
        }
        let answer: Result<Vec<i64>, _> = call.invoke_async(&mut connection).await;
        let answer = match answer {
            Ok(answer) => answer,
            Err(error) => {
                lock(&self.stats).unavailable += 1;
                // The releases it carried go again (giving a lease back
                // twice is harmless); `pending` is dropped armed, so its
                // lease is released too once Redis answers.
                lock(&self.released).extend(carried);
                return Err(self.redis.error(error));
            }
        };
        self.outage_logged.store(false, Ordering::Relaxed);
        match answer.as_slice() {
            [1, _now] => {
                lock(&self.stats).granted += 1;
                Ok(Ok(pending.into_permit()))
            }
            [0, reason, wait] => {
                pending.disarm();
                lock(&self.stats).refused += 1;
                let reason = match reason {
                    1 => Reason::InFlight,
                    2 => Reason::Window,
                    _ => Reason::Rate,
                };
                let wait = Duration::from_micros(u64::try_from(*wait).unwrap_or(0));
                Ok(Err(Refused { reason, wait }))
            }
            other => Err(RedisError::Unexpected {
                server: self.redis.server().to_owned(),
                what: "the group's decision script",
                answer: format!("{other:?}"),
            }),
        }
    }

    /// Whether leases are kept in Redis (only under an in-flight cap).
    pub(crate) fn keeps_leases(&self) -> bool {
        self.args.max_in_flight > 0
    }

    fn unavailable(&self, error: RedisError) -> LimiterError {
        LimiterError::unavailable(self.name.clone(), error)
    }

    fn log_outage(&self, error: &RedisError) {
        if !self.outage_logged.swap(true, Ordering::Relaxed) {
            match &self.on_unavailable {
                OnUnavailable::FallbackLocal(_) => {
                    tracing::warn!(group = %self.name, %error, "Redis unavailable; using the local fallback group");
                }
                _ => {
                    tracing::warn!(group = %self.name, %error, "Redis unavailable; waiting for it")
                }
            }
        }
    }
}

impl Drop for GroupInner {
    fn drop(&mut self) {
        self.closed.close();
    }
}

impl fmt::Debug for RedisGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisGroup")
            .field("name", &self.inner.name)
            .field("redis", &self.inner.redis)
            .field("limits", &self.inner.limits)
            .field("lease_ttl", &self.inner.lease_ttl)
            .finish_non_exhaustive()
    }
}

impl Limiter for RedisGroup {
    fn name(&self) -> &str {
        &self.inner.name
    }

    fn try_acquire(&self) -> LimitFuture<'_, Result<Permit, LimiterError>> {
        Box::pin(self.try_acquire_once())
    }

    fn acquire(&self) -> LimitFuture<'_, Result<Permit, LimiterError>> {
        Box::pin(self.acquire_waiting())
    }
}

impl IntoGroup for RedisGroup {
    type Handle = RedisGroup;

    fn into_group(self, runtime: &Runtime, name: &str) -> Result<(Group, RedisGroup), LimitError> {
        let (group, _) = Group::shared(self.clone()).into_group(runtime, name)?;
        Ok((group, self))
    }
}
