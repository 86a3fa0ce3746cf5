//! Webhooks as flow tasks. `dispatch` turns a bus event into deliveries for the subscriptions
//! that want it (kept once per subscription and event, however often the event comes) and runs
//! the dataset's `webhook` flow; `WebhookHandler` is that flow's task: it sends the dataset's
//! pending deliveries in order, signed, and reports failures as retryable, so that the flow's
//! retry policy brings them again with growing waits. A subscription failing
//! `webhooks.disable_after_failures` times in a row is disabled with its reason.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use weir_events::{EventEnvelope, WeirEvent};
use weir_flows::model::{FlowConfig, FlowKey, FlowType};
use weir_function_runtime::task::{LeasedTask, TaskHandler, TaskOutcome};
use weir_odf::{DatasetId, MetadataEvent, Multihash};
use weir_webhooks::deliver::{Attempt, DeliveryOptions, deliver};
use weir_webhooks::{Delivery, DeliveryId, DeliveryStatus, EventType, WebhookId};

use crate::error::{ServiceError, ServiceResult};
use crate::node::ControlPlane;
use crate::services::flows::target_of;

/// Who the webhook flow's runs are triggered by.
const TRIGGERED_BY: &str = "weir-webhooks";

/// Whether the commit ending at `head` (its blocks share one system time) set a new schema.
async fn schema_changed(control_plane: &ControlPlane, dataset_id: &str, head: &str) -> bool {
    let (Ok(id), Ok(hash)) = (dataset_id.parse::<DatasetId>(), head.parse::<Multihash>()) else {
        return false;
    };
    let dataset = control_plane.store.dataset(&id);
    let mut cursor = Some(hash);
    let mut commit_time = None;
    for _ in 0..16 {
        let Some(hash) = cursor else { break };
        let Ok(block) = dataset.get_block(&hash).await else {
            break;
        };
        if *commit_time.get_or_insert(block.system_time) != block.system_time {
            break;
        }
        if matches!(block.event, MetadataEvent::SetDataSchema(_)) {
            return true;
        }
        cursor = block.prev_block_hash;
    }
    false
}

/// The webhook event types an event may be, with the dataset it concerns. A commit is
/// `dataset.schema.changed` only if its blocks hold a schema, which `dispatch` reads from
/// storage only when a subscription wants that type.
fn event_types(event: &WeirEvent) -> Option<(String, Vec<EventType>)> {
    Some(match event {
        WeirEvent::BlockCommitted { dataset_id, .. } => (
            dataset_id.clone(),
            vec![
                EventType::DatasetRefUpdated,
                EventType::DatasetSchemaChanged,
            ],
        ),
        WeirEvent::IssueOpened { dataset_id, .. } => {
            (dataset_id.clone(), vec![EventType::IssueOpened])
        }
        WeirEvent::DiscussionOpened { dataset_id, .. } => {
            (dataset_id.clone(), vec![EventType::DiscussionOpened])
        }
        WeirEvent::ThreadChanged { dataset_id, .. } => {
            (dataset_id.clone(), vec![EventType::ThreadChanged])
        }
        WeirEvent::CommentAdded { dataset_id, .. } => {
            (dataset_id.clone(), vec![EventType::CommentAdded])
        }
        _ => return None,
    })
}

async fn may_read(
    control_plane: &ControlPlane,
    account_id: &str,
    entry: &weir_metastore::DatasetEntry,
) -> ServiceResult<bool> {
    let Some(account) = control_plane.metastore.account_by_id(account_id).await? else {
        return Ok(false);
    };
    let caller = weir_function_runtime::Caller {
        account_id: Some(account.id),
        account_name: Some(account.name),
        is_admin: account.is_admin,
        token: None,
    };
    Ok(control_plane.access.role(&caller, entry).await?.is_some())
}

