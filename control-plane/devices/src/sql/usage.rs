//! Metering over SQL: hourly sums per endpoint and dataset, and quotas per account.

use sqlx::AnyPool;

use super::get;
use crate::error::{DeviceError, DeviceResult};
use crate::model::*;

pub(super) async fn record(pool: &AnyPool, deltas: &[UsageDelta]) -> DeviceResult<()> {
    let mut transaction = pool.begin().await?;
    for delta in deltas {
        sqlx::query(
            "INSERT INTO device_usage (period_start, account_id, dataset_id, application_id, \
             endpoint_id, messages, samples, bytes, rejections) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             ON CONFLICT (period_start, endpoint_id, dataset_id) DO UPDATE SET \
             messages = device_usage.messages + excluded.messages, \
             samples = device_usage.samples + excluded.samples, \
             bytes = device_usage.bytes + excluded.bytes, \
             rejections = device_usage.rejections + excluded.rejections",
        )
        .bind(Period::Hour.start_of(delta.at))
        .bind(&delta.account_id)
        .bind(&delta.dataset_id)
        .bind(delta.application_id.as_str())
        .bind(delta.endpoint_id.as_str())
        .bind(delta.counts.messages)
        .bind(delta.counts.samples)
        .bind(delta.counts.bytes)
        .bind(delta.counts.rejections)
        .execute(&mut *transaction)
        .await?;
    }
    transaction.commit().await?;
    Ok(())
}

pub(super) async fn sums(pool: &AnyPool, filter: &UsageFilter) -> DeviceResult<Vec<UsageRow>> {
    let period = filter.period.millis();
    let mut sql = format!(
        "SELECT (period_start / {period}) * {period} AS start, \
         CAST(SUM(messages) AS BIGINT) AS messages, CAST(SUM(samples) AS BIGINT) AS samples, \
         CAST(SUM(bytes) AS BIGINT) AS bytes, CAST(SUM(rejections) AS BIGINT) AS rejections \
         FROM device_usage WHERE period_start >= $1 AND period_start < $2"
    );
    let mut values: Vec<&str> = Vec::new();
    for (column, value) in [
        ("account_id", filter.account_id.as_deref()),
        ("dataset_id", filter.dataset_id.as_deref()),
        (
            "application_id",
            filter.application_id.as_ref().map(ApplicationId::as_str),
        ),
        (
            "endpoint_id",
            filter.endpoint_id.as_ref().map(EndpointId::as_str),
        ),
    ] {
        if let Some(value) = value {
            values.push(value);
            sql.push_str(&format!(" AND {column} = ${}", values.len() + 2));
        }
    }
    sql.push_str(" GROUP BY start ORDER BY start");
    // Hours are summed whole: the range starts at the period holding `from`.
    let mut query = sqlx::query(&sql)
        .bind(filter.period.start_of(filter.from))
        .bind(filter.to);
    for value in values {
        query = query.bind(value);
    }
    let rows = query.fetch_all(pool).await?;
    rows.iter()
        .map(|row| {
            Ok(UsageRow {
                period_start: get(row, "start")?,
                counts: Counts {
                    messages: get(row, "messages")?,
                    samples: get(row, "samples")?,
                    bytes: get(row, "bytes")?,
                    rejections: get(row, "rejections")?,
                },
            })
        })
        .collect()
}

pub(super) async fn set_quota(
    pool: &AnyPool,
    account_id: &str,
    quota: Option<&Quota>,
) -> DeviceResult<()> {
    match quota {
        None => {
            sqlx::query("DELETE FROM device_quotas WHERE account_id = $1")
                .bind(account_id)
                .execute(pool)
                .await?;
        }
        Some(quota) => {
            sqlx::query(
                "INSERT INTO device_quotas (account_id, period, max_samples, max_bytes, updated_at) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (account_id) DO UPDATE SET \
                 period = excluded.period, max_samples = excluded.max_samples, \
                 max_bytes = excluded.max_bytes, updated_at = excluded.updated_at",
            )
            .bind(account_id)
            .bind(quota.period.as_str())
            .bind(quota.max_samples)
            .bind(quota.max_bytes)
            .bind(weir_metastore::sql::now_millis())
            .execute(pool)
            .await?;
        }
    }
    Ok(())
}

pub(super) async fn quota(pool: &AnyPool, account_id: &str) -> DeviceResult<Option<Quota>> {
    let row = sqlx::query(
        "SELECT period, max_samples, max_bytes FROM device_quotas WHERE account_id = $1",
    )
    .bind(account_id)
    .fetch_optional(pool)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let period: String = get(&row, "period")?;
    Ok(Some(Quota {
        period: Period::parse(&period)
            .ok_or_else(|| DeviceError::Store(format!("unknown period `{period}`").into()))?,
        max_samples: get(&row, "max_samples")?,
        max_bytes: get(&row, "max_bytes")?,
    }))
}
