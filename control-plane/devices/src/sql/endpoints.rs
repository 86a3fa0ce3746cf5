//! Endpoints, their attributes and tokens over SQL.

use sqlx::AnyPool;
use sqlx::any::AnyRow;
use weir_metastore::OutboxMessage;
use weir_metastore::sql::insert_outbox;

use super::{get, taken};
use crate::error::{DeviceError, DeviceResult};
use crate::model::*;

const ENDPOINT_COLUMNS: &str = "endpoint_id, application_id, attributes, created_at, last_seen_at";

fn endpoint_from_row(row: &AnyRow) -> DeviceResult<Endpoint> {
    let attributes: String = get(row, "attributes")?;
    Ok(Endpoint {
        id: EndpointId::from_string(get::<String>(row, "endpoint_id")?),
        application_id: ApplicationId::from_string(get::<String>(row, "application_id")?),
        attributes: serde_json::from_str(&attributes)
            .map_err(|error| DeviceError::Store(format!("column `attributes`: {error}").into()))?,
        created_at: get(row, "created_at")?,
        last_seen_at: get(row, "last_seen_at")?,
    })
}

const TOKEN_COLUMNS: &str = "token_id, endpoint_id, label, created_at, revoked_at";

fn token_from_row(row: &AnyRow) -> DeviceResult<DeviceToken> {
    Ok(DeviceToken {
        id: DeviceTokenId::from_string(get::<String>(row, "token_id")?),
        endpoint_id: EndpointId::from_string(get::<String>(row, "endpoint_id")?),
        label: get(row, "label")?,
        created_at: get(row, "created_at")?,
        revoked_at: get(row, "revoked_at")?,
    })
}

async fn write_attributes(
    transaction: &mut sqlx::Transaction<'_, sqlx::Any>,
    id: &EndpointId,
    attributes: &Attributes,
) -> DeviceResult<()> {
    sqlx::query("DELETE FROM device_endpoint_attributes WHERE endpoint_id = $1")
        .bind(id.as_str())
        .execute(&mut **transaction)
        .await?;
    for (name, value) in attributes {
        sqlx::query(
            "INSERT INTO device_endpoint_attributes (endpoint_id, name, value) VALUES ($1, $2, $3)",
        )
        .bind(id.as_str())
        .bind(name)
        .bind(value)
        .execute(&mut **transaction)
        .await?;
    }
    Ok(())
}

fn attributes_json(attributes: &Attributes) -> String {
    serde_json::to_string(attributes).expect("attributes serialize")
}

pub(super) async fn create(pool: &AnyPool, endpoint: &Endpoint) -> DeviceResult<()> {
    let mut transaction = pool.begin().await?;
    sqlx::query(&format!(
        "INSERT INTO device_endpoints ({ENDPOINT_COLUMNS}) VALUES ($1, $2, $3, $4, $5)"
    ))
    .bind(endpoint.id.as_str())
    .bind(endpoint.application_id.as_str())
    .bind(attributes_json(&endpoint.attributes))
    .bind(endpoint.created_at)
    .bind(endpoint.last_seen_at)
    .execute(&mut *transaction)
    .await
    .map_err(|error| taken(error, format!("endpoint `{}` exists", endpoint.id)))?;
    write_attributes(&mut transaction, &endpoint.id, &endpoint.attributes).await?;
    transaction.commit().await?;
    Ok(())
}

pub(super) async fn fetch(pool: &AnyPool, id: &EndpointId) -> DeviceResult<Option<Endpoint>> {
    let row = sqlx::query(&format!(
        "SELECT {ENDPOINT_COLUMNS} FROM device_endpoints WHERE endpoint_id = $1"
    ))
    .bind(id.as_str())
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(endpoint_from_row).transpose()
}

pub(super) async fn list(
    pool: &AnyPool,
    application: &ApplicationId,
    filter: &Attributes,
    after: Option<&EndpointId>,
    limit: i64,
) -> DeviceResult<Vec<Endpoint>> {
    let mut sql = format!(
        "SELECT {ENDPOINT_COLUMNS} FROM device_endpoints WHERE application_id = $1 \
         AND endpoint_id > $2"
    );
    let mut parameter = 3;
    for _ in filter {
        sql.push_str(&format!(
            " AND endpoint_id IN (SELECT endpoint_id FROM device_endpoint_attributes \
             WHERE name = ${} AND value = ${})",
            parameter,
            parameter + 1
        ));
        parameter += 2;
    }
    sql.push_str(&format!(" ORDER BY endpoint_id LIMIT ${parameter}"));
    let mut query = sqlx::query(&sql)
        .bind(application.as_str())
        .bind(after.map(EndpointId::as_str).unwrap_or(""));
    for (name, value) in filter {
        query = query.bind(name).bind(value);
    }
    let rows = query.bind(limit).fetch_all(pool).await?;
    rows.iter().map(endpoint_from_row).collect()
}

