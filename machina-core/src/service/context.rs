//! [`Context`]: values shared by the services of one program, under typed
//! keys; a reader can wait until a value is set (aiomisc `Context`).

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt;
use std::future::poll_fn;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Poll, Waker};

/// A typed key: the name and the type of a value in a [`Context`].
///
/// ```
/// use machina_core::service::Key;
///
/// const DATABASE_URL: Key<String> = Key::new("database_url");
/// assert_eq!(DATABASE_URL.name(), "database_url");
/// ```
pub struct Key<T> {
    name: &'static str,
    _type: PhantomData<fn() -> T>,
}

impl<T> Key<T> {
    /// A key named `name` for values of type `T`.
    pub const fn new(name: &'static str) -> Self {
        Key {
            name,
            _type: PhantomData,
        }
    }

    /// The key's name.
    pub fn name(&self) -> &'static str {
        self.name
    }
}

impl<T> Clone for Key<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Key<T> {}

impl<T> fmt::Debug for Key<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key<{}>({:?})", std::any::type_name::<T>(), self.name)
    }
}

type Slot = (&'static str, TypeId);

#[derive(Default)]
struct Entries {
    values: HashMap<Slot, Arc<dyn Any + Send + Sync>>,
    waiters: HashMap<Slot, Vec<Waker>>,
}

/// Values shared by the services of one program; clones share them.
///
/// A key is its name *and* its type, so two services cannot read each
/// other's value as the wrong type.
///
/// # Examples
///
/// ```
/// use machina_core::service::{Context, Key};
/// use machina_core::testing::MockRuntime;
/// use std::time::Duration;
///
/// const PORT: Key<u16> = Key::new("port");
/// let mock = MockRuntime::new();
/// let rt = mock.runtime();
/// let ctx = Context::new();
/// let reader = { let ctx = ctx.clone(); rt.spawn(async move { *ctx.get(PORT).await }).unwrap() };
/// let port = mock.block_on(async {
///     rt.sleep(Duration::from_secs(1)).await; // the reader waits meanwhile
///     ctx.set(PORT, 8080);
///     reader.await.unwrap()
/// }).unwrap();
/// assert_eq!(port, 8080);
/// ```
#[derive(Clone, Default)]
pub struct Context {
    entries: Arc<Mutex<Entries>>,
}

fn slot<T: 'static>(key: Key<T>) -> Slot {
    (key.name, TypeId::of::<T>())
}

impl Context {
    /// An empty context.
    pub fn new() -> Self {
        Context::default()
    }

    fn entries(&self) -> MutexGuard<'_, Entries> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sets (or replaces) the value of `key`, waking whoever waits for it.
    pub fn set<T: Send + Sync + 'static>(&self, key: Key<T>, value: T) {
        let waiters = {
            let mut entries = self.entries();
            entries.values.insert(slot(key), Arc::new(value));
            entries.waiters.remove(&slot(key)).unwrap_or_default()
        };
        waiters.into_iter().for_each(Waker::wake);
    }

    /// The value of `key`, if set.
    pub fn try_get<T: Send + Sync + 'static>(&self, key: Key<T>) -> Option<Arc<T>> {
        let value = self.entries().values.get(&slot(key))?.clone();
        value.downcast::<T>().ok()
    }

    /// Waits until `key` is set, then gives its value.
    pub async fn get<T: Send + Sync + 'static>(&self, key: Key<T>) -> Arc<T> {
        poll_fn(|cx| {
            let mut entries = self.entries();
            if let Some(value) = entries.values.get(&slot(key))
                && let Ok(value) = value.clone().downcast::<T>()
            {
                return Poll::Ready(value);
            }
            let waiters = entries.waiters.entry(slot(key)).or_default();
            if !waiters.iter().any(|w| w.will_wake(cx.waker())) {
                waiters.push(cx.waker().clone());
            }
            Poll::Pending
        })
        .await
    }

    /// Removes the value of `key`; returns it if it was set.
    pub fn remove<T: Send + Sync + 'static>(&self, key: Key<T>) -> Option<Arc<T>> {
        let value = self.entries().values.remove(&slot(key))?;
        value.downcast::<T>().ok()
    }
}

impl fmt::Debug for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let entries = self.entries();
        let mut names: Vec<_> = entries.values.keys().map(|(name, _)| *name).collect();
        names.sort_unstable();
        f.debug_struct("Context").field("keys", &names).finish()
    }
}

#[cfg(all(test, feature = "test-util"))]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::testing::MockRuntime;

    const NAME: Key<String> = Key::new("name");
    const NAME_AS_NUMBER: Key<u32> = Key::new("name");

    #[test]
    fn readers_wait_until_a_value_is_set_and_types_keep_keys_apart() {
        let mock = MockRuntime::new();
        let rt = mock.runtime();
        let ctx = Context::new();
        assert!(ctx.try_get(NAME).is_none());
        let readers: Vec<_> = (0..3)
            .map(|_| {
                let (ctx, rt2) = (ctx.clone(), rt.clone());
                rt.spawn(async move {
                    let value = ctx.get(NAME).await;
                    (value.to_string(), rt2.now())
                })
                .unwrap()
            })
            .collect();
        let start = rt.now();
        let got = mock
            .block_on(async {
                rt.sleep(Duration::from_secs(2)).await;
                ctx.set(NAME_AS_NUMBER, 7); // same name, other type: no wake-up
                rt.sleep(Duration::from_secs(1)).await;
                ctx.set(NAME, "machina".to_owned());
                let mut got = Vec::new();
                for reader in readers {
                    got.push(reader.await.unwrap());
                }
                got
            })
            .unwrap();
        for (value, at) in got {
            assert_eq!(value, "machina");
            assert_eq!(at - start, Duration::from_secs(3));
        }
        assert_eq!(*ctx.try_get(NAME_AS_NUMBER).unwrap(), 7);
        assert_eq!(
            ctx.remove(NAME).as_deref().map(String::as_str),
            Some("machina")
        );
        assert!(ctx.try_get(NAME).is_none());
        assert!(format!("{ctx:?}").contains("\"name\""));
    }
}
