//! Time for the store: the writer's clock (the system's, or a manual one for tests and
//! benchmarks), RFC 3339 formatting of output times, and parsing of user time arguments
//! (RFC 3339, or a duration ago such as `1h`).
//!
//! Not responsible for durations' syntax (`meshmon_proto::units`).

pub use meshmon_proto::clock::{Clock, now_ms};

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The (year, month, day) of a day count since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (
        if m <= 2 {
            yoe + era * 400 + 1
        } else {
            yoe + era * 400
        },
        m,
        d,
    )
}

/// `ms` since the epoch as RFC 3339 UTC with milliseconds: `2026-01-02T03:04:05.678Z`.
pub fn format_rfc3339(ms: i64) -> String {
    let days = ms.div_euclid(86_400_000);
    let rem = ms.rem_euclid(86_400_000);
    let (y, mo, d) = civil_from_days(days);
    let (h, mi, s, milli) = (
        rem / 3_600_000,
        rem / 60_000 % 60,
        rem / 1000 % 60,
        rem % 1000,
    );
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{milli:03}Z")
}

/// Parses RFC 3339 (`2026-01-02T03:04:05Z`, fractional seconds and `+hh:mm` offsets allowed,
/// `T` may be a space) or a bare date (`2026-01-02`, midnight UTC) into ms since the epoch.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.trim().as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = b.get(r)?;
        if part.is_empty() || !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(part).ok()?.parse().ok()
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    if b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') || !(1..=12).contains(&mo) {
        return None;
    }
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let mdays = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if d < 1 || d > mdays[(mo - 1) as usize] {
        return None;
    }
    let day_ms = days_from_civil(y, mo, d) * 86_400_000;
    if b.len() == 10 {
        return Some(day_ms);
    }
    if !matches!(b.get(10), Some(b'T' | b't' | b' ')) || b.get(13) != Some(&b':') {
        return None;
    }
    let (h, mi) = (num(11..13)?, num(14..16)?);
    if b.get(16) != Some(&b':') {
        return None;
    }
    let sec = num(17..19)?;
    if h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut i = 19;
    let mut frac_ms = 0;
    if b.get(i) == Some(&b'.') {
        let start = i + 1;
        i = start;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return None;
        }
        let digits = &b[start..i.min(start + 3)];
        let mut scale = 100;
        for &c in digits {
            frac_ms += i64::from(c - b'0') * scale;
            scale /= 10;
        }
    }
    let offset_min = match b.get(i) {
        Some(b'Z' | b'z') if i + 1 == b.len() => 0,
        Some(&sign @ (b'+' | b'-')) if b.len() == i + 6 && b[i + 3] == b':' => {
            let (oh, om) = (num(i + 1..i + 3)?, num(i + 4..i + 6)?);
            let m = oh * 60 + om;
            if sign == b'-' { -m } else { m }
        }
        _ => return None,
    };
    Some(day_ms + ((h * 60 + mi - offset_min) * 60 + sec) * 1000 + frac_ms)
}

/// Parses a user time argument: RFC 3339 (see [`parse_rfc3339`]), `now`, or a duration ago
/// (`90s`, `1h`, `7d`) relative to `now_ms`. The error says what was expected.
pub fn parse_time_arg(s: &str, now_ms: i64) -> Result<i64, String> {
    let t = s.trim();
    if t.eq_ignore_ascii_case("now") {
        return Ok(now_ms);
    }
    if let Some(ms) = parse_rfc3339(t) {
        return Ok(ms);
    }
    match meshmon_proto::units::parse_duration(t) {
        Ok(d) => Ok(now_ms.saturating_sub(crate::layout::dur_ms(d))),
        Err(_) => Err(format!(
            "'{s}' is not a time (expected RFC 3339 such as '2026-01-02T03:04:05Z', or a \
             duration ago such as '1h')"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(format_rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_rfc3339(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert_eq!(
            format_rfc3339(1_767_323_045_678),
            "2026-01-02T03:04:05.678Z"
        );
        assert_eq!(format_rfc3339(-1), "1969-12-31T23:59:59.999Z");
    }

    #[test]
    fn parses_what_it_formats_and_common_variants() {
        for ms in [0, 951_782_400_123, 1_767_323_045_678, 4_102_444_800_000] {
            assert_eq!(parse_rfc3339(&format_rfc3339(ms)), Some(ms));
        }
        assert_eq!(
            parse_rfc3339("2026-01-02T03:04:05Z"),
            Some(1_767_323_045_000)
        );
        assert_eq!(
            parse_rfc3339("2026-01-02 05:04:05+02:00"),
            Some(1_767_323_045_000)
        );
        assert_eq!(
            parse_rfc3339("2026-01-02T03:04:05.6789Z"),
            Some(1_767_323_045_678)
        );
        assert_eq!(parse_rfc3339("2026-01-02"), Some(1_767_312_000_000));
        for bad in [
            "",
            "2026",
            "2026-13-01",
            "2026-02-30",
            "2026-01-02T25:00:00Z",
            "2026-01-02T03:04:05",
            "2026-01-02T03:04:05.Z",
            "x026-01-02",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn time_args() {
        let now = 1_767_323_045_000;
        assert_eq!(parse_time_arg("1h", now), Ok(now - 3_600_000));
        assert_eq!(parse_time_arg("now", now), Ok(now));
        assert_eq!(parse_time_arg("2026-01-02T03:04:05Z", now), Ok(now));
        let err = parse_time_arg("yesterday", now).expect_err("bad");
        assert!(err.contains("'yesterday'"), "{err}");
    }

    #[test]
    fn manual_clock_moves() {
        let c = Clock::manual(5);
        c.advance(10);
        assert_eq!(c.now_ms(), 15);
        c.set(1);
        assert_eq!(c.clone().now_ms(), 1);
        assert!(Clock::System.now_ms() > 1_600_000_000_000);
    }
}
