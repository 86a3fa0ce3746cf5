//! The registry's entities, with typed ids, and the checks on what users name them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha3::Digest;

use crate::error::{DeviceError, DeviceResult};

macro_rules! typed_id {
    ($name:ident, $prefix:literal) => {
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// A new random id, `<prefix>_<32 hex digits>`.
            pub fn generate() -> Self {
                Self(format!("{}_{}", $prefix, uuid::Uuid::new_v4().simple()))
            }

            /// An id read back from the store or a request (not checked: unknown ids find
            /// nothing).
            pub fn from_string(id: impl Into<String>) -> Self {
                Self(id.into())
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

typed_id!(ApplicationId, "app");
typed_id!(VersionId, "ver");
typed_id!(EndpointId, "ep");
typed_id!(DeviceTokenId, "dtk");

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Application {
    pub id: ApplicationId,
    /// Unique on the node, like a Kaa application name.
    pub name: String,
    /// The account owning `dataset_id`: metering and quotas count against it.
    pub account_id: String,
    /// Where the versions' samples go unless a version names another dataset.
    pub dataset_id: String,
    pub description: Option<String>,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AppVersion {
    pub id: VersionId,
    pub application_id: ApplicationId,
    /// The `appVersionName` of the topics `kp1/<name>/dcx/<token>/json`: unique on the node.
    pub name: String,
    pub dataset_id: String,
    /// JSON pointer (RFC 6901) to a sample's event time; without it, or where a sample lacks
    /// it, the event time is the time of ingestion.
    pub event_time_pointer: Option<String>,
    pub created_at: i64,
}

pub type Attributes = BTreeMap<String, String>;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Endpoint {
    pub id: EndpointId,
    pub application_id: ApplicationId,
    pub attributes: Attributes,
    pub created_at: i64,
    pub last_seen_at: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeviceToken {
    pub id: DeviceTokenId,
    pub endpoint_id: EndpointId,
    pub label: Option<String>,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

/// What a token in a topic stands for, as the bridge needs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Resolution {
    pub token_id: DeviceTokenId,
    pub revoked: bool,
    pub endpoint_id: EndpointId,
    pub application: Application,
    pub version: AppVersion,
}

/// Traffic of one endpoint into one dataset, summed per hour.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Counts {
    pub messages: i64,
    pub samples: i64,
    pub bytes: i64,
    pub rejections: i64,
}

impl Counts {
    pub fn add(&mut self, other: &Counts) {
        self.messages += other.messages;
        self.samples += other.samples;
        self.bytes += other.bytes;
        self.rejections += other.rejections;
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UsageDelta {
    /// Milliseconds since the epoch, any time within the hour (it is rounded down).
    pub at: i64,
    pub account_id: String,
    pub dataset_id: String,
    pub application_id: ApplicationId,
    pub endpoint_id: EndpointId,
    #[serde(flatten)]
    pub counts: Counts,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Period {
    #[default]
    Hour,
    Day,
}

pub const HOUR_MILLIS: i64 = 3_600_000;
pub const DAY_MILLIS: i64 = 24 * HOUR_MILLIS;

impl Period {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "hour" => Some(Self::Hour),
            "day" => Some(Self::Day),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hour => "hour",
            Self::Day => "day",
        }
    }

    pub fn millis(self) -> i64 {
        match self {
            Self::Hour => HOUR_MILLIS,
            Self::Day => DAY_MILLIS,
        }
    }

    /// The start of the period (UTC) holding `at`.
    pub fn start_of(self, at: i64) -> i64 {
        at.div_euclid(self.millis()) * self.millis()
    }
}

/// Which usage to sum: every set field must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UsageFilter {
    pub account_id: Option<String>,
    pub dataset_id: Option<String>,
    pub application_id: Option<ApplicationId>,
    pub endpoint_id: Option<EndpointId>,
    /// From (inclusive) and to (exclusive), milliseconds since the epoch.
    pub from: i64,
    pub to: i64,
    pub period: Period,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UsageRow {
    pub period_start: i64,
    #[serde(flatten)]
    pub counts: Counts,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Quota {
    pub period: Period,
    pub max_samples: Option<i64>,
    pub max_bytes: Option<i64>,
}

/// Where an account stands against its quota in the current period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QuotaState {
    pub quota: Quota,
    pub period_start: i64,
    pub used: Counts,
}

impl QuotaState {
    pub fn exceeded(&self) -> bool {
        self.quota
            .max_samples
            .is_some_and(|max| self.used.samples >= max)
            || self
                .quota
                .max_bytes
                .is_some_and(|max| self.used.bytes >= max)
    }
}

/// The digest a token is stored and looked up by: SHA3-256, hex.
pub fn token_hash(token: &str) -> String {
    let digest = sha3::Sha3_256::digest(token.as_bytes());
    digest.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Names of applications and versions: they are MQTT topic levels and URL path segments.
pub fn check_name(field: &str, name: &str) -> DeviceResult<()> {
    let fits = !name.is_empty()
        && name.len() <= 100
        && name
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.'));
    if fits {
        Ok(())
    } else {
        Err(DeviceError::invalid(
            field,
            format!(
                "`{name}` must be 1 to 100 characters of letters, digits, `-`, `_` and `.` (it is \
                 a topic level)"
            ),
        ))
    }
}

/// Tokens chosen by users (devices moving from Kaa keep theirs): a topic level, long enough not
/// to be guessed.
pub fn check_token(token: &str) -> DeviceResult<()> {
    let fits = (16..=200).contains(&token.len())
        && token
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~'));
    if fits {
        Ok(())
    } else {
        Err(DeviceError::invalid(
            "token",
            "a token is 16 to 200 characters of letters, digits, `-`, `_`, `.` and `~`",
        ))
    }
}

/// A JSON pointer: empty or `/`-separated reference tokens.
pub fn check_pointer(pointer: &str) -> DeviceResult<()> {
    if pointer.is_empty() || pointer.starts_with('/') && pointer.len() <= 200 {
        Ok(())
    } else {
        Err(DeviceError::invalid(
            "eventTimePointer",
            format!("`{pointer}` is not a JSON pointer: it starts with `/`, like `/ts`"),
        ))
    }
}

/// Endpoint attributes: at most 64, names up to 100 characters, values up to 1000.
pub fn check_attributes(attributes: &Attributes) -> DeviceResult<()> {
    if attributes.len() > 64 {
        return Err(DeviceError::invalid(
            "attributes",
            "an endpoint has at most 64 attributes",
        ));
    }
    for (name, value) in attributes {
        if name.is_empty() || name.len() > 100 || value.len() > 1000 {
            return Err(DeviceError::invalid(
                "attributes",
                format!("attribute `{name}`: names are 1 to 100 characters, values at most 1000"),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_start_at_utc_boundaries() {
        assert_eq!(Period::Hour.start_of(HOUR_MILLIS + 5), HOUR_MILLIS);
        assert_eq!(Period::Day.start_of(DAY_MILLIS * 3 - 1), DAY_MILLIS * 2);
    }

    #[test]
    fn names_and_tokens_must_be_topic_levels() {
        assert!(check_name("name", "smart-lamp.v1").is_ok());
        for bad in ["", "a/b", "a+b", "a#", "with space"] {
            assert!(check_name("name", bad).is_err(), "{bad}");
        }
        assert!(check_token("abcdefghijklmnop").is_ok());
        assert!(check_token("short").is_err());
        assert!(check_token("abcdefghijklmnop/").is_err());
        assert!(check_pointer("/ts").is_ok());
        assert!(check_pointer("ts").is_err());
    }

    #[test]
    fn quota_is_exceeded_at_its_limit() {
        let state = QuotaState {
            quota: Quota {
                period: Period::Hour,
                max_samples: Some(10),
                max_bytes: None,
            },
            period_start: 0,
            used: Counts {
                samples: 10,
                ..Counts::default()
            },
        };
        assert!(state.exceeded());
        assert_eq!(token_hash("x").len(), 64);
    }
}
