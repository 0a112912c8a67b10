//! Several groups at once: a call starts in all of them or waits, a refusal
//! by one spends nothing in another, and overlapping sets never deadlock.

#[allow(unused_imports, reason = "each area uses part of the shared prelude")]
use super::*;

fn sorted_groups(permit: &Permit) -> Vec<&str> {
    let mut names = permit.groups();
    names.sort_unstable();
    names
}

#[test]
fn a_call_in_two_groups_starts_in_both_or_holds_nothing() {
    let (mock, rt, t0) = setup();
    let a = group(&rt, "a", Limits::new().max_in_flight(2));
    let b = group(&rt, "b", Limits::new().max_in_flight(1));
    let starts = log();
    let b_holder = call(&rt, t0, &[&b], 0, (0, 100), &starts);
    let names = log();
    let both = {
        let (rt2, a, b, names) = (rt.clone(), a.clone(), b.clone(), names.clone());
        rt.spawn(async move {
            rt2.sleep_until(t0 + ms(10)).await;
            let permit = acquire_all(&[a.clone(), b.clone()]).unwrap().await;
            let at = since(&rt2, t0);
            push(&names, sorted_groups(&permit).join(","));
            assert_eq!((a.in_flight(), b.in_flight()), (1, 1));
            rt2.sleep(ms(50)).await;
            drop(permit);
            at
        })
        .unwrap()
    };
    mock.advance(ms(99)).unwrap();
    assert_eq!((a.in_flight(), b.in_flight()), (0, 1), "nothing taken in a");
    // It waits for b only: a, which would admit it, does not queue it.
    assert_eq!((a.waiting(), b.waiting()), (0, 1));
    mock.advance(ms(1)).unwrap();
    assert_eq!((a.in_flight(), b.in_flight()), (1, 1));
    assert_eq!((a.waiting(), b.waiting()), (0, 0));
    assert_eq!(join_all(&mock, vec![both, b_holder]), [100, 0]);
    assert_eq!(entries(&names), ["a,b"]);
    assert_eq!((a.in_flight(), b.in_flight()), (0, 0));
}

#[test]
fn try_acquire_all_starts_in_every_group_or_in_none() {
    let (_mock, rt, t0) = setup();
    let a = group(&rt, "a", Limits::new().max_starts(1, ms(1000)));
    let b = group(&rt, "b", Limits::new().max_in_flight(1));
    let held = b.try_acquire().unwrap();
    for order in [[a.clone(), b.clone()], [b.clone(), a.clone()]] {
        let refused = try_acquire_all(&order).unwrap_err();
        assert_eq!(refused.reason, Reason::InFlight);
        assert_eq!(refused.until, None);
        assert_eq!(a.starts_in_window(), 0, "no token of a spent");
        assert_eq!(a.in_flight(), 0);
        assert_eq!(a.stats().acquired, 0);
    }
    drop(held);
    let permit = try_acquire_all(&[b.clone(), a.clone()]).unwrap();
    assert_eq!(sorted_groups(&permit), ["a", "b"]);
    assert_eq!((a.in_flight(), b.in_flight()), (1, 1));
    drop(permit);

    // Now a refuses (window): b gives nothing either.
    let refused = try_acquire_all(&[a.clone(), b.clone()]).unwrap_err();
    assert_eq!(refused.reason, Reason::Window);
    assert_eq!(refused.until, Some(t0 + ms(1000)));
    assert_eq!((a.in_flight(), b.in_flight()), (0, 0));
    assert_eq!((a.stats().acquired, b.stats().acquired), (1, 2));
}

#[test]
fn waiting_for_b_spends_no_token_of_a_and_the_window_runs_from_the_start() {
    let (mock, rt, t0) = setup();
    let a = group(&rt, "a", Limits::new().max_starts(1, ms(1000)));
    let b = group(&rt, "b", Limits::new().max_in_flight(1));
    let starts = log();
    let b_holder = call(&rt, t0, &[&b], 0, (0, 500), &starts);
    let both = call(&rt, t0, &[&a, &b], 1, (100, 0), &starts);
    let later = call(&rt, t0, &[&a], 2, (600, 0), &starts);
    mock.advance(ms(499)).unwrap();
    assert_eq!(a.starts_in_window(), 0);
    assert_eq!((a.in_flight(), a.waiting(), b.waiting()), (0, 0, 1));
    mock.advance(ms(1)).unwrap();
    assert_eq!(a.starts_in_window(), 1);
    assert_eq!(a.next_start(), Some(t0 + ms(1500)));
    // The call in `a` alone waits for the token spent at 500, not at 100.
    assert_eq!(join_all(&mock, vec![b_holder, both, later]), [0, 500, 1500]);
}

