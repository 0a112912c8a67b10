//! Fairness: first come first served, no starvation behind a backlog or a
//! stream of narrower calls, and one wake per freed slot or token.

#[allow(unused_imports, reason = "each area uses part of the shared prelude")]
use super::*;

/// First-come first-served starts of calls `(arrival, hold)` on one slot.
fn fifo_on_one_slot(schedule: &[(u64, u64)]) -> Vec<u64> {
    let mut free_at = 0;
    schedule
        .iter()
        .map(|&(arrival, hold)| {
            let start = arrival.max(free_at);
            free_at = start + hold;
            start
        })
        .collect()
}

#[test]
fn waiters_are_served_in_arrival_order() {
    let (mock, rt, t0) = setup();
    let api = group(&rt, "api", Limits::new().max_in_flight(1));
    let starts = log();
    let schedule = [
        (0, 7),
        (1, 3),
        (2, 12),
        (3, 1),
        (4, 5),
        (30, 2),
        (30, 9),
        (31, 4),
        (60, 0),
        (60, 6),
    ];
    let handles = calls(&rt, t0, &[&api], &schedule, &starts);
    let expected = fifo_on_one_slot(&schedule);
    assert_eq!(expected, [0, 7, 10, 22, 23, 30, 32, 41, 60, 60]);
    assert_eq!(join_all(&mock, handles), expected);
    let order: Vec<usize> = entries(&starts).into_iter().map(|(id, _)| id).collect();
    assert_eq!(order, (0..10).collect::<Vec<_>>());
}

#[test]
fn callers_arriving_at_one_instant_are_served_in_the_order_they_asked() {
    let (mock, rt, t0) = setup();
    let api = group(
        &rt,
        "api",
        Limits::new().max_in_flight(2).max_starts(3, ms(100)),
    );
    let starts = log();
    let handles = calls(&rt, t0, &[&api], &[(0, 30); 9], &starts);
    // 0 0: two slots. 30: slots free, third token. 100 100: the tokens of
    // the two starts at 0 return. 130: slots free, the token of 30 returns.
    // 200 200: tokens of 100. 230: token of 130.
    assert_eq!(
        join_all(&mock, handles),
        [0, 0, 30, 100, 100, 130, 200, 200, 230]
    );
    let order: Vec<usize> = entries(&starts).into_iter().map(|(id, _)| id).collect();
    assert_eq!(order, (0..9).collect::<Vec<_>>());
}

#[test]
fn a_backlog_and_a_greedy_caller_never_get_ahead_of_an_early_waiter() {
    let (mock, rt, t0) = setup();
    let api = group(&rt, "api", Limits::new().max_in_flight(1));
    let starts = log();
    // The holder, then the early waiter at 10, then a backlog of 89 calls,
    // one per ms from 11 to 99.
    let mut schedule = vec![(0, 100), (10, 0)];
    schedule.extend((11..100).map(|arrival| (arrival, 1)));
    let handles = calls(&rt, t0, &[&api], &schedule, &starts);

    // A greedy caller tries to slip in every ms while the early one waits.
    let refusals = log();
    let greedy = {
        let (rt2, api, refusals) = (rt.clone(), api.clone(), refusals.clone());
        rt.spawn(async move {
            for at in 11..100 {
                rt2.sleep_until(t0 + ms(at)).await;
                match api.try_acquire() {
                    Ok(_) => push(&refusals, None),
                    Err(refused) => push(&refusals, Some(refused)),
                }
            }
        })
        .unwrap()
    };
    let started = join_all(&mock, handles);
    join_all(&mock, vec![greedy]);

    let queue = Refusal {
        reason: Reason::Queue,
        until: None,
    };
    assert_eq!(entries(&refusals), vec![Some(queue); 89]);
    assert_eq!(started[..2], [0, 100], "the early waiter starts first");
    let backlog: Vec<u64> = (100..189).collect();
    assert_eq!(started[2..], backlog[..]);
    let order: Vec<usize> = entries(&starts).into_iter().map(|(id, _)| id).collect();
    assert_eq!(order, (0..91).collect::<Vec<_>>());
    assert_eq!(api.stats().rejected, 89);
}

#[test]
fn a_backlog_never_takes_the_next_token_from_an_early_waiter() {
    let (mock, rt, t0) = setup();
    let api = group(&rt, "api", Limits::new().max_starts(1, ms(50)));
    let starts = log();
    let mut schedule = vec![(0, 0), (1, 0)];
    schedule.extend((2..200).map(|arrival| (arrival, 0)));
    let handles = calls(&rt, t0, &[&api], &schedule, &starts);
    let started = join_all(&mock, handles);
    let expected: Vec<u64> = (0..200).map(|k| 50 * k).collect();
    assert_eq!(started, expected);
}

