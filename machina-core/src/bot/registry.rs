//! What a bot is made of: the [`Registry`] of groups, executes and emits,
//! and [`MachinaBuilder`], which fills it and checks names, groups and
//! schedules as it goes.

use std::any::Any;
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;

use super::core::BotCore;
use super::emit::{Emit, EmitBuilder, IntoSchedule};
use super::error::BotError;
use super::execute::{
    Execute, ExecuteBody, ExecuteBuilder, GroupRef, Handler, TypedExecute, signature,
};
use super::machina::{Hook, Machina};
use crate::call::CallStack;
use crate::error::BoxError;
use crate::limit::{Group, IntoGroup};
use crate::loops::Loop;
use crate::schedule::ScheduleError;

/// An execute with its types erased, for calls by name.
pub(crate) struct ErasedExecute {
    pub(crate) handle: Box<dyn Any + Send + Sync>,
    pub(crate) signature: String,
}

/// What the bot has registered: fixed once built.
#[derive(Default)]
pub(crate) struct Registry {
    pub(super) groups: HashMap<String, Group>,
    pub(super) executes: HashMap<String, ErasedExecute>,
    /// In registration order (the order they start in).
    pub(super) emits: Vec<Emit>,
    /// Their positions by name: registering many emits stays linear, and
    /// finding one by name is a lookup.
    pub(super) emit_index: HashMap<String, usize>,
}

/// Registers the parts of a [`Machina`].
pub struct MachinaBuilder {
    pub(crate) core: Arc<BotCore>,
    pub(super) registry: Registry,
    pub(super) startup: Vec<Hook>,
    pub(super) shutdown: Vec<Hook>,
}

impl MachinaBuilder {
    /// Registers a concurrent group (exmachina `create_concurrent_group`):
    /// [`Limits`](crate::limit::Limits) make a local
    /// [`ConcurrentGroup`](crate::limit::ConcurrentGroup) (the handle returned);
    /// any other [`IntoGroup`] (a [`Limiter`](crate::limit::Limiter) kept
    /// elsewhere) is registered as it is.
    ///
    /// # Errors
    /// [`BotError::Duplicate`] for a name already used by a group;
    /// [`BotError::Group`] for limits that could never admit a call.
    ///
    /// # Examples
    ///
    /// ```
    /// use machina_core::bot::{BotError, Machina};
    /// use machina_core::limit::Limits;
    /// use machina_core::testing::MockRuntime;
    ///
    /// let mock = MockRuntime::new();
    /// let mut bot = Machina::builder(&mock.runtime());
    /// // Local limits give back the group itself: name it in executes by
    /// // handle, or watch it.
    /// let api = bot.group("api", Limits::new().max_in_flight(2))?;
    /// assert_eq!((api.name(), api.in_flight()), ("api", 0));
    /// assert!(matches!(bot.group("api", Limits::new()), Err(BotError::Duplicate { .. })));
    /// // Limits that could never admit a call are refused now, not at run time.
    /// let never = bot.group("never", Limits::new().max_in_flight(0));
    /// assert!(matches!(never, Err(BotError::Group(_))));
    /// # Ok::<(), machina_core::BoxError>(())
    /// ```
    pub fn group<G: IntoGroup>(&mut self, name: &str, group: G) -> Result<G::Handle, BotError> {
        if self.registry.groups.contains_key(name) {
            return Err(BotError::Duplicate {
                kind: "concurrent group",
                name: name.to_owned(),
            });
        }
        let (group, handle) = group.into_group(&self.core.runtime, name)?;
        self.registry.groups.insert(name.to_owned(), group);
        Ok(handle)
    }

    /// Starts registering an execute named `name` running `handler`; finish
    /// with [`ExecuteBuilder::register`].
    ///
    /// # Examples
    ///
    /// ```
    /// use machina_core::bot::Machina;
    /// use machina_core::limit::Limits;
    /// use machina_core::testing::MockRuntime;
    /// use std::time::Duration;
    ///
    /// let mock = MockRuntime::new();
    /// let mut bot = Machina::builder(&mock.runtime());
    /// let db = bot.group("db", Limits::new().max_in_flight(1))?;
    /// let double = bot
    ///     .execute("double", |n: u64| async move { Ok::<_, std::io::Error>(n * 2) })
    ///     .groups([&db]) // by handle; .groups(["db"]) names the same group
    ///     .timeout(Duration::from_secs(5))
    ///     .register()?;
    /// // A group that is not registered is refused, naming those that are.
    /// let lost = bot
    ///     .execute("lost", |n: u64| async move { Ok::<_, std::io::Error>(n) })
    ///     .groups(["cache"])
    ///     .register()
    ///     .unwrap_err();
    /// assert_eq!(lost.to_string(), r#"unknown concurrent group "cache"; registered: db"#);
    ///
    /// let _bot = bot.build();
    /// assert_eq!(mock.block_on(double.call(21))??, 42);
    /// # Ok::<(), machina_core::BoxError>(())
    /// ```
    pub fn execute<A, T, E, F, Fut>(&mut self, name: &str, handler: F) -> ExecuteBuilder<'_, A, T>
    where
        A: Clone + Send + 'static,
        T: Send + 'static,
        E: Into<BoxError>,
        F: Fn(A) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
    {
        ExecuteBuilder {
            builder: self,
            name: name.to_owned(),
            handler: Box::new(move |name, index, stack| {
                Arc::new(TypedExecute {
                    name,
                    index,
                    stack,
                    handler,
                }) as Arc<dyn ExecuteBody<A, T>>
            }),
            groups: Vec::new(),
            stack: CallStack::new(),
            _types: PhantomData,
        }
    }

