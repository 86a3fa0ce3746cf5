//! The metadata block index, lineage and statistics.

use async_trait::async_trait;
use sqlx::any::AnyRow;

use super::{SqlMetastore, get};
use crate::error::{MetastoreError, MetastoreResult};
use crate::model::*;
use crate::repository::MetadataIndexRepository;

const BLOCK_COLUMNS: &str =
    "sequence_number, block_hash, prev_block_hash, system_time, event_type, key_fields";

fn block_from_row(row: &AnyRow) -> MetastoreResult<BlockEntry> {
    let key_fields: String = get(row, "key_fields")?;
    Ok(BlockEntry {
        sequence_number: get(row, "sequence_number")?,
        block_hash: get(row, "block_hash")?,
        prev_block_hash: get(row, "prev_block_hash")?,
        system_time: get(row, "system_time")?,
        event_type: get(row, "event_type")?,
        key_fields: serde_json::from_str(&key_fields)
            .map_err(|error| MetastoreError::Internal(format!("key_fields: {error}")))?,
    })
}

#[async_trait]
impl MetadataIndexRepository for SqlMetastore {
    async fn apply_index_update(&self, update: &IndexUpdate) -> MetastoreResult<()> {
        let dataset_id = &update.dataset_id;
        let mut transaction = self.pool.begin().await?;
        if update.rewritten {
            sqlx::query("DELETE FROM metadata_blocks WHERE dataset_id = $1")
                .bind(dataset_id)
                .execute(&mut *transaction)
                .await?;
        }
        for block in &update.blocks {
            sqlx::query(
                "INSERT INTO metadata_blocks (dataset_id, sequence_number, block_hash, \
                 prev_block_hash, system_time, event_type, key_fields) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
            )
            .bind(dataset_id)
            .bind(block.sequence_number)
            .bind(&block.block_hash)
            .bind(&block.prev_block_hash)
            .bind(block.system_time)
            .bind(&block.event_type)
            .bind(block.key_fields.to_string())
            .execute(&mut *transaction)
            .await?;
        }
        if let Some(last) = update.blocks.last() {
            let moved = sqlx::query(
                "UPDATE datasets SET head_hash = $1, head_sequence = $2 \
                 WHERE id = $3 AND (head_sequence IS NULL OR head_sequence < $2 OR $4)",
            )
            .bind(&last.block_hash)
            .bind(last.sequence_number)
            .bind(dataset_id)
            .bind(update.rewritten)
            .execute(&mut *transaction)
            .await?;
            if moved.rows_affected() == 0 {
                let exists: Option<String> =
                    sqlx::query_scalar("SELECT id FROM datasets WHERE id = $1")
                        .bind(dataset_id)
                        .fetch_optional(&mut *transaction)
                        .await?;
                if exists.is_none() {
                    return Err(MetastoreError::NotFound(format!("dataset `{dataset_id}`")));
                }
            }
        }
        let statistics = &update.statistics;
        sqlx::query(
            "INSERT INTO dataset_statistics (dataset_id, num_records, data_size_bytes, \
             last_updated, last_watermark) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (dataset_id) DO UPDATE SET num_records = excluded.num_records, \
             data_size_bytes = excluded.data_size_bytes, last_updated = excluded.last_updated, \
             last_watermark = excluded.last_watermark",
        )
        .bind(dataset_id)
        .bind(statistics.num_records)
        .bind(statistics.data_size_bytes)
        .bind(statistics.last_updated)
        .bind(statistics.last_watermark)
        .execute(&mut *transaction)
        .await?;
        if let Some(docs) = &update.docs {
            super::docs::replace_docs(&mut transaction, dataset_id, docs).await?;
        }
        if let Some(upstream) = &update.upstream {
            sqlx::query("DELETE FROM dataset_dependencies WHERE downstream_id = $1")
                .bind(dataset_id)
                .execute(&mut *transaction)
                .await?;
            for upstream_id in upstream {
                sqlx::query(
                    "INSERT INTO dataset_dependencies (downstream_id, upstream_id) \
                     VALUES ($1, $2) ON CONFLICT DO NOTHING",
                )
                .bind(dataset_id)
                .bind(upstream_id)
                .execute(&mut *transaction)
                .await?;
            }
        }
        transaction.commit().await?;
        Ok(())
    }

    async fn blocks(
        &self,
        dataset_id: &str,
        before_sequence: Option<i64>,
        limit: i64,
    ) -> MetastoreResult<Vec<BlockEntry>> {
        let sql = format!(
            "SELECT {BLOCK_COLUMNS} FROM metadata_blocks \
             WHERE dataset_id = $1 AND sequence_number < $2 \
             ORDER BY sequence_number DESC LIMIT $3"
        );
        let rows = sqlx::query(&sql)
            .bind(dataset_id)
            .bind(before_sequence.unwrap_or(i64::MAX))
            .bind(limit.max(0))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(block_from_row).collect()
    }

    async fn block_by_hash(
        &self,
        dataset_id: &str,
        block_hash: &str,
    ) -> MetastoreResult<Option<BlockEntry>> {
        let sql = format!(
            "SELECT {BLOCK_COLUMNS} FROM metadata_blocks WHERE dataset_id = $1 AND block_hash = $2"
        );
        let row = sqlx::query(&sql)
            .bind(dataset_id)
            .bind(block_hash)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(block_from_row).transpose()
    }

    async fn last_block_of_type(
        &self,
        dataset_id: &str,
        event_type: &str,
    ) -> MetastoreResult<Option<BlockEntry>> {
        let sql = format!(
            "SELECT {BLOCK_COLUMNS} FROM metadata_blocks WHERE dataset_id = $1 AND event_type = $2 \
             ORDER BY sequence_number DESC LIMIT 1"
        );
        let row = sqlx::query(&sql)
            .bind(dataset_id)
            .bind(event_type)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(block_from_row).transpose()
    }

    async fn statistics(&self, dataset_id: &str) -> MetastoreResult<Option<DatasetStatistics>> {
        let row = sqlx::query(
            "SELECT num_records, data_size_bytes, last_updated, last_watermark \
             FROM dataset_statistics WHERE dataset_id = $1",
        )
        .bind(dataset_id)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        Ok(Some(DatasetStatistics {
            num_records: get(&row, "num_records")?,
            data_size_bytes: get(&row, "data_size_bytes")?,
            last_updated: get(&row, "last_updated")?,
            last_watermark: get(&row, "last_watermark")?,
        }))
    }

    async fn upstream(&self, dataset_id: &str) -> MetastoreResult<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT upstream_id FROM dataset_dependencies WHERE downstream_id = $1 \
             ORDER BY upstream_id",
        )
        .bind(dataset_id)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn downstream(&self, dataset_id: &str) -> MetastoreResult<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT downstream_id FROM dataset_dependencies WHERE upstream_id = $1 \
             ORDER BY downstream_id",
        )
        .bind(dataset_id)
        .fetch_all(&self.pool)
        .await?)
    }
}
