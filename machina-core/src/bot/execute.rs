//! [`Execute`]: a named one-shot async handler run inside concurrent groups
//! and under a retry policy, called directly through its typed handle or
//! by name from an [`Event`](super::Event).

use std::any::type_name;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::FutureExt;

use super::core::BotCore;
use super::error::{BotError, ExecuteError};
use crate::breaker::CircuitBreaker;
use crate::call::CallErrorKind;
use crate::call::CallStack;
use crate::error::BoxError;
use crate::limit::{ConcurrentGroup, Group};
use crate::retry::Retry;
use crate::rt::{JoinError, JoinHandle, Runtime};
use crate::timeline::{CallEnd, CallId, Timeline};

type HandlerFuture<T> = Pin<Box<dyn Future<Output = Result<T, BoxError>> + Send>>;

/// What a registration makes of the handler once its call stack and its
/// index in the bot's book are known.
pub(crate) type Handler<A, T> =
    Box<dyn FnOnce(Arc<str>, u32, CallStack) -> Arc<dyn ExecuteBody<A, T>> + Send>;

/// A registered execute — its name, call stack and typed handler in one
/// allocation — behind one vtable. A spawned call is built inside the
/// implementation, where the handler's future type is known, so its
/// attempts run unboxed in the task's own future, and the task holds this
/// one allocation (one reference count for the handler, the stack and the
/// name); a call awaited in the caller's task ([`Execute::call`], whose
/// future type cannot name the handler's) boxes each attempt.
pub(crate) trait ExecuteBody<A, T>: Send + Sync {
    /// The execute's name.
    fn name(&self) -> &Arc<str>;

    /// The layers its calls run through.
    fn stack(&self) -> &CallStack;

    /// One attempt, boxed.
    fn attempt_boxed(&self, args: A) -> HandlerFuture<T>;

    /// Spawns a whole call as a task of the bot `core` on `runtime` (the
    /// bot's): the task keeps `core`, so a caller hands over the
    /// reference it holds rather than a clone of it.
    fn spawn(
        self: Arc<Self>,
        runtime: &Runtime,
        core: Arc<BotCore>,
        args: A,
    ) -> Result<ExecuteTask<T>, BotError>;
}

/// The handler a user registered, with its types, beside its name and
/// stack.
///
/// Aligned to a cache line: its reference count (written by each spawned
/// call as it starts and ends, on any worker) sits alone on the line
/// before the fields, which every call reads.
#[repr(align(64))]
pub(crate) struct TypedExecute<F> {
    pub(crate) name: Arc<str>,
    /// The execute's index in its bot's book of running executes.
    pub(crate) index: u32,
    pub(crate) stack: CallStack,
    pub(crate) handler: F,
}

impl<A, T, E, F, Fut> ExecuteBody<A, T> for TypedExecute<F>
where
    A: Clone + Send + 'static,
    T: Send + 'static,
    E: Into<BoxError>,
    F: Fn(A) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<T, E>> + Send + 'static,
{
    fn name(&self) -> &Arc<str> {
        &self.name
    }

    fn stack(&self) -> &CallStack {
        &self.stack
    }

    fn attempt_boxed(&self, args: A) -> HandlerFuture<T> {
        let attempt = (self.handler)(args);
        Box::pin(async move { attempt.await.map_err(Into::into) })
    }

    fn spawn(
        self: Arc<Self>,
        runtime: &Runtime,
        core: Arc<BotCore>,
        args: A,
    ) -> Result<ExecuteTask<T>, BotError> {
        let name = self.name.clone();
        let handle = runtime.spawn_named_with(&name, |abort| {
            let id = core.begin_execute(self.index, abort);
            let guard = super::core::ExecuteGuard::new(core, id);
            async move {
                let this = self;
                let attempt = |args| {
                    let attempt = (this.handler)(args);
                    async move { attempt.await.map_err(Into::into) }
                };
                let outcome = call_with(&this.name, &this.stack, &guard.core, args, attempt).await;
                guard.finish(outcome.as_ref().err());
                outcome
            }
        })?;
        Ok(ExecuteTask { handle, name })
    }
}

