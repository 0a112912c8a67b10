//! The interval parser on any string: never a panic; a string it accepts
//! parses the same way twice, and `Schedule::after` agrees with it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use machina_core::schedule::{Schedule, parse_interval};

fuzz_target!(|input: &str| {
    match parse_interval(input) {
        Ok(duration) => {
            assert_eq!(parse_interval(input).ok(), Some(duration));
            assert_eq!(Schedule::after(input).ok(), Some(Schedule::After(duration)));
        }
        Err(error) => {
            // The error names the input it refused.
            assert_eq!(error.input(), input);
            assert!(!error.to_string().is_empty());
        }
    }
});
