//! The one parser for every time a user types: `--at`, `--from` and `--to` of every command
//! and the API's `at` and `since`. Each place accepting its own forms is how `--at
//! 2026-12-06T11:00:00+00:00` came to mean midnight (a date parser that also took datetimes
//! and kept the date) and `at=1772323200000` (epoch milliseconds read as seconds) came to
//! mean the year 58,000.

/// The earliest time accepted: 1970-01-01T00:00:00Z.
pub(crate) const MIN_US: i64 = 0;
/// The latest time accepted: 9999-12-30T22:00:00.999999Z, the last instant every offset can
/// still write in RFC 3339 (`jiff::Timestamp::MAX`).
pub(crate) const MAX_US: i64 = 253_402_207_200_999_999;

const FORMS: &str = "write an RFC 3339 time with an offset (2026-03-01T12:00:00Z or \
                     2026-03-01T13:00:00+01:00), a date (2026-03-01, midnight UTC), epoch \
                     seconds (1772323200), `now`, or a time relative to now (now-14d, now+1h)";

/// Parses one user-written time into microseconds since the epoch, `now_us` being what `now`
/// means. Accepted: an RFC 3339 time with any offset; a date (midnight UTC); epoch seconds,
/// with an optional fraction; `now`; `now-D` or `now+D` with `D` an integer and a unit `s m h
/// d w`. Anything else, and any time outside 1970-01-01..=9999-12-30, is an error that says
/// what to write.
pub fn parse_time(text: &str, now_us: i64) -> Result<i64, String> {
    let t = text.trim();
    let us = if let Some(rest) = t.strip_prefix("now") {
        relative(t, rest, now_us)?
    } else if t.bytes().next().is_some_and(|b| b.is_ascii_digit())
        && t.bytes().all(|b| b.is_ascii_digit() || b == b'.')
    {
        epoch_seconds(t)?
    } else if let Ok(ts) = t.parse::<jiff::Timestamp>() {
        ts.as_microsecond()
    } else if t.len() == 10
        && let Ok(d) = t.parse::<jiff::civil::Date>()
    {
        d.to_zoned(jiff::tz::TimeZone::UTC)
            .map_err(|e| format!("`{}`: {e}", shown(text)))?
            .timestamp()
            .as_microsecond()
    } else if t.parse::<jiff::civil::DateTime>().is_ok() {
        return Err(format!(
            "`{}` has no offset: add `Z` for UTC or an offset such as `+01:00`",
            shown(text)
        ));
    } else {
        return Err(format!("`{}` is not a time: {FORMS}", shown(text)));
    };
    in_range(text, us)
}

/// A duration on the command line (`--step`): an integer and a unit `s m h d w`, not zero.
pub fn parse_duration(text: &str) -> Result<u64, String> {
    match mlc_store::parse_duration_secs(text)? {
        0 => Err(format!(
            "`{text}` is not a duration: it must be longer than zero, like `1d`"
        )),
        s if s > MAX_US as u64 / 1_000_000 => Err(format!("`{text}` is too long a duration")),
        s => Ok(s),
    }
}

fn relative(text: &str, rest: &str, now_us: i64) -> Result<i64, String> {
    if rest.is_empty() {
        return Ok(now_us);
    }
    let (sign, dur) = match rest.split_at(1) {
        ("-", d) => (-1, d),
        ("+", d) => (1, d),
        _ => return Err(format!("`{}` is not a time: {FORMS}", shown(text))),
    };
    let secs = mlc_store::parse_duration_secs(dur)
        .map_err(|_| format!("`{}` is not a time: {FORMS}", shown(text)))?;
    i64::try_from(secs)
        .ok()
        .and_then(|s| s.checked_mul(1_000_000))
        .and_then(|d| now_us.checked_add(sign * d))
        .ok_or_else(|| out_of_range(text))
}

/// `1772323200` or `1772323200.25`, exactly (no float rounding), at most microseconds.
fn epoch_seconds(text: &str) -> Result<i64, String> {
    let bad = || format!("`{}` is not a time: {FORMS}", shown(text));
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    if whole.is_empty() || frac.contains('.') || frac.len() > 6 {
        return Err(bad());
    }
    let secs: i64 = whole.parse().map_err(|_| out_of_range(text))?;
    let frac_us: i64 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<6}").parse().map_err(|_| bad())?
    };
    secs.checked_mul(1_000_000)
        .and_then(|us| us.checked_add(frac_us))
        .ok_or_else(|| out_of_range(text))
}

