//! `FlowRepository` over SQL: flow bindings and runs.

use async_trait::async_trait;
use sqlx::Acquire;
use sqlx::any::AnyRow;

use super::{RUN_COLUMNS, SqlFlowStore, fetch_run, flow_type, get, json, run_from_row, to_json};
use crate::error::{FlowError, FlowResult};
use crate::model::{FlowConfig, FlowKey};
use crate::repository::{FlowRepository, MergePlan, RunFilter};
use crate::run::{FlowBinding, FlowRun, RunOutcome, RunStatus};

fn binding_from_row(row: &AnyRow) -> FlowResult<(FlowKey, FlowBinding)> {
    let config: String = get(row, "config")?;
    Ok((
        FlowKey {
            dataset_id: get(row, "dataset_id")?,
            flow_type: flow_type(&get::<String>(row, "flow_type")?)?,
        },
        FlowBinding {
            config: json(&config, "config")?,
            configured: get::<i64>(row, "configured")? != 0,
            paused: get::<i64>(row, "paused")? != 0,
            stop_reason: get(row, "stop_reason")?,
            consecutive_failures: get::<i64>(row, "consecutive_failures")?.clamp(0, u32::MAX as i64)
                as u32,
            updated_at: get(row, "updated_at")?,
        },
    ))
}

const BINDING_COLUMNS: &str = "dataset_id, flow_type, config, configured, paused, stop_reason, consecutive_failures, updated_at";

/// Makes runs of `key` throttled behind a run that just ended due now.
pub(super) async fn release_throttled(
    connection: &mut sqlx::AnyConnection,
    key: &FlowKey,
    now: i64,
) -> FlowResult<()> {
    sqlx::query(
        "UPDATE flow_runs SET due_at = $1 WHERE dataset_id = $2 AND flow_type = $3 \
         AND status = 'waiting' AND due_at IS NULL",
    )
    .bind(now)
    .bind(&key.dataset_id)
    .bind(key.flow_type.as_str())
    .execute(&mut *connection)
    .await?;
    Ok(())
}

