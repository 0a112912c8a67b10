//! # Chapter 3: services and the entrypoint
//!
//! A long-running program is a few **services** (a database pool, a cache,
//! an HTTP server, a bot) that must start in order, run, and stop in the
//! reverse order — and a main future that does the program's work.
//!
//! - A [`Service`] has a `start` and a `stop`. `start` returning `Ok` means
//!   the service is ready; a service that must keep running after it is
//!   ready calls [`ServiceContext::ready`] and goes on. `stop` is told why
//!   it is stopping in its [`StopContext`].
//! - A [`Supervisor`] holds a graph of named services: each starts once its
//!   dependencies are ready, services with no dependency between them start
//!   at the same time, and everything stops dependents first, again in
//!   parallel where the graph allows. A failed start is rolled back.
//! - An [`Entrypoint`] runs a supervisor around the main future, with
//!   hooks, shutdown requests (signals), a shutdown timeout and an exit
//!   code.
//!
//! ## A stack with dependencies
//!
//! `db` and `cache` take 100 ms to start, `api` needs both and takes
//! 50 ms; stops take 40, 40 and 30 ms:
//!
//! ```
//! use machina_core::service::{Service, ServiceContext, ServiceFuture, StopContext, Supervisor};
//! use machina_core::testing::MockRuntime;
//! use std::sync::{Arc, Mutex};
//! use std::time::{Duration, Instant};
//!
//! type Log = Arc<Mutex<Vec<String>>>;
//!
//! /// Takes `start` to start and `stop` to stop, and logs when each ended.
//! struct Step {
//!     start: Duration,
//!     stop: Duration,
//!     t0: Instant,
//!     log: Log,
//! }
//!
//! impl Service for Step {
//!     fn start(self: Arc<Self>, ctx: ServiceContext) -> ServiceFuture {
//!         Box::pin(async move {
//!             ctx.runtime().sleep(self.start).await;
//!             let at = (ctx.runtime().now() - self.t0).as_millis();
//!             self.log.lock().unwrap().push(format!("{} ready at {at}", ctx.name()));
//!             Ok(())
//!         })
//!     }
//!
//!     fn stop(self: Arc<Self>, ctx: StopContext) -> ServiceFuture {
//!         Box::pin(async move {
//!             ctx.runtime().sleep(self.stop).await;
//!             let at = (ctx.runtime().now() - self.t0).as_millis();
//!             let line = format!("{} stopped at {at}: {:?}", ctx.name(), ctx.reason());
//!             self.log.lock().unwrap().push(line);
//!             Ok(())
//!         })
//!     }
//! }
//!
//! let mock = MockRuntime::new();
//! let rt = mock.runtime();
//! let log = Log::default();
//! let t0 = rt.now();
//! let step = |start, stop| Step {
//!     start: Duration::from_millis(start),
//!     stop: Duration::from_millis(stop),
//!     t0,
//!     log: log.clone(),
//! };
//!
//! let stack = Supervisor::builder(&rt)
//!     .service("db", step(100, 40), &[])
//!     .service("cache", step(100, 40), &[])
//!     .service("api", step(50, 30), &["db", "cache"])
//!     .build()?;
//! let plan = stack.plan();
//! assert_eq!(plan.start_stages(), [vec!["db", "cache"], vec!["api"]]);
//! assert_eq!(plan.stop_stages(), [vec!["api"], vec!["db", "cache"]]);
//! mock.block_on(async {
//!     stack.start().await?;
//!     assert_eq!(stack.running_services(), ["db", "cache", "api"]);
//!     let report = stack.stop().await;
//!     assert!(report.is_clean());
//!     assert_eq!(report.stopped[0], "api");
//!     Ok::<(), machina_core::BoxError>(())
//! })??;
//! let log = log.lock().unwrap();
//! assert_eq!(log[..4], [
//!     "db ready at 100",
//!     "cache ready at 100",
//!     "api ready at 150",
//!     "api stopped at 180: Shutdown",
//! ]);
//! // db and cache stop together, in no promised order.
//! let mut last = log[4..].to_vec();
//! last.sort();
//! assert_eq!(last, ["cache stopped at 220: Shutdown", "db stopped at 220: Shutdown"]);
//! # Ok::<(), machina_core::BoxError>(())
//! ```
//!
//! The start takes 150 ms, not 250: `db` and `cache` start together. The
//! stop takes 70 ms, not 110: `api` first (it uses the others), then `db`
//! and `cache` together. [`SupervisorBuilder::build`] checks the graph
//! first: a duplicate name, an unknown dependency or a cycle is a
//! [`GraphError`] before anything starts. The checked graph is a
//! [`StackPlan`]: its start and stop stages are the orders above. (A stage
//! is a grouping, not a barrier: each service starts as soon as its own
//! dependencies are ready, and stops as soon as its own dependents have
//! stopped.)
//!
//! facet's nested lists say the same with stages: each inner list starts
//! in parallel, after the whole previous list —
//!
//! ```
//! # use machina_core::service::{Service, ServiceContext, ServiceFuture};
//! # struct Step;
//! # impl Service for Step {
//! #     fn start(self: Arc<Self>, ctx: ServiceContext) -> ServiceFuture {
//! #         Box::pin(async move { ctx.runtime().sleep(Duration::from_millis(100)).await; Ok(()) })
//! #     }
//! # }
//! use machina_core::service::Supervisor;
//! use machina_core::testing::MockRuntime;
//! use std::sync::Arc;
//! use std::time::Duration;
//!
//! let mock = MockRuntime::new();
//! let stack = Supervisor::builder(&mock.runtime())
//!     .stages(vec![
//!         vec![("db", Arc::new(Step) as Arc<dyn Service>), ("cache", Arc::new(Step))],
//!         vec![("api", Arc::new(Step))],
//!     ])
//!     .build()?;
//! mock.block_on(stack.start())??;
//! assert_eq!(stack.running_services(), ["db", "cache", "api"]);
//! assert_eq!(mock.elapsed(), Duration::from_millis(200)); // two stages of 100 ms
//! # Ok::<(), machina_core::BoxError>(())
//! ```
//!
//! ## Running on, and background tasks
//!
//! A service whose work *is* its start (a server loop, a consumer) says it
//! is ready with [`ServiceContext::ready`] and goes on; the rest of its
//! `start` runs in the background and is cancelled when it stops. Work
//! beside it goes in [`ServiceContext::spawn`]: if such a task fails (an
//! error or a panic), [`Supervisor::failure`] says which service and why,
//! and the program usually stops the stack then. ([`ServiceContext::spawn_restarting`]
//! runs a task again after a backoff instead, up to a number of times.)
//!
//! ```
//! use machina_core::service::{Service, ServiceContext, ServiceFuture, StopReason, Supervisor};
//! use machina_core::testing::MockRuntime;
//! use std::sync::Arc;
//! use std::sync::atomic::{AtomicU32, Ordering};
//! use std::time::Duration;
//!
//! struct Heartbeat(Arc<AtomicU32>);
//! impl Service for Heartbeat {
//!     fn start(self: Arc<Self>, ctx: ServiceContext) -> ServiceFuture {
//!         Box::pin(async move {
//!             ctx.ready();
//!             loop {
//!                 ctx.runtime().sleep(Duration::from_secs(1)).await;
//!                 self.0.fetch_add(1, Ordering::SeqCst);
//!             }
//!         })
//!     }
//! }
//!
//! struct Worker;
//! impl Service for Worker {
//!     fn start(self: Arc<Self>, ctx: ServiceContext) -> ServiceFuture {
//!         let rt = ctx.runtime().clone();
//!         ctx.spawn(async move {
//!             rt.sleep(Duration::from_millis(3500)).await;
//!             Err("lost the connection".into())
//!         });
//!         Box::pin(async { Ok(()) })
//!     }
//! }
//!
//! let mock = MockRuntime::new();
//! let beats = Arc::new(AtomicU32::new(0));
//! let stack = Supervisor::builder(&mock.runtime())
//!     .service("heartbeat", Heartbeat(beats.clone()), &[])
//!     .service("worker", Worker, &[])
//!     .build()?;
//! mock.block_on(async {
//!     stack.start().await?;
//!     let (service, error) = stack.failure().await.expect("a failure");
//!     assert_eq!((service.as_str(), error.to_string().as_str()), ("worker", "lost the connection"));
//!     let report = stack.stop_because(StopReason::TaskFailed { service }).await;
//!     assert_eq!(report.stopped.len(), 2);
//!     Ok::<(), machina_core::BoxError>(())
//! })??;
//! assert_eq!(mock.elapsed(), Duration::from_millis(3500));
//! assert_eq!(beats.load(Ordering::SeqCst), 3);
//! assert!(mock.live_tasks().is_empty(), "the heartbeat's loop was cancelled");
//! # Ok::<(), machina_core::BoxError>(())
//! ```
//!
//! Services share values through the supervisor's
//! [`Context`](crate::service::Context) under typed keys; a reader can wait
//! until a value is set. Periodic work that is a service of its own is a
//! [`PeriodicService`](crate::service::PeriodicService) (an interval or a
//! cron pattern) or a [`RecurringService`](crate::service::RecurringService).
//!
//! ## The entrypoint
//!
//! [`Entrypoint::run`] is the whole life of a program: the `pre_start`
//! hooks, the start, the `post_start` hooks, the main future, and — when
//! main ends, a shutdown request comes or a background task fails — the
//! `pre_stop` hooks, the stops and the `post_stop` hooks, all of the
//! shutdown within the shutdown timeout. It returns an [`Outcome`]: main's
//! value, what stopping reported, what brought the program down, and the
//! process exit code. An adapter's `entrypoint()` gives you a builder
//! whose shutdown requests are the OS signals (see the
//! [adapters chapter](super::adapters)); on the mock runtime there are
//! none unless a test supplies them.
//!
//! ```
//! # use machina_core::service::{Service, ServiceContext, ServiceFuture, StopContext};
//! # use std::sync::{Arc, Mutex};
//! # use std::time::{Duration, Instant};
//! # type Log = Arc<Mutex<Vec<String>>>;
//! # struct Step { start: Duration, stop: Duration, t0: Instant, log: Log }
//! # impl Service for Step {
//! #     fn start(self: Arc<Self>, ctx: ServiceContext) -> ServiceFuture {
//! #         Box::pin(async move {
//! #             ctx.runtime().sleep(self.start).await;
//! #             let at = (ctx.runtime().now() - self.t0).as_millis();
//! #             self.log.lock().unwrap().push(format!("{} ready at {at}", ctx.name()));
//! #             Ok(())
//! #         })
//! #     }
//! #     fn stop(self: Arc<Self>, ctx: StopContext) -> ServiceFuture {
//! #         Box::pin(async move {
//! #             ctx.runtime().sleep(self.stop).await;
//! #             let at = (ctx.runtime().now() - self.t0).as_millis();
//! #             let line = format!("{} stopped at {at}: {:?}", ctx.name(), ctx.reason());
//! #             self.log.lock().unwrap().push(line);
//! #             Ok(())
//! #         })
//! #     }
//! # }
//! use machina_core::service::{Entrypoint, HookContext};
//! use machina_core::testing::MockRuntime;
//!
//! let mock = MockRuntime::new();
//! let rt = mock.runtime();
//! let log = Log::default();
//! let t0 = rt.now();
//! let step = |start, stop| Step {
//!     start: Duration::from_millis(start),
//!     stop: Duration::from_millis(stop),
//!     t0,
//!     log: log.clone(),
//! };
//! // A hook that logs its name and the services it is about.
//! let hook = |name: &'static str| {
//!     let log = log.clone();
//!     move |hook: HookContext| {
//!         let line = format!("{name} {:?}", hook.services());
//!         log.lock().unwrap().push(line);
//!         async {}
//!     }
//! };
//!
//! let entrypoint = Entrypoint::builder(&rt)
//!     .service("db", step(100, 40), &[])
//!     .service("api", step(50, 30), &["db"])
//!     .pre_start(hook("pre_start"))
//!     .post_start(hook("post_start"))
//!     .pre_stop(hook("pre_stop"))
//!     .post_stop(hook("post_stop"))
//!     .shutdown_timeout(Duration::from_secs(10))
//!     .build()?;
//! let main = async {
//!     rt.sleep(Duration::from_secs(1)).await;
//!     42
//! };
//! let outcome = mock.block_on(entrypoint.run(main))?;
//! assert_eq!((outcome.value, outcome.exit_code), (Some(42), 0));
//! assert_eq!(*log.lock().unwrap(), [
//!     r#"pre_start ["db", "api"]"#,
//!     "db ready at 100",
//!     "api ready at 150",
//!     r#"post_start ["db", "api"]"#,
//!     r#"pre_stop ["db", "api"]"#,
//!     "api stopped at 1180: Shutdown",
//!     "db stopped at 1220: Shutdown",
//!     r#"post_stop ["api", "db"]"#,
//! ]);
//! # Ok::<(), machina_core::BoxError>(())
//! ```
//!
//! ## When it goes wrong: exit codes
//!
//! | exit code | when |
//! | --- | --- |
//! | 0 | a clean stop |
//! | 1 | a start failed (and was rolled back), a background task failed, main panicked, or a service's `stop` failed or ran past its own timeout (its [`Service::graceful_shutdown_timeout`], or the supervisor's 10 s); [`Outcome::failure`] says what brought the program down |
//! | [`FORCED_EXIT_CODE`] (70) | the shutdown timeout ran out before every service stopped, or a second shutdown request came during the shutdown; [`Outcome::not_stopped`] names the services that did not stop, and what they still ran is aborted |
//!
//! After a forced shutdown, end the process with [`Outcome::exit`] rather
//! than by returning from `main`: dropping an async runtime may wait for
//! blocking work that never ends. The shutdown timeout is 30 s unless the
//! builder says otherwise. An adapter's `entrypoint()` also reads the
//! environment, once ([`EnvConfig::from_env`]): there
//! `MACHINA_SHUTDOWN_TIMEOUT` (such as `10s` or `1m30s`) overrides the
//! builder, and [`EntrypointBuilder::build`] refuses a value that does not
//! parse. [`Entrypoint::builder`] alone reads no environment, so the
//! examples here see none.
//!
//! A background task that fails, and a stop that hangs past the shutdown
//! timeout:
//!
//! ```
//! use machina_core::service::{
//!     Entrypoint, FORCED_EXIT_CODE, Service, ServiceContext, ServiceFuture, StopContext,
//! };
//! use machina_core::testing::MockRuntime;
//! use std::sync::Arc;
//! use std::time::Duration;
//!
//! struct Worker;
//! impl Service for Worker {
//!     fn start(self: Arc<Self>, ctx: ServiceContext) -> ServiceFuture {
//!         let rt = ctx.runtime().clone();
//!         ctx.spawn(async move {
//!             rt.sleep(Duration::from_secs(3)).await;
//!             Err("lost the connection".into())
//!         });
//!         Box::pin(async { Ok(()) })
//!     }
//! }
//!
//! let mock = MockRuntime::new();
//! let entrypoint = Entrypoint::builder(&mock.runtime()).service("worker", Worker, &[]).build()?;
//! let outcome = mock.block_on(entrypoint.run_forever())?;
//! assert_eq!(outcome.exit_code, 1);
//! let (service, error) = outcome.failure.expect("what brought it down");
//! assert_eq!((service.as_str(), error.to_string().as_str()), ("worker", "lost the connection"));
//! assert_eq!(mock.elapsed(), Duration::from_secs(3));
//!
//! struct Stuck;
//! impl Service for Stuck {
//!     fn start(self: Arc<Self>, _ctx: ServiceContext) -> ServiceFuture {
//!         Box::pin(async { Ok(()) })
//!     }
//!     fn stop(self: Arc<Self>, ctx: StopContext) -> ServiceFuture {
//!         Box::pin(async move {
//!             ctx.runtime().sleep(Duration::from_secs(3600)).await;
//!             Ok(())
//!         })
//!     }
//! }
//!
//! let mock = MockRuntime::new();
//! let entrypoint = Entrypoint::builder(&mock.runtime())
//!     .service("stuck", Stuck, &[])
//!     .shutdown_timeout(Duration::from_secs(2))
//!     .build()?;
//! let outcome = mock.block_on(entrypoint.run(async {}))?;
//! assert_eq!(outcome.exit_code, FORCED_EXIT_CODE);
//! assert_eq!(outcome.not_stopped, ["stuck"]);
//! assert_eq!(mock.elapsed(), Duration::from_secs(2));
//! # Ok::<(), machina_core::BoxError>(())
//! ```
//!
//! While the program runs, the main future can start and stop single
//! services through [`Entrypoint::services`], with the hooks fired around
//! each change. Without an entrypoint, [`Supervisor::shutdown`] bounds a
//! whole stop by a deadline and an interrupt, as the entrypoint does, and
//! its [`StopReport`](crate::service::StopReport) names what did not stop.
//!
//! ## From facet and aiomisc
//!
//! | Python | Machina |
//! | --- | --- |
//! | facet `class A(AsyncioServiceMixin)` with `async def start` / `stop` | `impl Service for A` |
//! | facet `dependencies` returning `[b, c]` | `.service("a", a, &["b", "c"])` |
//! | facet `[[b, c], d]`: outer list in sequence, inner in parallel | `.stages(vec![vec![b, c], vec![d]])` |
//! | facet `add_task(coro)`: a failure brings the stack down, tasks are cancelled and awaited on stop | `ctx.spawn(fut)` |
//! | facet `graceful_shutdown_timeout` | [`Service::graceful_shutdown_timeout`] |
//! | aiomisc `self.start_event.set()` | `ctx.ready()` |
//! | aiomisc `async def stop(self, exception)` | `fn stop(self: Arc<Self>, ctx: StopContext)`, with `ctx.reason()` |
//! | aiomisc `entrypoint(*services)`, `run(main(), *services)` | `Entrypoint::builder(&rt).service(..).build()?.run(main)`; each adapter's `run(main, services)` |
//! | aiomisc `PRE_START`, `POST_START`, `PRE_STOP`, `POST_STOP` receivers | `.pre_start(hook)`, `.post_start(hook)`, `.pre_stop(hook)`, `.post_stop(hook)` |
//! | aiomisc `shutdown_timeout=` (60 s), `AIOMISC_SHUTDOWN_TIMEOUT` | `.shutdown_timeout(d)` (30 s), `MACHINA_SHUTDOWN_TIMEOUT` (read by an adapter's `entrypoint()`) |
//!
//! Where it differs: services are named and their dependencies are
//! checked as a graph before anything starts; a stop is told a typed
//! [`StopReason`](crate::service::StopReason) instead of an exception; a
//! panic in a start, a stop or a background task is a failure like an
//! error; and every run ends in an [`Outcome`] that says what stopped,
//! what did not and why, rather than an exception on the way out.
//!
//! [`Service`]: crate::service::Service
//! [`Service::graceful_shutdown_timeout`]: crate::service::Service::graceful_shutdown_timeout
//! [`ServiceContext::ready`]: crate::service::ServiceContext::ready
//! [`ServiceContext::spawn`]: crate::service::ServiceContext::spawn
//! [`ServiceContext::spawn_restarting`]: crate::service::ServiceContext::spawn_restarting
//! [`StopContext`]: crate::service::StopContext
//! [`Supervisor`]: crate::service::Supervisor
//! [`Supervisor::failure`]: crate::service::Supervisor::failure
//! [`Supervisor::shutdown`]: crate::service::Supervisor::shutdown
//! [`StackPlan`]: crate::service::StackPlan
//! [`EnvConfig::from_env`]: crate::service::EnvConfig::from_env
//! [`Entrypoint::builder`]: crate::service::Entrypoint::builder
//! [`SupervisorBuilder::build`]: crate::service::SupervisorBuilder::build
//! [`GraphError`]: crate::service::GraphError
//! [`Entrypoint`]: crate::service::Entrypoint
//! [`Entrypoint::run`]: crate::service::Entrypoint::run
//! [`Entrypoint::services`]: crate::service::Entrypoint::services
//! [`EntrypointBuilder::build`]: crate::service::EntrypointBuilder::build
//! [`Outcome`]: crate::service::Outcome
//! [`Outcome::failure`]: crate::service::Outcome::failure
//! [`Outcome::not_stopped`]: crate::service::Outcome::not_stopped
//! [`Outcome::exit`]: crate::service::Outcome::exit
//! [`FORCED_EXIT_CODE`]: crate::service::FORCED_EXIT_CODE