fn in_range(text: &str, us: i64) -> Result<i64, String> {
    if (MIN_US..=MAX_US).contains(&us) {
        Ok(us)
    } else {
        Err(out_of_range(text))
    }
}

fn out_of_range(text: &str) -> String {
    let mut msg = format!(
        "`{}` is out of range: times must fall between 1970-01-01 and 9999-12-30",
        shown(text)
    );
    // Epoch milliseconds (13 digits today) read as seconds land tens of millennia ahead.
    if text.trim().len() >= 12 && text.trim().bytes().all(|b| b.is_ascii_digit()) {
        msg.push_str("; epoch times are in seconds: is this milliseconds? divide by 1000");
    }
    msg
}

/// The text as echoed in an error: at most 64 characters.
fn shown(text: &str) -> String {
    match text.char_indices().nth(64) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_796_554_800_000_000; // 2026-12-06T11:00:00Z
    const DAY: i64 = 86_400_000_000;

    fn p(t: &str) -> Result<i64, String> {
        parse_time(t, NOW)
    }

    #[test]
    fn rfc3339_keeps_the_time_of_day_at_any_offset() {
        assert_eq!(p("2026-12-06T11:00:00Z"), Ok(NOW));
        assert_eq!(p("2026-12-06T11:00:00+00:00"), Ok(NOW));
        assert_eq!(p("2026-12-06T12:00:00+01:00"), Ok(NOW));
        assert_eq!(p("2026-12-06T06:30:00-04:30"), Ok(NOW));
        assert_eq!(p("2026-12-06T11:00:00.5Z"), Ok(NOW + 500_000));
        let e = p("2026-12-06T11:00:00").unwrap_err();
        assert!(e.contains("no offset") && e.contains("Z"), "{e}");
    }

    #[test]
    fn a_date_is_midnight_utc() {
        assert_eq!(p("2026-12-06"), Ok(NOW - 11 * 3_600_000_000));
        assert_eq!(p("2026-03-01"), Ok(1_772_323_200_000_000));
        assert!(p("2026-02-30").is_err());
    }

    #[test]
    fn epoch_seconds_exactly() {
        assert_eq!(p("1796554800"), Ok(NOW));
        assert_eq!(p("1796554800.000001"), Ok(NOW + 1));
        assert_eq!(p("60"), Ok(60_000_000));
        assert!(p("1796554800.0000001").is_err());
        assert!(p("1.2.3").is_err());
        assert!(p("1e9").is_err());
    }

    #[test]
    fn now_and_relative_forms() {
        assert_eq!(p("now"), Ok(NOW));
        assert_eq!(p("now-14d"), Ok(NOW - 14 * DAY));
        assert_eq!(p("now+1h"), Ok(NOW + 3_600_000_000));
        assert_eq!(p("now-90s"), Ok(NOW - 90_000_000));
        assert_eq!(p("now-2w"), Ok(NOW - 14 * DAY));
        for bad in ["now-", "now-14", "now-14y", "now14d", "now*2d", "nowish"] {
            assert!(p(bad).unwrap_err().contains("now-14d"), "{bad}");
        }
    }

    #[test]
    fn out_of_range_and_garbage_are_errors() {
        let e = p("1772323200000").unwrap_err();
        assert!(
            e.contains("out of range") && e.contains("milliseconds"),
            "{e}"
        );
        assert!(
            p("10000000000000000000")
                .unwrap_err()
                .contains("out of range")
        );
        assert!(p("1e19").is_err());
        assert!(
            p("1969-12-31T23:59:59Z")
                .unwrap_err()
                .contains("out of range")
        );
        assert!(p("now-60000w").unwrap_err().contains("out of range"));
        assert_eq!(p("9999-12-30T22:00:00Z"), Ok(MAX_US - 999_999));
        assert_eq!(jiff::Timestamp::MAX.as_microsecond(), MAX_US);
        assert!(p("253402207201").unwrap_err().contains("out of range"));
        assert!(p("2026-12-06 11:00").unwrap_err().contains("no offset"));
        for bad in ["", "yesterday", "inf", "NaN", "-5", "2026-12-06Z"] {
            assert!(p(bad).unwrap_err().contains("RFC 3339"), "{bad}");
        }
        let long = "x".repeat(10_000);
        assert!(p(&long).unwrap_err().len() < 600);
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1d"), Ok(86_400));
        assert_eq!(parse_duration("90s"), Ok(90));
        assert!(parse_duration("0d").is_err());
        assert!(parse_duration("1y").is_err());
        assert!(parse_duration("99999999999999w").is_err());
    }
}
