//! Parsing exmachina's interval strings (`1s`, `500ms`, `1m30s`,
//! `2h 30m`, `1.5s`, `1d4h`, `0d 0m 10s`, `1d12h35m59s500ms`) into
//! [`Duration`]s, strictly.
//!
//! The grammar: one or more components, each a number (digits, with an
//! optional decimal fraction except on `ms`) and a unit among `d`, `h`,
//! `m`, `s`, `ms`; units in that order, each at most once; components may
//! be separated by spaces; no space before the first or after the last.
//! `humantime` accepts a looser language (any order, repeats, many more
//! unit names, no fractions), so this parser is our own; `humantime`
//! formats durations in messages.

use std::time::Duration;

/// Why an interval string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid interval {input:?}: {problem}; expected a number followed by a unit such as 1s, 500ms or 1d4h (units d, h, m, s, ms, in that order, each once)"
)]
pub struct ParseIntervalError {
    input: String,
    problem: String,
}

impl ParseIntervalError {
    fn new(input: &str, problem: impl Into<String>) -> Self {
        ParseIntervalError {
            input: input.to_owned(),
            problem: problem.into(),
        }
    }

    /// The string that was refused.
    pub fn input(&self) -> &str {
        &self.input
    }
}

const UNITS: [(&str, u128); 5] = [
    ("d", 86_400_000_000_000),
    ("h", 3_600_000_000_000),
    ("m", 60_000_000_000),
    ("s", 1_000_000_000),
    ("ms", 1_000_000),
];

