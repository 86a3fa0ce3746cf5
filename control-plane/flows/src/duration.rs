//! Durations as flows write them: a whole number and a unit (`500ms`, `30s`, `10min`, `1h`,
//! `2d`), as in the ODF flow manifests.

use std::time::Duration;

const UNITS: &[(&str, u64)] = &[
    ("ms", 1),
    ("s", 1000),
    ("sec", 1000),
    ("m", 60_000),
    ("min", 60_000),
    ("h", 3_600_000),
    ("d", 86_400_000),
];

pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let trimmed = text.trim();
    let digits = trimmed
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(digits);
    let invalid = || format!("`{text}` is not a duration such as `30s`, `10min`, `1h` or `2d`");
    let number: u64 = number.parse().map_err(|_| invalid())?;
    let (_, millis) = UNITS
        .iter()
        .find(|(name, _)| *name == unit.trim())
        .ok_or_else(invalid)?;
    number
        .checked_mul(*millis)
        .map(Duration::from_millis)
        .ok_or_else(invalid)
}

pub fn format_duration(duration: Duration) -> String {
    let millis = duration.as_millis() as u64;
    for (name, unit) in [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("min", 60_000),
        ("s", 1000),
    ] {
        if millis >= unit && millis.is_multiple_of(unit) {
            return format!("{}{name}", millis / unit);
        }
    }
    format!("{millis}ms")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        assert_eq!(parse_duration("10min").unwrap(), Duration::from_secs(600));
        assert_eq!(parse_duration("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        for bad in ["", "10", "h", "-1s", "1.5h", "99999999999999999999d", "1y"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert_eq!(format_duration(Duration::from_secs(7200)), "2h");
    }
}
