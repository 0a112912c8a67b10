//! Seeded shuffling of ready order and the seeded runtime RNG.

#[allow(unused_imports, reason = "each area uses part of the shared prelude")]
use super::*;

// ---------------------------------------------------------------------------
// 8. Seeds
// ---------------------------------------------------------------------------

/// The order in which 20 ready tasks of `mock` run.
fn ready_order(mock: &MockRuntime) -> Vec<usize> {
    let rt = mock.runtime();
    let order = log();
    for i in 0..20 {
        let order = order.clone();
        detach(&rt, async move { push(&order, i) });
    }
    mock.run_until_stalled().unwrap();
    entries(&order)
}

#[test]
fn seeded_shuffle_is_reproducible_and_not_fifo() {
    let fifo: Vec<usize> = (0..20).collect();
    assert_eq!(ready_order(&MockRuntime::new()), fifo);
    let mut orders = Vec::new();
    for seed in [1, 2, 3, 42] {
        let first = ready_order(&MockRuntime::with_seed(seed));
        let second = ready_order(&MockRuntime::with_seed(seed));
        assert_eq!(first, second, "seed {seed} must replay the same order");
        let mut sorted = first.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, fifo, "seed {seed} must run every task once");
        orders.push(first);
    }
    assert!(orders.iter().any(|o| *o != fifo), "{orders:?}");
    assert!(orders.iter().any(|o| *o != orders[0]), "{orders:?}");
    // The builder's seed is the same as with_seed.
    assert_eq!(
        ready_order(&MockRuntime::builder().seed(42).build()),
        orders[3]
    );
}

#[test]
fn seeded_shuffle_applies_to_tasks_woken_by_timers() {
    let order = |seed: u64| {
        let mock = MockRuntime::with_seed(seed);
        let rt = mock.runtime();
        let fired = log();
        for i in 0..20 {
            let (rt2, fired) = (rt.clone(), fired.clone());
            detach(&rt, async move {
                rt2.sleep(secs(1)).await;
                push(&fired, i);
            });
        }
        mock.advance(secs(1)).unwrap();
        entries(&fired)
    };
    let seeds = [5, 6, 7];
    let fifo: Vec<usize> = (0..20).collect();
    for seed in seeds {
        assert_eq!(order(seed), order(seed));
        assert_eq!(order(seed).len(), 20);
    }
    assert!(seeds.iter().any(|&s| order(s) != fifo));
}

#[test]
fn runtime_rng_is_fixed_by_the_seed() {
    let draws = |mock: &MockRuntime| -> Vec<u64> {
        let rt = mock.runtime();
        (0..8).map(|_| rt.rng().next_u64()).collect()
    };
    let reference = |seed: u64| -> Vec<u64> {
        let rng = RuntimeRng::from_seed(seed);
        (0..8).map(|_| rng.next_u64()).collect()
    };
    let a = draws(&MockRuntime::with_seed(7));
    assert_eq!(a, draws(&MockRuntime::with_seed(7)));
    assert_eq!(a, reference(7));
    assert_ne!(a, draws(&MockRuntime::with_seed(8)));

    // Without a seed the generator is still deterministic (seeded with 0).
    let unseeded = draws(&MockRuntime::new());
    assert_eq!(unseeded, draws(&MockRuntime::new()));
    assert_eq!(unseeded, reference(0));

    assert_eq!(MockRuntime::with_seed(7).seed(), Some(7));
    assert_eq!(MockRuntime::new().seed(), None);
}

#[test]
fn draws_inside_seeded_tasks_replay() {
    let run = |seed: u64| {
        let mock = MockRuntime::with_seed(seed);
        let rt = mock.runtime();
        let draws = log();
        for i in 0..10 {
            let (rt2, draws) = (rt.clone(), draws.clone());
            detach(&rt, async move { push(&draws, (i, rt2.rng().next_u64())) });
        }
        mock.run_until_stalled().unwrap();
        entries(&draws)
    };
    assert_eq!(run(11), run(11));
    assert_ne!(run(11), run(12));
}
