//! Server hints (`after`, `after_is`): the wait comes from the error,
//! capped by `max_wait` or [`DEFAULT_HINT_CAP`], and the rule's own
//! sequence advances underneath.

#[allow(unused_imports, reason = "each area uses part of the shared prelude")]
use super::*;

#[test]
fn a_hint_sets_the_wait_and_the_sequence_still_advances() {
    let mock = MockRuntime::new();
    let retry = Retry::new().rule(
        Rule::fibonacci()
            .after_is(HttpError::retry_after)
            .retries(5),
    );
    let script = [
        fail(http_after(503, secs(7))),
        fail(http_after(503, secs(7))),
        fail(http(503)),
        fail(http(503)),
        ok(),
    ];
    let (result, starts) = call(&mock, &retry, script);
    assert_eq!(result.unwrap(), "done");
    // Hinted 7 s twice; then the Fibonacci sequence carries on at its third
    // and fourth terms (2 s, 3 s), not from its start (1 s, 1 s).
    assert_eq!(gaps(&starts), [7, 7, 2, 3].map(secs));
    assert_eq!(starts, [0, 7, 14, 16, 19].map(secs));
}

#[test]
fn an_untyped_hint_reads_the_error_it_is_given() {
    let mock = MockRuntime::new();
    let retry = Retry::new().rule(
        Rule::fixed(secs(1))
            .after(|e| {
                e.downcast_ref::<HttpError>()
                    .and_then(HttpError::retry_after)
            })
            .retries(3),
    );
    let script = [fail(http_after(429, secs(30))), fail(http(503)), ok()];
    let (_, starts) = call(&mock, &retry, script);
    assert_eq!(starts, [0, 30, 31].map(secs));
}

#[test]
fn a_typed_hint_is_found_through_the_source_chain() {
    let mock = MockRuntime::new();
    let retry = Retry::new().rule(
        Rule::fixed(secs(1))
            .after_is(HttpError::retry_after)
            .retries(1),
    );
    let (_, starts) = call(
        &mock,
        &retry,
        [fail(wrapped(http_after(503, secs(5)))), ok()],
    );
    assert_eq!(starts, [0, 5].map(secs));
}

#[test]
fn max_wait_caps_hints_and_the_sequence_alike() {
    let mock = MockRuntime::new();
    let retry = Retry::new().rule(
        Rule::fibonacci()
            .after_is(HttpError::retry_after)
            .max_wait(secs(10))
            .retries(8),
    );
    let mut script = vec![
        fail(http_after(503, secs(60))),
        fail(http_after(503, secs(4))),
    ];
    script.extend(failures(6));
    script.push(ok());
    let (_, starts) = call(&mock, &retry, script);
    // Hints 60 s → 10 s and 4 s; then Fibonacci from its third term:
    // 2, 3, 5, 8, 13 → 10, 21 → 10.
    assert_eq!(gaps(&starts), [10, 4, 2, 3, 5, 8, 10, 10].map(secs));
    let rule = &retry.rules()[0];
    assert_eq!(rule.max_wait(), Some(secs(10)));
    assert_eq!(
        rule.hinted_wait(&*http_after(503, secs(60))),
        Some(secs(10))
    );
}

#[test]
fn without_max_wait_a_hint_is_capped_by_the_default() {
    let rule = Rule::fixed(secs(1))
        .after_is(HttpError::retry_after)
        .retries(1);
    assert_eq!(rule.max_wait(), None);
    assert_eq!(
        rule.hinted_wait(&*http_after(503, secs(3600))),
        Some(DEFAULT_HINT_CAP)
    );
    assert_eq!(
        rule.hinted_wait(&*http_after(503, secs(299))),
        Some(secs(299))
    );
    assert_eq!(rule.hinted_wait(&*http(503)), None, "no hint in the error");
    assert_eq!(rule.hinted_wait(&*disk()), None, "not an HttpError");
    let mock = MockRuntime::new();
    let retry = Retry::new().rule(rule);
    let (_, starts) = call(&mock, &retry, [fail(http_after(503, secs(3600))), ok()]);
    assert_eq!(starts, [Duration::ZERO, DEFAULT_HINT_CAP]);
}

#[test]
fn a_rule_without_after_ignores_hints() {
    let mock = MockRuntime::new();
    let retry = Retry::new().rule(Rule::fixed(secs(2)).retries(1));
    assert_eq!(
        retry.rules()[0].hinted_wait(&*http_after(503, secs(9))),
        None
    );
    let (_, starts) = call(&mock, &retry, [fail(http_after(503, secs(9))), ok()]);
    assert_eq!(starts, [0, 2].map(secs));
}