pub(super) async fn set_attributes(
    pool: &AnyPool,
    id: &EndpointId,
    attributes: &Attributes,
) -> DeviceResult<()> {
    let mut transaction = pool.begin().await?;
    let updated = sqlx::query("UPDATE device_endpoints SET attributes = $1 WHERE endpoint_id = $2")
        .bind(attributes_json(attributes))
        .bind(id.as_str())
        .execute(&mut *transaction)
        .await?;
    if updated.rows_affected() == 0 {
        return Err(DeviceError::NotFound(format!("endpoint `{id}` not found")));
    }
    write_attributes(&mut transaction, id, attributes).await?;
    transaction.commit().await?;
    Ok(())
}

pub(super) async fn mark_seen(pool: &AnyPool, seen: &[(EndpointId, i64)]) -> DeviceResult<()> {
    let mut transaction = pool.begin().await?;
    for (id, at) in seen {
        sqlx::query(
            "UPDATE device_endpoints SET last_seen_at = $1 WHERE endpoint_id = $2 \
             AND (last_seen_at IS NULL OR last_seen_at < $1)",
        )
        .bind(*at)
        .bind(id.as_str())
        .execute(&mut *transaction)
        .await?;
    }
    transaction.commit().await?;
    Ok(())
}

pub(super) async fn add_token(
    pool: &AnyPool,
    token: &DeviceToken,
    token_hash: &str,
) -> DeviceResult<()> {
    sqlx::query(&format!(
        "INSERT INTO device_tokens ({TOKEN_COLUMNS}, token_hash) VALUES ($1, $2, $3, $4, $5, $6)"
    ))
    .bind(token.id.as_str())
    .bind(token.endpoint_id.as_str())
    .bind(&token.label)
    .bind(token.created_at)
    .bind(token.revoked_at)
    .bind(token_hash)
    .execute(pool)
    .await
    .map_err(|error| taken(error, "this token is in use: choose another".to_string()))?;
    Ok(())
}

pub(super) async fn tokens(
    pool: &AnyPool,
    endpoint: &EndpointId,
) -> DeviceResult<Vec<DeviceToken>> {
    let rows = sqlx::query(&format!(
        "SELECT {TOKEN_COLUMNS} FROM device_tokens WHERE endpoint_id = $1 ORDER BY created_at, token_id"
    ))
    .bind(endpoint.as_str())
    .fetch_all(pool)
    .await?;
    rows.iter().map(token_from_row).collect()
}

pub(super) async fn revoke_token(
    pool: &AnyPool,
    id: &DeviceTokenId,
    at: i64,
    outbox: &[OutboxMessage],
) -> DeviceResult<DeviceToken> {
    let mut transaction = pool.begin().await?;
    sqlx::query(
        "UPDATE device_tokens SET revoked_at = $1 WHERE token_id = $2 AND revoked_at IS NULL",
    )
    .bind(at)
    .bind(id.as_str())
    .execute(&mut *transaction)
    .await?;
    let row = sqlx::query(&format!(
        "SELECT {TOKEN_COLUMNS} FROM device_tokens WHERE token_id = $1"
    ))
    .bind(id.as_str())
    .fetch_optional(&mut *transaction)
    .await?;
    let Some(row) = row else {
        return Err(DeviceError::NotFound(format!("token `{id}` not found")));
    };
    let token = token_from_row(&row)?;
    insert_outbox(&mut transaction, outbox, weir_metastore::sql::now_millis()).await?;
    transaction.commit().await?;
    Ok(token)
}

pub(super) async fn token_by_hash(
    pool: &AnyPool,
    token_hash: &str,
) -> DeviceResult<Option<(DeviceToken, ApplicationId)>> {
    let row = sqlx::query(
        "SELECT t.token_id, t.endpoint_id, t.label, t.created_at, t.revoked_at, e.application_id \
         FROM device_tokens t JOIN device_endpoints e ON e.endpoint_id = t.endpoint_id \
         WHERE t.token_hash = $1",
    )
    .bind(token_hash)
    .fetch_optional(pool)
    .await?;
    let Some(row) = row else { return Ok(None) };
    Ok(Some((
        token_from_row(&row)?,
        ApplicationId::from_string(get::<String>(&row, "application_id")?),
    )))
}