/// Queues the deliveries an event implies and runs the dataset's webhook flow.
pub async fn dispatch(control_plane: &ControlPlane, envelope: &EventEnvelope) -> ServiceResult<()> {
    let Some((dataset_id, types)) = event_types(&envelope.event) else {
        return Ok(());
    };
    let Some(entry) = control_plane.metastore.dataset_by_id(&dataset_id).await? else {
        return Ok(());
    };
    let mut data = serde_json::to_value(&envelope.event).unwrap_or(Value::Null);
    if let Some(object) = data.as_object_mut() {
        object.remove("type");
    }
    let mut deliveries = Vec::new();
    for event_type in types {
        let subscriptions = control_plane
            .webhooks
            .matching(&dataset_id, &entry.owner_id, event_type)
            .await?;
        if event_type == EventType::DatasetSchemaChanged
            && !subscriptions.is_empty()
            && let WeirEvent::BlockCommitted { block_hash, .. } = &envelope.event
            && !schema_changed(control_plane, &dataset_id, block_hash).await
        {
            continue;
        }
        for subscription in subscriptions {
            // Permissions follow the dataset: a subscriber who may no longer read it (a role
            // taken away, the dataset made private) hears nothing of it.
            if !may_read(control_plane, &subscription.owner_id, &entry).await? {
                continue;
            }
            let id = DeliveryId::generate(&uuid::Uuid::new_v4().simple().to_string());
            let payload = json!({
                "type": event_type.as_str(),
                "eventId": envelope.id,
                "timestamp": envelope.timestamp,
                "dataset": {"id": dataset_id, "alias": format!("{}/{}", entry.owner_name, entry.name)},
                "data": data,
            });
            deliveries.push(Delivery {
                id,
                subscription_id: subscription.id,
                event_id: format!("{}:{}", envelope.id, event_type.as_str()),
                event_type,
                dataset_id: dataset_id.clone(),
                payload: payload.to_string(),
                status: DeliveryStatus::Pending,
                attempts: 0,
                last_status: None,
                last_error: None,
                created_at: crate::services::now_millis(),
                delivered_at: None,
            });
        }
    }
    if deliveries.is_empty() || control_plane.webhooks.enqueue(&deliveries).await? == 0 {
        return Ok(());
    }
    let key = FlowKey::new(&dataset_id, FlowType::Webhook);
    let flows = &control_plane.flows;
    // The flow exists from the dataset's first delivery on (its config can then be changed
    // like any other flow's); datasets without webhooks list no webhook flow.
    if flows
        .flows
        .binding(&key)
        .await
        .map_err(ServiceError::from)?
        .is_none()
    {
        flows
            .configure(&key, target_of(&entry), FlowConfig::default_webhook())
            .await
            .map_err(ServiceError::from)?;
    }
    flows
        .trigger_manual(&key, target_of(&entry), TRIGGERED_BY)
        .await
        .map_err(ServiceError::from)?;
    Ok(())
}

/// The `webhook` task: sends a dataset's pending deliveries.
pub struct WebhookHandler(pub Arc<ControlPlane>);

impl WebhookHandler {
    async fn round(&self, dataset_id: &str) -> Result<(usize, Vec<String>), ServiceError> {
        let control_plane = &self.0;
        let config = &control_plane.config.webhooks;
        let options = DeliveryOptions {
            timeout: Duration::from_millis(config.timeout_millis.max(100)),
            allow_private_targets: config.allow_private_targets,
        };
        let mut delivered = 0;
        let mut failures = Vec::new();
        // A subscription that failed waits for the next round: its deliveries stay in order.
        let mut held: HashSet<WebhookId> = HashSet::new();
        for delivery in control_plane.webhooks.pending(dataset_id, 200).await? {
            if held.contains(&delivery.subscription_id) {
                continue;
            }
            let store = &control_plane.webhooks;
            let (Some(subscription), Some(secret)) = (
                store.get(&delivery.subscription_id).await?,
                store.secret(&delivery.subscription_id).await?,
            ) else {
                continue;
            };
            let now = chrono::Utc::now().timestamp();
            match deliver(&delivery, &subscription.url, &secret, &options, now).await {
                Attempt::Delivered { status } => {
                    store
                        .record_success(
                            &delivery.id,
                            i64::from(status),
                            crate::services::now_millis(),
                        )
                        .await?;
                    delivered += 1;
                }
                Attempt::Failed { status, reason } => {
                    let disabled = store
                        .record_failure(
                            &delivery.id,
                            status.map(i64::from),
                            &reason,
                            config.disable_after_failures,
                        )
                        .await?;
                    held.insert(delivery.subscription_id.clone());
                    if disabled {
                        tracing::warn!(webhook = %subscription.id, %reason, "webhook disabled after repeated failures");
                    } else {
                        failures.push(format!("{}: {reason}", subscription.id));
                    }
                }
            }
        }
        Ok((delivered, failures))
    }
}

#[async_trait::async_trait]
impl TaskHandler for WebhookHandler {
    async fn run(&self, task: &LeasedTask) -> TaskOutcome {
        match self.round(&task.dataset_id).await {
            Ok((delivered, failures)) if failures.is_empty() => TaskOutcome::Success {
                changed: false,
                details: json!({"delivered": delivered}),
            },
            Ok((delivered, failures)) => TaskOutcome::Failed {
                error_kind: "webhook".to_string(),
                message: format!(
                    "{} of {} deliveries failed: {}",
                    failures.len(),
                    failures.len() + delivered,
                    failures.join("; ")
                ),
                retryable: true,
            },
            Err(error) => TaskOutcome::Failed {
                error_kind: "store".to_string(),
                message: error.to_string(),
                retryable: true,
            },
        }
    }
}
