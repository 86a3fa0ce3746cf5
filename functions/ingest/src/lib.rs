//! weir-ingest: the ingest function. Push ingest over HTTP into root datasets:
//! `POST /{account}/{dataset}/ingest?sourceName=NAME` with CSV, JSON, NDJSON, GeoJSON or Parquet;
//! and polling ingest (`polling`): `ingest` flow tasks fetch a dataset's `SetPollingSource`
//! (URL, local files, S3 prefixes) through the same steps; and queue ingest (`queue`): messages
//! from NATS JetStream, SQS, CloudEvents (`POST /events`) and S3 object notifications, committed
//! in micro-batches exactly once.
//!
//! Reads the body as the dataset's push source says (streamed, with a size limit), runs the
//! optional SQL preprocess step, applies the merge strategy against the dataset's history and
//! commits at most one AddData block (after a SetDataSchema when the schema is new), retrying when
//! a concurrent writer wins the race. The binary runs it as a Lambda or an HTTP service; `weir up`
//! mounts `routes::router` in-process.
//!
//! Depends on weir-odf, weir-dataset and weir-function-runtime; nothing depends on it but binaries.

pub mod config;
pub mod error;
pub mod idempotency;
pub mod merge;
pub mod polling;
pub mod preprocess;
pub mod queue;
pub mod read;
pub mod records;
pub mod routes;
pub mod service;
pub mod sink;
pub mod source;

use std::sync::Arc;

pub use config::IngestConfig;
pub use error::IngestError;
pub use routes::router;
pub use service::{IngestContext, IngestRequest, IngestResponse};

pub const FUNCTION_NAME: &str = "ingest";

/// Builds the function's context and router from its config (once per cold start): links to the
/// configured control plane, or runs open to everyone without one.
pub async fn build(config: IngestConfig) -> Result<axum::Router, String> {
    Ok(build_function(config).await?.router)
}

/// The function as its binary runs it: the routes, and with `tasks`, an executor of ingest and
/// compaction tasks (a background worker, or in Lambda the handler of task announcements).
pub async fn build_function(
    config: IngestConfig,
) -> Result<weir_function_runtime::Function, String> {
    let store = config.storage.open().map_err(|error| error.to_string())?;
    let platform = weir_function_runtime::Platform::from_config(
        FUNCTION_NAME,
        config.control_plane.as_ref(),
        config.open_access,
    )
    .await?;
    let tasks = config.tasks.clone();
    let link = config.control_plane.clone();
    let policy = config.polling.clone();
    let context = Arc::new(IngestContext {
        store,
        config,
        access: platform.access,
        notifier: platform.notifier,
    });
    let queue =
        Arc::new(queue::QueueIngest::new(context.clone(), context.config.queue.clone()).await?);
    let mut tasks_handler = None;
    if let Some(tasks) = &tasks {
        let poller = polling::Poller::new(context.clone(), policy)
            .map_err(|e| e.to_string())?
            .with_caller(weir_function_runtime::Caller::service(&tasks.token));
        tasks_handler = weir_function_runtime::task::spawn_remote_worker(
            tasks,
            link.as_ref(),
            FUNCTION_NAME,
            &polling::task::TASK_KINDS,
            Arc::new(polling::task::IngestTaskHandler {
                poller,
                context: context.clone(),
            }),
        )?;
    }
    if !weir_function_runtime::server::in_lambda()
        && let Some(jetstream) = &context.config.queue.jetstream
    {
        weir_function_runtime::jetstream::spawn(jetstream.clone(), queue.clone());
    }
    if !weir_function_runtime::server::in_lambda()
        && let Some(sqs) = &context.config.queue.sqs
    {
        weir_function_runtime::sqs::spawn(sqs.clone(), queue.clone());
    }
    // In Lambda, rejects go to the configured dead-letter queue with their reason.
    let mut ingest: Arc<dyn weir_function_runtime::messages::MessageHandler> = queue.clone();
    if let Some(sqs) = &context.config.queue.sqs
        && let Some(queue_url) = &sqs.dead_letter_queue_url
        && weir_function_runtime::server::in_lambda()
    {
        ingest = Arc::new(weir_function_runtime::sqs::DeadLetterQueue {
            inner: ingest,
            client: weir_function_runtime::sqs::client(sqs).await,
            queue_url: queue_url.clone(),
        });
    }
    let messages: Arc<dyn weir_function_runtime::messages::MessageHandler> = match tasks_handler {
        Some(tasks) => Arc::new(queue::SplitTasks { tasks, ingest }),
        None => ingest,
    };
    Ok(weir_function_runtime::Function {
        router: router(context).merge(queue::cloudevents_router(queue)),
        messages: Some(messages),
    })
}
