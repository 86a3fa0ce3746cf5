//! The control plane's task queue over HTTP, for a function deployed apart (see weir-tasks).

use std::time::Duration;

pub use weir_tasks::*;

/// The control plane's task queue over HTTP (`/tasks/lease`, `/tasks/{id}/heartbeat`,
/// `/tasks/{id}/finish`), for a function deployed apart. `token` is an administrator's or a
/// service account's token.
pub struct RemoteTaskSource {
    client: reqwest::Client,
    base_url: String,
    token: String,
}

impl RemoteTaskSource {
    pub fn new(base_url: &str, token: &str) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|error| format!("task queue client: {error}"))?;
        Ok(Self {
            client,
            base_url: base_url.trim_end_matches('/').to_string(),
            token: token.to_string(),
        })
    }

    async fn post(
        &self,
        path: &str,
        body: serde_json::Value,
    ) -> Result<reqwest::Response, TaskSourceError> {
        self.client
            .post(format!("{}{path}", self.base_url))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await
            .map_err(|error| TaskSourceError::Unavailable(Box::new(error)))
    }
}

fn unexpected(status: reqwest::StatusCode, body: String) -> TaskSourceError {
    TaskSourceError::Unavailable(format!("control plane answered {status}: {body}").into())
}

/// A heartbeat's or report's answer: 2xx, or 409 when the lease is lost.
async fn settled(response: reqwest::Response, task_id: i64) -> Result<(), TaskSourceError> {
    match response.status() {
        status if status.is_success() => Ok(()),
        reqwest::StatusCode::CONFLICT => Err(TaskSourceError::LeaseLost(task_id)),
        status => Err(unexpected(
            status,
            response.text().await.unwrap_or_default(),
        )),
    }
}

#[async_trait::async_trait]
impl TaskSource for RemoteTaskSource {
    async fn lease(
        &self,
        kinds: &[TaskKind],
        executor: &str,
        lease: Duration,
    ) -> Result<Option<LeasedTask>, TaskSourceError> {
        let response = self
            .post(
                "/tasks/lease",
                serde_json::json!({"kinds": kinds, "executor": executor,
                    "leaseMillis": lease.as_millis() as u64}),
            )
            .await?;
        match response.status() {
            reqwest::StatusCode::NO_CONTENT => Ok(None),
            status if status.is_success() => response
                .json::<LeasedTask>()
                .await
                .map(Some)
                .map_err(|error| TaskSourceError::Unavailable(Box::new(error))),
            status => Err(unexpected(
                status,
                response.text().await.unwrap_or_default(),
            )),
        }
    }

    async fn heartbeat(
        &self,
        task: &LeasedTask,
        executor: &str,
        lease: Duration,
    ) -> Result<(), TaskSourceError> {
        let response = self
            .post(
                &format!("/tasks/{}/heartbeat", task.task_id),
                serde_json::json!({"executor": executor, "leaseMillis": lease.as_millis() as u64}),
            )
            .await?;
        settled(response, task.task_id).await
    }

    async fn finish(
        &self,
        task: &LeasedTask,
        executor: &str,
        outcome: TaskOutcome,
    ) -> Result<(), TaskSourceError> {
        let response = self
            .post(
                &format!("/tasks/{}/finish", task.task_id),
                serde_json::json!({"executor": executor, "outcome": outcome}),
            )
            .await?;
        settled(response, task.task_id).await
    }
}