/// A typed handle to a registered execute: a handler and the
/// [`CallStack`] its calls run through (groups, breaker, retry, timeout,
/// deadline).
///
/// [`call`](Self::call) runs it in the caller's task (no spawn);
/// [`spawn`](Self::spawn) runs it as a task of the bot, which
/// [`Machina::run`](super::Machina::run) waits for and
/// [`Machina::shutdown`](super::Machina::shutdown) accounts for. Either
/// way the whole call — every attempt, each taking a slot and a start
/// token in every group of the execute — is wrapped once by its retry
/// rules, and a panic in the handler becomes an [`ExecuteError`] for the
/// caller, never a crash of the bot.
pub struct Execute<A, T> {
    pub(crate) inner: Arc<dyn ExecuteBody<A, T>>,
    pub(crate) core: Arc<BotCore>,
}

impl<A, T> Clone for Execute<A, T> {
    fn clone(&self) -> Self {
        Execute {
            inner: self.inner.clone(),
            core: self.core.clone(),
        }
    }
}

/// `fn(A) -> T`, for type-mismatch messages.
pub(crate) fn signature<A, T>() -> String {
    format!("fn({}) -> {}", type_name::<A>(), type_name::<T>())
}

impl<A, T> Execute<A, T>
where
    A: Clone + Send + 'static,
    T: Send + 'static,
{
    pub(crate) fn new(
        core: Arc<BotCore>,
        name: String,
        handler: Handler<A, T>,
        stack: CallStack,
    ) -> Self {
        let name: Arc<str> = name.into();
        let index = core.add_execute_name(name.clone());
        Execute {
            inner: handler(name, index, stack),
            core,
        }
    }

    /// The layers its calls run through.
    pub fn stack(&self) -> &CallStack {
        self.inner.stack()
    }

    /// The execute's name.
    pub fn name(&self) -> &str {
        self.inner.name()
    }

    /// Runs the execute in the calling task and returns its value.
    ///
    /// # Errors
    /// [`ExecuteError::Failed`] with how the call ended (the last
    /// attempt's error, or the layer that stopped it), or
    /// [`ExecuteError::Panicked`].
    ///
    /// # Examples
    ///
    /// ```
    /// use machina_core::bot::Machina;
    /// use machina_core::testing::MockRuntime;
    ///
    /// let mock = MockRuntime::new();
    /// let mut bot = Machina::builder(&mock.runtime());
    /// let parse = bot
    ///     .execute("parse", |text: &'static str| async move { text.parse::<u32>() })
    ///     .register()?;
    /// let _bot = bot.build();
    ///
    /// assert_eq!(mock.block_on(parse.call("42"))??, 42);
    /// let failed = mock.block_on(parse.call("4x2"))?.unwrap_err();
    /// assert_eq!(failed.to_string(), r#"execute "parse" failed: invalid digit found in string"#);
    /// assert!(failed.source_error().is_some_and(|e| e.is::<std::num::ParseIntError>()));
    /// assert_eq!(failed.call_error().map(|e| e.attempts()), Some(1));
    /// # Ok::<(), machina_core::BoxError>(())
    /// ```
    pub fn call(&self, args: A) -> impl Future<Output = Result<T, ExecuteError>> + '_ {
        let inner = &*self.inner;
        call_with(inner.name(), inner.stack(), &self.core, args, move |args| {
            inner.attempt_boxed(args)
        })
    }

    /// Runs the execute as a task of the bot. Its failure is logged and
    /// counted even if nobody awaits the returned task.
    ///
    /// # Errors
    /// [`BotError::Spawn`] if the executor refuses the task.
    ///
    /// # Examples
    ///
    /// ```
    /// use machina_core::bot::{ExecuteError, Machina};
    /// use machina_core::testing::MockRuntime;
    /// use std::time::Duration;
    ///
    /// let mock = MockRuntime::new();
    /// let rt = mock.runtime();
    /// let mut bot = Machina::builder(&rt);
    /// let wait = bot
    ///     .execute("wait", {
    ///         let rt = rt.clone();
    ///         move |secs: u64| {
    ///             let rt = rt.clone();
    ///             async move {
    ///                 rt.sleep(Duration::from_secs(secs)).await;
    ///                 Ok::<_, std::io::Error>(secs)
    ///             }
    ///         }
    ///     })
    ///     .register()?;
    /// let bot = bot.build();
    ///
    /// mock.block_on(async {
    ///     let short = wait.spawn(1)?;
    ///     let long = wait.spawn(60)?;
    ///     assert_eq!(short.await?, 1);
    ///     long.abort();
    ///     assert!(matches!(long.await, Err(ExecuteError::Cancelled { .. })));
    ///     Ok::<(), machina_core::BoxError>(())
    /// })??;
    /// assert_eq!(mock.elapsed(), Duration::from_secs(1));
    /// let stats = bot.stats();
    /// assert_eq!((stats.executes_ok, stats.executes_cancelled), (1, 1));
    /// # Ok::<(), machina_core::BoxError>(())
    /// ```
    pub fn spawn(&self, args: A) -> Result<ExecuteTask<T>, BotError> {
        self.inner
            .clone()
            .spawn(&self.core.runtime, self.core.clone(), args)
    }
}

