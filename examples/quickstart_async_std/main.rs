//! Quickstart on async-std: the same bot as `quickstart` (see
//! `examples/quickstart/bot.rs`). async-std is discontinued upstream; this
//! shows the adapter for programs already on it.
//!
//! Run: `cargo run --example quickstart_async_std`

#[path = "../quickstart/bot.rs"]
mod bot;

fn main() -> Result<(), machina_async_std::BoxError> {
    async_std::task::block_on(bot::run(machina_async_std::runtime()))
}
