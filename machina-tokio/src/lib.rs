//! # machina-tokio
//!
//! Machina on [tokio](https://tokio.rs): a [`Runtime`] whose tasks run on a
//! tokio runtime, whose blocking work runs on tokio's blocking pool and
//! whose clock is `tokio::time` — so `#[tokio::test(start_paused = true)]`
//! drives Machina's timers too.
//!
//! This crate re-exports [`machina_core`]; depend on it alone.
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let tokio_rt = tokio::runtime::Builder::new_current_thread().enable_time().build()?;
//! tokio_rt.block_on(async {
//!     let rt = machina_tokio::runtime()?;
//!     let handle = rt.spawn(async { 2 + 2 })?;
//!     assert_eq!(handle.await?, 4);
//!     Ok(())
//! })
//! # }
//! ```
//!
//! A spawn after the tokio runtime has shut down does not panic: tokio drops
//! the task, and its join handle reports
//! [`JoinError::Cancelled`].

#![forbid(unsafe_code)]

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

pub use machina_core;
pub use machina_core::*;

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use machina_core::rt::{
    BlockingFn, BoxFuture, CoarseClock, FastClock, Sleep, SleepFuture, Spawn, SpawnError, Task,
    Timer,
};
use pin_project::pin_project;
use tokio::runtime::{Handle, RuntimeFlavor};

mod sockets;
pub use sockets::TokioSockets;

#[cfg(feature = "grpc")]
pub mod grpc;
#[cfg(feature = "http")]
pub mod http;
#[cfg(feature = "http")]
mod served;

/// Why a tokio-backed [`Runtime`] could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokioAdapterError {
    /// Called outside a tokio runtime.
    #[error(
        "no tokio runtime is running on this thread: call machina_tokio::runtime() from inside one, or pass a Handle to machina_tokio::runtime_from"
    )]
    NoRuntime,
    /// The OS signal handlers could not be installed.
    #[error("could not listen for shutdown signals: {0}")]
    Signals(String),
    /// The tokio runtime was built without its time driver.
    #[error("the tokio runtime has no timer: build it with .enable_time() (or .enable_all())")]
    TimerDisabled,
}

/// A [`Runtime`] on the tokio runtime this thread is running in.
///
/// # Errors
/// [`TokioAdapterError::NoRuntime`] outside a tokio runtime,
/// [`TokioAdapterError::TimerDisabled`] when its time driver is off.
pub fn runtime() -> Result<Runtime, TokioAdapterError> {
    let handle = Handle::try_current().map_err(|_| TokioAdapterError::NoRuntime)?;
    runtime_from(handle)
}

/// A [`Runtime`] on the tokio runtime behind `handle`.
///
/// # Errors
/// [`TokioAdapterError::TimerDisabled`] when its time driver is off.
pub fn runtime_from(handle: Handle) -> Result<Runtime, TokioAdapterError> {
    check_timer(&handle)?;
    Ok(Runtime::new(
        "tokio",
        Arc::new(TokioSpawner {
            handle: handle.clone(),
        }),
        Arc::new(TokioTimer::new(handle.clone())),
    )
    .with_sockets(Arc::new(TokioSockets::new(handle))))
}

/// tokio has no query for "is the time driver enabled"; making a sleep
/// panics when it is not, so that is the probe.
fn check_timer(handle: &Handle) -> Result<(), TokioAdapterError> {
    let _entered = handle.enter();
    catch_unwind(AssertUnwindSafe(|| {
        drop(tokio::time::sleep(Duration::ZERO))
    }))
    .map_err(|_| TokioAdapterError::TimerDisabled)
}

/// Adds the tokio runtime behind `handle` to `stats` (kind `"runtime"`,
/// name `"tokio"`): its workers, alive tasks and global queue depth — what
/// tokio reports without `--cfg tokio_unstable` — so a
/// [`StatsReporter`](machina_core::service::StatsReporter) logs them with
/// the rest.
///
/// # Examples
///
/// ```
/// use machina_tokio::stats::Stats;
///
/// let tokio_rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).build().unwrap();
/// let stats = Stats::new();
/// machina_tokio::add_runtime_metrics(&stats, tokio_rt.handle());
/// let _waiting = tokio_rt.spawn(std::future::pending::<()>());
/// let read = |counter: &str| stats.snapshot().into_iter().find(|s| s.counter == counter).unwrap();
/// assert_eq!((read("workers").kind, read("workers").value), ("runtime", 2.0));
/// assert_eq!(read("alive_tasks").value, 1.0);
/// ```
pub fn add_runtime_metrics(stats: &machina_core::stats::Stats, handle: &Handle) {
    let handle = handle.clone();
    stats.add("runtime", "tokio", move || {
        let metrics = handle.metrics();
        vec![
            ("workers", metrics.num_workers() as f64),
            ("alive_tasks", metrics.num_alive_tasks() as f64),
            ("global_queue_depth", metrics.global_queue_depth() as f64),
        ]
    });
}

