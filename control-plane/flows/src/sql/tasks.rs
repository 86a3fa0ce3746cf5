//! `TaskRepository` over SQL: the queue, leases and the resolution of runs.

use async_trait::async_trait;
use sqlx::Acquire;
use weir_tasks::{LeasedTask, TaskKind};

use super::runs::release_throttled;
use super::{SqlFlowStore, fetch_run, get, to_json};
use crate::error::{FlowError, FlowResult};
use crate::repository::{Resolution, TaskRepository};
use crate::run::FlowRun;

const TASK_COLUMNS: &str = "task_id, run_id, kind, dataset_id, attempt, params, lease_until";

fn task_from_row(row: &sqlx::any::AnyRow) -> FlowResult<LeasedTask> {
    let kind: String = get(row, "kind")?;
    let params: String = get(row, "params")?;
    Ok(LeasedTask {
        task_id: get(row, "task_id")?,
        run_id: get(row, "run_id")?,
        kind: TaskKind::parse(&kind)
            .ok_or_else(|| FlowError::Store(format!("unknown task kind `{kind}`").into()))?,
        dataset_id: get(row, "dataset_id")?,
        attempt: get::<i64>(row, "attempt")?.clamp(0, u32::MAX as i64) as u32,
        lease_until_millis: get::<Option<i64>>(row, "lease_until")?.unwrap_or_default(),
        params: serde_json::from_str(&params).unwrap_or(serde_json::Value::Null),
    })
}

#[async_trait]
impl TaskRepository for SqlFlowStore {
    async fn lease(
        &self,
        kinds: &[TaskKind],
        executor: &str,
        now: i64,
        ttl_millis: i64,
    ) -> FlowResult<Option<LeasedTask>> {
        if kinds.is_empty() {
            return Ok(None);
        }
        let placeholders: Vec<String> = (0..kinds.len())
            .map(|index| format!("${}", index + 1))
            .collect();
        let select = format!(
            "SELECT task_id FROM flow_tasks WHERE state = 'queued' AND kind IN ({}) \
             ORDER BY priority DESC, task_id LIMIT 8",
            placeholders.join(", ")
        );
        // Candidates may be taken by another executor between the select and the update.
        for _ in 0..4 {
            let mut query = sqlx::query_scalar::<_, i64>(&select);
            for kind in kinds {
                query = query.bind(kind.as_str());
            }
            let candidates = query.fetch_all(&self.pool).await?;
            if candidates.is_empty() {
                return Ok(None);
            }
            for task_id in candidates {
                let mut connection = self.pool.acquire().await?;
                let mut transaction = connection.begin().await?;
                let taken = sqlx::query(
                    "UPDATE flow_tasks SET state = 'leased', holder = $1, lease_until = $2 \
                     WHERE task_id = $3 AND state = 'queued'",
                )
                .bind(executor)
                .bind(now + ttl_millis)
                .bind(task_id)
                .execute(&mut *transaction)
                .await?;
                if taken.rows_affected() == 0 {
                    continue;
                }
                let row = sqlx::query(&format!(
                    "SELECT {TASK_COLUMNS} FROM flow_tasks WHERE task_id = $1"
                ))
                .bind(task_id)
                .fetch_one(&mut *transaction)
                .await?;
                let task = task_from_row(&row)?;
                sqlx::query(
                    "UPDATE flow_runs SET status = 'running', wait_reason = NULL, \
                     started_at = COALESCE(started_at, $1) WHERE run_id = $2 AND status = 'queued'",
                )
                .bind(now)
                .bind(task.run_id)
                .execute(&mut *transaction)
                .await?;
                transaction.commit().await?;
                return Ok(Some(task));
            }
        }
        Ok(None)
    }

    async fn heartbeat(
        &self,
        task_id: i64,
        executor: &str,
        now: i64,
        ttl_millis: i64,
    ) -> FlowResult<i64> {
        let until = now + ttl_millis;
        let renewed = sqlx::query(
            "UPDATE flow_tasks SET lease_until = $1 WHERE task_id = $2 AND state = 'leased' \
             AND holder = $3",
        )
        .bind(until)
        .bind(task_id)
        .bind(executor)
        .execute(&self.pool)
        .await?;
        if renewed.rows_affected() == 0 {
            return Err(FlowError::LeaseLost(task_id));
        }
        Ok(until)
    }

    async fn held_task(&self, task_id: i64, executor: &str) -> FlowResult<LeasedTask> {
        let row = sqlx::query(&format!(
            "SELECT {TASK_COLUMNS} FROM flow_tasks WHERE task_id = $1 AND state = 'leased' \
             AND holder = $2"
        ))
        .bind(task_id)
        .bind(executor)
        .fetch_optional(&self.pool)
        .await?;
        match row {
            Some(row) => task_from_row(&row),
            None => Err(FlowError::LeaseLost(task_id)),
        }
    }

