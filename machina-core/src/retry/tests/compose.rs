//! Several rules together: first matching rule with retries left, the sum
//! of retries as the bound on attempts, counters fresh for every call.

#[allow(unused_imports, reason = "each area uses part of the shared prelude")]
use super::*;

/// Rule 0: http errors, 2 retries after 1 s. Rule 1: anything, 1 retry
/// after 10 s.
fn http_then_anything() -> Retry {
    Retry::new()
        .rule(Rule::fixed(secs(1)).on::<HttpError>().retries(2))
        .rule(Rule::fixed(secs(10)).retries(1))
}

#[test]
fn each_failure_is_charged_to_the_first_matching_rule_with_retries_left() {
    let retry = http_then_anything();
    let mut state = retry.start(RuntimeRng::from_seed(0));
    let http = HttpError {
        status: 503,
        retry_after: None,
    };
    let decisions = [
        on(&mut state, &http),
        on(&mut state, &DiskError),
        on(&mut state, &http),
    ];
    assert_eq!(
        decisions,
        [
            D::Retry {
                wait: secs(1),
                rule: 0,
                remaining: Some(1)
            },
            D::Retry {
                wait: secs(10),
                rule: 1,
                remaining: Some(0)
            },
            D::Retry {
                wait: secs(1),
                rule: 0,
                remaining: Some(0)
            },
        ]
    );
    assert_eq!(state.retries_used(), [2, 1]);
    assert_eq!(on(&mut state, &http), D::GiveUp(Reason::RetriesExhausted));
    assert_eq!(state.attempts(), 4);
}

#[test]
fn a_spent_rule_lets_the_failure_fall_through_to_the_next() {
    let mock = MockRuntime::new();
    // Three http errors: two charged to rule 0, the third to rule 1.
    let (result, starts) = call(&mock, &http_then_anything(), failures(4));
    assert_eq!(starts, [0, 1, 2, 12].map(secs));
    assert!(result.is_err());
}

#[test]
fn total_attempts_are_one_plus_the_retries_of_the_rules_that_matched() {
    let retry = Retry::new()
        .rule(Rule::fixed(secs(1)).on::<HttpError>().retries(2))
        .rule(Rule::fixed(secs(10)).on::<DiskError>().retries(3))
        .rule(
            Rule::fixed(secs(100))
                .when_is(|e: &HttpError| e.status == 418)
                .retries(5),
        );
    // Only 503s: only rule 0 matches, 1 + 2 attempts.
    let (_, starts) = call(&MockRuntime::new(), &retry, failures(3));
    assert_eq!(starts, [0, 1, 2].map(secs));
    // 503s and disk errors: rules 0 and 1 match, 1 + 2 + 3 attempts.
    let script = [
        fail(http(503)),
        fail(disk()),
        fail(http(503)),
        fail(disk()),
        fail(disk()),
        fail(disk()),
    ];
    let (result, starts) = call(&MockRuntime::new(), &retry, script);
    assert_eq!(starts, [0, 1, 11, 12, 22, 32].map(secs));
    assert!(result.unwrap_err().is::<DiskError>());
    // Disk errors spend rule 1; 418s spend rule 0 and then rule 2: all
    // three rules match, 1 + 3 + 2 + 5 attempts.
    let mut script = vec![fail(disk()), fail(disk()), fail(disk())];
    script.extend((0..8).map(|_| fail(http(418))));
    let (_, starts) = call(&MockRuntime::new(), &retry, script);
    assert_eq!(
        gaps(&starts),
        [10, 10, 10, 1, 1, 100, 100, 100, 100, 100].map(secs)
    );
}

#[test]
fn counters_are_fresh_for_every_top_level_call() {
    let retry = Retry::new()
        .rule(Rule::fibonacci().on::<HttpError>().retries(3))
        .rule(Rule::fixed(secs(7)).retries(1));
    let mock = MockRuntime::new();
    let rt = mock.runtime();
    // Three 503s charged to rule 0, the fourth to rule 1, then a disk
    // error that no rule with retries left matches.
    let script = || {
        let mut s = failures(4);
        s.push(fail(disk()));
        s
    };
    let runs = mock
        .block_on(async {
            let mut runs = Vec::new();
            for _ in 0..2 {
                let attempts = Attempts::new(&rt, script());
                let result = retry.call(&rt, || attempts.clone().attempt()).await;
                assert!(op_error(result.unwrap_err()).is::<DiskError>());
                assert_eq!(attempts.left(), 0);
                runs.push(attempts.starts());
            }
            runs
        })
        .unwrap();
    // Both calls get all 3 + 1 retries and the sequence from its start.
    let expected = [0, 1, 2, 4, 11].map(secs);
    assert_eq!(runs, [expected, expected]);
    assert_eq!(mock.elapsed(), secs(22));
}

#[test]
fn concurrent_calls_sharing_a_retry_keep_their_own_counters() {
    let mock = MockRuntime::new();
    let rt = mock.runtime();
    let retry = Arc::new(Retry::new().rule(Rule::fibonacci().retries(3)));
    let scripts: Vec<_> = (0..3).map(|_| Attempts::new(&rt, failures(4))).collect();
    let handles: Vec<_> = scripts
        .iter()
        .map(|attempts| {
            let (rt2, retry, attempts) = (rt.clone(), retry.clone(), attempts.clone());
            rt.spawn(async move {
                retry
                    .call(&rt2, || attempts.clone().attempt())
                    .await
                    .is_err()
            })
            .unwrap()
        })
        .collect();
    let failed = mock
        .block_on(async {
            let mut failed = Vec::new();
            for handle in handles {
                failed.push(handle.await.unwrap());
            }
            failed
        })
        .unwrap();
    assert_eq!(failed, [true; 3]);
    for attempts in &scripts {
        assert_eq!(attempts.starts(), [0, 1, 2, 4].map(secs));
        assert_eq!(attempts.left(), 0);
    }
}

#[test]
fn a_retry_without_rules_never_retries() {
    let retry = Retry::new();
    let mut state = retry.start(RuntimeRng::from_seed(0));
    assert_eq!(on(&mut state, &DiskError), D::GiveUp(Reason::NoRuleMatches));
    let mock = MockRuntime::new();
    let (result, starts) = call(&mock, &retry, [fail(http(503))]);
    assert_eq!(status_of(&result.unwrap_err()), 503);
    assert_eq!(starts, [Duration::ZERO]);
}
