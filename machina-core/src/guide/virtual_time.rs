//! # Chapter 2: testing on virtual time
//!
//! Code that takes a [`Runtime`] instead of naming an executor can be run
//! on [`MockRuntime`] (feature `test-util`): a single-threaded executor
//! whose clock moves only when every task is idle, and then exactly to the
//! next timer. A day of schedules takes milliseconds, and every instant
//! can be asserted to the nanosecond.
//!
//! The rules, in full:
//!
//! - ready tasks run first come, first served (or in a seeded shuffle);
//! - timers are ordered by deadline, then by registration;
//! - only when no task is ready does the clock jump, exactly to the
//!   earliest deadline; a dropped sleep unregisters its timer;
//! - nothing ready and no timer pending while the main future waits is a
//!   [`MockError::Deadlock`] naming the live tasks, never a hang;
//! - the runtime's random generator is seeded (0 unless you choose), so a
//!   run with jitter replays exactly.
//!
//! ## Run to completion: `block_on`
//!
//! [`MockRuntime::block_on`] runs a future, and every task it spawns, to
//! completion, advancing virtual time whenever everything is idle. Here
//! the code under test polls a flag every 200 ms for at most 2 s:
//!
//! ```
//! use machina_core::rt::{MissedTick, Runtime};
//! use machina_core::testing::MockRuntime;
//! use std::sync::Arc;
//! use std::sync::atomic::{AtomicBool, Ordering};
//! use std::time::Duration;
//!
//! /// Checks `ready` every 200 ms, for at most 2 s; how long it took.
//! async fn wait_ready(rt: &Runtime, ready: &AtomicBool) -> Option<Duration> {
//!     let start = rt.now();
//!     let mut ticks = rt.interval(Duration::from_millis(200), MissedTick::Skip).ok()?;
//!     let poll = async {
//!         loop {
//!             ticks.tick().await;
//!             if ready.load(Ordering::SeqCst) {
//!                 return rt.now() - start;
//!             }
//!         }
//!     };
//!     rt.timeout(Duration::from_secs(2), poll).await.ok()
//! }
//!
//! let ms = Duration::from_millis;
//! let mock = MockRuntime::new();
//! let rt = mock.runtime();
//! let ready = Arc::new(AtomicBool::new(false));
//! // Something else becomes ready at 500 ms.
//! rt.spawn({
//!     let (rt, ready) = (rt.clone(), ready.clone());
//!     async move {
//!         rt.sleep(ms(500)).await;
//!         ready.store(true, Ordering::SeqCst);
//!     }
//! })?
//! .detach();
//! assert_eq!(mock.block_on(wait_ready(&rt, &ready))?, Some(ms(600)));
//! assert_eq!(mock.elapsed(), ms(600));
//!
//! // Never ready: the timeout ends the wait at exactly 2 s.
//! let mock = MockRuntime::new();
//! let never = AtomicBool::new(false);
//! assert_eq!(mock.block_on(wait_ready(&mock.runtime(), &never))?, None);
//! assert_eq!(mock.elapsed(), ms(2000));
//! # Ok::<(), machina_core::BoxError>(())
//! ```
//!
//! ## Step by step: `advance` and `run_until_stalled`
//!
//! To look at the system *between* instants, drive the clock from outside:
//! [`MockRuntime::run_until_stalled`] runs every ready task without moving
//! the clock, and [`MockRuntime::advance`] moves it forward, stopping at
//! every deadline on the way and running the tasks due there. A caller
//! waiting for a start window opens exactly when the window does:
//!
//! ```
//! use machina_core::limit::{ConcurrentGroup, Limits};
//! use machina_core::testing::MockRuntime;
//! use std::sync::Arc;
//! use std::sync::atomic::{AtomicBool, Ordering};
//! use std::time::Duration;
//!
//! let ms = Duration::from_millis;
//! let mock = MockRuntime::new();
//! let rt = mock.runtime();
//! let group = ConcurrentGroup::new(&rt, "api", Limits::new().max_starts(1, ms(1000)))?;
//! // The one start of this second: the slot comes back when the permit is
//! // dropped, the start token one window after the start.
//! let first = group.try_acquire()?;
//! drop(first);
//!
//! let started = Arc::new(AtomicBool::new(false));
//! rt.spawn_named("second", {
//!     let (group, started) = (group.clone(), started.clone());
//!     async move {
//!         let _permit = group.acquire().await;
//!         started.store(true, Ordering::SeqCst);
//!     }
//! })?
//! .detach();
//!
//! mock.run_until_stalled()?;
//! assert_eq!(group.waiting(), 1, "queued, not started");
//! assert_eq!(mock.live_tasks().len(), 1, "the task named second waits");
//! mock.advance(ms(999))?;
//! assert!(!started.load(Ordering::SeqCst));
//! mock.advance(ms(1))?;
//! assert!(started.load(Ordering::SeqCst));
//! assert_eq!(mock.elapsed(), ms(1000));
//! assert!(mock.live_tasks().is_empty());
//! # Ok::<(), machina_core::BoxError>(())
//! ```
//!
//! ## When nothing can happen: deadlocks and runaway loops
//!
//! A test that would hang on a real runtime fails on the mock one, and says
//! why. Waiting for something no task will ever send is a deadlock; a
//! loop that never ends meets the time limit of
//! [`MockRuntimeBuilder::time_limit`]:
//!
//! ```
//! use machina_core::testing::{MockError, MockRuntime};
//! use std::time::Duration;
//!
//! let mock = MockRuntime::new();
//! let rt = mock.runtime();
//! let (tx, rx) = futures::channel::oneshot::channel::<u32>();
//! let waiter = rt.spawn_named("waiter", async move { rx.await })?;
//! match mock.block_on(waiter) {
//!     // Named tasks are listed with their task id: "waiter#1".
//!     Err(MockError::Deadlock { live_tasks, .. }) => assert!(live_tasks[0].starts_with("waiter#")),
//!     other => panic!("expected a deadlock, got {other:?}"),
//! }
//! drop(tx);
//!
//! let mock = MockRuntime::builder().time_limit(Duration::from_secs(60)).build();
//! let rt = mock.runtime();
//! let runaway = mock.block_on(async move {
//!     loop {
//!         rt.sleep(Duration::from_secs(1)).await;
//!     }
//! });
//! assert!(matches!(runaway, Err(MockError::TimeLimit { .. })));
//! assert_eq!(mock.elapsed(), Duration::from_secs(60));
//! # Ok::<(), machina_core::BoxError>(())
//! ```
//!
//! ## Seeds: the same "random" run every time
//!
//! Jitter, random-range waits and the breaker's recovery ramp draw from
//! [`Runtime::rng`]. [`MockRuntime::with_seed`] seeds it (and shuffles the
//! order of ready tasks, to shake out order bugs), so a failing seed can be
//! replayed:
//!
//! ```
//! use machina_core::retry::{Retry, Rule};
//! use machina_core::testing::MockRuntime;
//! use std::time::Duration;
//!
//! /// How long three random waits of 100 ms to 1 s took, on seed `seed`.
//! fn jittered(seed: u64) -> Duration {
//!     let ms = Duration::from_millis;
//!     let mock = MockRuntime::with_seed(seed);
//!     let rt = mock.runtime();
//!     let retry = Retry::new().rule(Rule::random_range(ms(100), ms(1000)).retries(3));
//!     let failed = mock
//!         .block_on(retry.call(&rt, || async { Err::<(), _>(std::io::Error::other("down")) }))
//!         .unwrap();
//!     assert_eq!(failed.unwrap_err().attempts(), 4);
//!     mock.elapsed()
//! }
//! assert_eq!(jittered(7), jittered(7));
//! assert_ne!(jittered(7), jittered(8));
//! let ms = Duration::from_millis;
//! assert!((ms(300)..=ms(3000)).contains(&jittered(7)));
//! ```
//!
//! ## Calendar time
//!
//! [`Runtime::calendar_now`] is what cron schedules read. On the mock
//! runtime it is virtual too: it starts at 2026-01-01T00:00:00Z, or at the
//! date a test chooses with [`MockRuntimeBuilder::start_time`], and moves
//! with the virtual clock:
//!
//! ```
//! use machina_core::testing::MockRuntime;
//! use std::time::{Duration, UNIX_EPOCH};
//!
//! // 2024-02-28T23:00:00Z: the hour before a leap day.
//! let start = UNIX_EPOCH + Duration::from_secs(1_709_161_200);
//! let mock = MockRuntime::builder().start_time(start).build();
//! let rt = mock.runtime();
//! assert_eq!(rt.calendar_now(), start);
//! mock.advance(Duration::from_secs(3600))?;
//! assert_eq!(rt.calendar_now(), start + Duration::from_secs(3600));
//! # Ok::<(), machina_core::BoxError>(())
//! ```
//!
//! ## One body, every runtime
//!
//! Virtual time proves the exact behaviour; a real executor proves the
//! code does not depend on the mock's single thread. Write the behaviour
//! once, as a function of a [`Runtime`], and run it on both: exact
//! instants on the mock runtime, "at least this long" on a real one. The
//! real runtime below is a toy executor (a thread per task) on the real
//! clock ([`SystemTimer`]); an adapter's `runtime()` plugs in the same way.
//!
//! ```
//! use machina_core::retry::{Retry, Rule};
//! use machina_core::rt::{BlockingFn, BoxFuture, Runtime, Spawn, SpawnError, SystemTimer};
//! use machina_core::testing::MockRuntime;
//! use std::sync::Arc;
//! use std::time::Duration;
//!
//! /// The behaviour under test: a task that tries three times, 20 ms apart.
//! async fn three_tries(rt: Runtime) -> (u32, Duration) {
//!     let start = rt.now();
//!     let task = rt.spawn({
//!         let rt = rt.clone();
//!         async move {
//!             let retry = Retry::new().rule(Rule::fixed(Duration::from_millis(20)).retries(2));
//!             let down = || async { Err::<(), _>(std::io::Error::other("down")) };
//!             retry.call(&rt, down).await.unwrap_err().attempts()
//!         }
//!     });
//!     let attempts = task.unwrap().await.unwrap();
//!     (attempts, rt.now() - start)
//! }
//!
//! // Virtual time: exact.
//! let mock = MockRuntime::new();
//! assert_eq!(mock.block_on(three_tries(mock.runtime()))?, (3, Duration::from_millis(40)));
//!
//! // Real time, real threads: the same outcome, and at least as long.
//! struct ThreadPerTask;
//! impl Spawn for ThreadPerTask {
//!     fn spawn_detached(&self, task: BoxFuture) -> Result<(), SpawnError> {
//!         std::thread::spawn(move || futures::executor::block_on(task));
//!         Ok(())
//!     }
//!     fn spawn_blocking(&self, f: BlockingFn) -> Result<(), SpawnError> {
//!         std::thread::spawn(f);
//!         Ok(())
//!     }
//! }
//! let real = Runtime::new("threads", Arc::new(ThreadPerTask), Arc::new(SystemTimer::new()));
//! let (attempts, took) = futures::executor::block_on(three_tries(real));
//! assert_eq!(attempts, 3);
//! assert!(took >= Duration::from_millis(40));
//! # Ok::<(), machina_core::BoxError>(())
//! ```
//!
//! The crate `machina-test` packages this for an application's tests (as a
//! dev-dependency), and Machina's own behaviour suite uses it:
//! `cross_runtime!` turns one `async fn name(rt: Runtime, env: Env)` body
//! into a module of tests, one per runtime — `mock`, `tokio_mt`,
//! `tokio_ct`, `smol` and `async_std`, so `cargo test smol` runs one
//! runtime's share — and `env.assert_elapsed(actual, expected)` is exact on
//! the mock runtime and "at least, and less than 5 s more" on a real one.
//! `real_runtimes!` leaves the mock runtime out, for bodies that wait on
//! real threads; `MockStack` starts a service stack on virtual time.
//!
//! ## Where this comes from
//!
//! The Python originals run on asyncio, whose standard library has no
//! virtual clock: their tests sleep in real time or patch the loop's
//! clock. The closest relative in Rust is tokio's paused clock
//! (`#[tokio::test(start_paused = true)]`); `machina-tokio`'s timer is
//! `tokio::time`, so such tests drive Machina's timers as well. The mock
//! runtime goes further: it needs no executor at all, fails a deadlock
//! instead of hanging, and replays a seed exactly.
//!
//! [`Runtime`]: crate::rt::Runtime
//! [`Runtime::rng`]: crate::rt::Runtime::rng
//! [`Runtime::calendar_now`]: crate::rt::Runtime::calendar_now
//! [`SystemTimer`]: crate::rt::SystemTimer
//! [`MockRuntime`]: crate::testing::MockRuntime
//! [`MockRuntime::block_on`]: crate::testing::MockRuntime::block_on
//! [`MockRuntime::run_until_stalled`]: crate::testing::MockRuntime::run_until_stalled
//! [`MockRuntime::advance`]: crate::testing::MockRuntime::advance
//! [`MockRuntime::with_seed`]: crate::testing::MockRuntime::with_seed
//! [`MockRuntimeBuilder::time_limit`]: crate::testing::MockRuntimeBuilder::time_limit
//! [`MockRuntimeBuilder::start_time`]: crate::testing::MockRuntimeBuilder::start_time
//! [`MockError::Deadlock`]: crate::testing::MockError::Deadlock