/// An [`Entrypoint`](machina_core::service::Entrypoint) builder on the
/// current tokio runtime whose shutdown requests are SIGINT (Ctrl+C) and
/// SIGTERM: the first stops the services gracefully, a second forces the
/// exit ([`FORCED_EXIT_CODE`](machina_core::service::FORCED_EXIT_CODE)).
///
/// The settings come from the environment, read here once
/// ([`EnvConfig::from_env`](machina_core::service::EnvConfig::from_env)).
/// With the feature `logging`, the entrypoint sets up logging
/// (`LogConfig::new()` under `MACHINA_LOG_LEVEL` / `MACHINA_LOG_FORMAT`)
/// unless the program set up `tracing` itself; `.logging(config)` or
/// `.no_logging()` change that. The features `systemd` and `sentry` add
/// systemd notifications and Sentry reports, each a no-op unless its
/// variable (`NOTIFY_SOCKET`, `SENTRY_DSN`) is set.
///
/// # Errors
/// [`TokioAdapterError`] as [`runtime`]; [`TokioAdapterError::Signals`]
/// if the signal handlers cannot be installed.
pub fn entrypoint() -> Result<machina_core::service::EntrypointBuilder, TokioAdapterError> {
    let rt = runtime()?;
    Ok(machina_core::service::entrypoint_with(
        &rt,
        shutdown_signals()?,
        machina_core::service::EnvConfig::from_env(),
    ))
}

/// aiomisc's `run(main, *services)` on [`entrypoint`]; see
/// [`run_on`](machina_core::service::run_on).
///
/// # Errors
/// As [`run_on`](machina_core::service::run_on).
pub async fn run<F: std::future::Future>(
    main: F,
    services: machina_core::service::ServiceList<'_>,
) -> machina_core::service::RunResult<F::Output, TokioAdapterError> {
    machina_core::service::run_on(entrypoint(), main, services).await
}

#[cfg(unix)]
fn shutdown_signals() -> Result<machina_core::service::Signals, TokioAdapterError> {
    use tokio::signal::unix::{SignalKind, signal};
    let failed = |e: std::io::Error| TokioAdapterError::Signals(e.to_string());
    let mut interrupt = signal(SignalKind::interrupt()).map_err(failed)?;
    let mut terminate = signal(SignalKind::terminate()).map_err(failed)?;
    Ok(Box::pin(futures::stream::poll_fn(move |cx| {
        if interrupt.poll_recv(cx).is_ready() || terminate.poll_recv(cx).is_ready() {
            return Poll::Ready(Some(()));
        }
        Poll::Pending
    })))
}

#[cfg(not(unix))]
fn shutdown_signals() -> Result<machina_core::service::Signals, TokioAdapterError> {
    Ok(Box::pin(futures::stream::unfold((), |()| async {
        tokio::signal::ctrl_c().await.ok().map(|()| ((), ()))
    })))
}

/// The [`Spawn`] half of the tokio adapter.
#[derive(Debug, Clone)]
pub struct TokioSpawner {
    handle: Handle,
}

impl TokioSpawner {
    /// A spawner onto the runtime behind `handle`.
    pub fn new(handle: Handle) -> Self {
        TokioSpawner { handle }
    }
}

impl Spawn for TokioSpawner {
    fn spawn_detached(&self, task: BoxFuture) -> Result<(), SpawnError> {
        // Dropping tokio's JoinHandle detaches the task.
        drop(self.handle.spawn(task));
        Ok(())
    }

    fn spawn_task(&self, task: Task) -> Result<(), SpawnError> {
        // The task as it is, inside tokio's own allocation.
        drop(self.handle.spawn(task));
        Ok(())
    }

    fn spawn_blocking(&self, f: BlockingFn) -> Result<(), SpawnError> {
        drop(self.handle.spawn_blocking(f));
        Ok(())
    }
}

