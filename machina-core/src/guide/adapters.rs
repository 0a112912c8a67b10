//! # Chapter 4: choosing an adapter
//!
//! `machina-core` names no async runtime. An adapter crate connects it to
//! one executor and gives a program three things:
//!
//! - `runtime()`: a [`Runtime`] whose tasks run on that executor, whose
//!   blocking work runs on its blocking pool and whose clock is its timer;
//! - `entrypoint()`: an [`EntrypointBuilder`] on that runtime whose
//!   shutdown requests are the OS signals SIGINT (Ctrl+C) and SIGTERM — the
//!   first stops the services gracefully, a second forces the exit — and
//!   whose settings (`MACHINA_SHUTDOWN_TIMEOUT`, `MACHINA_LOG_LEVEL`,
//!   `MACHINA_LOG_FORMAT`) are read from the environment there, once
//!   ([`EnvConfig::from_env`]);
//! - `run(main, services)`: aiomisc's `run` — `entrypoint()` with
//!   `services` (no dependencies between them) around `main`.
//!
//! Each adapter re-exports `machina-core` (`pub use machina_core::*`), so a
//! program depends on one adapter alone and writes
//! `machina_tokio::bot::Machina` or `machina_smol::service::Supervisor`;
//! they are the core's types. Application code takes a [`Runtime`] and
//! never names the adapter: only `main` does.
//!
//! ## The three adapters
//!
//! | | `machina-tokio` | `machina-smol` | `machina-async-std` |
//! | --- | --- | --- | --- |
//! | `runtime()` | `Result<Runtime, TokioAdapterError>` on the tokio runtime the calling thread runs in: `NoRuntime` outside one, `TimerDisabled` if it was built without `enable_time()`; `runtime_from(handle)` for another | `Runtime` on smol's global executor (its own threads, `SMOL_THREADS`, one by default); `runtime_on(&executor)` for an `Arc<async_executor::Executor<'static>>` you drive — it holds a weak reference, and spawning after the executor is dropped is [`SpawnError::Shutdown`] | `Runtime` on async-std's global executor |
//! | tasks | `Handle::spawn` | `smol::spawn`, or the executor's `spawn` | `async_std::task::spawn` |
//! | blocking work | tokio's blocking pool | the `blocking` crate's pool | `async_std::task::spawn_blocking` |
//! | clock | `tokio::time`: a paused tokio clock (`start_paused`, `tokio::time::advance`) drives Machina, and calendar time follows it | async-io timers ([`IoTimer`]) | async-io timers ([`IoTimer`]) |
//! | `entrypoint()` | `Result<EntrypointBuilder, TokioAdapterError>` on the current tokio runtime, signals through `tokio::signal` (Ctrl+C alone off Unix) | `Result<EntrypointBuilder, std::io::Error>`: [`io_entrypoint`]`(&runtime())`, on the global executor, signals through `async-signal` ([`os_signals`]; SIGINT alone off Unix) | as smol, on async-std's executor |
//! | [`Runtime::label`] | `"tokio"` | `"smol"` | `"async-std"` |
//!
//! All three have the features `logging` (the entrypoint sets up logging
//! from `MACHINA_LOG_LEVEL` and `MACHINA_LOG_FORMAT`, unless the program
//! set up `tracing` itself) and `journald`.
//!
//! ## Which one
//!
//! - **tokio** if the program already lives in the tokio ecosystem (an
//!   HTTP server or client, gRPC, a database driver on tokio), or wants
//!   tokio's multi-threaded work-stealing scheduler. Call `runtime()` or
//!   `entrypoint()` from inside the tokio runtime, built with time enabled
//!   (`enable_time()` or `enable_all()`).
//! - **smol** for a small program, or one that wants to own its executor:
//!   with `runtime_on(&executor)`, tasks run wherever you drive
//!   `executor.run(..)` — one thread, if you like. Its `entrypoint()` is
//!   on the global executor; for your own, use
//!   [`io_entrypoint`]`(&runtime_on(&executor))` (re-exported as
//!   `machina_smol::service::io_entrypoint`).
//! - **async-std** only for a program already on async-std: it is
//!   discontinued upstream, and its authors recommend smol.
//!
//! Whichever it is, tests run on the [mock runtime](super::virtual_time),
//! and the same application code runs on all three. The quickstart bot in
//! the workspace is one file (`examples/quickstart/bot.rs`, an `async fn
//! run(rt: Runtime)`) with three `main`s of a few lines each:
//!
//! | adapter | `main` runs the bot with |
//! | --- | --- |
//! | tokio (`examples/quickstart`) | `tokio_rt.block_on(async { bot::run(machina_tokio::runtime()?).await })` |
//! | smol (`examples/quickstart_smol`) | `smol::block_on(executor.run(bot::run(machina_smol::runtime_on(&executor))))` |
//! | async-std (`examples/quickstart_async_std`) | `async_std::task::block_on(bot::run(machina_async_std::runtime()))` |
//!
//! `examples/service_stack` does the same for a service stack under each
//! adapter's `entrypoint()`, and each adapter's crate documentation has a
//! runnable example of its own.
//!
//! ## What the signals do
//!
//! An adapter's `entrypoint()` is [`entrypoint_with`] given its runtime,
//! its OS signals as a stream of shutdown requests, and the environment's
//! settings. On the mock runtime a test can give it any stream, and so see
//! exactly what a Ctrl+C does — once, and twice during a slow stop:
//!
//! ```
//! use futures::channel::mpsc;
//! use machina_core::service::{
//!     EnvConfig, FORCED_EXIT_CODE, Service, ServiceContext, ServiceFuture, StopContext,
//!     StopReason, entrypoint_with,
//! };
//! use machina_core::testing::MockRuntime;
//! use std::sync::{Arc, Mutex};
//! use std::time::Duration;
//!
//! /// Its stop takes `stop`; it records why it was stopped.
//! struct Server {
//!     stop: Duration,
//!     reason: Arc<Mutex<Option<StopReason>>>,
//! }
//! impl Service for Server {
//!     fn start(self: Arc<Self>, _ctx: ServiceContext) -> ServiceFuture {
//!         Box::pin(async { Ok(()) })
//!     }
//!     fn stop(self: Arc<Self>, ctx: StopContext) -> ServiceFuture {
//!         Box::pin(async move {
//!             *self.reason.lock().unwrap() = Some(ctx.reason().clone());
//!             ctx.runtime().sleep(self.stop).await;
//!             Ok(())
//!         })
//!     }
//! }
//!
//! /// Runs the server until shutdown requests come at `secs`: the exit
//! /// code, why the server was stopped, and when the run ended.
//! fn run(stop: Duration, secs: &[u64]) -> (i32, Option<StopReason>, Duration) {
//!     let mock = MockRuntime::new();
//!     let rt = mock.runtime();
//!     // What an adapter's OS signals are: a stream, one item per request.
//!     let (requests, signals) = mpsc::unbounded::<()>();
//!     for &at in secs {
//!         let (clock, requests) = (rt.clone(), requests.clone());
//!         let request = async move {
//!             clock.sleep(Duration::from_secs(at)).await;
//!             let _ = requests.unbounded_send(());
//!         };
//!         rt.spawn(request).unwrap().detach();
//!     }
//!     let reason = Arc::new(Mutex::new(None));
//!     let entrypoint = entrypoint_with(&rt, Box::pin(signals), EnvConfig::default())
//!         .service("server", Server { stop, reason: reason.clone() }, &[])
//!         .build()
//!         .unwrap();
//!     let outcome = mock.block_on(entrypoint.run_forever()).unwrap();
//!     let why = reason.lock().unwrap().take();
//!     (outcome.exit_code, why, mock.elapsed())
//! }
//!
//! let ms = Duration::from_millis;
//! // One request: a graceful stop, told why.
//! assert_eq!(run(ms(500), &[1]), (0, Some(StopReason::Signal), ms(1500)));
//! // A second request during a slow stop forces the exit at once.
//! assert_eq!(run(ms(5000), &[1, 2]), (FORCED_EXIT_CODE, Some(StopReason::Signal), ms(2000)));
//! ```
//!
//! A request during the start interrupts it (the services not yet ready
//! are cancelled, the ready ones stopped); see [`Entrypoint`] for every
//! phase.
//!
//! ## Where this comes from
//!
//! The Python originals all run on asyncio's one event loop (aiomisc can
//! swap in uvloop). Rust has several executors, and none is part of the
//! language; the adapter is that choice, made once, in `main`. The
//! signals are aiomisc's defaults: its `entrypoint` catches SIGINT and
//! SIGTERM (`catch_signals`), and a program that does not stop within
//! `shutdown_timeout` is forced out.
//!
//! [`Runtime`]: crate::rt::Runtime
//! [`Runtime::label`]: crate::rt::Runtime::label
//! [`IoTimer`]: crate::rt::IoTimer
//! [`SpawnError::Shutdown`]: crate::rt::SpawnError::Shutdown
//! [`EntrypointBuilder`]: crate::service::EntrypointBuilder
//! [`Entrypoint`]: crate::service::Entrypoint
//! [`entrypoint_with`]: crate::service::entrypoint_with
//! [`os_signals`]: crate::service::os_signals
//! [`io_entrypoint`]: crate::service::io_entrypoint
//! [`EnvConfig::from_env`]: crate::service::EnvConfig::from_env