/// Parses an exmachina interval string.
///
/// # Examples
///
/// ```
/// use machina_core::schedule::parse_interval;
/// use std::time::Duration;
///
/// assert_eq!(parse_interval("1m30s").unwrap(), Duration::from_secs(90));
/// assert_eq!(parse_interval("1.5s").unwrap(), Duration::from_millis(1500));
/// assert_eq!(parse_interval("2h 30m").unwrap(), Duration::from_secs(9000));
/// let err = parse_interval("1x").unwrap_err();
/// assert!(err.to_string().contains("unknown unit \"x\""));
/// ```
///
/// # Errors
/// [`ParseIntervalError`] saying what is wrong: empty, a missing or unknown
/// unit, units out of order or repeated, a fraction of a millisecond,
/// spaces around the whole, or a value too large.
pub fn parse_interval(input: &str) -> Result<Duration, ParseIntervalError> {
    if input.trim().is_empty() {
        return Err(ParseIntervalError::new(input, "it is empty"));
    }
    if input.trim() != input {
        return Err(ParseIntervalError::new(
            input,
            "it has leading or trailing spaces",
        ));
    }
    let bytes = input.as_bytes();
    let mut pos = 0;
    let mut total: u128 = 0;
    let mut last_rank: Option<usize> = None;
    while pos < bytes.len() {
        while pos < bytes.len() && bytes[pos] == b' ' {
            pos += 1;
        }
        let number_start = pos;
        while pos < bytes.len() && bytes[pos].is_ascii_digit() {
            pos += 1;
        }
        let whole = &input[number_start..pos];
        let mut fraction = "";
        if pos < bytes.len() && bytes[pos] == b'.' {
            pos += 1;
            let fraction_start = pos;
            while pos < bytes.len() && bytes[pos].is_ascii_digit() {
                pos += 1;
            }
            fraction = &input[fraction_start..pos];
            if fraction.is_empty() {
                return Err(ParseIntervalError::new(
                    input,
                    "a decimal point needs digits after it",
                ));
            }
        }
        if whole.is_empty() {
            let found = input[number_start..].chars().next().unwrap_or(' ');
            return Err(ParseIntervalError::new(
                input,
                format!("expected a number, found {found:?}"),
            ));
        }
        let unit_start = pos;
        while pos < bytes.len() && bytes[pos].is_ascii_alphabetic() {
            pos += 1;
        }
        let unit = &input[unit_start..pos];
        if unit.is_empty() {
            return Err(ParseIntervalError::new(
                input,
                format!("\"{whole}\" has no unit"),
            ));
        }
        let Some(rank) = UNITS.iter().position(|(name, _)| *name == unit) else {
            return Err(ParseIntervalError::new(
                input,
                format!("unknown unit \"{unit}\""),
            ));
        };
        if let Some(last) = last_rank {
            if rank == last {
                return Err(ParseIntervalError::new(
                    input,
                    format!("unit \"{unit}\" appears twice"),
                ));
            }
            if rank < last {
                return Err(ParseIntervalError::new(
                    input,
                    format!(
                        "unit \"{unit}\" comes after \"{}\"; use the order d, h, m, s, ms",
                        UNITS[last].0
                    ),
                ));
            }
        }
        if unit == "ms" && !fraction.is_empty() {
            return Err(ParseIntervalError::new(
                input,
                "fractions of a millisecond are not supported",
            ));
        }
        last_rank = Some(rank);
        let scale = UNITS[rank].1;
        let too_large = || ParseIntervalError::new(input, "the value is too large");
        let whole: u128 = whole.parse().map_err(|_| too_large())?;
        let mut nanos = whole.checked_mul(scale).ok_or_else(too_large)?;
        if !fraction.is_empty() {
            let digits = fraction.len().min(18);
            let numerator: u128 = fraction[..digits].parse().map_err(|_| too_large())?;
            nanos += numerator * scale / 10u128.pow(digits as u32);
        }
        total = total.checked_add(nanos).ok_or_else(too_large)?;
        if pos < bytes.len() && !(bytes[pos] == b' ' || bytes[pos].is_ascii_digit()) {
            let found = input[pos..].chars().next().unwrap_or(' ');
            return Err(ParseIntervalError::new(
                input,
                format!("unexpected {found:?}"),
            ));
        }
    }
    let secs = u64::try_from(total / 1_000_000_000)
        .map_err(|_| ParseIntervalError::new(input, "the value is too large"))?;
    Ok(Duration::new(secs, (total % 1_000_000_000) as u32))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> Duration {
        parse_interval(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
    }

    fn refused(s: &str, problem: &str) {
        let err = parse_interval(s).expect_err(s);
        let text = err.to_string();
        assert!(text.contains(problem), "{s:?}: {text}");
        assert!(
            text.contains("expected a number followed by a unit"),
            "{text}"
        );
        assert_eq!(err.input(), s);
    }

    #[test]
    fn exmachina_examples_parse() {
        assert_eq!(ok("1s"), Duration::from_secs(1));
        assert_eq!(ok("500ms"), Duration::from_millis(500));
        assert_eq!(ok("1m30s"), Duration::from_secs(90));
        assert_eq!(ok("2h 30m"), Duration::from_secs(2 * 3600 + 30 * 60));
        assert_eq!(ok("1.5s"), Duration::from_millis(1500));
        assert_eq!(ok("1d4h"), Duration::from_secs(28 * 3600));
        assert_eq!(ok("0d 0m 10s"), Duration::from_secs(10));
        assert_eq!(
            ok("1d12h35m59s500ms"),
            Duration::from_secs(86_400 + 12 * 3600 + 35 * 60 + 59) + Duration::from_millis(500)
        );
        assert_eq!(ok("0s"), Duration::ZERO);
        assert_eq!(ok("0.25h"), Duration::from_secs(900));
        assert_eq!(ok("1.000000001s"), Duration::new(1, 1));
    }

    #[test]
    fn bad_intervals_say_what_is_wrong() {
        refused("", "it is empty");
        refused("   ", "it is empty");
        refused("10", "\"10\" has no unit");
        refused("1x", "unknown unit \"x\"");
        refused("1sec", "unknown unit \"sec\"");
        refused("1s1m", "unit \"m\" comes after \"s\"");
        refused("1s 2s", "unit \"s\" appears twice");
        refused("1.5ms", "fractions of a millisecond");
        refused(" 1s", "leading or trailing spaces");
        refused("1s ", "leading or trailing spaces");
        refused("s", "expected a number, found 's'");
        refused("1.s", "a decimal point needs digits");
        refused("-1s", "expected a number, found '-'");
        refused("1s,2ms", "unexpected ','");
        refused("99999999999999999999d", "too large");
        refused("9999999999999999d", "too large");
    }
}
