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
use super::execute::{Execute, ExecuteBuilder, GroupRef, Handler, signature};
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
            handler: Arc::new(move |args| {
                let fut = handler(args);
                Box::pin(async move { fut.await.map_err(Into::into) })
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
                handle: Box::new(execute.clone()),
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

    /// Runs `hook` when the bot starts, before any emit (in registration
    /// order).
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