    pub(crate) fn register_execute<A, T>(
        &mut self,
        name: String,
        handler: Handler<A, T>,
        groups: Vec<GroupRef>,
        stack: CallStack,
    ) -> Result<Execute<A, T>, BotError>
    where
        A: Clone + Send + 'static,
        T: Send + 'static,
    {
        if self.registry.executes.contains_key(&name) {
            return Err(BotError::Duplicate {
                kind: "execute",
                name,
            });
        }
        let mut resolved = Vec::with_capacity(groups.len());
        for group in &groups {
            let name = match group {
                GroupRef::Name(name) => name.as_str(),
                GroupRef::Handle(handle) => handle.name(),
            };
            let registered = self
                .registry
                .groups
                .get(name)
                .filter(|registered| match group {
                    GroupRef::Name(_) => true,
                    GroupRef::Handle(handle) => handle.same_group(registered),
                });
            match registered {
                Some(g) => resolved.push(g.clone()),
                None => {
                    let mut known: Vec<_> = self.registry.groups.keys().cloned().collect();
                    known.sort();
                    return Err(BotError::Unknown {
                        kind: "concurrent group",
                        name: name.to_owned(),
                        known,
                    });
                }
            }
        }
        let stack = stack.groups(resolved);
        let execute = Execute::new(self.core.clone(), name.clone(), handler, stack);
        self.registry.executes.insert(
            name,
            ErasedExecute {
                // The inner part only: an entry holding the whole handle
                // would hold the bot that holds the registry (a cycle, and
                // a leak when the bot is dropped).
                handle: Box::new(execute.inner.clone()),
                signature: signature::<A, T>(),
            },
        );
        Ok(execute)
    }

