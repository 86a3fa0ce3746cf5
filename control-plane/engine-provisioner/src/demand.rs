//! Demand: the depth of the flows' task queue, read from the control plane.

use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;

/// Queued and leased (running) tasks of some kinds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub struct Demand {
    pub queued: u64,
    pub leased: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum DemandError {
    #[error("the control plane cannot be reached: {0}")]
    Unreachable(#[source] reqwest::Error),
    #[error("the control plane answered {status}: {body}")]
    Refused { status: u16, body: String },
    #[error("the control plane's answer is not a queue depth: {0}")]
    Decode(#[source] reqwest::Error),
}

impl DemandError {
    /// Worth asking again: the control plane is down, busy or failing, not refusing us.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Unreachable(_) => true,
            Self::Refused { status, .. } => *status >= 500 || *status == 429,
            Self::Decode(_) => false,
        }
    }
}

#[async_trait]
pub trait DemandSource: Send + Sync {
    async fn demand(&self, task_kinds: &[String]) -> Result<Demand, DemandError>;
}

/// `GET {url}/tasks/depth?kinds=...` with an executor's token (an administrator's).
pub struct ControlPlaneDemand {
    client: reqwest::Client,
    url: String,
    token: String,
}

impl ControlPlaneDemand {
    pub fn new(url: &str, token: &str) -> Self {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_default();
        Self {
            client,
            url: url.trim_end_matches('/').to_string(),
            token: token.to_string(),
        }
    }
}

#[async_trait]
impl DemandSource for ControlPlaneDemand {
    async fn demand(&self, task_kinds: &[String]) -> Result<Demand, DemandError> {
        let response = self
            .client
            .get(format!("{}/tasks/depth", self.url))
            .query(&[("kinds", task_kinds.join(","))])
            .bearer_auth(&self.token)
            .send()
            .await
            .map_err(DemandError::Unreachable)?;
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            return Err(DemandError::Refused {
                status: status.as_u16(),
                body: body.chars().take(500).collect(),
            });
        }
        response.json().await.map_err(DemandError::Decode)
    }
}
