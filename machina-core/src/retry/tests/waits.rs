//! The wait sequences of the four rule kinds, as pure iterators and as
//! `Retry::call` sleeps them; seeding through the runtime's generator.

#[allow(unused_imports, reason = "each area uses part of the shared prelude")]
use super::*;

#[test]
fn fixed_waits_the_same_before_every_retry() {
    let mock = MockRuntime::new();
    let retry = Retry::new().rule(Rule::fixed(secs(2)).retries(3));
    let (result, starts) = call(&mock, &retry, failures(4));
    assert_eq!(starts, [0, 2, 4, 6].map(secs));
    assert!(result.is_err());
    assert_eq!(mock.elapsed(), secs(6), "no sleep after the last attempt");
}

#[test]
fn fibonacci_waits_1_1_2_3_5_seconds() {
    let mock = MockRuntime::new();
    let retry = Retry::new().rule(Rule::fibonacci().retries(10));
    let (result, starts) = call(&mock, &retry, failures(11));
    assert!(result.is_err());
    assert_eq!(
        gaps(&starts),
        [1, 1, 2, 3, 5, 8, 13, 21, 34, 55].map(secs),
        "starts {starts:?}"
    );
    assert_eq!(starts[..6], [0, 1, 2, 4, 7, 12].map(secs));
}

#[test]
fn fibonacci_scales_with_its_base() {
    let mock = MockRuntime::new();
    let retry = Retry::new().rule(Rule::fibonacci_with_base(ms(100)).retries(4));
    let mut script = failures(4);
    script.push(ok());
    let (result, starts) = call(&mock, &retry, script);
    assert_eq!(result.unwrap(), "done");
    assert_eq!(starts, [0, 100, 200, 400, 700].map(ms));
    assert_eq!(
        Rule::fibonacci().retries(1).wait(),
        Wait::Fibonacci { base: secs(1) },
        "exmachina counts in seconds"
    );
}

#[test]
fn random_range_waits_uniformly_inside_its_bounds() {
    let rule = Rule::random_range(ms(200), ms(500)).retries(1);
    assert_eq!(
        rule.wait(),
        Wait::RandomRange {
            min: ms(200),
            max: ms(500)
        }
    );
    let draws: Vec<Duration> = rule
        .wait()
        .waits(RuntimeRng::from_seed(3))
        .take(3000)
        .collect();
    assert!(draws.iter().all(|d| (ms(200)..=ms(500)).contains(d)));
    // Uniform: each third of the range gets about a third of the draws
    // (1000 ± 150 is about six standard deviations).
    let mut thirds = [0u32; 3];
    for d in &draws {
        let third = (*d - ms(200)).as_nanos() * 3 / ms(300).as_nanos();
        thirds[usize::try_from(third).unwrap().min(2)] += 1;
    }
    assert!(thirds.iter().all(|n| (850..1150).contains(n)), "{thirds:?}");
    // The bounds may come in either order.
    let reversed = Rule::random_range(ms(500), ms(200)).retries(1).wait();
    assert!(
        reversed
            .waits(RuntimeRng::from_seed(3))
            .take(500)
            .all(|d| (ms(200)..=ms(500)).contains(&d))
    );
}

#[test]
fn random_range_call_sleeps_the_seeded_draws() {
    let mock = MockRuntime::with_seed(5);
    let rule = Rule::random_range(ms(200), ms(500)).retries(20);
    let expected: Vec<Duration> = rule
        .wait()
        .waits(RuntimeRng::from_seed(5))
        .take(20)
        .collect();
    let retry = Retry::new().rule(rule);
    let (_, starts) = call(&mock, &retry, failures(21));
    let slept = gaps(&starts);
    assert_eq!(slept, expected);
    assert!(slept.iter().all(|d| (ms(200)..=ms(500)).contains(d)));
    assert!(slept.iter().any(|d| *d != slept[0]), "{slept:?}");
}

