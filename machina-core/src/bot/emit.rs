//! [`Emit`]: a periodic driver of a bot — a [`Loop`] registered in a
//! [`Machina`](super::Machina) whose body receives an [`Event`].

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};

use super::core::BotCore;
use super::error::BotError;
use super::event::Event;
use super::gate::{Admission, TickGate};
use crate::loops::{IntoBodyResult, Loop};
use crate::schedule::Schedule;

/// A registered emit: its loop, and whether it starts with the bot.
#[derive(Clone)]
pub struct Emit {
    pub(crate) lp: Loop,
    pub(crate) alive: bool,
}

impl Emit {
    /// The emit's name.
    pub fn name(&self) -> &str {
        self.lp.name()
    }

    /// The loop that drives it (for its state: `is_running`,
    /// `current_loop`, …).
    pub fn loop_handle(&self) -> &Loop {
        &self.lp
    }

    /// Whether it starts when the bot runs.
    pub fn is_alive(&self) -> bool {
        self.alive
    }
}

impl fmt::Debug for Emit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Emit")
            .field("loop", &self.lp)
            .field("alive", &self.alive)
            .finish()
    }
}

/// Adds an emit to a bot; see
/// [`MachinaBuilder::emit`](super::MachinaBuilder::emit).
#[must_use = "call .register() to add the emit"]
pub struct EmitBuilder<'b> {
    pub(crate) builder: &'b mut super::MachinaBuilder,
    pub(crate) lp: crate::loops::LoopBuilder,
    pub(crate) alive: bool,
    pub(crate) gate: Option<Arc<dyn TickGate>>,
}

impl EmitBuilder<'_> {
    /// Runs `count` times, then ends (exmachina `count`; default: forever).
    pub fn count(mut self, count: u64) -> Self {
        self.lp = self.lp.count(count);
        self
    }

    /// Whether the emit starts with the bot (default) or only when an
    /// [`Event`] starts it (exmachina `alive`).
    pub fn alive(mut self, alive: bool) -> Self {
        self.alive = alive;
        self
    }

    /// Asks `gate` before each tick whether this replica runs it (see
    /// [`TickGate`]); the body sees the answer's [`Fence`](super::Fence) in
    /// [`Event::fence`]. A skipped tick counts towards
    /// [`count`](Self::count) like a run one: the count is this replica's
    /// ticks.
    pub fn gate(mut self, gate: impl TickGate) -> Self {
        self.gate = Some(Arc::new(gate));
        self
    }

    /// Adjusts the underlying loop (hooks, reconnect kinds, …).
    pub fn configure(
        mut self,
        f: impl FnOnce(crate::loops::LoopBuilder) -> crate::loops::LoopBuilder,
    ) -> Self {
        self.lp = f(self.lp);
        self
    }

    /// Registers the emit with `handler` as its body.
    ///
    /// # Errors
    /// [`BotError::Duplicate`] for a name already used by an emit.
    pub fn register<F, Fut>(self, handler: F) -> Result<Emit, BotError>
    where
        F: Fn(Event) -> Fut + Send + Sync + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: IntoBodyResult,
    {
        let EmitBuilder {
            builder,
            lp,
            alive,
            gate,
        } = self;
        // The loop holds the bot, weakly: the bot holds the emit (through
        // its registry), and a strong handle would keep a dropped bot alive
        // forever. An Event reaches the bot through its loop, so making
        // one per run takes no count of its own (nor one that other emits
        // share: 10 000 emits on two threads would fight over that line).
        let core: Weak<BotCore> = Arc::downgrade(&builder.core);
        let owner: Weak<dyn Any + Send + Sync> = core;
        let lp = lp.owner(owner);
        let timeline = builder.core.timeline.clone();
        let lp = match gate {
            None => lp.build(move |lp: Loop| {
                if let Some(timeline) = timeline.get() {
                    timeline.tick(lp.name(), lp.runtime().now());
                }
                handler(Event::new(lp, None))
            }),
            Some(gate) => {
                let handler = Arc::new(handler);
                // Set while the gate fails: one warning per outage, not one
                // per tick.
                let failing = Arc::new(AtomicBool::new(false));
                lp.build(move |lp: Loop| {
                    let (gate, handler) = (gate.clone(), handler.clone());
                    let (timeline, failing) = (timeline.clone(), failing.clone());
                    async move {
                        let admission = gate.admit(lp.name()).await;
                        if admission.is_ok() && failing.swap(false, Ordering::Relaxed) {
                            tracing::info!(emit = %lp.name(), "the emit's gate decides again");
                        }
                        let fence = match admission {
                            Ok(Admission::Run(fence)) => fence,
                            Ok(Admission::Skip) => return Ok(()),
                            Err(error) if failing.swap(true, Ordering::Relaxed) => {
                                tracing::debug!(emit = %lp.name(), %error, "the emit's gate still cannot decide; tick skipped");
                                return Ok(());
                            }
                            Err(error) => {
                                tracing::warn!(emit = %lp.name(), %error, "the emit's gate could not decide; ticks are skipped until it can");
                                return Ok(());
                            }
                        };
                        if let Some(timeline) = timeline.get() {
                            timeline.tick(lp.name(), lp.runtime().now());
                        }
                        handler(Event::new(lp, Some(fence)))
                            .await
                            .into_body_result()
                    }
                })
            }
        };
        builder.register_emit(Emit { lp, alive })
    }
}

impl fmt::Debug for EmitBuilder<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmitBuilder")
            .field("loop", &self.lp)
            .field("alive", &self.alive)
            .field("gate", &self.gate)
            .finish()
    }
}

/// What a schedule argument of [`MachinaBuilder::emit`](super::MachinaBuilder::emit)
/// may be: a [`Schedule`], or an interval (string or `Duration`) meaning
/// `Schedule::After(interval)`, exmachina's default mode.
pub trait IntoSchedule {
    /// The schedule.
    ///
    /// # Errors
    /// [`ScheduleError`](crate::schedule::ScheduleError) for a malformed
    /// interval.
    fn into_schedule(self) -> Result<Schedule, crate::schedule::ScheduleError>;
}

impl IntoSchedule for Schedule {
    fn into_schedule(self) -> Result<Schedule, crate::schedule::ScheduleError> {
        Ok(self)
    }
}

impl<I: crate::schedule::IntoInterval> IntoSchedule for I {
    fn into_schedule(self) -> Result<Schedule, crate::schedule::ScheduleError> {
        Schedule::after(self)
    }
}