/// The [`Timer`] half of the tokio adapter: `tokio::time`, so a paused
/// tokio clock is Machina's clock too — for calendar time as well: while
/// tokio's clock is paused (and advanced by hand or auto-advanced), the
/// calendar moves with it from the date the timer was made, so a cron
/// schedule under `start_paused` fires on virtual time.
///
/// [`coarse_now`](Timer::coarse_now) and
/// [`coarse_nanos`](Timer::coarse_nanos) read the global [`CoarseClock`]
/// (a few nanoseconds instead of a precise read's tens) while tokio's clock
/// runs in real time, and tokio's clock once it is seen paused: at once for
/// a runtime built with `start_paused`; for `tokio::time::pause()` called
/// later, within a few milliseconds of real time (the clocks are compared
/// every millisecond of coarse time), during which coarse readings still
/// follow the real clock.
///
/// [`fast_clock`](Timer::fast_clock) (the precise clock as a number, for a
/// token bucket) must follow tokio's clock at once, so it is the fast
/// counter ([`FastClock`]) only where tokio's clock can never be paused: on
/// a multi-thread runtime (tokio pauses only current-thread ones). On a
/// current-thread runtime it is `None` and callers read
/// [`now`](Timer::now); so is [`coarse_clock`](Timer::coarse_clock).
#[derive(Debug, Clone)]
pub struct TokioTimer {
    handle: Handle,
    /// The calendar date, tokio's instant and the real instant when the
    /// timer was made.
    base: Arc<(SystemTime, tokio::time::Instant, Instant)>,
    coarse: Arc<Coarse>,
    /// Whether tokio's clock may be paused on this runtime (a
    /// current-thread one): then [`fast_clock`](Timer::fast_clock) and
    /// [`coarse_clock`](Timer::coarse_clock) are `None`.
    clock_can_pause: bool,
}

/// Whether a [`TokioTimer`] may read the coarse clock: not once tokio's
/// clock was seen paused.
#[derive(Debug)]
struct Coarse {
    /// Sticky: once seen paused, tokio's clock is always read.
    paused: AtomicBool,
    /// When (coarse ns since the global clock's anchor) to compare the
    /// clocks next.
    next_check: AtomicU64,
}

/// How often (in coarse time) a timer checks whether tokio's clock was
/// paused since.
const CHECK_PAUSED_EVERY: u64 = 1_000_000;

/// How far tokio's clock may drift from the real one before it counts as
/// paused (virtual).
const PAUSED_AFTER: Duration = Duration::from_millis(1);

impl TokioTimer {
    /// A timer on the time driver of the runtime behind `handle` (which
    /// must have one; see [`runtime_from`]).
    pub fn new(handle: Handle) -> Self {
        let (tokio_now, paused) = {
            let _entered = handle.enter();
            let first = tokio::time::Instant::now();
            // Two reads of a running clock differ by the read's own cost;
            // a paused clock gives the same instant twice.
            (first, tokio::time::Instant::now() == first)
        };
        let clock_can_pause = handle.runtime_flavor() != RuntimeFlavor::MultiThread;
        TokioTimer {
            handle,
            clock_can_pause,
            base: Arc::new((SystemTime::now(), tokio_now, Instant::now())),
            coarse: Arc::new(Coarse {
                paused: AtomicBool::new(paused),
                next_check: AtomicU64::new(
                    CoarseClock::global()
                        .elapsed_nanos()
                        .saturating_add(CHECK_PAUSED_EVERY),
                ),
            }),
        }
    }

    /// [`coarse_nanos`](Timer::coarse_nanos) at coarse time `at`, once a
    /// check is due: whether tokio's clock was paused since the last one
    /// (out of line: once a millisecond at most).
    #[cold]
    #[inline(never)]
    fn check_paused(&self, at: u64) -> Option<u64> {
        let coarse = &*self.coarse;
        coarse
            .next_check
            .store(at.saturating_add(CHECK_PAUSED_EVERY), Ordering::Relaxed);
        if self.clock_is_virtual() {
            coarse.paused.store(true, Ordering::Relaxed);
            return None;
        }
        Some(at)
    }

    /// Whether tokio's clock has left the real one (paused, advanced).
    fn clock_is_virtual(&self) -> bool {
        self.virtual_elapsed().is_some()
    }