impl<A, T> fmt::Debug for Execute<A, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Execute")
            .field("name", self.inner.name())
            .field("stack", self.inner.stack())
            .field("signature", &signature::<A, T>())
            .finish()
    }
}

/// A whole call of the execute `name` through `stack`, each attempt made
/// by `attempt`, recorded in `core`'s timeline if it has one: the value,
/// or an [`ExecuteError`] (a panic included).
fn call_with<'a, A, T, G, Fut>(
    name: &'a Arc<str>,
    stack: &'a CallStack,
    core: &'a BotCore,
    args: A,
    mut attempt: G,
) -> impl Future<Output = Result<T, ExecuteError>> + 'a
where
    A: Clone + 'a,
    T: 'a,
    G: FnMut(A) -> Fut + 'a,
    Fut: Future<Output = Result<T, BoxError>> + 'a,
{
    // Not an `async fn`: the call stack's future is wrapped in place,
    // not moved into another state machine.
    let recording = core.timeline.get().map(|timeline| {
        let lane = match stack.group_list().first() {
            Some(group) => group.name().to_owned(),
            None => name.to_string(),
        };
        let rt = &core.runtime;
        Recording {
            id: timeline.call(&lane, rt.now()),
            timeline: timeline.clone(),
            runtime: rt.clone(),
            ended: false,
        }
    });
    let marks = recording
        .as_ref()
        .map(|r| (r.timeline.clone(), r.id, r.runtime.clone()));
    let next = move || {
        if let Some((timeline, id, rt)) = &marks {
            timeline.attempt(*id, rt.now());
        }
        attempt(args.clone())
    };
    let call = stack.run(&core.runtime, next);
    AssertUnwindSafe(call).catch_unwind().map(move |outcome| {
        if let Some(mut recording) = recording {
            recording.end(match &outcome {
                Ok(Ok(_)) => CallEnd::Ok,
                Ok(Err(e)) if matches!(e.kind(), CallErrorKind::Refused { .. }) => CallEnd::Refused,
                _ => CallEnd::Failed,
            });
        }
        match outcome {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(source)) => Err(ExecuteError::Failed {
                name: name.to_string(),
                source,
            }),
            Err(panic) => Err(ExecuteError::Panicked {
                name: name.to_string(),
                message: crate::rt::panic_message(&*panic),
            }),
        }
    })
}

/// A running execute: awaiting it gives the value or an [`ExecuteError`];
/// dropping it lets the execute run on (its failure is still logged and
/// counted).
#[must_use = "dropping an ExecuteTask lets it run on unobserved; call .detach() to say so"]
pub struct ExecuteTask<T> {
    handle: JoinHandle<Result<T, ExecuteError>>,
    name: Arc<str>,
}

impl<T: Send + 'static> ExecuteTask<T> {
    /// Cancels the execute; awaiting gives [`ExecuteError::Cancelled`].
    pub fn abort(&self) {
        self.handle.abort();
    }

    /// Lets it run on unobserved.
    pub fn detach(self) {
        self.handle.detach();
    }

    /// Whether it has finished.
    pub fn is_finished(&self) -> bool {
        self.handle.is_finished()
    }
}

impl<T> Future for ExecuteTask<T> {
    type Output = Result<T, ExecuteError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let outcome = std::task::ready!(Pin::new(&mut self.handle).poll(cx));
        Poll::Ready(match outcome {
            Ok(result) => result,
            Err(JoinError::Panicked(payload)) => Err(ExecuteError::Panicked {
                name: self.name.to_string(),
                message: payload.message().to_owned(),
            }),
            Err(_) => Err(ExecuteError::Cancelled {
                name: self.name.to_string(),
            }),
        })
    }
}

