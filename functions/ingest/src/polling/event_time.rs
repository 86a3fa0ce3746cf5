//! Event time of a fetched file for records that carry none (`EventTimeSource`): from its path
//! (a regex whose first group is the time, read with `timestampFormat`), from its metadata
//! (modification time), or the time of the poll.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use weir_odf::EventTimeSource;

use super::PollError;

/// How a source's files get their event time.
pub enum EventTimeRule {
    Path {
        pattern: regex::Regex,
        format: Option<String>,
    },
    Metadata,
    PollTime,
}

impl EventTimeRule {
    pub fn new(source: Option<&EventTimeSource>) -> Result<Self, PollError> {
        match source {
            Some(EventTimeSource::FromPath(from_path)) => {
                let pattern = regex::RegexBuilder::new(&from_path.pattern)
                    .size_limit(1 << 20)
                    .build()
                    .map_err(|error| {
                        PollError::Unsupported(format!("`fetch.eventTime.pattern`: {error}"))
                    })?;
                if pattern.captures_len() < 2 {
                    return Err(PollError::Unsupported(
                        "`fetch.eventTime.pattern` needs a group capturing the time".to_string(),
                    ));
                }
                Ok(Self::Path {
                    pattern,
                    format: from_path.timestamp_format.clone(),
                })
            }
            Some(EventTimeSource::FromMetadata(_)) => Ok(Self::Metadata),
            Some(EventTimeSource::FromSystemTime(_)) | None => Ok(Self::PollTime),
        }
    }

    /// The event time of the file at `path`, modified at `modified`.
    pub fn of(
        &self,
        path: &str,
        modified: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<DateTime<Utc>, PollError> {
        match self {
            Self::Path { pattern, format } => {
                let text = pattern
                    .captures(path)
                    .and_then(|captures| captures.get(1))
                    .ok_or_else(|| {
                        PollError::Unsupported(format!(
                            "`{path}` does not match `fetch.eventTime.pattern`"
                        ))
                    })?
                    .as_str();
                parse_time(text, format.as_deref()).ok_or_else(|| {
                    PollError::Unsupported(format!(
                        "`{text}` in `{path}` is not a time in the format `{}`",
                        format.as_deref().unwrap_or("RFC 3339 or %Y-%m-%d")
                    ))
                })
            }
            Self::Metadata => Ok(modified.unwrap_or(now)),
            Self::PollTime => Ok(now),
        }
    }
}

fn parse_time(text: &str, format: Option<&str>) -> Option<DateTime<Utc>> {
    match format {
        Some(format) => NaiveDateTime::parse_from_str(text, format)
            .ok()
            .or_else(|| {
                NaiveDate::parse_from_str(text, format)
                    .ok()
                    .and_then(|date| date.and_hms_opt(0, 0, 0))
            })
            .map(|time| time.and_utc())
            .or_else(|| {
                DateTime::parse_from_str(text, format)
                    .ok()
                    .map(|time| time.to_utc())
            }),
        None => DateTime::parse_from_rfc3339(text)
            .ok()
            .map(|time| time.to_utc())
            .or_else(|| parse_time(text, Some("%Y-%m-%d"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use weir_odf::EventTimeSourceFromPath;

    #[test]
    fn times_come_from_the_path_in_the_given_format() {
        let rule = EventTimeRule::new(Some(&EventTimeSource::FromPath(EventTimeSourceFromPath {
            pattern: r"sales-(\d{8})\.csv".to_string(),
            timestamp_format: Some("%Y%m%d".to_string()),
        })))
        .unwrap();
        let now = Utc::now();
        assert_eq!(
            rule.of("/in/sales-20240131.csv", None, now).unwrap(),
            "2024-01-31T00:00:00Z".parse::<DateTime<Utc>>().unwrap()
        );
        assert!(rule.of("/in/other.csv", None, now).is_err());
        assert!(rule.of("/in/sales-20241399.csv", None, now).is_err());
        let no_group =
            EventTimeRule::new(Some(&EventTimeSource::FromPath(EventTimeSourceFromPath {
                pattern: r"sales-\d+".to_string(),
                timestamp_format: None,
            })));
        assert!(no_group.is_err());
    }
}
