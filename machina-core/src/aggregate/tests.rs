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
