//! The cron parser with zones on any pattern and zone: never a panic; for
//! a schedule it accepts, the next match after any calendar time is
//! strictly later.
#![no_main]

use std::time::{Duration, SystemTime};

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use machina_core::schedule::{CronSchedule, Schedule};

#[derive(Debug, Arbitrary)]
struct Input<'a> {
    pattern: &'a str,
    zone: &'a str,
    /// Seconds after the Unix epoch (up to ~34 years ahead or so).
    at: u32,
}

fuzz_target!(|input: Input<'_>| {
    let parsed = CronSchedule::new(input.pattern, input.zone);
    assert_eq!(
        parsed.is_ok(),
        Schedule::cron(input.pattern, input.zone).is_ok()
    );
    if let Ok(cron) = parsed {
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(u64::from(input.at));
        if let Some(next) = cron.next_after(at) {
            assert!(next > at, "{next:?} is not after {at:?}");
        }
    }
});
