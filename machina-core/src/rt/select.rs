//! Racing and cancelling groups of tasks (aiomisc `select` and
//! `cancel_tasks`), where they add something over `futures`: the winner's
//! index with its value, a deadline on the race, and cancelling spawned
//! tasks *and waiting until they have ended*.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use futures::future::select_all;

use super::join::{JoinError, JoinHandle};
use super::runtime::Runtime;
use super::timeout::Elapsed;

/// The first of several futures to finish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selected<T> {
    /// Its position in the list given.
    pub index: usize,
    /// Its value.
    pub value: T,
}

/// Runs `futures` concurrently until the first finishes; the others are
/// dropped, which cancels them. `None` for an empty list.
///
/// # Examples
///
/// ```
/// use machina_core::rt::select;
/// use machina_core::testing::MockRuntime;
/// use std::time::Duration;
///
/// let mock = MockRuntime::new();
/// let rt = mock.runtime();
/// let winner = mock.block_on(select(
///     [3, 1, 2].map(|s| { let rt = rt.clone(); async move { rt.sleep(Duration::from_secs(s)).await; s } }),
/// )).unwrap().unwrap();
/// assert_eq!((winner.index, winner.value), (1, 1));
/// assert_eq!(mock.elapsed(), Duration::from_secs(1));
/// ```
pub async fn select<F, I>(futures: I) -> Option<Selected<F::Output>>
where
    I: IntoIterator<Item = F>,
    F: Future,
{
    let boxed: Vec<Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    if boxed.is_empty() {
        return None;
    }
    let (value, index, _rest) = select_all(boxed).await;
    Some(Selected { index, value })
}

/// [`select`] with a deadline: `Err(Elapsed)` if none finishes within
/// `limit` (and all are dropped).
///
/// # Errors
/// [`Elapsed`] when the limit passes first.
pub async fn select_timeout<F, I>(
    runtime: &Runtime,
    limit: Duration,
    futures: I,
) -> Result<Option<Selected<F::Output>>, Elapsed>
where
    I: IntoIterator<Item = F>,
    F: Future,
{
    runtime.timeout(limit, select(futures)).await
}

/// What to do with the tasks that lose a [`select_tasks`] race.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Losers {
    /// Abort them and wait until they have ended.
    Cancel,
    /// Leave them running; they are handed back.
    Keep,
}

/// Races spawned tasks: the first to end wins; the losers are aborted and
/// awaited ([`Losers::Cancel`]) or handed back still running
/// ([`Losers::Keep`]). `None` for an empty list.
pub async fn select_tasks<T: Send + 'static>(
    handles: Vec<JoinHandle<T>>,
    losers: Losers,
) -> Option<(Selected<Result<T, JoinError>>, Vec<JoinHandle<T>>)> {
    if handles.is_empty() {
        return None;
    }
    let (value, index, rest) = select_all(handles).await;
    let rest = match losers {
        Losers::Keep => rest,
        Losers::Cancel => {
            cancel_all(rest).await;
            Vec::new()
        }
    };
    Some((Selected { index, value }, rest))
}

/// Aborts every task and waits until each has ended; returns how each
/// ended (a task that finished before the abort keeps its value).
pub async fn cancel_all<T: Send + 'static>(
    handles: Vec<JoinHandle<T>>,
) -> Vec<Result<T, JoinError>> {
    for handle in &handles {
        handle.abort();
    }
    futures::future::join_all(handles).await
}

#[cfg(all(test, feature = "test-util"))]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;
    use crate::testing::MockRuntime;

    use crate::test_kit::secs;

    #[test]
    fn the_first_to_finish_wins_and_an_empty_race_has_no_winner() {
        let mock = MockRuntime::new();
        let rt = mock.runtime();
        let winner = mock
            .block_on(select([5, 2, 9].map(|s| {
                let rt = rt.clone();
                async move {
                    rt.sleep(secs(s)).await;
                    s * 10
                }
            })))
            .unwrap()
            .unwrap();
        assert_eq!(
            winner,
            Selected {
                index: 1,
                value: 20
            }
        );
        assert_eq!(mock.elapsed(), secs(2));
        assert_eq!(mock.pending_timers(), 0, "the losers were dropped");
        let none = mock
            .block_on(select(Vec::<std::future::Ready<()>>::new()))
            .unwrap();
        assert!(none.is_none());
    }

    #[test]
    fn a_race_with_a_deadline_gives_up_at_it() {
        let mock = MockRuntime::new();
        let rt = mock.runtime();
        let outcome = mock
            .block_on(select_timeout(
                &rt,
                secs(3),
                [4, 5].map(|s| rt.sleep(secs(s))),
            ))
            .unwrap();
        assert_eq!(outcome.unwrap_err().limit(), secs(3));
        assert_eq!(mock.elapsed(), secs(3));
    }

    #[test]
    fn losing_tasks_are_cancelled_and_awaited_or_kept() {
        let mock = MockRuntime::new();
        let rt = mock.runtime();
        let dropped = Arc::new(AtomicBool::new(false));
        struct Flag(Arc<AtomicBool>);
        impl Drop for Flag {
            fn drop(&mut self) {
                self.0.store(true, Ordering::SeqCst);
            }
        }
        let spawn = |s: u64, flag: Option<Flag>| {
            let rt2 = rt.clone();
            rt.spawn(async move {
                let _flag = flag;
                rt2.sleep(secs(s)).await;
                s
            })
            .unwrap()
        };
        let handles = vec![spawn(10, Some(Flag(dropped.clone()))), spawn(1, None)];
        let (winner, rest) = mock
            .block_on(select_tasks(handles, Losers::Cancel))
            .unwrap()
            .unwrap();
        assert_eq!((winner.index, winner.value.unwrap()), (1, 1));
        assert!(rest.is_empty());
        assert!(
            dropped.load(Ordering::SeqCst),
            "the loser ended before the race returned"
        );

        let handles = vec![spawn(3, None), spawn(2, None)];
        let (winner, rest) = mock
            .block_on(select_tasks(handles, Losers::Keep))
            .unwrap()
            .unwrap();
        assert_eq!(winner.index, 1);
        let kept = mock.block_on(async move {
            let mut values = Vec::new();
            for h in rest {
                values.push(h.await.unwrap());
            }
            values
        });
        assert_eq!(kept.unwrap(), [3], "the loser ran on to its end");
    }

    #[test]
    fn cancel_all_aborts_and_reports_how_each_ended() {
        let mock = MockRuntime::new();
        let rt = mock.runtime();
        let quick = rt.spawn(async { 1 }).unwrap();
        mock.run_until_stalled().unwrap();
        let rt2 = rt.clone();
        let slow = rt
            .spawn(async move {
                rt2.sleep(secs(60)).await;
                2
            })
            .unwrap();
        let outcomes = mock.block_on(cancel_all(vec![quick, slow])).unwrap();
        assert_eq!(
            *outcomes[0].as_ref().unwrap(),
            1,
            "finished before the abort"
        );
        assert!(outcomes[1].as_ref().unwrap_err().is_cancelled());
        assert_eq!(mock.elapsed(), Duration::ZERO);
    }
}
