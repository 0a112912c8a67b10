//! The names of every key and channel Machina uses in Redis.
//!
//! All start with the prefix (default `machina`). A group's keys share
//! one hash tag (`{prefix:group:name}`), so that on a Redis Cluster they
//! live in one slot and its scripts stay atomic:
//!
//! | key | type | holds |
//! | --- | --- | --- |
//! | `{P:group:N}:leases` | sorted set | in-flight leases: lease id → expiry (µs of server time) |
//! | `{P:group:N}:starts` | sorted set | the sliding window's start log: lease id → start time (µs) |
//! | `{P:group:N}:tat` | string | the token bucket's theoretical arrival time (µs, GCRA) |
//! | `{P:group:N}:freed` | pub/sub channel | a lease was released: waiting replicas try again |
//! | `{P:emit:N}:leader` | string | a singleton emit's leader lease: `<replica> <token>`, with the lease TTL |
//! | `{P:emit:N}:token` | string | its fencing counter: one more for every new leader |
//! | `{P:emit:N}:last` | hash | its last tick: `tick` (number), `at` (µs of server time), `token` |
//! | `{P:queue:N}:stream` | stream | a shared queue's entries not yet handled (`execute`, `args`, `reply`), consumer group `machina` |
//! | `{P:queue:N}:dead` | stream | entries that could not be handled: `origin` id, `deliveries`, `reason`, the entry's fields |
//! | `{P:queue:N}:result:T` | string | the result of the entry with reply token `T`, for its caller (JSON, with a TTL) |
//! | `{P:queue:N}:done` | pub/sub channel | a reply token whose result is ready |
//!
//! Every key expires on its own once unused (a lease TTL, a window, a
//! bucket interval after the last write, plus one second).

/// The keys of one singleton emit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmitKeys {
    /// The leader lease.
    pub leader: String,
    /// The fencing counter.
    pub token: String,
    /// The last tick.
    pub last: String,
}

/// The keys of one shared queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueKeys {
    /// The entries.
    pub stream: String,
    /// The dead-letter stream.
    pub dead: String,
    /// The prefix of result keys (`…:result:` + reply token).
    pub result_prefix: String,
    /// The channel results are announced on.
    pub done: String,
}

/// Key names under one prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keys {
    prefix: String,
}

/// The keys of one shared group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupKeys {
    /// In-flight leases.
    pub leases: String,
    /// The start log.
    pub starts: String,
    /// The bucket's theoretical arrival time.
    pub tat: String,
    /// The channel a release is published on.
    pub freed: String,
}

impl Keys {
    /// Keys under `prefix`.
    pub fn new(prefix: &str) -> Self {
        Keys {
            prefix: prefix.to_owned(),
        }
    }

    /// The prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The keys of the shared queue `name`.
    pub fn queue(&self, name: &str) -> QueueKeys {
        let tag = format!("{{{}:queue:{name}}}", self.prefix);
        QueueKeys {
            stream: format!("{tag}:stream"),
            dead: format!("{tag}:dead"),
            result_prefix: format!("{tag}:result:"),
            done: format!("{tag}:done"),
        }
    }

    /// The keys of the singleton emit `name`.
    pub fn emit(&self, name: &str) -> EmitKeys {
        let tag = format!("{{{}:emit:{name}}}", self.prefix);
        EmitKeys {
            leader: format!("{tag}:leader"),
            token: format!("{tag}:token"),
            last: format!("{tag}:last"),
        }
    }

    /// The keys of the group `name`.
    ///
    /// # Examples
    ///
    /// ```
    /// use machina_redis::keys::Keys;
    ///
    /// let keys = Keys::new("bots").group("api");
    /// assert_eq!(keys.leases, "{bots:group:api}:leases");
    /// assert_eq!(keys.freed, "{bots:group:api}:freed");
    /// ```
    pub fn group(&self, name: &str) -> GroupKeys {
        let tag = format!("{{{}:group:{name}}}", self.prefix);
        GroupKeys {
            leases: format!("{tag}:leases"),
            starts: format!("{tag}:starts"),
            tat: format!("{tag}:tat"),
            freed: format!("{tag}:freed"),
        }
    }
}