    async fn finish(
        &self,
        task_id: i64,
        executor: &str,
        resolution: &Resolution,
        now: i64,
    ) -> FlowResult<FlowRun> {
        let mut connection = self.pool.acquire().await?;
        let mut transaction = connection.begin().await?;
        let ended = sqlx::query(
            "UPDATE flow_tasks SET state = 'done', lease_until = NULL WHERE task_id = $1 \
             AND state = 'leased' AND holder = $2",
        )
        .bind(task_id)
        .bind(executor)
        .execute(&mut *transaction)
        .await?;
        if ended.rows_affected() == 0 {
            return Err(FlowError::LeaseLost(task_id));
        }
        let run_id: i64 = sqlx::query_scalar("SELECT run_id FROM flow_tasks WHERE task_id = $1")
            .bind(task_id)
            .fetch_one(&mut *transaction)
            .await?;
        let run = fetch_run(&mut *transaction, run_id)
            .await?
            .ok_or_else(|| FlowError::NotFound(format!("run {run_id}")))?;
        let failures = match resolution {
            Resolution::Succeeded(outcome) => {
                sqlx::query(
                    "UPDATE flow_runs SET status = 'finished', outcome = $1, finished_at = $2 \
                     WHERE run_id = $3 AND status = 'running'",
                )
                .bind(to_json(outcome))
                .bind(now)
                .bind(run_id)
                .execute(&mut *transaction)
                .await?;
                Some(false)
            }
            Resolution::Retry { due_at, error } => {
                sqlx::query(
                    "UPDATE flow_runs SET status = 'retrying', due_at = $1, last_error = $2 \
                     WHERE run_id = $3 AND status = 'running'",
                )
                .bind(*due_at)
                .bind(to_json(error))
                .bind(run_id)
                .execute(&mut *transaction)
                .await?;
                None
            }
            Resolution::Failed { outcome, stop } => {
                sqlx::query(
                    "UPDATE flow_runs SET status = 'finished', outcome = $1, finished_at = $2 \
                     WHERE run_id = $3 AND status = 'running'",
                )
                .bind(to_json(outcome))
                .bind(now)
                .bind(run_id)
                .execute(&mut *transaction)
                .await?;
                if let Some(reason) = stop {
                    sqlx::query(
                        "UPDATE flow_bindings SET paused = 1, stop_reason = $1, updated_at = $2 \
                         WHERE dataset_id = $3 AND flow_type = $4",
                    )
                    .bind(reason)
                    .bind(now)
                    .bind(&run.key.dataset_id)
                    .bind(run.key.flow_type.as_str())
                    .execute(&mut *transaction)
                    .await?;
                }
                Some(true)
            }
        };
        if let Some(failed) = failures {
            sqlx::query(
                "UPDATE flow_bindings SET consecutive_failures = \
                 CASE WHEN $1 = 1 THEN consecutive_failures + 1 ELSE 0 END \
                 WHERE dataset_id = $2 AND flow_type = $3",
            )
            .bind(i64::from(failed))
            .bind(&run.key.dataset_id)
            .bind(run.key.flow_type.as_str())
            .execute(&mut *transaction)
            .await?;
            release_throttled(&mut transaction, &run.key, now).await?;
        }
        let run = fetch_run(&mut *transaction, run_id).await?;
        transaction.commit().await?;
        run.ok_or_else(|| FlowError::NotFound(format!("run {run_id}")))
    }

    async fn requeue_expired(&self, now: i64) -> FlowResult<u64> {
        let mut connection = self.pool.acquire().await?;
        let mut transaction = connection.begin().await?;
        sqlx::query(
            "UPDATE flow_runs SET status = 'queued', wait_reason = 'executor' WHERE status = 'running' \
             AND run_id IN (SELECT run_id FROM flow_tasks WHERE state = 'leased' AND lease_until < $1)",
        )
        .bind(now)
        .execute(&mut *transaction)
        .await?;
        let requeued = sqlx::query(
            "UPDATE flow_tasks SET state = 'queued', holder = NULL, lease_until = NULL \
             WHERE state = 'leased' AND lease_until < $1",
        )
        .bind(now)
        .execute(&mut *transaction)
        .await?;
        transaction.commit().await?;
        Ok(requeued.rows_affected())
    }

    async fn requeue_held_by(&self, executor: &str) -> FlowResult<u64> {
        let mut connection = self.pool.acquire().await?;
        let mut transaction = connection.begin().await?;
        sqlx::query(
            "UPDATE flow_runs SET status = 'queued', wait_reason = 'executor' WHERE status = 'running' \
             AND run_id IN (SELECT run_id FROM flow_tasks WHERE state = 'leased' AND holder = $1)",
        )
        .bind(executor)
        .execute(&mut *transaction)
        .await?;
        let requeued = sqlx::query(
            "UPDATE flow_tasks SET state = 'queued', holder = NULL, lease_until = NULL \
             WHERE state = 'leased' AND holder = $1",
        )
        .bind(executor)
        .execute(&mut *transaction)
        .await?;
        transaction.commit().await?;
        Ok(requeued.rows_affected())
    }

    async fn queue_depth(&self, kinds: &[TaskKind]) -> FlowResult<(u64, u64)> {
        let filter = if kinds.is_empty() {
            String::new()
        } else {
            let placeholders: Vec<String> = (0..kinds.len())
                .map(|index| format!("${}", index + 1))
                .collect();
            format!(" AND kind IN ({})", placeholders.join(", "))
        };
        let mut counts = [0u64; 2];
        for (slot, state) in ["queued", "leased"].into_iter().enumerate() {
            let sql = format!("SELECT COUNT(*) FROM flow_tasks WHERE state = '{state}'{filter}");
            let mut query = sqlx::query_scalar::<_, i64>(&sql);
            for kind in kinds {
                query = query.bind(kind.as_str());
            }
            counts[slot] = query.fetch_one(&self.pool).await?.max(0) as u64;
        }
        Ok((counts[0], counts[1]))
    }
}