#[test]
fn random_range_secs_clamps_negative_bounds_to_zero() {
    let wait = |min: f64, max: f64| Rule::random_range_secs(min, max).retries(1).wait();
    let range = |min, max| Wait::RandomRange { min, max };
    assert_eq!(wait(0.5, 1.5), range(ms(500), ms(1500)));
    assert_eq!(wait(-5.0, 2.0), range(Duration::ZERO, secs(2)));
    assert_eq!(wait(2.0, -5.0), range(secs(2), Duration::ZERO));
    assert_eq!(wait(f64::NAN, -1.0), range(Duration::ZERO, Duration::ZERO));
    // A clamped lower bound really is 0: draws reach below 10% of the range
    // (a bound taken by absolute value would start at 2 s).
    let draws: Vec<Duration> = wait(-5.0, 2.0)
        .waits(RuntimeRng::from_seed(1))
        .take(500)
        .collect();
    assert!(draws.iter().all(|d| *d <= secs(2)));
    assert!(draws.iter().any(|d| *d < ms(200)), "{draws:?}");
    // Both bounds negative: every retry follows at once.
    let mock = MockRuntime::new();
    let retry = Retry::new().rule(Rule::random_range_secs(-3.0, -1.0).retries(3));
    let (_, starts) = call(&mock, &retry, failures(4));
    assert_eq!(starts, [Duration::ZERO; 4]);
    assert_eq!(mock.elapsed(), Duration::ZERO);
}

#[test]
fn exponential_jitter_waits_base_first_then_full_jitter_up_to_the_cap() {
    let (base, cap) = (ms(100), secs(1));
    let wait = Rule::exponential_jitter(base, cap).unlimited().wait();
    assert_eq!(wait, Wait::ExponentialJitter { base, cap });
    const SEEDS: u32 = 500;
    let mut draws = vec![Vec::new(); 8];
    for seed in 0..u64::from(SEEDS) {
        for (n, d) in wait.waits(RuntimeRng::from_seed(seed)).take(8).enumerate() {
            draws[n].push(d);
        }
    }
    assert!(
        draws[0].iter().all(|d| *d == base),
        "first wait is exactly base"
    );
    // The n-th wait after the first: bounds 200, 400, 800 ms, then the cap.
    for (n, ds) in (1u32..).zip(&draws[1..]) {
        let bound = (base * 2u32.pow(n)).min(cap);
        assert!(
            ds.iter().all(|d| *d <= bound),
            "wait {n} within [0, {bound:?}]"
        );
        assert!(
            ds.iter().any(|d| *d < bound / 10),
            "wait {n} jitters down to near 0"
        );
        assert!(
            ds.iter().any(|d| *d > bound * 9 / 10),
            "wait {n} reaches near {bound:?}"
        );
        let mean = ds.iter().sum::<Duration>() / SEEDS;
        assert!(
            mean > bound * 4 / 10 && mean < bound * 6 / 10,
            "wait {n}: mean {mean:?} of a uniform [0, {bound:?}]"
        );
    }
}

#[test]
fn exponential_jitter_call_sleeps_base_then_the_seeded_draws() {
    let mock = MockRuntime::with_seed(9);
    let rule = Rule::exponential_jitter(ms(100), secs(1)).retries(6);
    let expected: Vec<Duration> = rule
        .wait()
        .waits(RuntimeRng::from_seed(9))
        .take(6)
        .collect();
    let retry = Retry::new().rule(rule);
    let (_, starts) = call(&mock, &retry, failures(7));
    assert_eq!(starts[1], ms(100));
    assert_eq!(gaps(&starts), expected);
}

#[test]
fn the_same_seed_replays_the_same_jittered_waits() {
    let retry = Retry::new().rule(Rule::exponential_jitter(ms(100), secs(5)).retries(8));
    let run = |mock: MockRuntime| call(&mock, &retry, failures(9)).1;
    let mut runs = Vec::new();
    for seed in [1, 2, 42] {
        let first = run(MockRuntime::with_seed(seed));
        assert_eq!(first, run(MockRuntime::with_seed(seed)), "seed {seed}");
        let expected: Vec<Duration> = retry.rules()[0]
            .wait()
            .waits(RuntimeRng::from_seed(seed))
            .take(8)
            .collect();
        assert_eq!(gaps(&first), expected, "seed {seed}");
        runs.push(first);
    }
    assert!(runs.iter().any(|r| *r != runs[0]), "{runs:?}");
    // The unseeded mock runtime's generator starts from seed 0.
    let unseeded = run(MockRuntime::new());
    let expected: Vec<Duration> = retry.rules()[0]
        .wait()
        .waits(RuntimeRng::from_seed(0))
        .take(8)
        .collect();
    assert_eq!(gaps(&unseeded), expected);
}

#[test]
fn every_wait_sequence_is_endless() {
    let rng = || RuntimeRng::from_seed(0);
    for wait in [
        Wait::Fixed(secs(1)),
        Wait::Fibonacci { base: secs(1) },
        Wait::RandomRange {
            min: ms(1),
            max: ms(2),
        },
        Wait::ExponentialJitter {
            base: ms(1),
            cap: secs(1),
        },
    ] {
        assert!(wait.waits(rng()).nth(10_000).is_some(), "{wait:?}");
    }
}
