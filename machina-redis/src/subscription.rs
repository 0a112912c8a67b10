//! [`follow`]: a pub/sub subscription kept alive — made again with
//! backoff whenever it breaks, until its owner is gone. The group's
//! release channel and the queue's results channel both use it.

use std::time::Duration;

use futures::StreamExt;
use machina_core::rt::Runtime;

use crate::closed::Closed;
use crate::sync::{RECONNECT, either};

/// What happened to a followed channel.
pub(crate) enum News {
    /// Subscribed (again): a message may have been missed before.
    Subscribed,
    /// A message, with its payload.
    Message(String),
    /// The subscription broke (with the error, if one came); it is being
    /// made again.
    Lost(Option<String>),
}

/// Follows `channel` until `closing` is set, telling `on` what happens.
pub(crate) async fn follow(
    client: redis::Client,
    channel: String,
    rt: Runtime,
    closing: &Closed,
    on: impl Fn(News),
) {
    let mut waits = RECONNECT.waits(rt.rng().clone());
    loop {
        let listen = async {
            let mut pubsub = client.get_async_pubsub().await?;
            pubsub.subscribe(&channel).await?;
            waits.reset();
            on(News::Subscribed);
            let mut messages = pubsub.on_message();
            while let Some(message) = messages.next().await {
                on(News::Message(message.get_payload().unwrap_or_default()));
            }
            Ok::<(), redis::RedisError>(())
        };
        let mut outcome = None;
        either(async { outcome = Some(listen.await) }, closing.wait()).await;
        if closing.is_closed() {
            return;
        }
        let error = outcome.and_then(Result::err).map(|e| e.to_string());
        tracing::debug!(%channel, ?error, "subscription lost; subscribing again");
        on(News::Lost(error));
        let pause = waits.next().unwrap_or(Duration::from_secs(1));
        either(rt.sleep(pause), closing.wait()).await;
    }
}
