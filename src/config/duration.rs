//! Go duration strings (`time.ParseDuration`): `"2s"`, `"150us"`, `"1m30s"`, `"1.5h"`, `"0"`.
//!
//! KrakenD reads durations with Go's parser at run time (the schema's stricter regex only
//! applies to `check --lint`), so the runtime grammar is what we accept.

use std::time::Duration;

/// Go's `time.Duration` is an int64 of nanoseconds; anything longer does not exist there.
const MAX_NANOS: u128 = i64::MAX as u128;

/// Parse a Go duration string. Negative durations are refused: no KrakenD timeout takes one.
pub fn parse_go_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("invalid duration {text:?} (expected e.g. \"2s\", \"150ms\", \"1m30s\")");
    let mut rest = text;
    if let Some(r) = rest.strip_prefix('+') {
        rest = r;
    } else if let Some(r) = rest.strip_prefix('-') {
        if r == "0" {
            return Ok(Duration::ZERO);
        }
        return Err(format!("negative duration {text:?} is not allowed"));
    }
    // KrakenD: Go accepts a bare "0" without a unit (and only that number).
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let int_len = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let (int_part, after) = rest.split_at(int_len);
        let (frac_part, after) = match after.strip_prefix('.') {
            Some(a) => {
                let n = a.find(|c: char| !c.is_ascii_digit()).unwrap_or(a.len());
                a.split_at(n)
            }
            None => ("", after),
        };
        if int_part.is_empty() && frac_part.is_empty() {
            return Err(bad());
        }
        let unit_len = after
            .find(|c: char| c == '.' || c.is_ascii_digit())
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        let scale: u128 = match unit {
            "ns" => 1,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            "" => return Err(format!("missing unit in duration {text:?}")),
            other => return Err(format!("unknown unit {other:?} in duration {text:?}")),
        };
        let whole: u128 = if int_part.is_empty() {
            0
        } else {
            int_part
                .parse::<u128>()
                .map_err(|_| format!("duration {text:?} is out of range"))?
        };
        let mut nanos = whole
            .checked_mul(scale)
            .ok_or_else(|| format!("duration {text:?} is out of range"))?;
        // Fraction: digits beyond nanosecond precision are dropped, as Go does.
        let mut frac_scale = scale;
        for d in frac_part.chars().filter_map(|c| c.to_digit(10)) {
            frac_scale /= 10;
            if frac_scale == 0 {
                break;
            }
            nanos += u128::from(d) * frac_scale;
        }
        total = total.saturating_add(nanos);
        if total > MAX_NANOS {
            return Err(format!("duration {text:?} is out of range"));
        }
        rest = after;
    }
    let secs = u64::try_from(total / 1_000_000_000).map_err(|_| bad())?;
    let sub = u32::try_from(total % 1_000_000_000).map_err(|_| bad())?;
    Ok(Duration::new(secs, sub))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn simple_units_parse() {
        assert_eq!(parse_go_duration("2s"), Ok(ms(2000)));
        assert_eq!(parse_go_duration("150ms"), Ok(ms(150)));
        assert_eq!(parse_go_duration("150us"), Ok(Duration::from_micros(150)));
        assert_eq!(parse_go_duration("150µs"), Ok(Duration::from_micros(150)));
        assert_eq!(parse_go_duration("150μs"), Ok(Duration::from_micros(150)));
        assert_eq!(parse_go_duration("7ns"), Ok(Duration::from_nanos(7)));
        assert_eq!(parse_go_duration("3h"), Ok(Duration::from_secs(3 * 3600)));
    }

    #[test]
    fn compound_and_fractional_durations_parse() {
        assert_eq!(parse_go_duration("1m30s"), Ok(ms(90_000)));
        assert_eq!(parse_go_duration("1.5h"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_go_duration(".5s"), Ok(ms(500)));
        assert_eq!(parse_go_duration("1h2m3s4ms"), Ok(ms(3_723_004)));
        assert_eq!(parse_go_duration("+2s"), Ok(ms(2000)));
    }

    #[test]
    fn bare_zero_is_accepted_but_other_bare_numbers_are_not() {
        assert_eq!(parse_go_duration("0"), Ok(Duration::ZERO));
        assert!(parse_go_duration("5").is_err());
    }

    #[test]
    fn malformed_durations_are_refused() {
        for bad in ["", "s", "2 s", "2sec", "1.5.5s", ".s", "-2s", "2s3"] {
            assert!(parse_go_duration(bad).is_err(), "{bad:?} should fail");
        }
    }

    #[test]
    fn durations_beyond_go_range_are_refused() {
        assert!(parse_go_duration("3000000h").is_err());
        assert!(parse_go_duration("2000000h").is_ok());
    }
}
