//! # Chapter 5: resilience recipes
//!
//! Every call that can fail — an execute, a `Retry::call`, a
//! `Backoff::run`, a `CircuitBreaker::call` — runs through one pipeline, a
//! [`CallStack`] of optional layers, and ends with one error type,
//! [`CallError`]. From the outside in:
//!
//! 1. the **deadline** bounds the whole call, waits included;
//! 2. the **retry** rules decide, after each failed attempt, whether to
//!    wait and try again or give up (a [`Retry`], with an optional budget);
//! 3. each attempt takes a slot and a start in every **group**
//!    ([`ConcurrentGroup`] or any [`Limiter`]), all or none, and gives the
//!    slot back when it ends — never held during a retry's wait;
//! 4. the **breaker** admits the attempt or refuses it
//!    ([`CircuitBreaker`]);
//! 5. the **attempt timeout** cuts an attempt that runs too long.
//!
//! The [`call`](crate::call) module has the diagram and the exact rules.
//! Build a stack once, run many calls through it: the layers are shared
//! (a breaker counts every call of the stack), the bookkeeping of one call
//! is its own.
//!
//! ## Recipe: a flaky API behind limits
//!
//! All five layers. The first attempt hangs and is cut at 2 s; the second
//! fails with a 503; the third succeeds. Each failure is charged to the
//! first rule that matches it:
//!
//! ```
//! use machina_core::breaker::CircuitBreaker;
//! use machina_core::call::{AttemptTimedOut, CallStack};
//! use machina_core::limit::{ConcurrentGroup, Limits};
//! use machina_core::retry::{Retry, Rule};
//! use machina_core::testing::MockRuntime;
//! use std::sync::atomic::{AtomicU32, Ordering};
//! use std::time::Duration;
//!
//! #[derive(Debug, thiserror::Error)]
//! #[error("HTTP {status}")]
//! struct HttpError {
//!     status: u16,
//! }
//!
//! let ms = Duration::from_millis;
//! let mock = MockRuntime::new();
//! let rt = mock.runtime();
//! let api = ConcurrentGroup::new(&rt, "api", Limits::new().max_in_flight(4).max_starts(10, ms(1000)))?;
//! let breaker = CircuitBreaker::builder("api").error_ratio(0.5).min_calls(10).build(&rt)?;
//! let retry = Retry::new()
//!     .rule(Rule::fixed(ms(500)).on::<AttemptTimedOut>().retries(2))
//!     .rule(Rule::fixed(ms(500)).when_is(|e: &HttpError| e.status >= 500).retries(2));
//! let stack = CallStack::new()
//!     .group(api.clone())
//!     .breaker(breaker.clone())
//!     .retry(retry.clone())
//!     .timeout(ms(2000))
//!     .deadline(ms(10_000));
//!
//! let attempts = AtomicU32::new(0);
//! let outcome = mock.block_on(stack.run(&rt, || {
//!     let attempt = attempts.fetch_add(1, Ordering::SeqCst);
//!     let (rt, api) = (rt.clone(), api.clone());
//!     async move {
//!         assert_eq!(api.in_flight(), 1, "an attempt holds a slot");
//!         match attempt {
//!             0 => rt.sleep(Duration::from_secs(60)).await, // hangs: cut at 2 s
//!             1 => return Err(HttpError { status: 503 }),
//!             _ => {}
//!         }
//!         Ok("data")
//!     }
//! }))?;
//! assert_eq!(outcome?, "data");
//! // 2 s until the cut, 500 ms, the 503 at once, 500 ms, success.
//! assert_eq!(mock.elapsed(), ms(3000));
//! assert_eq!(api.in_flight(), 0);
//! assert_eq!(retry.stats().retries, 2);
//! assert_eq!(breaker.stats().passing, 3);
//! # Ok::<(), machina_core::BoxError>(())
//! ```
//!
//! The closure makes a fresh future per attempt; it is called only once
//! the attempt holds its slot and the breaker admitted it. A bot's execute
//! takes the same layers by name: `.groups([..])`, `.breaker(..)`,
//! `.retry(..)`, `.timeout(..)`, `.deadline(..)` on its builder.
//!
//! ## What `CallError::kind()` tells you
//!
//! | [`CallErrorKind`] | meaning | `layer()` |
//! | --- | --- | --- |
//! | `Failed { error, attempts, reason }` | the operation ran and failed, and nothing tries it again: `reason` is [`NoRuleMatches`](crate::decision::Reason::NoRuleMatches), [`RetriesExhausted`](crate::decision::Reason::RetriesExhausted), [`BudgetExhausted`](crate::decision::Reason::BudgetExhausted) or [`GiveUpPredicate`](crate::decision::Reason::GiveUpPredicate) | `None` |
//! | `Refused { layer, error, attempts }` | a layer said no and the operation did **not** run; `error` is the layer's own ([`CircuitOpen`], a [`LimiterError`]) with a [`Refusal`] in its chain | the group or breaker, by name |
//! | `TimedOut { limit, attempts, reason }` | the last attempt ran past the attempt timeout | `AttemptTimeout` |
//! | `DeadlineExceeded { deadline, attempts, last }` | the deadline passed, or left no time for another attempt; `last` is how the last finished attempt ended | `Deadline` |
//!
//! [`CallError::operation_error`] is the operation's own error from the
//! last attempt that returned one (through a deadline's `last` too);
//! [`CallError::attempts`] counts attempts; [`CallError::refusal`] says
//! why a layer refused, and until when. `Display` of a failed call is the
//! operation's own message, and the operation's error is the `source()`,
//! so code that matches errors by type through the chain still finds it.
//! A bot's [`ExecuteError`](crate::bot::ExecuteError) wraps the same
//! value: [`call_error`](crate::bot::ExecuteError::call_error).
//!
//! Each kind, from a dependency that is down:
//!
//! ```
//! use machina_core::breaker::{CircuitBreaker, CircuitOpen};
//! use machina_core::call::{CallErrorKind, CallStack, Layer};
//! use machina_core::decision::Reason;
//! use machina_core::retry::{Retry, Rule};
//! use machina_core::testing::MockRuntime;
//! use std::time::Duration;
//!
//! #[derive(Debug, thiserror::Error)]
//! #[error("HTTP {status}")]
//! struct HttpError {
//!     status: u16,
//! }
//!
//! let ms = Duration::from_millis;
//! let mock = MockRuntime::new();
//! let rt = mock.runtime();
//! let down = || async { Err::<(), _>(HttpError { status: 503 }) };
//! let hangs = || async {
//!     rt.sleep(Duration::from_secs(60)).await;
//!     Ok::<(), HttpError>(())
//! };
//!
//! // Failed: two retries granted, then the rule is spent.
//! let stack = CallStack::new().retry(Retry::new().rule(Rule::fixed(ms(100)).retries(2)));
//! let err = mock.block_on(stack.run(&rt, down))?.unwrap_err();
//! assert!(matches!(err.kind(), CallErrorKind::Failed { attempts: 3, reason: Reason::RetriesExhausted, .. }));
//! assert_eq!(err.operation_error().map(|e| e.status), Some(503));
//! assert_eq!((err.layer(), err.to_string()), (None, "HTTP 503".to_owned()));
//!
//! // TimedOut: cut by the attempt timeout, and no rule to retry it.
//! let stack = CallStack::new().timeout(ms(100));
//! let err = mock.block_on(stack.run(&rt, hangs))?.unwrap_err();
//! assert!(matches!(err.kind(), CallErrorKind::TimedOut { attempts: 1, .. }));
//! assert_eq!(err.layer(), Some(Layer::AttemptTimeout));
//!
//! // DeadlineExceeded: retries every second, within 3.5 s. After the
//! // fourth attempt (at 3 s) the next wait would end past the deadline,
//! // so the call ends at once, with the last attempt's error.
//! let before = mock.elapsed();
//! let forever = Retry::new().rule(Rule::fixed(ms(1000)).unlimited());
//! let stack = CallStack::new().retry(forever).deadline(ms(3500));
//! let err = mock.block_on(stack.run(&rt, down))?.unwrap_err();
//! assert!(matches!(err.kind(), CallErrorKind::DeadlineExceeded { attempts: 4, .. }));
//! assert_eq!(err.operation_error().map(|e| e.status), Some(503));
//! assert_eq!(mock.elapsed() - before, ms(3000));
//!
//! // Refused: a tripped breaker does not run the operation at all.
//! let breaker = CircuitBreaker::builder("api").min_calls(2).build(&rt)?;
//! let stack = CallStack::new().breaker(breaker);
//! for _ in 0..2 {
//!     mock.block_on(stack.run(&rt, down))?.unwrap_err();
//! }
//! let ran = std::cell::Cell::new(false);
//! let err = mock
//!     .block_on(stack.run(&rt, || {
//!         ran.set(true);
//!         async { Ok::<(), HttpError>(()) }
//!     }))?
//!     .unwrap_err();
//! assert!(!ran.get());
//! assert_eq!(err.layer(), Some(Layer::Breaker("api".into())));
//! let refusal = err.refusal().expect("a refusal");
//! assert_eq!(refusal.reason, Reason::Broken);
//! assert_eq!(refusal.until, Some(rt.now() + Duration::from_secs(5)));
//! assert!(matches!(err.kind(), CallErrorKind::Refused { error, .. } if error.is::<CircuitOpen>()));
//! # Ok::<(), machina_core::BoxError>(())
//! ```
//!
//! A refusal is never retried by a rule that does not name it: a
//! catch-all rule retries the operation's errors, not a breaker that is
//! open. A rule that names it (`.on::<CircuitOpen>()`) does. Give such a
//! rule waits that reach well into the recovery period: a recovering
//! breaker lets a share of calls through that grows from none at the
//! instant recovery starts (which is what `refusal.until` and
//! [`CircuitOpen::retry_in`](crate::breaker::CircuitOpen::retry_in) point
//! at) to all of them at its end.
//!
//! ## Recipe: retry rules that read the error
//!
//! Rules are tried in order; a failure is charged to the first rule that
//! matches it and has retries left, and the call gives up when none does.
//! A rule can take its wait from the error itself — a `Retry-After`
//! header — capped by `max_wait`:
//!
//! ```
//! use machina_core::call::CallErrorKind;
//! use machina_core::decision::Reason;
//! use machina_core::retry::{Retry, Rule};
//! use machina_core::testing::MockRuntime;
//! use std::collections::VecDeque;
//! use std::sync::Mutex;
//! use std::time::Duration;
//!
//! #[derive(Debug, thiserror::Error)]
//! #[error("HTTP {status}")]
//! struct HttpError {
//!     status: u16,
//!     retry_after: Option<Duration>,
//! }
//! let http = |status, retry_after| Err(HttpError { status, retry_after });
//!
//! let secs = Duration::from_secs;
//! let retry = Retry::new()
//!     // 429: wait as long as the server says (at most 30 s), 3 times.
//!     .rule(
//!         Rule::fixed(secs(1))
//!             .when_is(|e: &HttpError| e.status == 429)
//!             .after_is(|e: &HttpError| e.retry_after)
//!             .max_wait(secs(30))
//!             .retries(3),
//!     )
//!     // Other 5xx: 1, 1, 2, 3 s (Fibonacci), 4 times.
//!     .rule(Rule::fibonacci().when_is(|e: &HttpError| e.status >= 500).retries(4));
//!
//! let mock = MockRuntime::new();
//! let rt = mock.runtime();
//! let replies = Mutex::new(VecDeque::from([
//!     http(429, Some(secs(7))),
//!     http(503, None),
//!     http(503, None),
//!     http(503, None),
//!     Ok("data"),
//! ]));
//! let next = || async { replies.lock().unwrap().pop_front().unwrap() };
//! assert_eq!(mock.block_on(retry.call(&rt, next))?.unwrap(), "data");
//! assert_eq!(mock.elapsed(), secs(7 + 1 + 1 + 2));
//!
//! // A 404 matches no rule: one attempt, and the reason says so.
//! replies.lock().unwrap().push_back(http(404, None));
//! let err = mock.block_on(retry.call(&rt, next))?.unwrap_err();
//! assert!(matches!(err.kind(), CallErrorKind::Failed { attempts: 1, reason: Reason::NoRuleMatches, .. }));
//! # Ok::<(), machina_core::BoxError>(())
//! ```
//!
//! [`Retry::giveup`] stops at once on the errors it matches, even where a
//! rule would retry; a [`RetryBudget`](crate::retry::RetryBudget) shared
//! by many calls caps the share of recent calls that may be retries, so a
//! failing dependency is not hammered by every caller at once.
//!
//! ## Recipe: aiomisc's `asyncbackoff`
//!
//! [`Backoff`] is a preset of the same pipeline: a per-attempt timeout, a
//! deadline, a pause between attempts, a cap on attempts, which errors are
//! retried and when to give up. [`Backoff::stack`] is that stack, to add a
//! group or a breaker to:
//!
//! ```
//! use machina_core::backoff::Backoff;
//! use machina_core::call::CallErrorKind;
//! use machina_core::decision::Reason;
//! use machina_core::limit::{ConcurrentGroup, Limits};
//! use machina_core::testing::MockRuntime;
//! use std::io::{Error, ErrorKind};
//! use std::time::Duration;
//!
//! let ms = Duration::from_millis;
//! // aiomisc: @asyncbackoff(attempt_timeout=0.2, deadline=2, pause=0.1, max_tries=5,
//! //                        exceptions=[OSError], giveup=lambda e: e.errno == errno.EACCES)
//! let backoff = Backoff::builder()
//!     .attempt_timeout(ms(200))
//!     .deadline(ms(2000))
//!     .pause(ms(100))
//!     .max_tries(5)
//!     .retry_on::<Error>()
//!     .giveup(|e| e.downcast_ref::<Error>().is_some_and(|e| e.kind() == ErrorKind::PermissionDenied))
//!     .build()?;
//!
//! let mock = MockRuntime::new();
//! let rt = mock.runtime();
//! // Connection refused, every time: five attempts, 100 ms apart.
//! let refused = || async { Err::<(), _>(Error::from(ErrorKind::ConnectionRefused)) };
//! let err = mock.block_on(backoff.run(&rt, refused))?.unwrap_err();
//! assert!(matches!(err.kind(), CallErrorKind::Failed { attempts: 5, reason: Reason::RetriesExhausted, .. }));
//! assert_eq!(mock.elapsed(), ms(400));
//!
//! // Permission denied: no point in trying again.
//! let denied = || async { Err::<(), _>(Error::from(ErrorKind::PermissionDenied)) };
//! let err = mock.block_on(backoff.run(&rt, denied))?.unwrap_err();
//! assert!(matches!(err.kind(), CallErrorKind::Failed { attempts: 1, reason: Reason::GiveUpPredicate, .. }));
//!
//! // The same policy, inside a group of one call at a time.
//! let db = ConcurrentGroup::new(&rt, "db", Limits::new().max_in_flight(1))?;
//! let stack = backoff.stack().clone().group(db.clone());
//! let rows = mock.block_on(stack.run(&rt, || async {
//!     assert_eq!(db.in_flight(), 1);
//!     Ok::<_, Error>(3)
//! }))??;
//! assert_eq!(rows, 3);
//! # Ok::<(), machina_core::BoxError>(())
//! ```
//!
//! [`retry_async`](crate::backoff::retry_async) is aiomisc's
//! `asyncretry`: every error retried, up to a number of attempts, with a
//! pause.
//!
//! ## The circuit breaker's states
//!
//! A [`CircuitBreaker`] stops calling a dependency that keeps failing:
//! **passing** (calls run, outcomes are counted over `response_time`),
//! **broken** for `broken_time` once at least `error_ratio` of at least
//! `min_calls` calls failed (calls are refused), then **recovering** for
//! `recovery_time` (a first probe, then a growing share of calls is let through; once
//! half of `error_ratio` of those fail, it is broken again), then passing
//! again.
//! [`BreakerMachine`](crate::breaker::BreakerMachine) states the rules
//! exactly; [`CircuitBreaker`]'s own docs show the states on virtual time.
//!
//! ## From aiomisc and exmachina
//!
//! | Python | Machina |
//! | --- | --- |
//! | exmachina `RetryFixed`, `RetryFibonacci`, `RetryRange`, `RetryExponentialAndJitter` | [`Rule::fixed`], [`Rule::fibonacci`], [`Rule::random_range`], [`Rule::exponential_jitter`] |
//! | exmachina rule `exception=`, `filter=`, `retries=` | `.on::<E>()`, `.when(..)` / `.when_is(..)`, `.retries(n)` (or `.unlimited()`) |
//! | aiomisc `@asyncbackoff(attempt_timeout, deadline, pause, *exceptions, max_tries=, giveup=)` | `Backoff::builder().attempt_timeout(..).deadline(..).pause(..).retry_on::<E>().max_tries(n).giveup(..).build()?` |
//! | aiomisc `@asyncretry(max_tries)` | [`retry_async`](crate::backoff::retry_async)`(&rt, max_tries, pause, op)` |
//! | aiomisc `timeout(t)` | [`Runtime::timeout`](crate::rt::Runtime::timeout) |
//! | aiomisc `CircuitBreaker(error_ratio, response_time, exceptions, broken_time)` | `CircuitBreaker::builder(name).error_ratio(..).response_time(..).counts::<E>().broken_time(..).build(&rt)?` |
//! | aiomisc `cutout(ratio, response_time, *exceptions)` | a breaker's [`call`](crate::breaker::CircuitBreaker::call), or a stack with `.breaker(..)` |
//! | aiomisc `CircuitBroken` | [`CircuitOpen`], in a `CallErrorKind::Refused` |
//!
//! Where it differs: the layers compose into one stack with one error
//! type, instead of decorators stacked in an order that changes their
//! meaning; a breaker with no `counts` counts every error (aiomisc's
//! `cutout` with no exception types never trips); a refusal is typed and a
//! catch-all retry rule does not retry it; randomness (jitter, random
//! waits, the recovery ramp) comes from the runtime's seeded generator, so
//! a test replays it exactly.
//!
//! [`CallStack`]: crate::call::CallStack
//! [`CallError`]: crate::call::CallError
//! [`CallError::operation_error`]: crate::call::CallError::operation_error
//! [`CallError::attempts`]: crate::call::CallError::attempts
//! [`CallError::refusal`]: crate::call::CallError::refusal
//! [`CallErrorKind`]: crate::call::CallErrorKind
//! [`Retry`]: crate::retry::Retry
//! [`Retry::giveup`]: crate::retry::Retry::giveup
//! [`Rule::fixed`]: crate::retry::Rule::fixed
//! [`Rule::fibonacci`]: crate::retry::Rule::fibonacci
//! [`Rule::random_range`]: crate::retry::Rule::random_range
//! [`Rule::exponential_jitter`]: crate::retry::Rule::exponential_jitter
//! [`ConcurrentGroup`]: crate::limit::ConcurrentGroup
//! [`Limiter`]: crate::limit::Limiter
//! [`LimiterError`]: crate::limit::LimiterError
//! [`CircuitBreaker`]: crate::breaker::CircuitBreaker
//! [`CircuitOpen`]: crate::breaker::CircuitOpen
//! [`Backoff`]: crate::backoff::Backoff
//! [`Backoff::stack`]: crate::backoff::Backoff::stack
//! [`Refusal`]: crate::decision::Refusal
