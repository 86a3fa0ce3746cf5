//! Flows in the control plane: opens the flow stores on the metastore's database, runs the
//! scheduler on the leader, turns bus events into flow causes (a durable subscription, so each
//! event is handled once by some replica and none is lost when the leader changes), and runs
//! the system GC task in-process.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use weir_events::{EventEnvelope, WeirEvent};
use weir_flows::executor::LocalTaskSource;
use weir_flows::{FlowError, FlowService, SqlFlowStore};
use weir_function_runtime::task::{
    LeasedTask, TaskHandler, TaskKind, TaskOutcome, TaskSource, WorkerOptions,
};
use weir_odf::{DatasetId, MetadataEvent, Multihash};

use crate::error::ServiceError;
use crate::node::ControlPlane;

/// Durable name of the subscription turning events into flow causes.
pub const FLOW_EVENTS_CONSUMER: &str = "weir-flows";

pub async fn open_store(
    sql: &weir_metastore::SqlMetastore,
    config: &crate::config::ControlPlaneConfig,
) -> Result<FlowService, String> {
    let bus = &config.bus;
    let store = Arc::new(
        SqlFlowStore::open(sql)
            .await
            .map_err(|error| format!("flow store: {error}"))?,
    );
    let mut service = FlowService::new(store.clone(), store);
    if let crate::config::BusConfig::Nats { url, prefix } = bus {
        let doorbell = weir_events::NatsTaskDoorbell::connect(url, prefix)
            .await
            .map_err(|error| format!("task announcements on {url}: {error}"))?;
        service.doorbells.push(Arc::new(Doorbell(doorbell)));
    }
    if let Some(sqs) = &config.flows.sqs_announcements {
        let doorbell = weir_events::SqsTaskDoorbell::new(sqs)
            .await
            .map_err(|error| format!("invalid config key `flows.sqs_announcements`: {error}"))?;
        service.doorbells.push(Arc::new(SqsDoorbell(doorbell)));
    }
    Ok(service)
}

/// Queued tasks announced on SQS for executors that are Lambdas.
struct SqsDoorbell(weir_events::SqsTaskDoorbell);

#[async_trait::async_trait]
impl weir_flows::TaskDoorbell for SqsDoorbell {
    async fn ring(&self, kind: TaskKind) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        Ok(self.0.ring(kind).await?)
    }
}

/// Queued tasks announced on NATS for executors deployed apart.
struct Doorbell(weir_events::NatsTaskDoorbell);

#[async_trait::async_trait]
impl weir_flows::TaskDoorbell for Doorbell {
    async fn ring(&self, kind: TaskKind) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        Ok(self.0.ring(kind).await?)
    }
}

impl From<FlowError> for ServiceError {
    fn from(error: FlowError) -> Self {
        match error {
            FlowError::InvalidField(field) => ServiceError::InvalidInput(field.to_string()),
            FlowError::NotFound(what) => ServiceError::NotFound(what),
            FlowError::Conflict(message) => ServiceError::Conflict(message),
            FlowError::LeaseLost(task) => {
                ServiceError::Conflict(format!("task {task} is not leased to this executor"))
            }
            FlowError::Store(error) => ServiceError::internal(error),
        }
    }
}

/// Spawns the scheduler (acting only while leader), the event consumer and the GC worker.
pub async fn spawn(control_plane: &Arc<ControlPlane>) -> Result<(), String> {
    let leadership = control_plane.leadership.clone();
    tokio::spawn(weir_flows::service::run_scheduler(
        control_plane.flows.clone(),
        move || leadership.is_leader(),
        Duration::from_millis(control_plane.config.flows.tick_millis.max(10)),
    ));
    let events = control_plane
        .bus
        .subscribe(Some(FLOW_EVENTS_CONSUMER), "dataset.>")
        .await
        .map_err(|error| format!("event bus: {error}"))?;
    tokio::spawn(consume(control_plane.clone(), events));
    let executor = format!("control-plane/{}", control_plane.leadership.instance_id);
    let source: Arc<dyn TaskSource> = Arc::new(LocalTaskSource(control_plane.flows.clone()));
    tokio::spawn(weir_function_runtime::task::run_worker(
        source,
        Arc::new(GcHandler(control_plane.clone())),
        WorkerOptions {
            executor,
            kinds: vec![TaskKind::Gc],
            lease: Duration::from_secs(60),
            idle_poll: Duration::from_secs(5),
            concurrency: 1,
        },
        control_plane.flows.worker_wake.clone(),
    ));
    let source: Arc<dyn TaskSource> = Arc::new(LocalTaskSource(control_plane.flows.clone()));
    tokio::spawn(weir_function_runtime::task::run_worker(
        source,
        Arc::new(crate::webhooks::WebhookHandler(control_plane.clone())),
        WorkerOptions {
            executor: format!(
                "control-plane/{}/webhooks",
                control_plane.leadership.instance_id
            ),
            kinds: vec![TaskKind::Webhook],
            lease: Duration::from_secs(120),
            idle_poll: Duration::from_secs(5),
            concurrency: 2,
        },
        control_plane.flows.worker_wake.clone(),
    ));
    Ok(())
}

