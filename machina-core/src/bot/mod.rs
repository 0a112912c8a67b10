//! Bots: periodic work and what it drives.
//!
//! - [`Loop`]: the periodic engine (discord.ext.tasks' `Loop`), with a
//!   count, hooks, stop-vs-cancel, `change_interval` and reconnection
//!   after handled errors.
//!
//! This module does not parse schedules (`schedule`) or limit and retry
//! calls (`limit`, `retry`); it composes them.

mod loops;

pub use loops::{
    ErrorKinds, IntoBodyResult, Loop, LoopBuilder, LoopEnd, LoopError, LoopPanicked, LoopRun,
    ReconnectBackoff, SharedError,
};
