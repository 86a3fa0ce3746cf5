//! Tells the control plane about the transform's commits (and resets), so that the event bus
//! carries them and the derivatives downstream run in turn.

use std::sync::Arc;

use weir_dataset::{CommitListener, CommitResult};
use weir_function_runtime::{Caller, CommitNotifier};
use weir_odf::{DatasetId, Multihash};

/// A [`CommitListener`] reporting to a [`CommitNotifier`] as `caller`.
pub struct NotifyListener {
    pub notifier: Arc<dyn CommitNotifier>,
    pub caller: Caller,
}

impl NotifyListener {
    pub fn new(notifier: Arc<dyn CommitNotifier>) -> Self {
        Self {
            notifier,
            caller: Caller::anonymous(),
        }
    }

    async fn report(&self, dataset: &DatasetId, head: &Multihash, sequence_number: u64) {
        self.notifier
            .block_committed(
                &self.caller,
                &dataset.to_did_string(),
                &head.to_string(),
                sequence_number,
            )
            .await;
    }
}

#[async_trait::async_trait]
impl CommitListener for NotifyListener {
    async fn committed(&self, dataset: &DatasetId, result: &CommitResult) {
        let sequence_number = result
            .blocks
            .last()
            .map(|(_, block)| block.sequence_number)
            .unwrap_or_default();
        self.report(dataset, &result.new_head, sequence_number)
            .await;
    }

    async fn head_reset(&self, dataset: &DatasetId, head: &Multihash, sequence_number: u64) {
        self.report(dataset, head, sequence_number).await;
    }
}
