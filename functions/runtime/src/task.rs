//! The control plane's task queue over HTTP, for a function deployed apart (see weir-tasks).

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
pub use weir_tasks::*;

use crate::ControlPlaneLinkConfig;
use crate::messages::{Disposition, MessageHandler, QueueMessage};

/// How the function takes tasks from the control plane (`/tasks/lease` over HTTP).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskWorkerConfig {
    /// The control plane; defaults to `control_plane.url`.
    #[serde(default)]
    pub url: Option<String>,
    /// A token of an administrator (or of a service account made one) that may take tasks.
    pub token: String,
    /// This executor's name in leases; unique per replica (defaults to a random one).
    #[serde(default)]
    pub executor: Option<String>,
    /// Tasks run at once.
    #[serde(default = "default_task_concurrency")]
    pub concurrency: usize,
    /// A lease lasts this long unless renewed (renewed every third of it while running).
    #[serde(default = "default_lease_seconds")]
    pub lease_seconds: u64,
    /// Pause between polls of an empty queue (with `nats`, a safety net: e.g. 30000).
    #[serde(default = "default_poll_millis")]
    pub poll_millis: u64,
    /// Wake at once when the control plane announces queued tasks on NATS JetStream (its bus).
    #[serde(default)]
    pub nats: Option<DoorbellConfig>,
}

/// The control plane's NATS bus, where queued tasks are announced.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DoorbellConfig {
    pub url: String,
    /// The bus prefix of the control plane (`bus.prefix`, default `weir`).
    #[serde(default = "default_bus_prefix")]
    pub prefix: String,
}

fn default_bus_prefix() -> String {
    "weir".to_string()
}

fn default_task_concurrency() -> usize {
    2
}

fn default_lease_seconds() -> u64 {
    60
}

fn default_poll_millis() -> u64 {
    1000
}

/// Takes tasks of `kinds` from the control plane's queue over HTTP; `function` names the
/// executor unless the config does. As a long-running process: a worker in the background
/// (woken by NATS announcements when configured). In Lambda, where nothing runs between
/// invocations: the returned handler of task announcements (SQS events), each of which leases
/// and runs one task.
pub fn spawn_remote_worker(
    tasks: &TaskWorkerConfig,
    link: Option<&ControlPlaneLinkConfig>,
    function: &str,
    kinds: &[TaskKind],
    handler: Arc<dyn TaskHandler>,
) -> Result<Option<Arc<dyn MessageHandler>>, String> {
    let url = tasks
        .url
        .clone()
        .or_else(|| link.map(|link| link.url.clone()))
        .ok_or("invalid config key `tasks.url`: needed when there is no `control_plane`")?;
    if !(1..=64).contains(&tasks.concurrency) {
        return Err("invalid config key `tasks.concurrency`: must be between 1 and 64".to_string());
    }
    if !(5..=3600).contains(&tasks.lease_seconds) {
        return Err(
            "invalid config key `tasks.lease_seconds`: must be between 5 and 3600".to_string(),
        );
    }
    let source = RemoteTaskSource::new(&url, &tasks.token)?;
    let options = WorkerOptions {
        executor: tasks
            .executor
            .clone()
            .unwrap_or_else(|| format!("{function}/{}", uuid::Uuid::new_v4().simple())),
        kinds: kinds.to_vec(),
        lease: Duration::from_secs(tasks.lease_seconds),
        idle_poll: Duration::from_millis(tasks.poll_millis.max(10)),
        concurrency: tasks.concurrency,
    };
    if crate::server::in_lambda() {
        return Ok(Some(Arc::new(AnnouncedTasks {
            source: Arc::new(source),
            handler,
            options,
        })));
    }
    let wake = Arc::new(tokio::sync::Notify::new());
    if let Some(doorbell) = &tasks.nats {
        for kind in kinds {
            tokio::spawn(listen_for_announcements(
                doorbell.clone(),
                format!("{function}-{}-tasks", kind.as_str()),
                *kind,
                wake.clone(),
            ));
        }
    }
    tokio::spawn(run_worker(Arc::new(source), handler, options, wake));
    Ok(None)
}

