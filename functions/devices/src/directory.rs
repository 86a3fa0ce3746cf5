//! Who a token in a topic is: the control plane's device registry answers (`POST
//! /devices/resolve`), and is told the bridge's counts (`POST /devices/usage`). `Cached` keeps
//! positive answers until an event says otherwise (`forget_token`, `forget_application`), with a
//! long time-to-live as a safety net only.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// An account's quota and its use in the current period, as the registry reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QuotaState {
    pub quota: Quota,
    pub period_start: i64,
    pub used: Counts,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Quota {
    /// `hour` or `day`.
    pub period: Period,
    pub max_samples: Option<i64>,
    pub max_bytes: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Period {
    Hour,
    Day,
}

impl Period {
    pub fn millis(self) -> i64 {
        match self {
            Self::Hour => 3_600_000,
            Self::Day => 86_400_000,
        }
    }
}

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

/// What a valid token stands for.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Binding {
    pub token_id: String,
    pub endpoint_id: String,
    pub application_id: String,
    pub application_name: String,
    pub account_id: String,
    pub dataset_id: String,
    /// `owner/name`.
    pub dataset: String,
    pub event_time_pointer: Option<String>,
    pub quota: Option<QuotaState>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "outcome")]
pub enum Resolution {
    UnknownVersion,
    UnknownToken,
    Revoked,
    OtherApplication,
    Ok(Box<Binding>),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UsageDelta {
    pub at: i64,
    pub account_id: String,
    pub dataset_id: String,
    pub application_id: String,
    pub endpoint_id: String,
    #[serde(flatten)]
    pub counts: Counts,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SeenAt {
    pub endpoint_id: String,
    pub at: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct UsageReport {
    pub usage: Vec<UsageDelta>,
    pub seen: Vec<SeenAt>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountQuota {
    pub account_id: String,
    #[serde(flatten)]
    pub state: QuotaState,
}

/// The registry could not answer now (it is unreachable or failed): try again later.
#[derive(Debug, thiserror::Error)]
#[error("device registry unavailable: {message}")]
pub struct DirectoryUnavailable {
    pub message: String,
    #[source]
    pub source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl DirectoryUnavailable {
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            source: None,
        }
    }
}

#[async_trait]
pub trait Directory: Send + Sync {
    async fn resolve(&self, version: &str, token: &str)
    -> Result<Resolution, DirectoryUnavailable>;
    /// Records counts and sightings; answers the quota states of the accounts in the report.
    async fn report(&self, report: &UsageReport)
    -> Result<Vec<AccountQuota>, DirectoryUnavailable>;
}

/// The control plane over HTTP, with the bridge's (administrator) token.
pub struct RemoteDirectory {
    client: reqwest::Client,
    base_url: String,
    token: String,
}

impl RemoteDirectory {
    pub fn new(base_url: &str, token: &str, timeout: Duration) -> Result<Self, String> {
        Ok(Self {
            client: reqwest::Client::builder()
                .timeout(timeout)
                .build()
                .map_err(|error| format!("device registry client: {error}"))?,
            base_url: base_url.trim_end_matches('/').to_string(),
            token: token.to_string(),
        })
    }

    async fn post<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        body: &impl Serialize,
    ) -> Result<T, DirectoryUnavailable> {
        let unavailable = |error: reqwest::Error| DirectoryUnavailable {
            message: format!("{path}: {error}"),
            source: Some(Box::new(error)),
        };
        let response = self
            .client
            .post(format!("{}{path}", self.base_url))
            .bearer_auth(&self.token)
            .json(body)
            .send()
            .await
            .map_err(unavailable)?;
        let status = response.status();
        if !status.is_success() {
            let text = response.text().await.unwrap_or_default();
            return Err(DirectoryUnavailable::new(format!(
                "{path} answered {status}: {text}"
            )));
        }
        response.json().await.map_err(unavailable)
    }
}

#[async_trait]
impl Directory for RemoteDirectory {
    async fn resolve(
        &self,
        version: &str,
        token: &str,
    ) -> Result<Resolution, DirectoryUnavailable> {
        self.post(
            "/devices/resolve",
            &serde_json::json!({"version": version, "token": token}),
        )
        .await
    }

    async fn report(
        &self,
        report: &UsageReport,
    ) -> Result<Vec<AccountQuota>, DirectoryUnavailable> {
        self.post("/devices/usage", report).await
    }
}

/// Most cached answers; beyond it the cache starts over.
const MAX_CACHED: usize = 100_000;

type Key = (String, String);

/// Keeps valid and revoked answers (unknown ones are asked again: a token issued a moment ago
/// must work at once).
pub struct Cached {
    inner: Arc<dyn Directory>,
    ttl: Duration,
    entries: Mutex<HashMap<Key, (Resolution, Instant)>>,
}

impl Cached {
    pub fn new(inner: Arc<dyn Directory>, ttl: Duration) -> Self {
        Self {
            inner,
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// A token was revoked or its endpoint deleted.
    pub fn forget_token(&self, token_id: &str) {
        self.entries
            .lock()
            .expect("cache lock")
            .retain(|_, (resolution, _)| {
                !matches!(resolution, Resolution::Ok(binding) if binding.token_id == token_id)
            });
    }

    /// An application or one of its versions changed.
    pub fn forget_application(&self, application_id: &str) {
        self.entries
            .lock()
            .expect("cache lock")
            .retain(|_, (resolution, _)| {
                !matches!(resolution, Resolution::Ok(binding) if binding.application_id == application_id)
            });
    }

    /// The event stream was interrupted: anything may have changed.
    pub fn forget_all(&self) {
        self.entries.lock().expect("cache lock").clear();
    }
}

#[async_trait]
impl Directory for Cached {
    async fn resolve(
        &self,
        version: &str,
        token: &str,
    ) -> Result<Resolution, DirectoryUnavailable> {
        let key = (version.to_string(), token.to_string());
        if let Some((resolution, at)) = self.entries.lock().expect("cache lock").get(&key)
            && at.elapsed() < self.ttl
        {
            return Ok(resolution.clone());
        }
        let resolution = self.inner.resolve(version, token).await?;
        if matches!(resolution, Resolution::Ok(_) | Resolution::Revoked) {
            let mut entries = self.entries.lock().expect("cache lock");
            if entries.len() >= MAX_CACHED {
                entries.clear();
            }
            entries.insert(key, (resolution.clone(), Instant::now()));
        }
        Ok(resolution)
    }

    async fn report(
        &self,
        report: &UsageReport,
    ) -> Result<Vec<AccountQuota>, DirectoryUnavailable> {
        self.inner.report(report).await
    }
}
