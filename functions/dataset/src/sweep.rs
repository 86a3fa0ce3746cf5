//! Removing what no chain refers to: blocks, data and checkpoints written by writers that lost
//! a commit race or died before committing, and `staging/` uploads never moved under a hash.
//! Only objects older than a grace period go, so a writer between writing its objects and
//! swapping the head is never robbed. The control plane's leader runs it periodically.

use std::collections::HashSet;
use std::time::Duration;

use chrono::Utc;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStoreExt};
use weir_odf::MetadataEvent;

use crate::dataset::Dataset;
use crate::error::{CommitError, StorageError};
use crate::store::DatasetStore;

/// What a sweep did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SweepReport {
    /// Datasets whose objects were examined.
    pub datasets: usize,
    /// Unreferenced objects removed.
    pub deleted: usize,
    /// Unreferenced objects left because they are younger than the grace period.
    pub recent: usize,
}

impl SweepReport {
    fn add(&mut self, other: SweepReport) {
        self.datasets += other.datasets;
        self.deleted += other.deleted;
        self.recent += other.recent;
    }
}

impl Dataset {
    /// Removes this dataset's objects that its chain does not refer to and that are older than
    /// `grace`. A dataset without a head is left alone (creation rolls those back).
    pub async fn sweep_unreferenced(&self, grace: Duration) -> Result<SweepReport, CommitError> {
        let chain = self.load_chain(None).await?;
        if chain.head.is_none() {
            return Ok(SweepReport::default());
        }
        let layout = self.layout();
        let mut referenced: HashSet<Path> = HashSet::new();
        for (hash, block) in &chain.blocks {
            referenced.insert(layout.block(hash));
            let (data, checkpoint) = match &block.event {
                MetadataEvent::AddData(event) => (&event.new_data, &event.new_checkpoint),
                MetadataEvent::ExecuteTransform(event) => (&event.new_data, &event.new_checkpoint),
                _ => continue,
            };
            if let Some(slice) = data {
                referenced.insert(layout.data(&slice.physical_hash));
            }
            if let Some(checkpoint) = checkpoint {
                referenced.insert(layout.checkpoint(&checkpoint.physical_hash));
            }
        }
        let mut report = SweepReport {
            datasets: 1,
            ..Default::default()
        };
        let cutoff =
            Utc::now() - chrono::Duration::from_std(grace).unwrap_or(chrono::TimeDelta::MAX);
        for folder in ["blocks", "data", "checkpoints", "staging"] {
            let prefix = layout.prefix().clone().join(folder);
            let objects: Vec<ObjectMeta> = self
                .object_store()
                .list(Some(&prefix))
                .try_collect()
                .await
                .map_err(StorageError::from)?;
            for object in objects {
                if referenced.contains(&object.location) {
                    continue;
                }
                if object.last_modified > cutoff {
                    report.recent += 1;
                    continue;
                }
                match self.object_store().delete(&object.location).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => report.deleted += 1,
                    Err(error) => return Err(StorageError::from(error).into()),
                }
            }
        }
        if report.deleted > 0 {
            tracing::info!(dataset_id = %self.id(), deleted = report.deleted, "swept unreferenced objects");
        }
        Ok(report)
    }
}

impl DatasetStore {
    /// Sweeps every dataset in the store (see `Dataset::sweep_unreferenced`), and the engine
    /// exchange files (`<root>/.engine/`) that steps of crashed coordinators left behind.
    pub async fn sweep_unreferenced(&self, grace: Duration) -> Result<SweepReport, CommitError> {
        let mut report = SweepReport::default();
        for id in self.list_datasets().await? {
            report.add(self.dataset(&id).sweep_unreferenced(grace).await?);
        }
        report.add(self.sweep_engine_scratch(grace).await?);
        Ok(report)
    }

    /// Removes engine exchange files older than `grace`; a step's own files are deleted by its
    /// coordinator when it ends, so only those of steps that never ended remain.
    async fn sweep_engine_scratch(&self, grace: Duration) -> Result<SweepReport, CommitError> {
        let cutoff =
            Utc::now() - chrono::Duration::from_std(grace).unwrap_or(chrono::TimeDelta::MAX);
        let prefix = crate::layout::engine_scratch(self.root());
        let objects: Vec<ObjectMeta> = self
            .object_store()
            .list(Some(&prefix))
            .try_collect()
            .await
            .map_err(StorageError::from)?;
        let mut report = SweepReport::default();
        for object in objects {
            if object.last_modified > cutoff {
                report.recent += 1;
                continue;
            }
            match self.object_store().delete(&object.location).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => report.deleted += 1,
                Err(error) => return Err(StorageError::from(error).into()),
            }
        }
        Ok(report)
    }
}