#[async_trait]
impl FlowRepository for SqlFlowStore {
    async fn put_config(&self, key: &FlowKey, config: &FlowConfig, now: i64) -> FlowResult<()> {
        sqlx::query(
            "INSERT INTO flow_bindings (dataset_id, flow_type, config, configured, updated_at) \
             VALUES ($1, $2, $3, 1, $4) ON CONFLICT (dataset_id, flow_type) DO UPDATE SET \
             config = excluded.config, configured = 1, updated_at = excluded.updated_at",
        )
        .bind(&key.dataset_id)
        .bind(key.flow_type.as_str())
        .bind(to_json(config))
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn ensure_binding(&self, key: &FlowKey, config: &FlowConfig, now: i64) -> FlowResult<()> {
        sqlx::query(
            "INSERT INTO flow_bindings (dataset_id, flow_type, config, configured, updated_at) \
             VALUES ($1, $2, $3, 0, $4) ON CONFLICT (dataset_id, flow_type) DO NOTHING",
        )
        .bind(&key.dataset_id)
        .bind(key.flow_type.as_str())
        .bind(to_json(config))
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn delete_config(&self, key: &FlowKey) -> FlowResult<bool> {
        let deleted =
            sqlx::query("DELETE FROM flow_bindings WHERE dataset_id = $1 AND flow_type = $2")
                .bind(&key.dataset_id)
                .bind(key.flow_type.as_str())
                .execute(&self.pool)
                .await?;
        Ok(deleted.rows_affected() > 0)
    }

    async fn binding(&self, key: &FlowKey) -> FlowResult<Option<FlowBinding>> {
        let row = sqlx::query(&format!(
            "SELECT {BINDING_COLUMNS} FROM flow_bindings WHERE dataset_id = $1 AND flow_type = $2"
        ))
        .bind(&key.dataset_id)
        .bind(key.flow_type.as_str())
        .fetch_optional(&self.pool)
        .await?;
        Ok(row
            .as_ref()
            .map(binding_from_row)
            .transpose()?
            .map(|(_, binding)| binding))
    }

    async fn bindings(&self, dataset_id: Option<&str>) -> FlowResult<Vec<(FlowKey, FlowBinding)>> {
        let rows = match dataset_id {
            Some(id) => {
                sqlx::query(&format!(
                    "SELECT {BINDING_COLUMNS} FROM flow_bindings WHERE dataset_id = $1 ORDER BY flow_type"
                ))
                .bind(id)
                .fetch_all(&self.pool)
                .await?
            }
            None => {
                sqlx::query(&format!(
                    "SELECT {BINDING_COLUMNS} FROM flow_bindings ORDER BY dataset_id, flow_type"
                ))
                .fetch_all(&self.pool)
                .await?
            }
        };
        rows.iter().map(binding_from_row).collect()
    }

    async fn set_paused(
        &self,
        key: &FlowKey,
        paused: bool,
        reason: Option<&str>,
        now: i64,
    ) -> FlowResult<()> {
        let mut connection = self.pool.acquire().await?;
        let mut transaction = connection.begin().await?;
        let updated = sqlx::query(
            "UPDATE flow_bindings SET paused = $1, stop_reason = $2, updated_at = $3, \
             consecutive_failures = CASE WHEN $1 = 0 THEN 0 ELSE consecutive_failures END \
             WHERE dataset_id = $4 AND flow_type = $5",
        )
        .bind(i64::from(paused))
        .bind(reason)
        .bind(now)
        .bind(&key.dataset_id)
        .bind(key.flow_type.as_str())
        .execute(&mut *transaction)
        .await?;
        if updated.rows_affected() == 0 {
            return Err(FlowError::NotFound(format!(
                "flow {} of `{}`",
                key.flow_type.as_str(),
                key.dataset_id
            )));
        }
        if paused {
            let aborted = RunOutcome::Aborted {
                reason: reason.unwrap_or("flow paused").to_string(),
            };
            sqlx::query(
                "UPDATE flow_runs SET status = 'finished', outcome = $1, finished_at = $2, \
                 due_at = NULL, wait_reason = NULL \
                 WHERE dataset_id = $3 AND flow_type = $4 AND status IN ('waiting', 'retrying')",
            )
            .bind(to_json(&aborted))
            .bind(now)
            .bind(&key.dataset_id)
            .bind(key.flow_type.as_str())
            .execute(&mut *transaction)
            .await?;
        }
        transaction.commit().await?;
        Ok(())
    }

    async fn merge_cause(&self, key: &FlowKey, plan: &MergePlan, now: i64) -> FlowResult<FlowRun> {
        for _ in 0..3 {
            let mut connection = self.pool.acquire().await?;
            let mut transaction = connection.begin().await?;
            let pending = sqlx::query(&format!(
                "SELECT {RUN_COLUMNS} FROM flow_runs WHERE dataset_id = $1 AND flow_type = $2 \
                 AND status IN ('waiting', 'queued') \
                 ORDER BY CASE status WHEN 'waiting' THEN 0 ELSE 1 END, run_id DESC LIMIT 1"
            ))
            .bind(&key.dataset_id)
            .bind(key.flow_type.as_str())
            .fetch_optional(&mut *transaction)
            .await?;
            let priority = plan.cause.priority();
            let run_id = match pending.as_ref().map(run_from_row).transpose()? {
                Some(mut run) => {
                    run.causes.push(plan.cause.clone());
                    run.records_awaited += plan.records;
                    run.priority = run.priority.max(priority);
                    if run.status == RunStatus::Waiting {
                        let mut due = plan.due_at;
                        if let Some((threshold, at)) = plan.due_at_records
                            && run.records_awaited >= threshold
                        {
                            due = due.min(at);
                        }
                        // A run throttled behind an active one (no due time) stays so.
                        if let Some(current) = run.due_at
                            && due < current
                        {
                            run.due_at = Some(due);
                            run.wait_reason = Some(plan.wait_reason);
                        }
                    } else {
                        sqlx::query(
                            "UPDATE flow_tasks SET priority = $1 WHERE run_id = $2 AND state = 'queued'",
                        )
                        .bind(run.priority as i64)
                        .bind(run.run_id)
                        .execute(&mut *transaction)
                        .await?;
                    }
                    sqlx::query(
                        "UPDATE flow_runs SET causes = $1, records_awaited = $2, priority = $3, \
                         due_at = $4, wait_reason = $5 WHERE run_id = $6",
                    )
                    .bind(to_json(&run.causes))
                    .bind(run.records_awaited as i64)
                    .bind(run.priority as i64)
                    .bind(run.due_at)
                    .bind(run.wait_reason.map(|reason| reason.as_str()))
                    .bind(run.run_id)
                    .execute(&mut *transaction)
                    .await?;
                    run.run_id
                }
                None => {
                    let mut due = plan.due_at;
                    if let Some((threshold, at)) = plan.due_at_records
                        && plan.records >= threshold
                    {
                        due = due.min(at);
                    }
                    let inserted = sqlx::query(
                        "INSERT INTO flow_runs (dataset_id, flow_type, status, wait_reason, due_at, \
                         causes, records_awaited, attempt, priority, created_at) \
                         VALUES ($1, $2, 'waiting', $3, $4, $5, $6, 0, $7, $8) RETURNING run_id",
                    )
                    .bind(&key.dataset_id)
                    .bind(key.flow_type.as_str())
                    .bind(plan.wait_reason.as_str())
                    .bind(due)
                    .bind(to_json(&vec![plan.cause.clone()]))
                    .bind(plan.records as i64)
                    .bind(priority as i64)
                    .bind(now)
                    .fetch_one(&mut *transaction)
                    .await;
                    match inserted {
                        Ok(row) => get::<i64>(&row, "run_id")?,
                        // Another replica started the waiting run first: merge into it.
                        Err(sqlx::Error::Database(error)) if error.is_unique_violation() => {
                            continue;
                        }
                        Err(error) => return Err(error.into()),
                    }
                }
            };
            let run = fetch_run(&mut *transaction, run_id).await?;
            transaction.commit().await?;
            return run.ok_or_else(|| FlowError::NotFound(format!("run {run_id}")));
        }
        Err(FlowError::Conflict(
            "the flow's pending run kept changing; try again".to_string(),
        ))
    }

    async fn next_due_at(&self) -> FlowResult<Option<i64>> {
        let next: Option<i64> = sqlx::query_scalar(
            "SELECT MIN(due_at) FROM flow_runs WHERE status IN ('waiting', 'retrying') \
             AND due_at IS NOT NULL",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(next)
    }

    async fn due_runs(&self, now: i64, limit: i64) -> FlowResult<Vec<FlowRun>> {
        let rows = sqlx::query(&format!(
            "SELECT {RUN_COLUMNS} FROM flow_runs WHERE status IN ('waiting', 'retrying') \
             AND due_at IS NOT NULL AND due_at <= $1 ORDER BY priority DESC, due_at, run_id LIMIT $2"
        ))
        .bind(now)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(run_from_row).collect()
    }

    async fn dispatch(
        &self,
        run_id: i64,
        params: &serde_json::Value,
        now: i64,
    ) -> FlowResult<Option<i64>> {
        let mut connection = self.pool.acquire().await?;
        let mut transaction = connection.begin().await?;
        let Some(run) = fetch_run(&mut *transaction, run_id).await? else {
            return Ok(None);
        };
        let due = run.due_at.is_some_and(|due| due <= now);
        if !matches!(run.status, RunStatus::Waiting | RunStatus::Retrying) || !due {
            return Ok(None);
        }
        if run.status == RunStatus::Waiting {
            let active: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM flow_runs WHERE dataset_id = $1 AND flow_type = $2 \
                 AND run_id <> $3 AND status IN ('queued', 'running', 'retrying')",
            )
            .bind(&run.key.dataset_id)
            .bind(run.key.flow_type.as_str())
            .bind(run_id)
            .fetch_one(&mut *transaction)
            .await?;
            if active > 0 {
                sqlx::query(
                    "UPDATE flow_runs SET due_at = NULL, wait_reason = 'throttling' \
                     WHERE run_id = $1 AND status = 'waiting'",
                )
                .bind(run_id)
                .execute(&mut *transaction)
                .await?;
                transaction.commit().await?;
                return Ok(None);
            }
        }
        let moved = sqlx::query(
            "UPDATE flow_runs SET status = 'queued', wait_reason = 'executor', due_at = NULL, \
             attempt = attempt + 1 WHERE run_id = $1 AND status = $2",
        )
        .bind(run_id)
        .bind(run.status.as_str())
        .execute(&mut *transaction)
        .await?;
        if moved.rows_affected() == 0 {
            return Ok(None);
        }
        let task_id: i64 = sqlx::query_scalar(
            "INSERT INTO flow_tasks (run_id, kind, dataset_id, priority, attempt, params, state, \
             created_at) VALUES ($1, $2, $3, $4, $5, $6, 'queued', $7) RETURNING task_id",
        )
        .bind(run_id)
        .bind(run.key.flow_type.as_str())
        .bind(&run.key.dataset_id)
        .bind(run.priority as i64)
        .bind(i64::from(run.attempt) + 1)
        .bind(params.to_string())
        .bind(now)
        .fetch_one(&mut *transaction)
        .await?;
        transaction.commit().await?;
        Ok(Some(task_id))
    }

    async fn run(&self, run_id: i64) -> FlowResult<Option<FlowRun>> {
        fetch_run(&self.pool, run_id).await
    }

    async fn runs(
        &self,
        filter: &RunFilter,
        before_run_id: Option<i64>,
        limit: i64,
    ) -> FlowResult<Vec<FlowRun>> {
        let mut sql = format!("SELECT {RUN_COLUMNS} FROM flow_runs WHERE run_id < $1");
        let mut next = 2;
        if filter.dataset_id.is_some() {
            sql.push_str(&format!(" AND dataset_id = ${next}"));
            next += 1;
        }
        if filter.flow_type.is_some() {
            sql.push_str(&format!(" AND flow_type = ${next}"));
            next += 1;
        }
        if filter.active_only {
            sql.push_str(" AND status <> 'finished'");
        }
        sql.push_str(&format!(" ORDER BY run_id DESC LIMIT ${next}"));
        let mut query = sqlx::query(&sql).bind(before_run_id.unwrap_or(i64::MAX));
        if let Some(dataset_id) = &filter.dataset_id {
            query = query.bind(dataset_id);
        }
        if let Some(flow_type) = filter.flow_type {
            query = query.bind(flow_type.as_str());
        }
        let rows = query.bind(limit).fetch_all(&self.pool).await?;
        rows.iter().map(run_from_row).collect()
    }

    async fn cancel_run(&self, run_id: i64, reason: &str, now: i64) -> FlowResult<FlowRun> {
        let mut connection = self.pool.acquire().await?;
        let mut transaction = connection.begin().await?;
        let run = fetch_run(&mut *transaction, run_id)
            .await?
            .ok_or_else(|| FlowError::NotFound(format!("run {run_id}")))?;
        if run.status == RunStatus::Finished {
            return Err(FlowError::Conflict(format!(
                "run {run_id} has already finished"
            )));
        }
        let aborted = RunOutcome::Aborted {
            reason: reason.to_string(),
        };
        sqlx::query(
            "UPDATE flow_runs SET status = 'finished', outcome = $1, finished_at = $2, \
             due_at = NULL, wait_reason = NULL WHERE run_id = $3",
        )
        .bind(to_json(&aborted))
        .bind(now)
        .bind(run_id)
        .execute(&mut *transaction)
        .await?;
        sqlx::query(
            "UPDATE flow_tasks SET state = 'cancelled' WHERE run_id = $1 AND state IN ('queued', 'leased')",
        )
        .bind(run_id)
        .execute(&mut *transaction)
        .await?;
        release_throttled(&mut transaction, &run.key, now).await?;
        let run = fetch_run(&mut *transaction, run_id).await?;
        transaction.commit().await?;
        run.ok_or_else(|| FlowError::NotFound(format!("run {run_id}")))
    }
}
