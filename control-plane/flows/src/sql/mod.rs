//! The sqlx implementation of both flow stores, on the metastore's database (PostgreSQL or
//! SQLite through sqlx's `Any` driver), with its own migrations (versions 100 and up).

mod runs;
mod tasks;

use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row};
use weir_metastore::SqlMetastore;
use weir_metastore::sql::migrate::{Migration, apply_migrations};

use crate::error::{FlowError, FlowResult};
use crate::model::{FlowKey, FlowType};
use crate::run::{FlowRun, Priority, RunStatus, WaitReason};

const MIGRATIONS: &[Migration] = &[Migration {
    version: 101,
    sql: include_str!("../../migrations/0101_flows.sql"),
}];

#[derive(Clone)]
pub struct SqlFlowStore {
    pool: AnyPool,
}

impl SqlFlowStore {
    /// Shares the metastore's pool and applies the flow migrations.
    pub async fn open(metastore: &SqlMetastore) -> FlowResult<Self> {
        apply_migrations(metastore.pool(), metastore.backend(), MIGRATIONS)
            .await
            .map_err(|error| FlowError::Store(Box::new(error)))?;
        Ok(Self {
            pool: metastore.pool().clone(),
        })
    }
}

fn get<'r, T>(row: &'r AnyRow, column: &str) -> FlowResult<T>
where
    T: sqlx::Decode<'r, sqlx::Any> + sqlx::Type<sqlx::Any>,
{
    row.try_get(column).map_err(FlowError::from)
}

fn corrupt(what: String) -> FlowError {
    FlowError::Store(what.into())
}

fn json<T: serde::de::DeserializeOwned>(text: &str, column: &str) -> FlowResult<T> {
    serde_json::from_str(text).map_err(|error| corrupt(format!("column `{column}`: {error}")))
}

fn flow_type(text: &str) -> FlowResult<FlowType> {
    FlowType::parse(text).ok_or_else(|| corrupt(format!("unknown flow type `{text}`")))
}

pub(crate) const RUN_COLUMNS: &str = "run_id, dataset_id, flow_type, status, wait_reason, due_at, \
    outcome, last_error, causes, records_awaited, attempt, priority, created_at, started_at, \
    finished_at";

fn run_from_row(row: &AnyRow) -> FlowResult<FlowRun> {
    let status: String = get(row, "status")?;
    let wait_reason: Option<String> = get(row, "wait_reason")?;
    let outcome: Option<String> = get(row, "outcome")?;
    let last_error: Option<String> = get(row, "last_error")?;
    let causes: String = get(row, "causes")?;
    Ok(FlowRun {
        run_id: get(row, "run_id")?,
        key: FlowKey {
            dataset_id: get(row, "dataset_id")?,
            flow_type: flow_type(&get::<String>(row, "flow_type")?)?,
        },
        status: RunStatus::parse(&status)
            .ok_or_else(|| corrupt(format!("unknown run status `{status}`")))?,
        wait_reason: match wait_reason {
            Some(text) => Some(
                WaitReason::parse(&text)
                    .ok_or_else(|| corrupt(format!("unknown wait reason `{text}`")))?,
            ),
            None => None,
        },
        due_at: get(row, "due_at")?,
        outcome: outcome.map(|text| json(&text, "outcome")).transpose()?,
        last_error: last_error
            .map(|text| json(&text, "last_error"))
            .transpose()?,
        causes: json(&causes, "causes")?,
        records_awaited: get::<i64>(row, "records_awaited")?.max(0) as u64,
        attempt: get::<i64>(row, "attempt")?.clamp(0, u32::MAX as i64) as u32,
        priority: Priority::from_level(get(row, "priority")?),
        created_at: get(row, "created_at")?,
        started_at: get(row, "started_at")?,
        finished_at: get(row, "finished_at")?,
    })
}

async fn fetch_run(
    executor: impl sqlx::Executor<'_, Database = sqlx::Any>,
    run_id: i64,
) -> FlowResult<Option<FlowRun>> {
    let row = sqlx::query(&format!(
        "SELECT {RUN_COLUMNS} FROM flow_runs WHERE run_id = $1"
    ))
    .bind(run_id)
    .fetch_optional(executor)
    .await?;
    row.as_ref().map(run_from_row).transpose()
}

fn to_json(value: &impl serde::Serialize) -> String {
    serde_json::to_string(value).expect("flow records serialize")
}