    /// Time on tokio's clock since the timer was made, when that clock has
    /// left the real one (paused, advanced); `None` while they agree.
    fn virtual_elapsed(&self) -> Option<Duration> {
        let (_, tokio_base, real_base) = *self.base;
        let on_tokio = {
            let _entered = self.handle.enter();
            tokio::time::Instant::now().saturating_duration_since(tokio_base)
        };
        (on_tokio.abs_diff(real_base.elapsed()) > PAUSED_AFTER).then_some(on_tokio)
    }
}

impl Timer for TokioTimer {
    fn now(&self) -> Instant {
        tokio::time::Instant::now().into_std()
    }

    fn coarse_nanos(&self) -> Option<u64> {
        if !self.clock_can_pause {
            return Some(CoarseClock::global().elapsed_nanos());
        }
        let coarse = &*self.coarse;
        if coarse.paused.load(Ordering::Relaxed) {
            return None;
        }
        let at = CoarseClock::global().elapsed_nanos();
        if at >= coarse.next_check.load(Ordering::Relaxed) {
            return self.check_paused(at);
        }
        Some(at)
    }

    fn coarse_clock(&self) -> Option<&'static CoarseClock> {
        (!self.clock_can_pause).then(CoarseClock::global)
    }

    fn fast_clock(&self) -> Option<&'static FastClock> {
        (!self.clock_can_pause).then(FastClock::global)
    }

    fn sleep_until(&self, deadline: Instant) -> Sleep {
        // Entering binds the sleep to this runtime's time driver, so it can
        // be made (and polled) from any thread.
        let _entered = self.handle.enter();
        Sleep::new(TokioSleep {
            inner: tokio::time::sleep_until(deadline.into()),
        })
    }

    fn calendar_now(&self) -> SystemTime {
        match self.virtual_elapsed() {
            // tokio's clock is paused or was advanced: follow it.
            Some(on_tokio) => self.base.0 + on_tokio,
            None => SystemTime::now(),
        }
    }
}

/// `tokio::time::Sleep` as a [`SleepFuture`]: re-armed in place.
#[pin_project]
struct TokioSleep {
    #[pin]
    inner: tokio::time::Sleep,
}

impl Future for TokioSleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.project().inner.poll(cx)
    }
}

