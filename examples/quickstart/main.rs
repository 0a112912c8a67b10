//! Quickstart on tokio: a bot with a concurrent group (4 in flight, 3
//! starts per second), an emit every second, and a retried execute that
//! sometimes fails with an HTTP-like error. It ends by itself after three
//! emits.
//!
//! The bot itself is in `bot.rs`, shared with `quickstart_smol` and
//! `quickstart_async_std`: only this file names the runtime.
//!
//! Run: `cargo run --example quickstart`

mod bot;

fn main() -> Result<(), machina_tokio::BoxError> {
    let tokio_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    tokio_rt.block_on(async { bot::run(machina_tokio::runtime()?).await })
}
