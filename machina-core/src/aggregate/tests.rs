//! Aggregation on virtual time: batches by leeway and by max_count, error
//! fan-out, missing results, replies, and callers that give up.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::join_all;

use super::*;
use crate::testing::MockRuntime;

use crate::test_kit::ms;

type Batches = Arc<Mutex<Vec<(u128, Vec<u32>)>>>;

/// An aggregator that records each batch (its virtual start and
/// arguments) and doubles its arguments.
fn doubler(mock: &MockRuntime, leeway: u64, max: Option<usize>) -> (Aggregator<u32, u32>, Batches) {
    let rt = mock.runtime();
    let t0 = rt.now();
    let batches: Batches = Arc::default();
    let seen = batches.clone();
    let clock = rt.clone();
    let agg = Aggregator::new(&rt, ms(leeway), max, move |args: Vec<u32>| {
        seen.lock()
            .unwrap()
            .push(((clock.now() - t0).as_millis(), args.clone()));
        async move { Ok::<_, std::io::Error>(args.iter().map(|a| a * 2).collect()) }
    })
    .unwrap();
    (agg, batches)
}

#[test]
fn calls_within_the_leeway_of_the_first_share_a_batch() {
    let mock = MockRuntime::new();
    let rt = mock.runtime();
    let (agg, batches) = doubler(&mock, 10, None);
    let start = rt.now();
    let outcomes = mock
        .block_on(join_all([(0, 1), (3, 2), (9, 3), (15, 4)].map(
            |(at, arg)| {
                let (rt, agg) = (rt.clone(), agg.clone());
                async move {
                    rt.sleep(ms(at)).await;
                    let value = agg.call(arg).await.unwrap();
                    (value, (rt.now() - start).as_millis())
                }
            },
        )))
        .unwrap();
    assert_eq!(outcomes, [(2, 10), (4, 10), (6, 10), (8, 25)]);
    assert_eq!(
        *batches.lock().unwrap(),
        [(10, vec![1, 2, 3]), (25, vec![4])]
    );
}

#[test]
fn the_call_that_fills_a_batch_runs_it_at_once() {
    let mock = MockRuntime::new();
    let rt = mock.runtime();
    let (agg, batches) = doubler(&mock, 10, Some(2));
    let start = rt.now();
    let outcomes = mock
        .block_on(join_all((1..=3).map(|arg| {
            let (rt, agg) = (rt.clone(), agg.clone());
            async move {
                let value = agg.call(arg).await.unwrap();
                (value, (rt.now() - start).as_millis())
            }
        })))
        .unwrap();
    assert_eq!(outcomes, [(2, 0), (4, 0), (6, 10)]);
    assert_eq!(*batches.lock().unwrap(), [(0, vec![1, 2]), (10, vec![3])]);
}

