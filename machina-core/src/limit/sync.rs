//! The synchronisation primitives of the limiter: std's, or loom's when the
//! crate is built with `--cfg loom` for model checking; and [`CacheLine`],
//! which keeps a value written by every call off the lines of the values
//! only read.

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicU64, Ordering};
#[cfg(loom)]
pub(crate) use loom::sync::{Arc, Mutex, MutexGuard};
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicU64, Ordering};
#[cfg(not(loom))]
pub(crate) use std::sync::{Arc, Mutex, MutexGuard};

/// Locks `mutex`, ignoring poisoning: every critical section of the limiter
/// leaves its state consistent before anything that could panic.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// `T` alone on its cache line(s): what one thread writes there does not
/// evict what the others only read nearby. 64 bytes, the line of x86_64
/// and of most aarch64 cores; Intel's adjacent-line prefetcher may still
/// pull a neighbouring line along (crossbeam's `CachePadded` takes 128 on
/// x86_64 for that), which was not measured to matter here.
#[derive(Debug)]
#[repr(align(64))]
pub(crate) struct CacheLine<T>(pub(crate) T);

impl<T> std::ops::Deref for CacheLine<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}
