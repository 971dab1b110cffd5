//! Durations as users write them: `500ms`, `30s`, `5m`, `12h`, `7d` (also `1h30m`).
//! Parsing only; formatting picks the largest whole unit.

use std::time::Duration;

/// Parses `500ms`, `30s`, `5m`, `12h`, `7d`, or a concatenation such as `1h30m`. A bare `0`
/// means zero. Returns a message fit for a config error on failure.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    if t.is_empty() {
        return Err("empty duration (expected e.g. '500ms', '30s', '5m', '12h', '7d')".into());
    }
    if t == "0" {
        return Ok(Duration::ZERO);
    }
    let mut total: u128 = 0;
    let mut rest = t;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(|b| b.is_ascii_digit()).count();
        if digits == 0 {
            return Err(format!(
                "'{s}' is not a duration (expected e.g. '500ms', '30s', '5m', '12h', '7d')"
            ));
        }
        let n: u128 = rest[..digits]
            .parse()
            .map_err(|_| format!("'{s}': number too large"))?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(|b| b.is_ascii_alphabetic()).count();
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let ms: u128 = match unit {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "w" => 7 * 86_400_000,
            "" => return Err(format!("'{s}': missing unit (use ms, s, m, h or d)")),
            other => {
                return Err(format!(
                    "'{s}': unknown unit '{other}' (use ms, s, m, h or d)"
                ));
            }
        };
        total = total
            .checked_add(n.saturating_mul(ms))
            .ok_or_else(|| format!("'{s}': duration too large"))?;
    }
    let ms = u64::try_from(total).map_err(|_| format!("'{s}': duration too large"))?;
    Ok(Duration::from_millis(ms))
}

/// Formats a duration with the largest unit that divides it: `90s` becomes `90s`, `120s` `2m`.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        return "0s".into();
    }
    for (unit, size) in [
        ("d", 86_400_000u128),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
    ] {
        if ms.is_multiple_of(size) {
            return format!("{}{unit}", ms / size);
        }
    }
    format!("{ms}ms")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_unit() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("12h"), Ok(Duration::from_secs(43_200)));
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(604_800)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5_400)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
    }

    #[test]
    fn rejects_garbage_with_a_message() {
        for bad in [
            "",
            "s",
            "10",
            "10x",
            "-5s",
            "1.5s",
            "99999999999999999999999d",
        ] {
            let err = parse_duration(bad).expect_err(bad);
            assert!(!err.is_empty());
        }
    }

    #[test]
    fn formats_round_trip() {
        for s in ["500ms", "30s", "5m", "12h", "7d", "90s"] {
            let d = parse_duration(s).expect("valid");
            assert_eq!(parse_duration(&format_duration(d)), Ok(d));
        }
        assert_eq!(format_duration(Duration::from_secs(120)), "2m");
    }
}
