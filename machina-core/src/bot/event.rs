//! [`Event`]: what an emit's body receives — its own state, and control
//! over the rest of the bot by name.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::core::BotCore;
use super::error::BotError;
use super::execute::{ExecuteBody, ExecuteTask, signature};
use super::gate::Fence;
use crate::loops::Loop;
use crate::rt::Runtime;

/// The context of one run of an emit's body (exmachina `Event`).
pub struct Event {
    lp: Loop,
    fence: Option<Fence>,
}

impl Event {
    pub(crate) fn new(lp: Loop, fence: Option<Fence>) -> Self {
        Event { lp, fence }
    }

    /// When this tick was due on the emit's schedule (so `now -
    /// scheduled_at` is how late it runs); see [`Loop::scheduled_at`].
    pub fn scheduled_at(&self) -> std::time::Instant {
        self.lp
            .scheduled_at()
            .unwrap_or_else(|| self.lp.runtime().now())
    }

    /// The fencing token and shared tick number this replica runs the
    /// tick under, for an emit with a [`TickGate`](super::TickGate)
    /// (`None` without one). Hand the token to whatever the body writes
    /// to, so that a stale leader's writes can be refused.
    pub fn fence(&self) -> Option<Fence> {
        self.fence
    }

    /// The bot, while it exists (an emit's loop holds it only weakly, so
    /// that a dropped bot is freed).
    fn core(&self) -> Result<Arc<BotCore>, BotError> {
        self.lp.owner::<BotCore>().ok_or_else(|| BotError::Dropped {
            emit: self.lp.name().to_owned(),
        })
    }

    /// The emit's name.
    pub fn name(&self) -> &str {
        self.lp.name()
    }

    /// The runtime the bot runs on.
    pub fn runtime(&self) -> &Runtime {
        self.lp.runtime()
    }

    /// Which iteration of the emit's current run this is: 1 on the first
    /// (a run is one start of the emit, counted by
    /// [`RunStats::emit_runs`](super::RunStats::emit_runs)).
    pub fn epoch(&self) -> u64 {
        self.lp.current_loop() + 1
    }

    /// How long the previous iteration of the body took (zero on the
    /// first).
    pub fn previous_execution_time(&self) -> Duration {
        self.lp.previous_execution_time()
    }

    /// Iterations left after this one (`None` if the emit runs forever).
    pub fn remaining(&self) -> Option<u64> {
        self.lp.count().map(|c| c.saturating_sub(self.epoch()))
    }

    /// The emit's loop.
    pub fn loop_handle(&self) -> &Loop {
        &self.lp
    }

    /// Starts emit `name`. Starting a running emit does nothing (with a
    /// warning); a finished one starts afresh with its configured count.
    ///
    /// # Errors
    /// [`BotError::Unknown`] for an unknown name, [`BotError::Spawn`] if the
    /// executor refuses the task.
    pub fn start(&self, name: &str) -> Result<(), BotError> {
        let core = self.core()?;
        let emit = core.emit(name)?;
        core.start_emit(&emit)
    }

    /// Stops emit `name` gracefully (see [`Loop::stop`]).
    ///
    /// # Errors
    /// [`BotError::Unknown`] for an unknown name.
    pub fn stop(&self, name: &str) -> Result<(), BotError> {
        self.core()?.emit(name)?.lp.stop();
        Ok(())
    }

    /// Cancels emit `name` (see [`Loop::cancel`]).
    ///
    /// # Errors
    /// [`BotError::Unknown`] for an unknown name.
    pub fn cancel(&self, name: &str) -> Result<(), BotError> {
        self.core()?.emit(name)?.lp.cancel();
        Ok(())
    }

    /// Runs execute `name` with `args` as a task of the bot. The types are
    /// checked at run time against the registration.
    ///
    /// # Errors
    /// [`BotError::Unknown`] for an unknown name, [`BotError::TypeMismatch`]
    /// when `A`/`T` are not the execute's argument and result types,
    /// [`BotError::Spawn`] if the executor refuses the task.
    ///
    /// # Examples
    ///
    /// ```
    /// use machina_core::bot::{BotError, Event, Machina};
    /// use machina_core::testing::MockRuntime;
    ///
    /// let mock = MockRuntime::new();
    /// let mut bot = Machina::builder(&mock.runtime());
    /// bot.execute("len", |text: String| async move { Ok::<_, std::io::Error>(text.len()) })
    ///     .register()?;
    /// bot.emit("ask", "1s")?.count(1).register(|event: Event| async move {
    ///     let task = event.execute::<String, usize>("len", "machina".to_owned())?;
    ///     assert_eq!(task.await?, 7);
    ///
    ///     let typo = event.execute::<String, usize>("lenght", String::new()).unwrap_err();
    ///     assert_eq!(typo.to_string(), r#"unknown execute "lenght"; registered: len"#);
    ///     let wrong = event.execute::<&str, usize>("len", "machina").unwrap_err();
    ///     assert!(matches!(wrong, BotError::TypeMismatch { .. }), "{wrong}");
    ///     Ok::<(), machina_core::BoxError>(())
    /// })?;
    /// let report = mock.block_on(bot.build().run())??;
    /// assert_eq!(report.stats.executes_ok, 1);
    /// # Ok::<(), machina_core::BoxError>(())
    /// ```
    pub fn execute<A, T>(&self, name: &str, args: A) -> Result<ExecuteTask<T>, BotError>
    where
        A: Clone + Send + 'static,
        T: Send + 'static,
    {
        let core = self.core()?;
        let erased = core.execute(name)?;
        let Some(inner) = erased.handle.downcast_ref::<Arc<dyn ExecuteBody<A, T>>>() else {
            return Err(BotError::TypeMismatch {
                name: name.to_owned(),
                expected: erased.signature.clone(),
                found: signature::<A, T>(),
            });
        };
        // The task takes its own reference to the execute, and the bot's
        // reference upgraded here: no `Execute` handle is made (and
        // dropped) on the way, and no count of the bot's is taken twice.
        let inner = inner.clone();
        // The bot's executor, reached through the loop's runtime (the
        // same one, unless the emit's loop was configured onto another):
        // no count of the runtime's is taken either.
        let runtime = self.runtime();
        if runtime.shares_spawner(&core.runtime) {
            inner.spawn(runtime, core, args)
        } else {
            let runtime = core.runtime.clone();
            inner.spawn(&runtime, core, args)
        }
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event")
            .field("emit", &self.lp.name())
            .field("epoch", &self.epoch())
            .finish()
    }
}