#[test]
fn an_early_call_in_two_groups_is_not_starved_by_single_group_traffic() {
    // `a` and `b` are each busy most of the time, never both free at the
    // same instant on their own: a call needing both that only ever waited
    // for the group blocking it could wait forever. It arrives at 12 and
    // waits for both; at 15 b would admit it but a does not (passed over
    // once: it leaves b's queue, and b's next caller runs 15..25); at 20 a
    // would admit it but b does not (passed over twice). From then on it
    // keeps its place in both queues, and starts at 25 when b frees; the
    // calls that came after it wait behind it.
    let (mock, rt, t0) = setup();
    let a = group(&rt, "a", Limits::new().max_in_flight(1));
    let b = group(&rt, "b", Limits::new().max_in_flight(1));
    let starts = log();
    let a_calls: Vec<(u64, u64)> = (0..6).map(|k| (10 * k, 10)).collect();
    let b_calls: Vec<(u64, u64)> = (0..6).map(|k| (5 + 10 * k, 10)).collect();
    let a_handles = calls(&rt, t0, &[&a], &a_calls, &starts);
    let b_handles = calls(&rt, t0, &[&b], &b_calls, &starts);
    let both = call(&rt, t0, &[&a, &b], 99, (12, 10), &starts);

    assert_eq!(join_all(&mock, vec![both]), [25]);
    assert_eq!(join_all(&mock, a_handles), [0, 10, 35, 45, 55, 65]);
    assert_eq!(join_all(&mock, b_handles), [5, 15, 35, 45, 55, 65]);
}

/// Spawns `n` waiters on `group`, each counting the polls of its acquire,
/// recording its start and holding its permit for `hold` ms.
fn counted_waiters(
    rt: &Runtime,
    t0: Instant,
    group: &ConcurrentGroup,
    n: usize,
    hold: u64,
    starts: &Log<(usize, u64)>,
) -> (Vec<Arc<AtomicUsize>>, Vec<JoinHandle<()>>) {
    let counters: Vec<_> = (0..n).map(|_| Arc::new(AtomicUsize::new(0))).collect();
    let handles = counters
        .iter()
        .enumerate()
        .map(|(id, polls)| {
            let (rt2, group, polls, starts) =
                (rt.clone(), group.clone(), polls.clone(), starts.clone());
            rt.spawn(async move {
                let permit = counting_polls(group.acquire(), polls).await;
                push(&starts, (id, since(&rt2, t0)));
                rt2.sleep(ms(hold)).await;
                drop(permit);
            })
            .unwrap()
        })
        .collect();
    (counters, handles)
}

/// Asserts that only the waiter `head` was polled, once, and at most the
/// one behind it (woken once by the head as it leaves the queue).
fn assert_only_head_woken(polls: &[usize], head: usize) {
    assert_eq!(polls[head], 1, "head {head}: {polls:?}");
    for (i, &count) in polls.iter().enumerate() {
        match i {
            i if i == head => {}
            i if i == head + 1 => assert!(count <= 1, "next of {head}: {polls:?}"),
            _ => assert_eq!(count, 0, "waiter {i} with head {head}: {polls:?}"),
        }
    }
}

#[test]
fn a_freed_slot_wakes_only_the_head_waiter() {
    let (mock, rt, t0) = setup();
    let api = group(&rt, "api", Limits::new().max_in_flight(1));
    let holder = api.try_acquire().unwrap();
    let starts = log();
    let (counters, handles) = counted_waiters(&rt, t0, &api, 8, 10, &starts);
    mock.run_until_stalled().unwrap();
    assert_eq!(take_polls(&counters), [1; 8], "each waiter queued once");
    assert_eq!(api.waiting(), 8);

    mock.advance(ms(5)).unwrap();
    assert_eq!(take_polls(&counters), [0; 8], "nothing happens while held");

    drop(holder);
    mock.run_until_stalled().unwrap();
    assert_only_head_woken(&take_polls(&counters), 0);
    for head in 1..8 {
        mock.advance(ms(10)).unwrap();
        assert_only_head_woken(&take_polls(&counters), head);
        assert_eq!(api.in_flight(), 1);
        assert_eq!(api.waiting(), 7 - head);
    }
    join_all(&mock, handles);
    let expected: Vec<(usize, u64)> = (0..8).map(|id| (id, 5 + 10 * id as u64)).collect();
    assert_eq!(entries(&starts), expected);
}

#[test]
fn a_returning_token_wakes_only_the_head_waiter_and_only_it_sleeps() {
    let (mock, rt, t0) = setup();
    let api = group(&rt, "api", Limits::new().max_starts(1, ms(100)));
    drop(api.try_acquire().unwrap());
    let starts = log();
    let (counters, handles) = counted_waiters(&rt, t0, &api, 8, 0, &starts);
    mock.run_until_stalled().unwrap();
    assert_eq!(take_polls(&counters), [1; 8]);
    assert_eq!(
        mock.pending_timers(),
        1,
        "only the head sleeps on the window"
    );

    mock.advance(ms(99)).unwrap();
    assert_eq!(
        take_polls(&counters),
        [0; 8],
        "no wake before the token returns"
    );
    for head in 0..8 {
        mock.advance(ms(if head == 0 { 1 } else { 100 })).unwrap();
        assert_only_head_woken(&take_polls(&counters), head);
        assert_eq!(
            mock.pending_timers(),
            usize::from(head < 7),
            "one timer, the new head's"
        );
    }
    join_all(&mock, handles);
    let expected: Vec<(usize, u64)> = (0..8).map(|id| (id, 100 * (id as u64 + 1))).collect();
    assert_eq!(entries(&starts), expected);
}
