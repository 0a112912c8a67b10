//! # Chapter 1: your first bot
//!
//! A bot is a set of named parts registered on a [`MachinaBuilder`]:
//!
//! - a **concurrent group** is a set of [`Limits`]: how many calls may run
//!   at once (`max_in_flight`) and how many may *start* in any sliding
//!   window (`max_starts`);
//! - an **execute** is a one-shot async handler, a `Fn(A) -> impl
//!   Future<Output = Result<T, E>>`, run inside its groups and under its
//!   retry rules; registering one returns a typed [`Execute<A, T>`]
//!   handle;
//! - an **emit** is a periodic body (a [`Loop`]) that receives an
//!   [`Event`]: which run this is, how many remain, and the rest of the
//!   bot by name. Emits drive executes.
//!
//! Names are checked as they are registered (a duplicate name, an unknown
//! group or a malformed interval is an error before anything runs);
//! [`MachinaBuilder::build`] fixes what is registered, and
//! [`Machina::run`] starts every emit and returns once every emit has
//! ended and every execute the bot spawned has finished.
//!
//! ## The whole bot
//!
//! One group, one execute whose first attempt of every call fails with an
//! HTTP 503 and is retried after 100 ms, one emit every second, three
//! times:
//!
//! ```
//! use machina_core::bot::{Event, ExecuteError, Machina};
//! use machina_core::limit::Limits;
//! use machina_core::retry::{Retry, Rule};
//! use machina_core::testing::MockRuntime;
//! use std::sync::{Arc, Mutex};
//! use std::time::Duration;
//!
//! /// What the remote API answers when it is unhappy.
//! #[derive(Debug)]
//! struct HttpError {
//!     status: u16,
//! }
//! impl std::fmt::Display for HttpError {
//!     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
//!         write!(f, "HTTP {}", self.status)
//!     }
//! }
//! impl std::error::Error for HttpError {}
//!
//! let ms = Duration::from_millis;
//! let mock = MockRuntime::new();
//! let rt = mock.runtime();
//! let t0 = rt.now();
//! // When each attempt started, in ms of virtual time.
//! let attempts: Arc<Mutex<Vec<u128>>> = Arc::default();
//!
//! let mut bot = Machina::builder(&rt);
//! // At most 4 calls at once, at most 3 starts in any second.
//! bot.group("api", Limits::new().max_in_flight(4).max_starts(3, ms(1000)))?;
//!
//! let fetch = bot
//!     .execute("fetch", {
//!         let (rt, attempts) = (rt.clone(), attempts.clone());
//!         move |id: u32| {
//!             let (rt, attempts) = (rt.clone(), attempts.clone());
//!             async move {
//!                 let mut attempts = attempts.lock().unwrap();
//!                 attempts.push((rt.now() - t0).as_millis());
//!                 // Odd attempts fail: the first attempt of every call.
//!                 if attempts.len() % 2 == 1 {
//!                     return Err(HttpError { status: 503 });
//!                 }
//!                 Ok(id * 10)
//!             }
//!         }
//!     })
//!     .groups(["api"])
//!     .retry(Retry::new().rule(
//!         Rule::fixed(ms(100)).when_is(|e: &HttpError| e.status >= 500).retries(3),
//!     ))
//!     .register()?;
//!
//! let values: Arc<Mutex<Vec<u32>>> = Arc::default();
//! bot.emit("poll", "1s")?.count(3).register({
//!     let values = values.clone();
//!     move |event: Event| {
//!         let (fetch, values) = (fetch.clone(), values.clone());
//!         async move {
//!             // A typed call, in the emit's own task.
//!             let value = fetch.call(event.epoch() as u32).await?;
//!             values.lock().unwrap().push(value);
//!             Ok::<(), ExecuteError>(())
//!         }
//!     }
//! })?;
//!
//! let bot = bot.build();
//! let report = mock.block_on(bot.run())??;
//! assert_eq!(*values.lock().unwrap(), [10, 20, 30]);
//! assert_eq!(*attempts.lock().unwrap(), [0, 100, 1100, 1200, 2200, 2300]);
//! // One run of the emit (start to end), of three iterations.
//! assert_eq!(report.stats.emit_runs, 1);
//! assert_eq!(bot.emit("poll")?.loop_handle().stats().iterations, 3);
//! assert_eq!(mock.elapsed(), ms(2300));
//! # Ok::<(), machina_core::BoxError>(())
//! ```
//!
//! Reading the instants:
//!
//! - `"1s"` means [`Schedule::After`]: the first run starts at once, each
//!   next one a second after the previous body *ended* — at 0, 1.1 s and
//!   2.2 s here, because each body waits 100 ms for its retry. For runs on
//!   a fixed grid, pass `Schedule::fixed_rate("1s", MissedTick::Skip)?`
//!   instead of `"1s"`.
//! - [`Execute::call`] runs in the caller's task: the emit's body waits for
//!   the whole call, retries included. Each attempt is a new start in the
//!   group, and the 100 ms wait between attempts holds no slot.
//! - The rule matches by type *and* predicate (`when_is`): a 404 would not
//!   be retried. A rule states how many retries it grants (`retries(3)`);
//!   unlimited retries must be asked for with `unlimited()`.
//! - The body returns `Result<(), ExecuteError>`: an `Err` ends the emit
//!   and [`Machina::run`] returns [`BotError::EmitsFailed`]. (An error
//!   whose `source()` chain holds a `std::io::Error` is different: the
//!   emit's loop treats it as a connection error and runs the iteration
//!   again after a backoff; see [`Loop`].)
//!
//! ## Calls by name, and the group at work
//!
//! An emit can run executes by name as tasks of the bot with
//! [`Event::execute`]; the bot's run waits for them, and a shutdown
//! accounts for them. Here one run starts four 100 ms calls at once, in a
//! group of 2 in flight and 3 starts per second:
//!
//! ```
//! use machina_core::bot::{BotError, Event, Machina};
//! use machina_core::limit::Limits;
//! use machina_core::testing::MockRuntime;
//! use machina_core::BoxError;
//! use std::sync::{Arc, Mutex};
//! use std::time::Duration;
//!
//! let ms = Duration::from_millis;
//! let mock = MockRuntime::new();
//! let rt = mock.runtime();
//! let t0 = rt.now();
//! let starts: Arc<Mutex<Vec<u128>>> = Arc::default();
//!
//! let mut bot = Machina::builder(&rt);
//! bot.group("api", Limits::new().max_in_flight(2).max_starts(3, ms(1000)))?;
//! bot.execute("slow", {
//!     let (rt, starts) = (rt.clone(), starts.clone());
//!     move |n: u32| {
//!         let (rt, starts) = (rt.clone(), starts.clone());
//!         async move {
//!             starts.lock().unwrap().push((rt.now() - t0).as_millis());
//!             rt.sleep(ms(100)).await;
//!             Ok::<_, BoxError>(n)
//!         }
//!     }
//! })
//! .groups(["api"])
//! .register()?;
//!
//! bot.emit("burst", "1s")?.count(1).register(|event: Event| async move {
//!     let tasks = (1..=4)
//!         .map(|n| event.execute::<u32, u32>("slow", n))
//!         .collect::<Result<Vec<_>, _>>()?;
//!     let mut sum = 0;
//!     for task in tasks {
//!         sum += task.await?;
//!     }
//!     assert_eq!(sum, 1 + 2 + 3 + 4);
//!     // The types of a call by name are checked against the registration.
//!     let wrong = event.execute::<String, u32>("slow", "1".to_owned());
//!     assert!(matches!(wrong, Err(BotError::TypeMismatch { .. })));
//!     Ok::<(), BoxError>(())
//! })?;
//!
//! let bot = bot.build();
//! let report = mock.block_on(bot.run())??;
//! // Two start at once (2 in flight); the third when they end; the fourth
//! // when the first start leaves the one-second window.
//! assert_eq!(*starts.lock().unwrap(), [0, 0, 100, 1000]);
//! assert_eq!(report.stats.executes_ok, 4);
//! assert_eq!(mock.elapsed(), ms(1100));
//! # Ok::<(), machina_core::BoxError>(())
//! ```
//!
//! [`RunStats::executes_ok`](crate::bot::RunStats::executes_ok) and its
//! siblings count the executes the bot *spawned* (by name, or with
//! [`Execute::spawn`]); a direct [`Execute::call`] is part of its caller
//! and is not counted there.
//!
//! ## Stopping, starting later, hooks
//!
//! - [`Machina::shutdown`] stops every emit gracefully, waits up to a grace
//!   period for them and for the executes in flight, cancels the rest and
//!   returns a [`ShutdownReport`](crate::bot::ShutdownReport) naming each;
//!   a [`run`](crate::bot::Machina::run) in progress then returns.
//! - An emit registered with `.alive(false)` does not start with the bot;
//!   another emit starts it with [`Event::start`] (see
//!   [`MachinaBuilder::emit`]).
//! - [`MachinaBuilder::on_startup`] and [`MachinaBuilder::on_shutdown`] run
//!   around the emits; a failing startup hook stops the run before any
//!   emit starts.
//!
//! What a failed call's error says — which layer stopped it, after how
//! many attempts, and why — is in the [resilience chapter](super::resilience).
//!
//! ## From exmachina
//!
//! | exmachina | Machina |
//! | --- | --- |
//! | `bot = Machina()` | `let mut bot = Machina::builder(&rt);` … `bot.build()` |
//! | `bot.create_concurrent_group(name='limit', entire_calls_limit=4, time_calls_limit=3, time_limit=1)` | `bot.group("limit", Limits::new().max_in_flight(4).max_starts(3, Duration::from_secs(1)))?` |
//! | `@bot.execute(concurrent_groups=['limit'], retry=retry)` | `bot.execute("name", handler).groups(["limit"]).retry(retry).register()?` |
//! | `@bot.emit(interval='1s', count=3, alive=True)` | `bot.emit("name", "1s")?.count(3).alive(true).register(body)?` |
//! | `await event.execute('name', *args)` | `event.execute::<A, T>("name", args)?.await?` |
//! | `await execute()` (direct) | `handle.call(args).await?` |
//! | `event.start('name')`, `event.stop('name')` | `event.start("name")?`, `event.stop("name")?` |
//! | `event.epoch`, `event.previous_execution_time`, `event.count` | `event.epoch()`, `event.previous_execution_time()`, `event.remaining()` |
//! | `Retry([RetryFixed(HTTPError, wait_time=1, retries=5)])` | `Retry::new().rule(Rule::fixed(Duration::from_secs(1)).on::<HttpError>().retries(5))` |
//! | `filter=lambda e: e.status >= 500` | `.when_is(\|e: &HttpError\| e.status >= 500)` |
//!
//! Where it differs: an interval has no default (exmachina's is `0s`); a
//! retry rule without `retries` is refused at compile time rather than
//! retrying until the stack overflows; arguments are one value of type `A`
//! (use a tuple or a struct for several); `event.execute` checks the
//! argument and result types at run time and says which it expected; and
//! an execute's retries, groups, breaker and timeouts are one
//! [call stack](crate::call), the same one every other call in Machina
//! runs through.
//!
//! [`MachinaBuilder`]: crate::bot::MachinaBuilder
//! [`MachinaBuilder::build`]: crate::bot::MachinaBuilder::build
//! [`MachinaBuilder::emit`]: crate::bot::MachinaBuilder::emit
//! [`MachinaBuilder::on_startup`]: crate::bot::MachinaBuilder::on_startup
//! [`MachinaBuilder::on_shutdown`]: crate::bot::MachinaBuilder::on_shutdown
//! [`Machina::run`]: crate::bot::Machina::run
//! [`Machina::shutdown`]: crate::bot::Machina::shutdown
//! [`Machina`]: crate::bot::Machina
//! [`Limits`]: crate::limit::Limits
//! [`Execute<A, T>`]: crate::bot::Execute
//! [`Execute::call`]: crate::bot::Execute::call
//! [`Execute::spawn`]: crate::bot::Execute::spawn
//! [`Event`]: crate::bot::Event
//! [`Event::execute`]: crate::bot::Event::execute
//! [`Event::start`]: crate::bot::Event::start
//! [`Loop`]: crate::loops::Loop
//! [`Schedule::After`]: crate::schedule::Schedule::After
//! [`BotError::EmitsFailed`]: crate::bot::BotError::EmitsFailed