impl SleepFuture for TokioSleep {
    fn reset(self: Pin<&mut Self>, deadline: Instant) {
        self.project().inner.reset(deadline.into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outside_a_runtime_is_a_clear_error() {
        assert!(matches!(runtime(), Err(TokioAdapterError::NoRuntime)));
    }

    #[test]
    fn a_runtime_without_timers_is_a_clear_error() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let err = runtime_from(rt.handle().clone()).unwrap_err();
        assert!(matches!(err, TokioAdapterError::TimerDisabled));
        assert!(err.to_string().contains("enable_time"));
    }

    #[tokio::test(start_paused = true)]
    async fn paused_tokio_clock_drives_machina() {
        let rt = runtime().unwrap();
        let start = rt.now();
        rt.sleep(Duration::from_secs(3600)).await;
        assert!(rt.now() - start >= Duration::from_secs(3600));
        assert!(rt.now() - start < Duration::from_secs(3601));
    }

    #[tokio::test(start_paused = true)]
    async fn coarse_time_follows_a_clock_paused_from_the_start() {
        let rt = runtime().unwrap();
        assert_eq!(rt.coarse_resolution(), Duration::ZERO);
        tokio::time::advance(Duration::from_secs(3600)).await;
        assert_eq!(rt.coarse_now(), rt.now());
    }

    #[tokio::test]
    async fn coarse_time_follows_a_clock_paused_later() {
        let rt = runtime().unwrap();
        let before = rt.coarse_now();
        assert!(before <= rt.now());
        assert!(rt.now() - before <= rt.coarse_resolution() + Duration::from_millis(50));
        tokio::time::pause();
        tokio::time::advance(Duration::from_secs(3600)).await;
        // Within a few real milliseconds the timer notices.
        let mut noticed = false;
        for _ in 0..200 {
            if rt.coarse_now() == rt.now() {
                noticed = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(noticed, "coarse time never followed the paused clock");
        assert_eq!(rt.coarse_resolution(), Duration::ZERO);
        assert!(rt.coarse_now() - before >= Duration::from_secs(3600));
    }

    #[tokio::test]
    async fn a_current_thread_runtime_reads_no_real_clock_as_a_number() {
        // Its clock may be paused at any moment: a number from the real
        // clock would be wrong at once.
        let rt = runtime().unwrap();
        assert!(rt.fast_clock().is_none());
        assert_eq!(rt.now_nanos(), None);
        // Nor is its coarse time the process's coarse clock for good.
        assert!(rt.coarse_clock().is_none());
        assert!(rt.coarse_nanos().is_some(), "while tokio's clock runs");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_multi_thread_runtime_reads_the_real_clock_as_a_number() {
        let rt = runtime().unwrap();
        // Its coarse time is the process's coarse clock, read directly.
        let clock = rt
            .coarse_clock()
            .expect("a multi-thread clock never pauses");
        assert!(std::ptr::eq(clock, CoarseClock::global()));
        let before = clock.elapsed_nanos();
        let coarse = rt.coarse_nanos().expect("the real clock");
        assert!((before..=clock.elapsed_nanos()).contains(&coarse));
        let fast = rt.fast_clock().expect("a multi-thread clock never pauses");
        assert!(std::ptr::eq(fast, FastClock::global()));
        let first = rt.now_nanos().expect("a multi-thread clock never pauses");
        let at = Instant::now();
        tokio::time::sleep(Duration::from_millis(20)).await;
        let spent = rt.now_nanos().unwrap() - first;
        let since = u64::try_from(at.elapsed().as_nanos()).unwrap();
        // The time instants count, to within the calibration's error.
        assert!(spent >= 19_800_000, "{spent} ns for a 20 ms sleep");
        assert!(spent <= since + since / 100, "{spent} ahead of {since}");
        // And a token bucket on it spaces starts by real time.
        use machina_core::limit::{ConcurrentGroup, Limits};
        let group = ConcurrentGroup::new(
            &rt,
            "once in 50 ms",
            Limits::rate(1, Duration::from_millis(50)),
        )
        .unwrap();
        drop(group.try_acquire().expect("the first start"));
        assert!(group.try_acquire().is_err(), "a second within 50 ms");
        tokio::time::sleep(Duration::from_millis(60)).await;
        drop(group.try_acquire().expect("a start once the window passed"));
    }

    #[tokio::test]
    async fn a_rate_follows_a_clock_paused_after_the_group_was_made() {
        use machina_core::limit::{ConcurrentGroup, Limits};
        let rt = runtime().unwrap();
        let group = ConcurrentGroup::new(
            &rt,
            "once a second",
            Limits::rate(1, Duration::from_secs(1)),
        )
        .unwrap();
        tokio::time::pause();
        drop(group.try_acquire().expect("the first start"));
        assert!(
            group.try_acquire().is_err(),
            "a second start within the second"
        );
        // Microseconds of real time later, a second on tokio's clock.
        tokio::time::advance(Duration::from_secs(1)).await;
        drop(group.try_acquire().expect("a second on, on tokio's clock"));
    }

    #[tokio::test(start_paused = true)]
    async fn calendar_time_follows_a_paused_clock() {
        let rt = runtime().unwrap();
        let before = rt.calendar_now();
        tokio::time::advance(Duration::from_secs(86_400)).await;
        let day = rt.calendar_now().duration_since(before).unwrap();
        // A day on, give or take the real microseconds before the pause
        // was noticed.
        assert!(
            day.abs_diff(Duration::from_secs(86_400)) < Duration::from_millis(50),
            "{day:?}"
        );
        // Paused and not advanced: the calendar stands still too.
        let still = rt.calendar_now();
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(rt.calendar_now(), still);
    }

    #[tokio::test]
    async fn calendar_time_is_the_system_clock_on_a_running_clock() {
        let rt = runtime().unwrap();
        let machina = rt.calendar_now();
        let system = SystemTime::now();
        let gap = system.duration_since(machina).unwrap_or_default();
        assert!(gap < Duration::from_millis(50), "{gap:?}");
    }

    #[test]
    fn spawn_after_shutdown_reports_cancelled() {
        let tokio_rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let rt = runtime_from(tokio_rt.handle().clone()).unwrap();
        drop(tokio_rt);
        let handle = rt.spawn(async { 1 }).unwrap();
        let outcome = futures_executor_block_on(handle);
        assert!(outcome.unwrap_err().is_cancelled());
    }

    /// A minimal block_on for the test above (the tokio runtime is gone).
    fn futures_executor_block_on<F: std::future::Future>(f: F) -> F::Output {
        let other = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        other.block_on(f)
    }
}