    /// Starts registering an emit named `name` on `schedule` (a
    /// [`Schedule`](crate::schedule::Schedule), or an interval such as
    /// `"1s"` meaning `After`); finish with [`EmitBuilder::register`].
    ///
    /// # Errors
    /// [`ScheduleError`] for a malformed interval — at registration, not at
    /// start.
    ///
    /// # Examples
    ///
    /// An emit that does not start with the bot (`alive(false)`), started
    /// by another:
    ///
    /// ```
    /// use machina_core::bot::{Event, Machina};
    /// use machina_core::testing::MockRuntime;
    /// use std::sync::{Arc, Mutex};
    /// use std::time::Duration;
    ///
    /// let mock = MockRuntime::new();
    /// let rt = mock.runtime();
    /// let t0 = rt.now();
    /// let runs: Arc<Mutex<Vec<(u64, u128)>>> = Arc::default();
    /// let mut bot = Machina::builder(&rt);
    /// assert!(bot.emit("typo", "1x").is_err(), "refused here, not when the bot runs");
    /// bot.emit("report", "500ms")?.count(2).alive(false).register({
    ///     let (rt, runs) = (rt.clone(), runs.clone());
    ///     move |event: Event| {
    ///         let at = (rt.now() - t0).as_millis();
    ///         runs.lock().unwrap().push((event.epoch(), at));
    ///         async {}
    ///     }
    /// })?;
    /// bot.emit("main", Duration::from_secs(1))?
    ///     .count(1)
    ///     .register(|event: Event| async move { event.start("report") })?;
    ///
    /// mock.block_on(bot.build().run())??;
    /// assert_eq!(*runs.lock().unwrap(), [(1, 0), (2, 500)]);
    /// # Ok::<(), machina_core::BoxError>(())
    /// ```
    pub fn emit(
        &mut self,
        name: &str,
        schedule: impl IntoSchedule,
    ) -> Result<EmitBuilder<'_>, ScheduleError> {
        let schedule = schedule.into_schedule()?;
        let lp = Loop::builder(&self.core.runtime, name, schedule);
        Ok(EmitBuilder {
            builder: self,
            lp,
            alive: true,
            gate: None,
        })
    }

    pub(crate) fn register_emit(&mut self, emit: Emit) -> Result<Emit, BotError> {
        let registry = &mut self.registry;
        if registry.emit_index.contains_key(emit.name()) {
            return Err(BotError::Duplicate {
                kind: "emit",
                name: emit.name().to_owned(),
            });
        }
        registry
            .emit_index
            .insert(emit.name().to_owned(), registry.emits.len());
        registry.emits.push(emit.clone());
        Ok(emit)
    }

    /// Records the bot's emit ticks and execute calls in `timeline` (see
    /// [`Timeline`](crate::timeline::Timeline)); a bot records to one
    /// timeline, the first it is given.
    pub fn timeline(&mut self, timeline: &crate::timeline::Timeline) -> &mut Self {
        let _ = self.core.timeline.set(timeline.clone());
        self
    }

    /// Runs `hook` when the bot starts, before any emit (in registration
    /// order).
    ///
    /// # Examples
    ///
    /// ```
    /// use machina_core::bot::{Event, Machina};
    /// use machina_core::testing::MockRuntime;
    /// use std::sync::{Arc, Mutex};
    ///
    /// let mock = MockRuntime::new();
    /// let log: Arc<Mutex<Vec<&str>>> = Arc::default();
    /// let note = |what: &'static str| {
    ///     let log = log.clone();
    ///     move |_bot: Machina| {
    ///         log.lock().unwrap().push(what);
    ///         async { Ok(()) }
    ///     }
    /// };
    /// let mut bot = Machina::builder(&mock.runtime());
    /// bot.on_startup(note("connect")).on_shutdown(note("disconnect"));
    /// bot.emit("work", "1s")?.count(1).register({
    ///     let log = log.clone();
    ///     move |_: Event| {
    ///         log.lock().unwrap().push("work");
    ///         async {}
    ///     }
    /// })?;
    /// mock.block_on(bot.build().run())??;
    /// assert_eq!(*log.lock().unwrap(), ["connect", "work", "disconnect"]);
    /// # Ok::<(), machina_core::BoxError>(())
    /// ```
    pub fn on_startup<F, Fut>(&mut self, hook: F) -> &mut Self
    where
        F: Fn(Machina) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), BoxError>> + Send + 'static,
    {
        self.startup.push(Arc::new(move |bot| Box::pin(hook(bot))));
        self
    }

    /// Runs `hook` when the bot's run ends, however it ends (in
    /// registration order).
    ///
    /// # Examples
    ///
    /// A failing startup hook starts no emit, and the shutdown hooks still
    /// run:
    ///
    /// ```
    /// use machina_core::bot::{BotError, Event, Machina};
    /// use machina_core::testing::MockRuntime;
    /// use std::sync::Arc;
    /// use std::sync::atomic::{AtomicBool, Ordering};
    ///
    /// let mock = MockRuntime::new();
    /// let (worked, closed) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
    /// let mut bot = Machina::builder(&mock.runtime());
    /// bot.on_startup(|_bot| async { Err("no database".into()) });
    /// bot.on_shutdown({
    ///     let closed = closed.clone();
    ///     move |_bot| {
    ///         closed.store(true, Ordering::SeqCst);
    ///         async { Ok(()) }
    ///     }
    /// });
    /// bot.emit("work", "1s")?.register({
    ///     let worked = worked.clone();
    ///     move |_: Event| {
    ///         worked.store(true, Ordering::SeqCst);
    ///         async {}
    ///     }
    /// })?;
    /// let failed = mock.block_on(bot.build().run())?.unwrap_err();
    /// assert!(matches!(failed, BotError::Startup(_)));
    /// assert_eq!(failed.to_string(), "startup hook failed: no database");
    /// assert!(!worked.load(Ordering::SeqCst) && closed.load(Ordering::SeqCst));
    /// # Ok::<(), machina_core::BoxError>(())
    /// ```
    pub fn on_shutdown<F, Fut>(&mut self, hook: F) -> &mut Self
    where
        F: Fn(Machina) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), BoxError>> + Send + 'static,
    {
        self.shutdown.push(Arc::new(move |bot| Box::pin(hook(bot))));
        self
    }

    /// The bot.
    pub fn build(self) -> Machina {
        let MachinaBuilder {
            core,
            registry,
            startup,
            shutdown,
        } = self;
        // Set once: a builder is consumed by `build`.
        let _ = core.registry.set(registry);
        Machina {
            core,
            startup: Arc::new(startup),
            shutdown_hooks: Arc::new(shutdown),
        }
    }
}

impl fmt::Debug for MachinaBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MachinaBuilder")
            .field("groups", &self.registry.groups.keys().collect::<Vec<_>>())
            .field(
                "executes",
                &self.registry.executes.keys().collect::<Vec<_>>(),
            )
            .field(
                "emits",
                &self
                    .registry
                    .emits
                    .iter()
                    .map(Emit::name)
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}
