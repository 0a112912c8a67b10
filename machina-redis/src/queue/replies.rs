//! The results a replica's callers wait for: one subscription per queue
//! handle to the queue's results channel (made on the first
//! [`call`](super::RedisQueue::call)), and a reply token per call. A caller
//! registers its token before the entry is added, so a result cannot be
//! announced before anyone listens; after the subscription is made again
//! (Redis restarted) every caller looks for its result once, in case its
//! announcement was missed.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use event_listener::Event;

use super::{QueueError, QueueInner};
use crate::closed::Closed;
use crate::subscription::{News, follow};
use crate::sync::{either, lock};

/// How long a first `call` waits for the subscription.
const SUBSCRIBE_TIMEOUT: Duration = Duration::from_secs(5);

/// The callers of one queue handle; see the module docs.
#[derive(Debug, Default)]
pub(crate) struct Replies {
    state: Mutex<State>,
    /// A result was announced, or the subscription changed.
    event: Event,
    /// Set when the queue handle is gone; the subscription ends.
    pub(crate) closed: Arc<Closed>,
}

#[derive(Debug, Default)]
struct State {
    started: bool,
    subscribed: bool,
    /// Bumped at every new subscription.
    generation: u64,
    last_error: Option<String>,
    waiting: HashSet<String>,
    ready: HashSet<String>,
}

impl Replies {
    /// Starts the subscription if it is not running, and waits until it
    /// is made.
    pub(crate) async fn ensure_listening(&self, queue: &Arc<QueueInner>) -> Result<(), QueueError> {
        let start = {
            let mut state = lock(&self.state);
            if state.subscribed {
                return Ok(());
            }
            !std::mem::replace(&mut state.started, true)
        };
        if start {
            let task = subscribe(Arc::downgrade(queue));
            queue
                .rt
                .spawn_named("machina-redis results", task)
                .map_err(|e| QueueError::Config {
                    queue: queue.name.clone(),
                    what: format!("cannot start the results subscription: {e}"),
                })?
                .detach();
        }
        let deadline = queue.rt.now() + SUBSCRIBE_TIMEOUT;
        loop {
            let listener = self.event.listen();
            {
                let state = lock(&self.state);
                if state.subscribed {
                    return Ok(());
                }
                if queue.rt.now() >= deadline {
                    return Err(QueueError::Config {
                        queue: queue.name.clone(),
                        what: format!(
                            "cannot subscribe to its results channel at {}: {}",
                            queue.redis.server(),
                            state.last_error.as_deref().unwrap_or("no answer")
                        ),
                    });
                }
            }
            either(listener, queue.rt.sleep_until(deadline)).await;
        }
    }

    /// Registers a caller's reply token.
    pub(crate) fn expect(&self, token: &str) -> Waiting<'_> {
        let mut state = lock(&self.state);
        state.waiting.insert(token.to_owned());
        Waiting {
            replies: self,
            token: token.to_owned(),
            generation: state.generation,
        }
    }
}

/// One caller waiting for its result.
pub(crate) struct Waiting<'a> {
    replies: &'a Replies,
    token: String,
    generation: u64,
}

impl Waiting<'_> {
    /// The result's JSON, once announced (taken from Redis).
    pub(crate) async fn result(mut self, queue: &QueueInner) -> Result<String, QueueError> {
        let key = format!("{}{}", queue.keys.result_prefix, self.token);
        loop {
            let listener = self.replies.event.listen();
            let look = {
                let mut state = lock(&self.replies.state);
                let announced = state.ready.remove(&self.token);
                let resubscribed = state.subscribed && state.generation != self.generation;
                self.generation = state.generation;
                announced || resubscribed
            };
            if look {
                let mut connection = queue.redis.connection().await?;
                let result: Option<String> = redis::cmd("GETDEL")
                    .arg(&key)
                    .query_async(&mut connection)
                    .await
                    .map_err(|e| queue.redis.error(e))?;
                if let Some(result) = result {
                    return Ok(result);
                }
            }
            listener.await;
        }
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        let mut state = lock(&self.replies.state);
        state.waiting.remove(&self.token);
        state.ready.remove(&self.token);
    }
}

/// The results subscription of a queue handle.
async fn subscribe(queue: Weak<QueueInner>) {
    let Some(first) = queue.upgrade() else { return };
    let (client, channel, rt, closing) = (
        first.redis.client().clone(),
        first.keys.done.clone(),
        first.rt.clone(),
        first.replies.closed.clone(),
    );
    drop(first);
    follow(client, channel, rt, &closing, |news| {
        let Some(queue) = queue.upgrade() else { return };
        let replies = &queue.replies;
        let mut state = lock(&replies.state);
        match news {
            News::Subscribed => {
                state.subscribed = true;
                state.generation += 1;
            }
            News::Message(token) => {
                if !state.waiting.contains(&token) {
                    return;
                }
                state.ready.insert(token);
            }
            News::Lost(error) => {
                state.subscribed = false;
                state.last_error = error;
            }
        }
        drop(state);
        replies.event.notify(usize::MAX);
    })
    .await;
}
