//! 5-field cron (`minute hour day-of-month month day-of-week`, in UTC) with lists, ranges,
//! steps, month and day names, and the `@hourly`/`@daily`/`@weekly`/`@monthly`/`@yearly`
//! macros. When both day fields are restricted a day matching either fires, as in Vixie cron.

use chrono::{DateTime, Datelike, Duration, NaiveDate, Timelike, Utc};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cron {
    minutes: u64,
    hours: u64,
    days: u64,
    months: u64,
    weekdays: u64,
    days_restricted: bool,
    weekdays_restricted: bool,
}

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const WEEKDAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

fn value(text: &str, min: u32, max: u32, names: &[&str], field: &str) -> Result<u32, String> {
    if let Some(index) = names
        .iter()
        .position(|name| name.eq_ignore_ascii_case(text))
    {
        return Ok(index as u32 + min);
    }
    let number: u32 = text
        .parse()
        .map_err(|_| format!("{field}: `{text}` is not a number"))?;
    if number < min || number > max {
        return Err(format!("{field}: {number} is outside {min}-{max}"));
    }
    Ok(number)
}

/// Parses one field into a bit set; `max_accepted` may exceed `max` (7 for Sunday).
fn field(
    text: &str,
    min: u32,
    max: u32,
    max_accepted: u32,
    names: &[&str],
    name: &str,
) -> Result<(u64, bool), String> {
    let mut bits = 0u64;
    let restricted = text != "*" && text != "?";
    for part in text.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((range, step)) => {
                let step: u32 = step
                    .parse()
                    .ok()
                    .filter(|step| *step > 0)
                    .ok_or_else(|| format!("{name}: bad step in `{part}`"))?;
                (range, step)
            }
            None => (part, 1),
        };
        let (start, end) = if range == "*" || range == "?" {
            (min, max)
        } else if let Some((low, high)) = range.split_once('-') {
            let low = value(low, min, max_accepted, names, name)?;
            let high = value(high, min, max_accepted, names, name)?;
            if low > high {
                return Err(format!("{name}: range `{range}` runs backwards"));
            }
            (low, high)
        } else {
            let start = value(range, min, max_accepted, names, name)?;
            (start, if step > 1 { max } else { start })
        };
        let mut current = start;
        while current <= end {
            bits |= 1 << current;
            current += step;
        }
    }
    Ok((bits, restricted))
}

impl Cron {
    pub fn parse(text: &str) -> Result<Self, String> {
        let expanded = match text.trim() {
            "@yearly" | "@annually" => "0 0 1 1 *",
            "@monthly" => "0 0 1 * *",
            "@weekly" => "0 0 * * 0",
            "@daily" | "@midnight" => "0 0 * * *",
            "@hourly" => "0 * * * *",
            other => other,
        };
        let fields: Vec<&str> = expanded.split_whitespace().collect();
        let [minute, hour, day, month, weekday] = fields[..] else {
            return Err(format!(
                "`{text}` must have 5 fields (minute hour day-of-month month day-of-week), got {}",
                fields.len()
            ));
        };
        let (minutes, _) = field(minute, 0, 59, 59, &[], "minute")?;
        let (hours, _) = field(hour, 0, 23, 23, &[], "hour")?;
        let (days, days_restricted) = field(day, 1, 31, 31, &[], "day of month")?;
        let (months, _) = field(month, 1, 12, 12, &MONTHS, "month")?;
        let (mut weekdays, weekdays_restricted) =
            field(weekday, 0, 6, 7, &WEEKDAYS, "day of week")?;
        if weekdays & (1 << 7) != 0 {
            weekdays |= 1;
        }
        let cron = Self {
            minutes,
            hours,
            days,
            months,
            weekdays,
            days_restricted,
            weekdays_restricted,
        };
        if cron.next_after(0) == i64::MAX {
            return Err(format!("`{text}` never fires"));
        }
        Ok(cron)
    }

    fn day_matches(&self, date: NaiveDate) -> bool {
        let day = self.days & (1 << date.day()) != 0;
        let weekday = self.weekdays & (1 << date.weekday().num_days_from_sunday()) != 0;
        match (self.days_restricted, self.weekdays_restricted) {
            (true, true) => day || weekday,
            (true, false) => day,
            (false, true) => weekday,
            (false, false) => true,
        }
    }

    /// The first minute strictly after `after_millis` (Unix milliseconds) that matches, or
    /// `i64::MAX` when none does within eight years.
    pub fn next_after(&self, after_millis: i64) -> i64 {
        let Some(start) = DateTime::<Utc>::from_timestamp_millis(after_millis) else {
            return i64::MAX;
        };
        let mut at = start
            .naive_utc()
            .with_second(0)
            .and_then(|t| t.with_nanosecond(0))
            .unwrap_or(start.naive_utc())
            + Duration::minutes(1);
        let limit = at + Duration::days(8 * 366);
        while at < limit {
            let date = at.date();
            if self.months & (1 << date.month()) == 0 {
                let (year, month) = if date.month() == 12 {
                    (date.year() + 1, 1)
                } else {
                    (date.year(), date.month() + 1)
                };
                at = NaiveDate::from_ymd_opt(year, month, 1)
                    .and_then(|d| d.and_hms_opt(0, 0, 0))
                    .unwrap_or(limit);
            } else if !self.day_matches(date) {
                at = (date + Duration::days(1))
                    .and_hms_opt(0, 0, 0)
                    .unwrap_or(limit);
            } else if self.hours & (1 << at.hour()) == 0 {
                at = date.and_hms_opt(at.hour(), 0, 0).unwrap_or(limit) + Duration::hours(1);
            } else if self.minutes & (1 << at.minute()) == 0 {
                at += Duration::minutes(1);
            } else {
                return at.and_utc().timestamp_millis();
            }
        }
        i64::MAX
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> i64 {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .timestamp_millis()
    }

    #[test]
    fn next_times() {
        let cases = [
            (
                "*/30 * * * *",
                "2026-01-01T10:05:00Z",
                "2026-01-01T10:30:00Z",
            ),
            (
                "*/30 * * * *",
                "2026-01-01T10:30:00Z",
                "2026-01-01T11:00:00Z",
            ),
            ("@daily", "2026-01-01T10:05:00Z", "2026-01-02T00:00:00Z"),
            (
                "0 9 * * mon-fri",
                "2026-01-02T10:00:00Z",
                "2026-01-05T09:00:00Z",
            ),
            (
                "0 0 29 feb *",
                "2026-03-01T00:00:00Z",
                "2028-02-29T00:00:00Z",
            ),
            (
                "15 14 1 * *",
                "2026-01-31T00:00:00Z",
                "2026-02-01T14:15:00Z",
            ),
            ("0 0 13 * 5", "2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z"),
            ("0 12 * * 7", "2026-01-01T00:00:00Z", "2026-01-04T12:00:00Z"),
        ];
        for (cron, after, expected) in cases {
            let parsed = Cron::parse(cron).unwrap();
            assert_eq!(
                parsed.next_after(at(after)),
                at(expected),
                "{cron} after {after}"
            );
        }
    }

    #[test]
    fn bad_expressions() {
        for bad in [
            "",
            "* * * *",
            "60 * * * *",
            "* 24 * * *",
            "* * 0 * *",
            "* * * 13 *",
            "* * * * 8",
            "*/0 * * * *",
            "5-1 * * * *",
            "a * * * *",
            "0 0 30 feb *",
            "* * * * * *",
        ] {
            assert!(Cron::parse(bad).is_err(), "`{bad}` was accepted");
        }
    }
}
