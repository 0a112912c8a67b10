//! Bots: periodic work and the one-shot calls it drives.
//!
//! - [`Machina`] (exmachina's bot): [`Emit`]s are [`Loop`](crate::loops::Loop)s whose body gets an
//!   [`Event`]; [`Execute`]s are one-shot handlers run inside concurrent
//!   groups and under retry rules, called through a typed handle or by
//!   name.
//! - [`TickGate`]: which replica runs an emit's tick, when one bot runs as
//!   several processes.
//! - [`BotService`]: a bot as a service of a stack, stopped by
//!   [`Machina::shutdown`] with a grace period.
//!
//! This module does not run loops (`loops`), parse schedules (`schedule`)
//! or implement limits and retries (`call`, `limit`, `retry`); it composes
//! them.

mod book;
mod core;
mod emit;
mod error;
mod event;
mod execute;
mod gate;
mod machina;
mod registry;
mod service;

pub use core::RunStats;
pub use emit::{Emit, EmitBuilder, IntoSchedule};
pub use error::{BotError, ExecuteError};
pub use event::Event;
pub use execute::{Execute, ExecuteBuilder, ExecuteTask, GroupRef};
pub use gate::{Admission, Fence, GateFuture, TickGate};
pub use machina::{Machina, RunReport, ShutdownReport};
pub use registry::MachinaBuilder;
pub use service::BotService;
