//! Which errors a rule matches (by type, through boxes and `source()`
//! chains, and by predicate) and how many retries it grants.

#[allow(unused_imports, reason = "each area uses part of the shared prelude")]
use super::*;

fn http_error(status: u16) -> HttpError {
    HttpError {
        status,
        retry_after: None,
    }
}

#[test]
fn on_matches_by_type_also_inside_a_box() {
    let rule = Rule::fixed(secs(1)).on::<HttpError>().retries(1);
    assert!(rule.matches(&http_error(503)));
    assert!(!rule.matches(&DiskError));
    let boxed: BoxError = http(503);
    assert!(rule.matches(&*boxed), "downcast through a BoxError");
    assert!(!rule.matches(&*disk()));
}

#[test]
fn on_looks_through_the_source_chain() {
    let rule = Rule::fixed(secs(1)).on::<HttpError>().retries(1);
    assert!(rule.matches(&*wrapped(http(503))));
    assert!(
        rule.matches(&*wrapped(wrapped(http(503)))),
        "two levels down"
    );
    assert!(!rule.matches(&*wrapped(disk())));
    // And `Retry::call` retries such an error.
    let mock = MockRuntime::new();
    let retry = Retry::new().rule(Rule::fixed(secs(1)).on::<HttpError>().retries(3));
    let (result, starts) = call(
        &mock,
        &retry,
        [fail(wrapped(http(503))), fail(wrapped(disk()))],
    );
    assert_eq!(starts, [0, 1].map(secs));
    assert_eq!(result.unwrap_err().to_string(), "request failed");
}

#[test]
fn several_on_types_match_any_of_them() {
    let rule = Rule::fixed(secs(1))
        .on::<HttpError>()
        .on::<DiskError>()
        .retries(1);
    assert!(rule.matches(&http_error(500)));
    assert!(rule.matches(&DiskError));
    assert!(!rule.matches(&fmt::Error));
}

#[test]
fn a_rule_with_no_filter_matches_every_error() {
    let rule = Rule::fibonacci().retries(1);
    assert!(rule.matches(&http_error(404)));
    assert!(rule.matches(&DiskError));
    assert!(rule.matches(&fmt::Error));
}

#[test]
fn when_matches_by_predicate_and_all_predicates_must_hold() {
    let server_error = |e: &(dyn Error + 'static)| {
        e.downcast_ref::<HttpError>()
            .is_some_and(|h| h.status >= 500)
    };
    let rule = Rule::fixed(secs(1)).when(server_error).retries(1);
    assert!(rule.matches(&http_error(503)));
    assert!(!rule.matches(&http_error(404)));
    assert!(!rule.matches(&DiskError));
    let rule = Rule::fixed(secs(1))
        .when(server_error)
        .when(|e| e.to_string() != "http 501")
        .retries(1);
    assert!(rule.matches(&http_error(503)));
    assert!(!rule.matches(&http_error(501)), "second predicate fails");
}

#[test]
fn on_and_when_together_need_both() {
    let rule = Rule::fixed(secs(1))
        .on::<HttpError>()
        .when(|e| e.to_string().ends_with('3'))
        .retries(1);
    assert!(rule.matches(&http_error(503)));
    assert!(!rule.matches(&http_error(500)), "type ok, predicate not");
    assert!(!rule.matches(&fmt::Error), "neither");
}

#[test]
fn when_is_is_typed_and_looks_through_the_source_chain() {
    let rule = Rule::fixed(secs(1))
        .when_is(|e: &HttpError| e.status >= 500)
        .retries(1);
    assert!(rule.matches(&http_error(502)));
    assert!(!rule.matches(&http_error(404)));
    assert!(!rule.matches(&DiskError), "wrong type");
    assert!(rule.matches(&*wrapped(http(502))));
    assert!(!rule.matches(&*wrapped(http(404))));
}

#[test]
fn a_non_matching_error_is_returned_after_one_attempt() {
    let retry = Retry::new().rule(Rule::fixed(secs(1)).on::<HttpError>().retries(5));
    let mut state = retry.start(RuntimeRng::from_seed(0));
    assert_eq!(on(&mut state, &DiskError), D::GiveUp(Reason::NoRuleMatches));
    assert_eq!(state.attempts(), 1);
    let mock = MockRuntime::new();
    let (result, starts) = call(&mock, &retry, [fail(disk())]);
    assert_eq!(starts, [Duration::ZERO]);
    assert!(result.unwrap_err().is::<DiskError>());
    assert_eq!(mock.elapsed(), Duration::ZERO);
}

#[test]
fn retries_n_means_at_most_n_plus_1_attempts() {
    for n in 0..5u32 {
        let retry = Retry::new().rule(Rule::fixed(secs(1)).retries(n));
        assert_eq!(retry.rules()[0].retries(), Some(n));
        let mut state = retry.start(RuntimeRng::from_seed(0));
        for left in (0..n).rev() {
            assert_eq!(
                on(&mut state, &DiskError),
                D::Retry {
                    wait: secs(1),
                    rule: 0,
                    remaining: Some(left)
                }
            );
        }
        assert_eq!(
            on(&mut state, &DiskError),
            D::GiveUp(Reason::RetriesExhausted),
            "retries({n})"
        );
        assert_eq!(state.attempts(), n + 1);
        assert_eq!(state.retries_used(), [n]);

        let mock = MockRuntime::new();
        let (result, starts) = call(&mock, &retry, failures(n as usize + 1));
        assert!(result.is_err());
        assert_eq!(starts, (0..=u64::from(n)).map(secs).collect::<Vec<_>>());
    }
}

#[test]
fn unlimited_is_explicit_and_never_runs_out() {
    let rule = Rule::fixed(secs(1)).unlimited();
    assert_eq!(rule.retries(), None);
    let retry = Retry::new().rule(rule);
    let mut state = retry.start(RuntimeRng::from_seed(0));
    for _ in 0..1000 {
        assert_eq!(
            on(&mut state, &DiskError),
            D::Retry {
                wait: secs(1),
                rule: 0,
                remaining: None
            }
        );
    }
    assert_eq!(state.attempts(), 1001);
    let mock = MockRuntime::new();
    let mut script = failures(100);
    script.push(ok());
    let (result, starts) = call(&mock, &retry, script);
    assert_eq!(result.unwrap(), "done");
    assert_eq!(starts.len(), 101);
    assert_eq!(mock.elapsed(), secs(100));
}
