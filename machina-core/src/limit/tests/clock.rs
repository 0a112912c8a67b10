//! The clock a group decides on: the runtime's fast counter where it has
//! one, the runtime's `now()` (exact) elsewhere.

#[allow(unused_imports, reason = "each area uses part of the shared prelude")]
use super::*;
use crate::test_kit::system_clock_runtime;

#[test]
fn a_window_on_the_mock_runtime_decides_on_its_virtual_clock_exactly() {
    let (mock, rt, t0) = setup();
    let api = group(&rt, "api", Limits::new().max_starts(1, ms(100)));
    assert_eq!(api.inner.clock_now(), t0);
    mock.advance(ms(40)).unwrap();
    assert_eq!(api.inner.clock_now(), t0 + ms(40));
    assert_eq!(api.inner.decision_now(), t0 + ms(40));
}

#[test]
fn a_window_on_a_real_clock_decides_on_the_fast_counter() {
    let rt = system_clock_runtime();
    let clock = rt
        .fast_clock()
        .expect("the system timer has a fast counter");
    let api = group(&rt, "api", Limits::new().max_starts(1, ms(100)));
    let slack = Duration::from_micros(50);
    let (before, now, after) = (rt.now(), api.inner.decision_now(), rt.now());
    assert!(
        now + slack >= before && now <= after + slack,
        "{before:?} {now:?} {after:?}"
    );
    // The window's refusal is read on the counter's scale: its opening is
    // the first start's instant on it plus the window.
    let start = clock.now();
    drop(api.try_acquire().unwrap());
    let until = api
        .try_acquire()
        .unwrap_err()
        .until
        .expect("the window says when");
    let later = clock.now();
    assert!(
        until >= start + ms(100) && until <= later + ms(100),
        "{until:?}"
    );
    // Without a window or rate nothing is read.
    let plain = group(&rt, "plain", Limits::new().max_in_flight(1));
    assert_eq!(plain.inner.decision_now(), plain.inner.decision_now());
}
