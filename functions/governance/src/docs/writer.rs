//! Commits a documentation change through weir-dataset's one commit pipeline: each attempt
//! reads the documentation at the head it prepares for, so a change racing another writer is
//! applied on top of the newest state, and a change already in force commits nothing.

use std::sync::Arc;

use chrono::Utc;
use serde::Serialize;
use weir_dataset::{
    ChainSnapshot, CommitListener, CommitPipeline, CommitResult, CommitWriter, Dataset, Prepared,
};
use weir_function_runtime::{Caller, CommitNotifier};
use weir_odf::DatasetId;

use super::change::DocsChange;
use super::{CurrentDocs, Documentation};
use crate::config::DocsLimits;
use crate::error::GovernanceError;

/// The answer to a change: the documentation after it, and the events it committed (none when
/// nothing changed).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DocsCommitted {
    pub committed: Vec<&'static str>,
    #[serde(flatten)]
    pub docs: Documentation,
}

struct DocsWriter<'a> {
    change: &'a DocsChange,
    limits: &'a DocsLimits,
}

#[async_trait::async_trait]
impl CommitWriter for DocsWriter<'_> {
    type Staged = Vec<&'static str>;
    type Output = DocsCommitted;
    type Error = GovernanceError;

    async fn prepare(
        &mut self,
        dataset: &Dataset,
        chain: &ChainSnapshot,
    ) -> Result<Option<Prepared<Self::Staged>>, GovernanceError> {
        if chain.head.is_none() {
            return Err(GovernanceError::Empty(dataset.id().to_did_string()));
        }
        let events = self.change.events(&CurrentDocs::of(chain), self.limits)?;
        if events.is_empty() {
            return Ok(None);
        }
        let kinds = events.iter().map(event_kind).collect();
        Ok(Some(Prepared {
            events,
            system_time: chain.next_system_time().max(Utc::now()),
            staged: kinds,
        }))
    }

    fn committed(&mut self, result: &CommitResult, staged: Self::Staged) -> DocsCommitted {
        // `commit_change` reads the documentation back at the new head.
        DocsCommitted {
            committed: staged,
            docs: Documentation {
                head: Some(result.new_head.to_string()),
                ..Documentation::default()
            },
        }
    }

    fn unchanged(&mut self, chain: &ChainSnapshot) -> DocsCommitted {
        DocsCommitted {
            committed: Vec::new(),
            docs: CurrentDocs::of(chain).view(chain),
        }
    }
}

fn event_kind(event: &weir_odf::MetadataEvent) -> &'static str {
    match event {
        weir_odf::MetadataEvent::SetInfo(_) => "SetInfo",
        weir_odf::MetadataEvent::SetLicense(_) => "SetLicense",
        weir_odf::MetadataEvent::SetAttachments(_) => "SetAttachments",
        _ => "other",
    }
}

/// Commits `change` to `dataset` as `caller`; the control plane hears of the commit.
pub async fn commit_change(
    dataset: &Dataset,
    change: &DocsChange,
    limits: &DocsLimits,
    max_attempts: u32,
    notify: Option<(Arc<dyn CommitNotifier>, Caller)>,
) -> Result<DocsCommitted, GovernanceError> {
    let mut pipeline = CommitPipeline::new(max_attempts);
    if let Some((notifier, caller)) = notify {
        pipeline = pipeline.with_listener(Arc::new(NotifyAs { notifier, caller }));
    }
    let chain = dataset.load_chain(None).await?;
    let mut writer = DocsWriter { change, limits };
    let mut answer = pipeline.commit(dataset, chain, &mut writer).await?;
    if !answer.committed.is_empty() {
        // Read back what is now in force (the lane's cached chain makes this cheap).
        let chain = dataset.load_chain(None).await?;
        answer.docs = CurrentDocs::of(&chain).view(&chain);
    }
    Ok(answer)
}

/// Tells the control plane about a documentation commit, as the caller who made it.
struct NotifyAs {
    notifier: Arc<dyn CommitNotifier>,
    caller: Caller,
}

#[async_trait::async_trait]
impl CommitListener for NotifyAs {
    async fn committed(&self, dataset: &DatasetId, result: &CommitResult) {
        let sequence_number = result
            .blocks
            .last()
            .map(|(_, block)| block.sequence_number)
            .unwrap_or_default();
        self.notifier
            .block_committed(
                &self.caller,
                &dataset.to_did_string(),
                &result.new_head.to_string(),
                sequence_number,
            )
            .await;
    }
}
