//! The one commit pipeline: every writer (push ingest, transforms, and next queue ingest and
//! governance) commits through `commit_with_retries`.
//!
//! Each attempt enters the dataset's commit lane (writers of this process queue instead of
//! racing), reloads the chain when the head moved, asks the writer whether an earlier commit
//! already did its work (idempotency), lets it prepare the blocks after the head, and swaps the
//! head. A writer in another process can still win the compare-and-swap; the attempt then backs
//! off, reloads and prepares again, at most `max_attempts` times. Listeners hear about a commit
//! after the lane is released.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use weir_odf::{DatasetId, MetadataEvent, Multihash};

use crate::dataset::{ChainSnapshot, CommitResult, Dataset};
use crate::error::CommitError;

/// Blocks a writer wants appended after the head it prepared them for, and what it keeps for
/// the answer (or for the next attempt when the commit loses a race).
pub struct Prepared<S> {
    pub events: Vec<MetadataEvent>,
    pub system_time: DateTime<Utc>,
    pub staged: S,
}

/// One writer's side of the pipeline.
#[async_trait::async_trait]
pub trait CommitWriter: Send {
    /// Kept between `prepare` and the commit's outcome (a written slice, counts, ...).
    type Staged: Send;
    type Output: Send;
    type Error: From<CommitError> + Send;

    /// An earlier commit in `chain` already did this writer's work (same idempotency key): its
    /// answer, given without committing again. Asked whenever the chain was reloaded.
    fn already_committed(
        &self,
        _chain: &ChainSnapshot,
    ) -> Result<Option<Self::Output>, Self::Error> {
        Ok(None)
    }

    /// The blocks to append after `chain`'s head, with the data and checkpoint objects they
    /// reference already stored; `None` when there is nothing to commit.
    async fn prepare(
        &mut self,
        dataset: &Dataset,
        chain: &ChainSnapshot,
    ) -> Result<Option<Prepared<Self::Staged>>, Self::Error>;

    /// The answer after the blocks became the head.
    fn committed(&mut self, result: &CommitResult, staged: Self::Staged) -> Self::Output;

    /// The answer when `prepare` found nothing to commit.
    fn unchanged(&mut self, chain: &ChainSnapshot) -> Self::Output;

    /// Another process moved the head first; `staged` may be kept for the next attempt.
    fn lost_race(&mut self, _staged: Self::Staged) {}
}

/// Told about every commit after it became visible (the control plane indexes it, derivatives
/// of the dataset are scheduled). Best effort: the indexer's repair loop finds lost ones.
#[async_trait::async_trait]
pub trait CommitListener: Send + Sync {
    async fn committed(&self, dataset: &DatasetId, result: &CommitResult);

    /// The head was moved back to an earlier block (a reset).
    async fn head_reset(&self, _dataset: &DatasetId, _head: &Multihash, _sequence_number: u64) {}
}

/// Options of the pipeline.
#[derive(Clone)]
pub struct CommitPipeline {
    pub max_attempts: u32,
    pub listeners: Vec<Arc<dyn CommitListener>>,
}

impl CommitPipeline {
    pub fn new(max_attempts: u32) -> Self {
        Self {
            max_attempts: max_attempts.max(1),
            listeners: Vec::new(),
        }
    }

    pub fn with_listener(mut self, listener: Arc<dyn CommitListener>) -> Self {
        self.listeners.push(listener);
        self
    }

    /// Commits what `writer` prepares after the head of `dataset`. `chain` is the chain the
    /// caller loaded (it is reloaded when the head moved since).
    pub async fn commit<W: CommitWriter>(
        &self,
        dataset: &Dataset,
        mut chain: ChainSnapshot,
        writer: &mut W,
    ) -> Result<W::Output, W::Error> {
        for attempt in 1..=self.max_attempts {
            let lane = dataset.commit_lane().await;
            let current = dataset
                .head()
                .await
                .map_err(CommitError::from)?
                .map(|head| head.hash);
            if current != chain.head.as_ref().map(|head| head.hash) {
                chain = dataset.load_chain(None).await?;
                if let Some(previous) = writer.already_committed(&chain)? {
                    return Ok(previous);
                }
            }
            let Some(prepared) = writer.prepare(dataset, &chain).await? else {
                return Ok(writer.unchanged(&chain));
            };
            let outcome = dataset
                .commit_many(
                    chain.head.as_ref(),
                    &chain.state,
                    prepared.events,
                    prepared.system_time,
                )
                .await;
            match outcome {
                Ok(result) => {
                    // The next writer may go while this one reports its commit.
                    drop(lane);
                    for listener in &self.listeners {
                        listener.committed(dataset.id(), &result).await;
                    }
                    tracing::debug!(dataset_id = %dataset.id(), new_head = %result.new_head, attempt, "committed");
                    return Ok(writer.committed(&result, prepared.staged));
                }
                Err(CommitError::Conflict { .. }) => {
                    // Only a writer in another process can have won.
                    tracing::debug!(dataset_id = %dataset.id(), attempt, "lost commit race, retrying");
                    writer.lost_race(prepared.staged);
                    drop(lane);
                    tokio::time::sleep(backoff(attempt)).await;
                    chain = dataset.load_chain(None).await?;
                    if let Some(previous) = writer.already_committed(&chain)? {
                        return Ok(previous);
                    }
                }
                Err(error) => return Err(error.into()),
            }
        }
        Err(CommitError::TooManyConflicts {
            attempts: self.max_attempts,
        }
        .into())
    }
}

/// A short pause that differs between processes, so that racing writers spread out.
fn backoff(attempt: u32) -> Duration {
    let jitter =
        u64::from(std::process::id() % 7) + u64::from(Utc::now().timestamp_subsec_millis() % 13);
    Duration::from_millis(5 * u64::from(attempt) + jitter)
}