#[test]
fn a_failed_batch_gives_every_caller_the_same_error() {
    let mock = MockRuntime::new();
    let rt = mock.runtime();
    let agg = Aggregator::new(&rt, ms(5), None, |_args: Vec<u32>| async {
        Err::<Vec<u32>, _>(std::io::Error::other("database down"))
    })
    .unwrap();
    let results = mock
        .block_on(join_all((0..3).map(|i| agg.call(i))))
        .unwrap();
    let errors: Vec<SharedBatchError> = results
        .into_iter()
        .map(|r| match r {
            Err(AggregateError::Failed(e)) => e,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(errors[0].to_string(), "database down");
    assert!(
        errors.iter().all(|e| Arc::ptr_eq(e, &errors[0])),
        "one shared error"
    );
}

#[test]
fn too_few_results_are_a_clear_error_for_the_callers_left_over() {
    let mock = MockRuntime::new();
    let rt = mock.runtime();
    let agg = Aggregator::new(&rt, ms(5), None, |args: Vec<u32>| async move {
        Ok::<_, std::io::Error>(args.into_iter().take(2).collect::<Vec<_>>())
    })
    .unwrap();
    let results = mock
        .block_on(join_all((10..13).map(|i| agg.call(i))))
        .unwrap();
    assert_eq!(results[0].as_ref().unwrap(), &10);
    assert_eq!(results[1].as_ref().unwrap(), &11);
    let err = results[2].as_ref().unwrap_err();
    assert!(matches!(
        err,
        AggregateError::MissingResult {
            position: 2,
            calls: 3,
            returned: 2
        }
    ));
    assert!(
        err.to_string().contains("no result for position 2"),
        "{err}"
    );
}

#[test]
fn callers_that_give_up_do_not_break_the_batch() {
    let mock = MockRuntime::new();
    let rt = mock.runtime();
    let (agg, batches) = doubler(&mock, 10, None);
    let outcomes = mock
        .block_on(async {
            let first = agg.call(1); // opened the batch, then gives up
            let impatient = rt.timeout(ms(1), first);
            let patient = agg.call(2);
            let late = {
                let rt = rt.clone();
                let agg = agg.clone();
                async move {
                    rt.sleep(ms(2)).await;
                    agg.call(3).await
                }
            };
            futures::join!(impatient, patient, late)
        })
        .unwrap();
    assert!(outcomes.0.is_err(), "the first caller timed out");
    assert_eq!(outcomes.1.unwrap(), 4);
    assert_eq!(outcomes.2.unwrap(), 6);
    assert_eq!(
        *batches.lock().unwrap(),
        [(10, vec![1, 2, 3])],
        "the batch still ran"
    );
    assert_eq!(agg.pending(), 0);
}

#[test]
fn replies_may_come_in_any_order_and_a_dropped_reply_is_reported() {
    let mock = MockRuntime::new();
    let rt = mock.runtime();
    let agg = Aggregator::with_replies(
        &rt,
        ms(5),
        None,
        |calls: Vec<(u32, Reply<String>)>| async move {
            for (arg, reply) in calls.into_iter().rev() {
                match arg {
                    0 => drop(reply),
                    1 => reply.fail("no such user"),
                    n => reply.send(format!("user {n}")),
                }
            }
        },
    )
    .unwrap();
    let results = mock
        .block_on(join_all((0..4).map(|i| agg.call(i))))
        .unwrap();
    assert!(matches!(results[0], Err(AggregateError::NoReply)));
    assert_eq!(
        results[1].as_ref().unwrap_err().to_string(),
        "batch failed: no such user"
    );
    assert_eq!(results[2].as_ref().unwrap(), "user 2");
    assert_eq!(results[3].as_ref().unwrap(), "user 3");
}

#[test]
fn configurations_that_could_never_batch_are_refused() {
    let rt = MockRuntime::new().runtime();
    let batch = |args: Vec<u32>| async move { Ok::<_, std::io::Error>(args) };
    assert_eq!(
        Aggregator::new(&rt, Duration::ZERO, None, batch).unwrap_err(),
        AggregatorConfigError::ZeroLeeway
    );
    let err = Aggregator::new(&rt, ms(1), Some(0), batch).unwrap_err();
    assert_eq!(err, AggregatorConfigError::ZeroMaxCount);
    assert!(err.to_string().contains("max_count is 0"));
}

#[test]
fn one_timer_task_serves_every_batch_and_full_batches_leave_no_timer_behind() {
    let mock = MockRuntime::new();
    let (agg, batches) = doubler(&mock, 10, Some(2));
    // Ten full batches, one after another, then one closed by its leeway.
    let values = mock
        .block_on(async {
            let mut values = Vec::new();
            for pair in 0..10u32 {
                let both = join_all([agg.call(2 * pair), agg.call(2 * pair + 1)]).await;
                values.extend(both.into_iter().map(Result::unwrap));
            }
            values.push(agg.call(100).await.unwrap());
            values
        })
        .unwrap();
    assert_eq!(values.len(), 21);
    assert_eq!(values[..4], [0, 2, 4, 6]);
    assert_eq!(values[20], 200);
    let batches = batches.lock().unwrap().clone();
    assert_eq!(batches.len(), 11);
    assert!(
        batches[..10]
            .iter()
            .all(|(at, args)| *at == 0 && args.len() == 2)
    );
    assert_eq!(
        batches[10],
        (10, vec![100]),
        "closed by its leeway, on time"
    );
    // Only the timer is left: parked, with no timer of its own.
    let live = mock.live_tasks();
    assert!(
        live.len() == 1 && live[0].starts_with("aggregate-leeway"),
        "{live:?}"
    );
    assert_eq!(mock.pending_timers(), 0);
}

#[test]
fn a_batch_opened_after_a_full_one_still_gets_its_whole_leeway() {
    let mock = MockRuntime::new();
    let rt = mock.runtime();
    let (agg, batches) = doubler(&mock, 10, Some(2));
    mock.block_on({
        let (rt, agg) = (rt.clone(), agg.clone());
        async move {
            // Batch 1 opens at 0 and fills at 6; batch 2 opens at 6.
            let first = agg.call(1);
            let late = async {
                rt.sleep(ms(6)).await;
                join_all([agg.call(2), agg.call(3)]).await
            };
            let (first, late) = futures::join!(first, late);
            assert_eq!(first.unwrap(), 2);
            assert_eq!(
                late.into_iter().map(Result::unwrap).collect::<Vec<_>>(),
                [4, 6]
            );
        }
    })
    .unwrap();
    assert_eq!(
        *batches.lock().unwrap(),
        [(6, vec![1, 2]), (16, vec![3])],
        "the timer, asleep for batch 1's deadline (10), sleeps on to batch 2's (16)"
    );
}

#[test]
fn dropping_the_aggregator_runs_its_open_batch_and_ends_its_timer() {
    let mock = MockRuntime::new();
    let (agg, batches) = doubler(&mock, 10, None);
    let wanted = Arc::new(Mutex::new(Vec::new()));
    let seen = wanted.clone();
    let replying = Aggregator::with_replies(
        &mock.runtime(),
        ms(1000),
        None,
        move |calls: Vec<(u32, Reply<u32>)>| {
            seen.lock()
                .unwrap()
                .extend(calls.iter().map(|(arg, _)| *arg));
            async {}
        },
    )
    .unwrap();
    mock.block_on(async {
        // A caller that gives up leaves its call in the open batch.
        let gave_up = futures::future::select(Box::pin(replying.call(7)), Box::pin(async {}));
        drop(gave_up.await);
        assert_eq!(agg.call(1).await.unwrap(), 2);
    })
    .unwrap();
    assert_eq!(replying.pending(), 1);
    assert_eq!(
        mock.live_tasks().len(),
        2,
        "two timers, one parked, one asleep"
    );
    drop(replying);
    mock.run_until_stalled().unwrap();
    assert_eq!(
        *wanted.lock().unwrap(),
        [7],
        "run at once, not after its leeway"
    );
    assert_eq!(mock.elapsed(), ms(10));
    drop(agg);
    mock.run_until_stalled().unwrap();
    let live = mock.live_tasks();
    assert!(
        live.len() == 1 && live[0].starts_with("aggregate-leeway"),
        "the parked timer ended, the sleeping one not yet: {live:?}"
    );
    // The sleeping one ends when it wakes, holding nothing meanwhile.
    mock.advance(ms(1000)).unwrap();
    assert_eq!(mock.live_tasks(), Vec::<String>::new(), "both timers ended");
    assert_eq!(batches.lock().unwrap().len(), 1);
}
