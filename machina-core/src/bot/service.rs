//! [`BotService`]: a bot as a service of a stack, so that an
//! [`Entrypoint`](crate::service::Entrypoint)'s signals and shutdown
//! timeout govern it like any other service.

use std::sync::Arc;
use std::time::Duration;

use super::machina::Machina;
use crate::service::{Service, ServiceContext, ServiceFuture, StopContext};

/// A [`Machina`] bot run as a [`Service`]: started with the stack (its
/// startup hooks, then its emits; ready at once), stopped with it by
/// [`Machina::shutdown`] with a grace period — executes still running when
/// it ends are cancelled, and every one is named in the report
/// ([`Machina::last_shutdown`], also logged). A bot whose emits fail
/// brings the stack down, as a failing background task does.
///
/// # Examples
///
/// ```
/// use machina_core::bot::{BotService, Event, Machina};
/// use machina_core::service::Supervisor;
/// use machina_core::testing::MockRuntime;
/// use std::time::Duration;
///
/// let mock = MockRuntime::new();
/// let rt = mock.runtime();
/// let mut bot = Machina::builder(&rt);
/// let slow = bot
///     .execute("slow", |rt: machina_core::Runtime| async move {
///         rt.sleep(Duration::from_secs(60)).await;
///         Ok::<(), std::io::Error>(())
///     })
///     .register()?;
/// bot.emit("tick", "1s")?.register(move |event: Event| {
///     let slow = slow.clone();
///     async move { slow.spawn(event.runtime().clone())?.detach(); Ok::<_, machina_core::BoxError>(()) }
/// })?;
/// let bot = bot.build();
/// let stack = Supervisor::builder(&rt)
///     .service("bot", BotService::new(bot.clone(), Duration::from_secs(2)), &[])
///     .build()?;
/// mock.block_on(async {
///     stack.start().await.unwrap();
///     rt.sleep(Duration::from_millis(2500)).await; // ticks at 0, 1 and 2 s
///     stack.stop().await;
/// })?;
/// let report = bot.last_shutdown().unwrap();
/// assert_eq!(report.emits_stopped, ["tick"]);
/// assert_eq!(report.executes_cancelled.len(), 3); // none of the 60 s calls ended
/// assert_eq!(mock.elapsed(), Duration::from_millis(4500)); // 2.5 s, then the grace period
/// # Ok::<(), machina_core::BoxError>(())
/// ```
#[derive(Debug, Clone)]
pub struct BotService {
    bot: Machina,
    grace: Duration,
}

/// How much longer than its grace period the stack gives a bot's stop:
/// the cancelled executes must still unwind.
const STOP_SLACK: Duration = Duration::from_secs(1);

impl BotService {
    /// `bot` as a service whose stop waits up to `grace` for its emits and
    /// executes before it cancels them.
    pub fn new(bot: Machina, grace: Duration) -> Self {
        BotService { bot, grace }
    }
}

impl Service for BotService {
    fn start(self: Arc<Self>, ctx: ServiceContext) -> ServiceFuture {
        let bot = self.bot.clone();
        ctx.spawn(async move {
            bot.run().await?;
            Ok(())
        });
        Box::pin(async { Ok(()) })
    }

    fn stop(self: Arc<Self>, ctx: StopContext) -> ServiceFuture {
        Box::pin(async move {
            let report = self.bot.shutdown(self.grace).await;
            tracing::info!(
                service = ctx.name(),
                emits_stopped = report.emits_stopped.len(),
                emits_cancelled = report.emits_cancelled.len(),
                executes_finished = report.executes_finished.len(),
                executes_cancelled = report.executes_cancelled.len(),
                "bot shut down"
            );
            Ok(())
        })
    }

    fn graceful_shutdown_timeout(&self) -> Option<Duration> {
        Some(self.grace.saturating_add(STOP_SLACK))
    }
}