/// Task announcements as queue messages (the body, or the `kind` attribute, names the kind):
/// each leases one queued task of that kind and runs it to its end before the message counts
/// as done. No task queued (another executor took it) is done too; a queue that cannot be
/// reached sends the message back.
pub struct AnnouncedTasks {
    pub source: Arc<dyn TaskSource>,
    pub handler: Arc<dyn TaskHandler>,
    pub options: WorkerOptions,
}

#[async_trait::async_trait]
impl MessageHandler for AnnouncedTasks {
    async fn handle(&self, messages: &[QueueMessage]) -> Vec<Disposition> {
        let mut dispositions = Vec::with_capacity(messages.len());
        for message in messages {
            let named = message
                .attributes
                .get("kind")
                .map(String::as_str)
                .unwrap_or_else(|| std::str::from_utf8(&message.body).unwrap_or("").trim());
            let kinds: Vec<TaskKind> = match TaskKind::parse(named) {
                Some(kind) if self.options.kinds.contains(&kind) => vec![kind],
                _ => {
                    tracing::warn!(
                        message_id = %message.message_id, kind = named,
                        "an announcement of a task kind this function does not run; dropped"
                    );
                    dispositions.push(Disposition::Done);
                    continue;
                }
            };
            let leased = self
                .source
                .lease(&kinds, &self.options.executor, self.options.lease)
                .await;
            dispositions.push(match leased {
                Ok(Some(task)) => {
                    run_one(
                        self.source.clone(),
                        self.handler.clone(),
                        &self.options,
                        task,
                    )
                    .await;
                    Disposition::Done
                }
                Ok(None) => Disposition::Done,
                Err(error) => {
                    tracing::warn!(%error, "cannot take an announced task; the message comes back");
                    Disposition::Retry(error.to_string())
                }
            });
        }
        dispositions
    }
}

/// Wakes the worker for each announcement of a queued task of `kind`: one durable consumer per
/// function and kind (`<function>-<kind>-tasks`, one filter subject each, as work-queue streams
/// of NATS 2.9 require), shared by the function's replicas. Reconnects after failures; the
/// worker's polls cover the time it is away.
async fn listen_for_announcements(
    config: DoorbellConfig,
    consumer: String,
    kind: TaskKind,
    wake: Arc<tokio::sync::Notify>,
) {
    loop {
        if let Err(error) = announcements(&config, &consumer, kind, &wake).await {
            tracing::warn!(%error, url = %config.url, "task announcements unavailable; polling meanwhile");
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
}

async fn announcements(
    config: &DoorbellConfig,
    consumer: &str,
    kind: TaskKind,
    wake: &tokio::sync::Notify,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    use async_nats::jetstream::{self, consumer::pull};
    use futures::StreamExt;
    let client = async_nats::connect(&config.url).await?;
    let jetstream = jetstream::new(client);
    let stream = jetstream
        .get_stream(doorbell::stream_name(&config.prefix))
        .await?;
    let pull_config = pull::Config {
        durable_name: Some(consumer.to_string()),
        filter_subject: doorbell::subject(&config.prefix, kind),
        ack_policy: jetstream::consumer::AckPolicy::Explicit,
        ..Default::default()
    };
    let consumer: jetstream::consumer::PullConsumer =
        stream.get_or_create_consumer(consumer, pull_config).await?;
    let mut messages = consumer.messages().await?;
    tracing::info!(url = %config.url, "taking task announcements");
    while let Some(message) = messages.next().await {
        let message = message?;
        wake.notify_waiters();
        wake.notify_one();
        message.ack().await?;
    }
    Ok(())
}

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
        if token.trim().is_empty() {
            return Err(
                "tasks.token is empty: taking tasks needs an administrator's token \
                 (WEIR__TASKS__TOKEN; the Helm chart's secrets.create.tasksToken)"
                    .to_string(),
            );
        }
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
