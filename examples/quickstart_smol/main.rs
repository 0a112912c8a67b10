//! Quickstart on smol: the same bot as `quickstart` (see
//! `examples/quickstart/bot.rs`), on an `async_executor::Executor`.
//!
//! Run: `cargo run --example quickstart_smol`

#[path = "../quickstart/bot.rs"]
mod bot;

use std::sync::Arc;

fn main() -> Result<(), machina_smol::BoxError> {
    let executor = Arc::new(async_executor::Executor::new());
    let rt = machina_smol::runtime_on(&executor);
    smol::block_on(executor.run(bot::run(rt)))
}
