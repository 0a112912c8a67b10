//! Bots: periodic work and the one-shot calls it drives.
//!
//! - [`Loop`]: the periodic engine (discord.ext.tasks' `Loop`), with a
//!   count, hooks, stop-vs-cancel, `change_interval` and reconnection
//!   after handled errors.
//! - [`Machina`] (exmachina's bot): [`Emit`]s are loops whose body gets an
//!   [`Event`]; [`Execute`]s are one-shot handlers run inside concurrent
//!   groups and under retry rules, called through a typed handle or by
//!   name.
//!
//! This module does not parse schedules (`schedule`) or implement limits
//! and retries (`limit`, `retry`); it composes them.

mod book;
mod core;
mod emit;
mod error;
mod event;
mod execute;
mod loops;
mod machina;
mod registry;

pub use core::RunStats;
pub use emit::{Emit, EmitBuilder, IntoSchedule};
pub use error::{BotError, ExecuteError};
pub use event::Event;
pub use execute::{Execute, ExecuteBuilder, ExecuteTask, GroupRef};
pub use loops::{
    ErrorKinds, IntoBodyResult, Loop, LoopBuilder, LoopEnd, LoopError, LoopPanicked, LoopRun,
    LoopStats, ReconnectBackoff, SharedError,
};
pub use machina::{Machina, RunReport, ShutdownReport};
pub use registry::MachinaBuilder;
