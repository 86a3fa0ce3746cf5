//! Derivatives computed by themselves under `weir up`: the transform function's local trigger
//! fed from the event bus, finding derivatives through the control plane's lineage index, and
//! reporting its commits on the bus like any function.

use std::sync::Arc;

use weir_control_plane::ControlPlane;
use weir_events::WeirEvent;
use weir_odf::DatasetId;
use weir_transform::notify::NotifyListener;
use weir_transform::{
    DataFusionEngine, Lineage, LocalTrigger, TransformContext, TransformTrigger, Transformer,
};

struct IndexLineage(Arc<ControlPlane>);

#[async_trait::async_trait]
impl Lineage for IndexLineage {
    async fn derivatives_of(
        &self,
        dataset: &DatasetId,
    ) -> Result<Vec<DatasetId>, Box<dyn std::error::Error + Send + Sync>> {
        let ids = self
            .0
            .metastore
            .downstream(&dataset.to_did_string())
            .await?;
        Ok(ids.iter().filter_map(|id| id.parse().ok()).collect())
    }
}

/// The transform function's context, with its trigger listening on the bus.
pub async fn start(control_plane: &Arc<ControlPlane>) -> Result<Arc<TransformContext>, String> {
    let mut transformer = Transformer::new(control_plane.store.clone(), Arc::new(DataFusionEngine));
    // Publishes `block-committed` for the transform's commits, so derivatives of derivatives run.
    transformer.listeners.push(Arc::new(NotifyListener::new(
        control_plane.commit_notifier("transform"),
    )));
    let trigger = LocalTrigger::new(
        transformer.clone(),
        Arc::new(IndexLineage(control_plane.clone())),
    );
    let mut events = control_plane
        .bus
        .subscribe(None, ">")
        .await
        .map_err(|error| format!("event bus: {error}"))?;
    let listening = trigger.clone();
    tokio::spawn(async move {
        use futures::StreamExt;
        while let Some(item) = events.next().await {
            let Ok(delivery) = item else { continue };
            match &delivery.envelope.event {
                WeirEvent::BlockCommitted { dataset_id, .. } => {
                    if let Ok(id) = dataset_id.parse::<DatasetId>() {
                        listening.input_committed(&id).await;
                    }
                }
                WeirEvent::DatasetCreated {
                    dataset_id, kind, ..
                } if kind == "derivative" => {
                    if let Ok(id) = dataset_id.parse::<DatasetId>() {
                        listening.derivative_changed(&id);
                    }
                }
                _ => {}
            }
            if let Err(error) = delivery.ack().await {
                tracing::warn!(%error, "cannot acknowledge an event");
            }
        }
    });
    Ok(Arc::new(TransformContext {
        store: control_plane.store.clone(),
        transformer,
        access: control_plane.access_policy(),
        trigger: Some(trigger),
    }))
}