#[test]
fn a_call_in_two_windows_sleeps_once_until_the_later_opening() {
    // b's token is spent at 0, a's at 50: a call in both, arriving at 100,
    // starts when both are back, at 1050; meanwhile it spends neither, and
    // is not woken when only b's token is back, at 1000.
    let (mock, rt, t0) = setup();
    let a = group(&rt, "a", Limits::new().max_starts(1, ms(1000)));
    let b = group(&rt, "b", Limits::new().max_starts(1, ms(1000)));
    let starts = log();
    let in_b = call(&rt, t0, &[&b], 0, (0, 0), &starts);
    let in_a = call(&rt, t0, &[&a], 1, (50, 0), &starts);
    let polls = Arc::new(AtomicUsize::new(0));
    let both = {
        let (rt2, a, b, polls) = (rt.clone(), a.clone(), b.clone(), polls.clone());
        rt.spawn(async move {
            rt2.sleep_until(t0 + ms(100)).await;
            let permit = counting_polls(acquire_all(&[a, b]).unwrap(), polls).await;
            drop(permit);
            since(&rt2, t0)
        })
        .unwrap()
    };
    mock.advance(ms(1049)).unwrap();
    assert_eq!((a.starts_in_window(), b.starts_in_window()), (1, 0));
    assert_eq!((a.waiting(), b.waiting()), (1, 1));
    assert_eq!(
        polls.load(Ordering::SeqCst),
        1,
        "queued at 100, not woken since"
    );
    assert_eq!(join_all(&mock, vec![both]), [1050]);
    assert_eq!(polls.load(Ordering::SeqCst), 2);
    assert_eq!(join_all(&mock, vec![in_b, in_a]), [0, 50]);
    assert_eq!((a.starts_in_window(), b.starts_in_window()), (1, 1));
}

#[test]
fn three_groups_in_a_cycle_do_not_deadlock() {
    // X needs a and b, Y b and c, Z c and a. X starts at 0. Y waits for b
    // only (c is free), Z for a only. X ends at 10 and frees a first: Z,
    // waiting for a, starts then with c; Y, woken for b, now finds c taken
    // and starts at 20. Nobody waits on anybody in a circle.
    let (mock, rt, t0) = setup();
    let [a, b, c] = ["a", "b", "c"].map(|name| group(&rt, name, Limits::new().max_in_flight(1)));
    let starts = log();
    let x = call(&rt, t0, &[&a, &b], 0, (0, 10), &starts);
    let y = call(&rt, t0, &[&b, &c], 1, (0, 10), &starts);
    let z = call(&rt, t0, &[&c, &a], 2, (0, 10), &starts);
    assert_eq!(join_all(&mock, vec![x, y, z]), [0, 20, 10]);
    for g in [&a, &b, &c] {
        assert_eq!((g.in_flight(), g.waiting()), (0, 0), "{}", g.name());
    }
}

#[test]
fn many_calls_on_overlapping_sets_all_finish_within_their_limits() {
    let (mock, rt, t0) = setup();
    let a = group(
        &rt,
        "a",
        Limits::new().max_in_flight(2).max_starts(3, ms(40)),
    );
    let b = group(&rt, "b", Limits::new().max_in_flight(1));
    let c = group(&rt, "c", Limits::new().max_starts(2, ms(25)));
    let sets = [
        vec![a.clone(), b.clone()],
        vec![b.clone(), c.clone()],
        vec![c.clone(), a.clone()],
        vec![a.clone(), b.clone(), c.clone()],
        vec![a.clone()],
        vec![b.clone()],
        vec![c.clone()],
    ];
    let violations = log();
    let handles: Vec<_> = (0..90u64)
        .map(|i| {
            let set = sets[i as usize % sets.len()].clone();
            let (rt2, violations) = (rt.clone(), violations.clone());
            rt.spawn(async move {
                rt2.sleep_until(t0 + ms(i * 3 % 50)).await;
                let permit = acquire_all(&set).unwrap().await;
                for g in &set {
                    let limits = g.limits();
                    let over_slots = limits
                        .in_flight_limit()
                        .is_some_and(|max| g.in_flight() > max);
                    let over_window = limits
                        .starts_limit()
                        .is_some_and(|(max, _)| g.starts_in_window() > max);
                    if over_slots || over_window {
                        push(&violations, (i, g.name().to_owned()));
                    }
                }
                rt2.sleep(ms(i * 7 % 13)).await;
                drop(permit);
            })
            .unwrap()
        })
        .collect();
    join_all(&mock, handles);
    assert!(
        entries(&violations).is_empty(),
        "{:?}",
        entries(&violations)
    );
    for g in [&a, &b, &c] {
        assert_eq!((g.in_flight(), g.waiting()), (0, 0), "{}", g.name());
    }
    let acquired: u64 = [&a, &b, &c].iter().map(|g| g.stats().acquired).sum();
    // Each of the 7 sets is used by 12 or 13 of the 90 calls.
    let per_set = |k: u64| (0..90).filter(|i| i % 7 == k).count() as u64;
    let group_slots = per_set(0) * 2
        + per_set(1) * 2
        + per_set(2) * 2
        + per_set(3) * 3
        + per_set(4)
        + per_set(5)
        + per_set(6);
    assert_eq!(acquired, group_slots);
}

#[test]
fn a_group_named_twice_is_taken_once() {
    let (mock, rt, _t0) = setup();
    let a = group(&rt, "a", Limits::new().max_in_flight(1));
    let permit = try_acquire_all(&[a.clone(), a.clone()]).unwrap();
    assert_eq!((permit.groups(), a.in_flight()), (vec!["a"], 1));
    drop(permit);
    let permit = mock
        .block_on(acquire_all(&[a.clone(), a.clone()]).unwrap())
        .unwrap();
    assert_eq!((permit.groups(), a.in_flight()), (vec!["a"], 1));
    drop(permit);
    assert_eq!(a.in_flight(), 0);
}

#[test]
fn try_acquire_all_of_no_group_is_an_unlimited_permit() {
    let permit = try_acquire_all(&[]).unwrap();
    assert!(permit.groups().is_empty());
}