impl<T> fmt::Debug for ExecuteTask<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExecuteTask")
            .field("name", &self.name)
            .field("handle", &self.handle)
            .finish()
    }
}

/// Adds an execute to a bot; see
/// [`MachinaBuilder::execute`](super::MachinaBuilder::execute).
#[must_use = "call .register() to add the execute"]
pub struct ExecuteBuilder<'b, A, T> {
    pub(crate) builder: &'b mut super::MachinaBuilder,
    pub(crate) name: String,
    pub(crate) handler: Handler<A, T>,
    pub(crate) groups: Vec<GroupRef>,
    pub(crate) stack: CallStack,
    pub(crate) _types: PhantomData<fn(A) -> T>,
}

/// A group named in an execute's registration: by name, or by the handle
/// its registration returned.
#[derive(Debug, Clone)]
pub enum GroupRef {
    /// By name.
    Name(String),
    /// By handle.
    Handle(Group),
}

impl From<&str> for GroupRef {
    fn from(name: &str) -> Self {
        GroupRef::Name(name.to_owned())
    }
}

impl From<String> for GroupRef {
    fn from(name: String) -> Self {
        GroupRef::Name(name)
    }
}

impl From<&String> for GroupRef {
    fn from(name: &String) -> Self {
        GroupRef::Name(name.clone())
    }
}

impl From<&ConcurrentGroup> for GroupRef {
    fn from(group: &ConcurrentGroup) -> Self {
        GroupRef::Handle(Group::Local(group.clone()))
    }
}

impl From<&Group> for GroupRef {
    fn from(group: &Group) -> Self {
        GroupRef::Handle(group.clone())
    }
}

impl<A, T> ExecuteBuilder<'_, A, T>
where
    A: Clone + Send + 'static,
    T: Send + 'static,
{
    /// Runs every call inside these concurrent groups: by name, or by the
    /// handles [`MachinaBuilder::group`](super::MachinaBuilder::group)
    /// returned.
    pub fn groups<I, S>(mut self, groups: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<GroupRef>,
    {
        self.groups = groups.into_iter().map(Into::into).collect();
        self
    }

    /// Runs every call through `breaker` (a refused call does not run).
    pub fn breaker(mut self, breaker: CircuitBreaker) -> Self {
        self.stack = self.stack.breaker(breaker);
        self
    }

    /// Retries failed calls under `retry`.
    pub fn retry(mut self, retry: Retry) -> Self {
        self.stack = self.stack.retry(retry);
        self
    }

    /// Each attempt may run at most `limit`.
    pub fn timeout(mut self, limit: Duration) -> Self {
        self.stack = self.stack.timeout(limit);
        self
    }

    /// The whole call, retries and waits included, may take at most
    /// `limit`.
    pub fn deadline(mut self, limit: Duration) -> Self {
        self.stack = self.stack.deadline(limit);
        self
    }

    /// Registers the execute.
    ///
    /// # Errors
    /// [`BotError::Duplicate`] for a name already used by an execute,
    /// [`BotError::Unknown`] for a group that is not registered.
    pub fn register(self) -> Result<Execute<A, T>, BotError> {
        let ExecuteBuilder {
            builder,
            name,
            handler,
            groups,
            stack,
            ..
        } = self;
        builder.register_execute(name, handler, groups, stack)
    }
}

impl<A, T> fmt::Debug for ExecuteBuilder<'_, A, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExecuteBuilder")
            .field("name", &self.name)
            .field("groups", &self.groups)
            .finish_non_exhaustive()
    }
}

/// A call being recorded in a timeline; dropped before its end (the call
/// cancelled), it records the cancellation.
struct Recording {
    timeline: Timeline,
    id: CallId,
    runtime: crate::rt::Runtime,
    ended: bool,
}

impl Recording {
    fn end(&mut self, how: CallEnd) {
        self.ended = true;
        self.timeline.end(self.id, self.runtime.now(), how);
    }
}

impl Drop for Recording {
    fn drop(&mut self) {
        if !self.ended {
            self.timeline
                .end(self.id, self.runtime.now(), CallEnd::Cancelled);
        }
    }
}