async fn consume(control_plane: Arc<ControlPlane>, mut events: weir_events::EventStream) {
    while let Some(item) = events.next().await {
        let Ok(delivery) = item else { continue };
        let settled = match on_event(&control_plane, &delivery.envelope).await {
            Ok(()) => delivery.ack().await,
            Err(error) => {
                tracing::warn!(%error, "a flow cause could not be recorded; it comes again");
                delivery.nak(Duration::from_secs(1)).await
            }
        };
        if let Err(error) = settled {
            tracing::warn!(%error, "cannot settle an event");
        }
    }
}

/// New records a block brings (0 for blocks without data).
fn records_of(event: &MetadataEvent) -> u64 {
    let slice = match event {
        MetadataEvent::AddData(event) => event.new_data.as_ref(),
        MetadataEvent::ExecuteTransform(event) => event.new_data.as_ref(),
        _ => None,
    };
    slice.map(|slice| slice.offset_interval.len()).unwrap_or(0)
}

async fn on_event(
    control_plane: &ControlPlane,
    envelope: &EventEnvelope,
) -> Result<(), ServiceError> {
    crate::webhooks::dispatch(control_plane, envelope).await?;
    match &envelope.event {
        // A new derivative computes what its inputs already hold.
        WeirEvent::DatasetCreated {
            dataset_id, kind, ..
        } if kind == "derivative" => {
            control_plane
                .flows
                .input_committed(dataset_id, dataset_id, "", 0)
                .await?;
            Ok(())
        }
        WeirEvent::BlockCommitted {
            dataset_id,
            block_hash,
            ..
        } => input_committed(control_plane, dataset_id, block_hash).await,
        _ => Ok(()),
    }
}

/// Tells the flows of the derivatives reading `dataset_id` about its new block.
async fn input_committed(
    control_plane: &ControlPlane,
    dataset_id: &str,
    block_hash: &str,
) -> Result<(), ServiceError> {
    // An id that does not parse never will: nothing to do again.
    let Ok(id) = dataset_id.parse::<DatasetId>() else {
        return Ok(());
    };
    let derivatives = control_plane.metastore.downstream(dataset_id).await?;
    if derivatives.is_empty() {
        return Ok(());
    }
    // Read only for datasets that something reads: buffering triggers count the records.
    let records = match block_hash.parse::<Multihash>() {
        Ok(hash) => match control_plane.store.dataset(&id).get_block(&hash).await {
            Ok(block) => records_of(&block.event),
            Err(error) => {
                tracing::debug!(%error, "block of an event not readable; counting no records");
                0
            }
        },
        Err(_) => 0,
    };
    for derivative in derivatives {
        control_plane
            .flows
            .input_committed(&derivative, dataset_id, block_hash, records)
            .await?;
    }
    Ok(())
}

/// The system GC flow's task: the sweep of unreferenced storage objects.
struct GcHandler(Arc<ControlPlane>);

#[async_trait::async_trait]
impl TaskHandler for GcHandler {
    async fn run(&self, _task: &LeasedTask) -> TaskOutcome {
        let grace = Duration::from_secs(self.0.config.sweep_grace_seconds);
        match self.0.store.sweep_unreferenced(grace).await {
            Ok(report) => TaskOutcome::Success {
                changed: report.deleted > 0,
                details: serde_json::to_value(report).unwrap_or_default(),
            },
            Err(error) => TaskOutcome::Failed {
                error_kind: "storage".to_string(),
                message: error.to_string(),
                retryable: true,
            },
        }
    }
}
