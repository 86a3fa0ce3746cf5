//! `/devices/...` (the registry, token resolution and metering) and
//! `/accounts/{name}/device-quota`. Handlers translate HTTP to `DevicesApi` calls.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use serde::Deserialize;
use weir_device_registry::{
    AppVersion, Application, Attributes, DeviceToken, Endpoint, Period, Quota, QuotaState,
    UsageFilter, UsageRow,
};
use weir_function_runtime::ApiError;

use super::{AppState, body, caller};
use crate::node::ControlPlane;
use crate::services::devices::{
    AccountQuota, IssuedToken, NewApplication, NewToken, NewVersion, ResolveAnswer, UsageReport,
};

pub fn routes() -> Router<Arc<ControlPlane>> {
    Router::new()
        .route(
            "/devices/applications",
            get(list_applications).post(create_application),
        )
        .route(
            "/devices/applications/{app}",
            get(get_application).delete(delete_application),
        )
        .route(
            "/devices/applications/{app}/versions",
            get(list_versions).post(create_version),
        )
        .route(
            "/devices/applications/{app}/versions/{version}",
            axum::routing::delete(delete_version),
        )
        .route(
            "/devices/applications/{app}/endpoints",
            get(list_endpoints).post(create_endpoint),
        )
        .route(
            "/devices/applications/{app}/endpoints/{endpoint}",
            get(get_endpoint)
                .put(put_attributes)
                .delete(delete_endpoint),
        )
        .route(
            "/devices/applications/{app}/endpoints/{endpoint}/tokens",
            get(list_tokens).post(issue_token),
        )
        .route(
            "/devices/applications/{app}/endpoints/{endpoint}/tokens/{token}/revoke",
            post(revoke_token),
        )
        .route("/devices/resolve", post(resolve))
        .route("/devices/usage", get(usage).post(report_usage))
        .route(
            "/accounts/{name}/device-quota",
            get(get_quota).put(put_quota).delete(delete_quota),
        )
}

type Answer<T> = Result<Json<T>, ApiError>;

#[utoipa::path(get, path = "/devices/applications", tag = "devices",
    responses((status = 200, description = "the applications whose dataset the caller maintains")))]
async fn list_applications(
    State(control_plane): AppState,
    headers: HeaderMap,
) -> Answer<Vec<Application>> {
    let caller = caller(&control_plane, &headers).await?;
    Ok(Json(
        control_plane
            .devices_api()
            .list_applications(&caller)
            .await?,
    ))
}

/// Creates an application bound to a root dataset the caller maintains: `{name, dataset, description?}`.
#[utoipa::path(post, path = "/devices/applications", tag = "devices",
    responses((status = 201, description = "the application"), (status = 409, description = "the name is taken")))]
async fn create_application(
    State(control_plane): AppState,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<(StatusCode, Json<Application>), ApiError> {
    let caller = caller(&control_plane, &headers).await?;
    let request: NewApplication = body(&bytes, "application")?;
    let created = control_plane
        .devices_api()
        .create_application(&caller, request)
        .await?;
    Ok((StatusCode::CREATED, Json(created)))
}

#[utoipa::path(get, path = "/devices/applications/{app}", tag = "devices", params(("app" = String, Path)),
    responses((status = 200, description = "the application"), (status = 404, description = "unknown, or its dataset is not the caller's to maintain")))]
async fn get_application(
    State(control_plane): AppState,
    Path(app): Path<String>,
    headers: HeaderMap,
) -> Answer<Application> {
    let caller = caller(&control_plane, &headers).await?;
    Ok(Json(
        control_plane
            .devices_api()
            .application(&caller, &app)
            .await?,
    ))
}

/// Deletes the application with its versions, endpoints and tokens.
#[utoipa::path(delete, path = "/devices/applications/{app}", tag = "devices", params(("app" = String, Path)),
    responses((status = 204, description = "deleted")))]
async fn delete_application(
    State(control_plane): AppState,
    Path(app): Path<String>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let caller = caller(&control_plane, &headers).await?;
    control_plane
        .devices_api()
        .delete_application(&caller, &app)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/devices/applications/{app}/versions", tag = "devices", params(("app" = String, Path)),
    responses((status = 200, description = "the versions")))]
async fn list_versions(
    State(control_plane): AppState,
    Path(app): Path<String>,
    headers: HeaderMap,
) -> Answer<Vec<AppVersion>> {
    let caller = caller(&control_plane, &headers).await?;
    Ok(Json(
        control_plane.devices_api().versions(&caller, &app).await?,
    ))
}

/// Adds a version: `{name, dataset?, eventTimePointer?}`; its name is the topic's `appVersionName`.
#[utoipa::path(post, path = "/devices/applications/{app}/versions", tag = "devices", params(("app" = String, Path)),
    responses((status = 201, description = "the version"), (status = 409, description = "the name is taken")))]
async fn create_version(
    State(control_plane): AppState,
    Path(app): Path<String>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<(StatusCode, Json<AppVersion>), ApiError> {
    let caller = caller(&control_plane, &headers).await?;
    let request: NewVersion = body(&bytes, "version")?;
    let created = control_plane
        .devices_api()
        .create_version(&caller, &app, request)
        .await?;
    Ok((StatusCode::CREATED, Json(created)))
}

#[utoipa::path(delete, path = "/devices/applications/{app}/versions/{version}", tag = "devices", params(("app" = String, Path), ("version" = String, Path)),
    responses((status = 204, description = "deleted")))]
async fn delete_version(
    State(control_plane): AppState,
    Path((app, version)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let caller = caller(&control_plane, &headers).await?;
    control_plane
        .devices_api()
        .delete_version(&caller, &app, &version)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct NewEndpoint {
    #[serde(default)]
    attributes: Attributes,
    /// Issue a token with the endpoint (generated unless given).
    #[serde(default)]
    token: Option<NewToken>,
}

#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct CreatedEndpoint {
    #[serde(flatten)]
    endpoint: Endpoint,
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<IssuedToken>,
}

/// Registers an endpoint: `{attributes?, token?: {token?, label?}}`.
#[utoipa::path(post, path = "/devices/applications/{app}/endpoints", tag = "devices", params(("app" = String, Path)),
    responses((status = 201, description = "the endpoint, with its token when one was asked for")))]
async fn create_endpoint(
    State(control_plane): AppState,
    Path(app): Path<String>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<(StatusCode, Json<CreatedEndpoint>), ApiError> {
    let caller = caller(&control_plane, &headers).await?;
    let request: NewEndpoint = if bytes.is_empty() {
        NewEndpoint::default()
    } else {
        body(&bytes, "endpoint")?
    };
    let api = control_plane.devices_api();
    let endpoint = api
        .create_endpoint(&caller, &app, request.attributes)
        .await?;
    let token = match request.token {
        Some(token) => Some(
            api.issue_token(&caller, &app, endpoint.id.as_str(), token)
                .await?,
        ),
        None => None,
    };
    Ok((
        StatusCode::CREATED,
        Json(CreatedEndpoint { endpoint, token }),
    ))
}

/// Endpoints in id order; `attr.<name>=<value>` parameters filter by attributes, `after` and
/// `limit` (at most 1000) page.
#[utoipa::path(get, path = "/devices/applications/{app}/endpoints", tag = "devices", params(("app" = String, Path)),
    responses((status = 200, description = "the endpoints")))]
async fn list_endpoints(
    State(control_plane): AppState,
    Path(app): Path<String>,
    Query(parameters): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Answer<Vec<Endpoint>> {
    let caller = caller(&control_plane, &headers).await?;
    let mut filter = Attributes::new();
    let mut limit = 100;
    let mut after = None;
    for (name, value) in &parameters {
        match name.as_str() {
            "limit" => {
                limit = value.parse().map_err(|_| {
                    ApiError::invalid_input(format!("invalid `limit`: `{value}` is not a number"))
                })?
            }
            "after" => after = Some(value.as_str()),
            other => match other.strip_prefix("attr.") {
                Some(attribute) => {
                    filter.insert(attribute.to_string(), value.clone());
                }
                None => {
                    return Err(ApiError::invalid_input(format!(
                        "unknown parameter `{other}`: expected `attr.<name>`, `after` or `limit`"
                    )));
                }
            },
        }
    }
    Ok(Json(
        control_plane
            .devices_api()
            .list_endpoints(&caller, &app, &filter, after, limit)
            .await?,
    ))
}

#[utoipa::path(get, path = "/devices/applications/{app}/endpoints/{endpoint}", tag = "devices", params(("app" = String, Path), ("endpoint" = String, Path)),
    responses((status = 200, description = "the endpoint, with when it was last seen")))]
async fn get_endpoint(
    State(control_plane): AppState,
    Path((app, endpoint)): Path<(String, String)>,
    headers: HeaderMap,
) -> Answer<Endpoint> {
    let caller = caller(&control_plane, &headers).await?;
    Ok(Json(
        control_plane
            .devices_api()
            .endpoint(&caller, &app, &endpoint)
            .await?,
    ))
}

/// Replaces the endpoint's attributes with the body's object of strings.
#[utoipa::path(put, path = "/devices/applications/{app}/endpoints/{endpoint}", tag = "devices", params(("app" = String, Path), ("endpoint" = String, Path)),
    responses((status = 200, description = "the endpoint")))]
async fn put_attributes(
    State(control_plane): AppState,
    Path((app, endpoint)): Path<(String, String)>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Answer<Endpoint> {
    let caller = caller(&control_plane, &headers).await?;
    let attributes: Attributes = body(&bytes, "attributes")?;
    Ok(Json(
        control_plane
            .devices_api()
            .set_attributes(&caller, &app, &endpoint, attributes)
            .await?,
    ))
}

/// Deletes the endpoint; its tokens stop working at once.
#[utoipa::path(delete, path = "/devices/applications/{app}/endpoints/{endpoint}", tag = "devices", params(("app" = String, Path), ("endpoint" = String, Path)),
    responses((status = 204, description = "deleted")))]
async fn delete_endpoint(
    State(control_plane): AppState,
    Path((app, endpoint)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let caller = caller(&control_plane, &headers).await?;
    control_plane
        .devices_api()
        .delete_endpoint(&caller, &app, &endpoint)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/devices/applications/{app}/endpoints/{endpoint}/tokens", tag = "devices", params(("app" = String, Path), ("endpoint" = String, Path)),
    responses((status = 200, description = "the endpoint's tokens (never their values)")))]
async fn list_tokens(
    State(control_plane): AppState,
    Path((app, endpoint)): Path<(String, String)>,
    headers: HeaderMap,
) -> Answer<Vec<DeviceToken>> {
    let caller = caller(&control_plane, &headers).await?;
    Ok(Json(
        control_plane
            .devices_api()
            .tokens(&caller, &app, &endpoint)
            .await?,
    ))
}

/// Issues a token: `{token?, label?}`. The value is in the answer, once.
#[utoipa::path(post, path = "/devices/applications/{app}/endpoints/{endpoint}/tokens", tag = "devices", params(("app" = String, Path), ("endpoint" = String, Path)),
    responses((status = 201, description = "the token, with its value"), (status = 409, description = "that token is in use")))]
async fn issue_token(
    State(control_plane): AppState,
    Path((app, endpoint)): Path<(String, String)>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<(StatusCode, Json<IssuedToken>), ApiError> {
    let caller = caller(&control_plane, &headers).await?;
    let request: NewToken = if bytes.is_empty() {
        NewToken::default()
    } else {
        body(&bytes, "token")?
    };
    let issued = control_plane
        .devices_api()
        .issue_token(&caller, &app, &endpoint, request)
        .await?;
    Ok((StatusCode::CREATED, Json(issued)))
}

/// Revokes a token; bridges refuse it from the moment they hear the event.
#[utoipa::path(post, path = "/devices/applications/{app}/endpoints/{endpoint}/tokens/{token}/revoke", tag = "devices",
    params(("app" = String, Path), ("endpoint" = String, Path), ("token" = String, Path, description = "the token's id")),
    responses((status = 200, description = "the revoked token")))]
async fn revoke_token(
    State(control_plane): AppState,
    Path((app, endpoint, token)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Answer<DeviceToken> {
    let caller = caller(&control_plane, &headers).await?;
    Ok(Json(
        control_plane
            .devices_api()
            .revoke_token(&caller, &app, &endpoint, &token)
            .await?,
    ))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ResolveRequest {
    version: String,
    token: String,
}

/// What a token in a topic stands for (device bridges, administrator tokens).
#[utoipa::path(post, path = "/devices/resolve", tag = "platform",
    responses((status = 200, description = "`outcome`: ok (with endpoint, dataset, quota), unknown-version, unknown-token, revoked or other-application")))]
async fn resolve(
    State(control_plane): AppState,
    headers: HeaderMap,
    bytes: Bytes,
) -> Answer<ResolveAnswer> {
    let caller = caller(&control_plane, &headers).await?;
    let request: ResolveRequest = body(&bytes, "resolve request")?;
    Ok(Json(
        control_plane
            .devices_api()
            .resolve(&caller, &request.version, &request.token)
            .await?,
    ))
}

/// A bridge's counts and sightings (administrator tokens); answers the accounts' quota states.
#[utoipa::path(post, path = "/devices/usage", tag = "platform",
    responses((status = 200, description = "quota states of the accounts in the report")))]
async fn report_usage(
    State(control_plane): AppState,
    headers: HeaderMap,
    bytes: Bytes,
) -> Answer<Vec<AccountQuota>> {
    let caller = caller(&control_plane, &headers).await?;
    let report: UsageReport = body(&bytes, "usage report")?;
    Ok(Json(
        control_plane
            .devices_api()
            .report_usage(&caller, report)
            .await?,
    ))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct UsageParameters {
    application: Option<String>,
    endpoint: Option<String>,
    account: Option<String>,
    /// Milliseconds since the epoch; 30 days ago by default.
    from: Option<i64>,
    /// Milliseconds since the epoch (exclusive); now by default.
    to: Option<i64>,
    /// `hour` (default) or `day`.
    period: Option<String>,
}

/// Messages, samples, bytes and rejections per hour or day, for an application (maintainers),
/// one of its endpoints, or an account (itself and administrators).
#[utoipa::path(get, path = "/devices/usage", tag = "devices",
    responses((status = 200, description = "sums per period, oldest first")))]
async fn usage(
    State(control_plane): AppState,
    Query(parameters): Query<UsageParameters>,
    headers: HeaderMap,
) -> Answer<Vec<UsageRow>> {
    let caller = caller(&control_plane, &headers).await?;
    let period = match parameters.period.as_deref() {
        None => Period::Hour,
        Some(text) => Period::parse(text).ok_or_else(|| {
            ApiError::invalid_input(format!("invalid `period`: `{text}` is not hour or day"))
        })?,
    };
    let now = chrono::Utc::now().timestamp_millis();
    let filter = UsageFilter {
        from: parameters
            .from
            .unwrap_or(now - 30 * weir_device_registry::DAY_MILLIS),
        to: parameters.to.unwrap_or(now + 1),
        period,
        ..UsageFilter::default()
    };
    Ok(Json(
        control_plane
            .devices_api()
            .usage(
                &caller,
                parameters.application.as_deref(),
                parameters.endpoint.as_deref(),
                parameters.account.as_deref(),
                filter,
            )
            .await?,
    ))
}

#[utoipa::path(get, path = "/accounts/{name}/device-quota", tag = "devices", params(("name" = String, Path)),
    responses((status = 200, description = "the quota and this period's use, or null")))]
async fn get_quota(
    State(control_plane): AppState,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Answer<Option<QuotaState>> {
    let caller = caller(&control_plane, &headers).await?;
    Ok(Json(
        control_plane.devices_api().quota(&caller, &name).await?,
    ))
}

/// Sets the account's quota (administrators): `{period: hour|day, maxSamples?, maxBytes?}`.
#[utoipa::path(put, path = "/accounts/{name}/device-quota", tag = "devices", params(("name" = String, Path)),
    responses((status = 200, description = "the quota and this period's use")))]
async fn put_quota(
    State(control_plane): AppState,
    Path(name): Path<String>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Answer<Option<QuotaState>> {
    let caller = caller(&control_plane, &headers).await?;
    let quota: Quota = body(&bytes, "quota")?;
    let api = control_plane.devices_api();
    api.set_quota(&caller, &name, Some(quota)).await?;
    Ok(Json(api.quota(&caller, &name).await?))
}

#[utoipa::path(delete, path = "/accounts/{name}/device-quota", tag = "devices", params(("name" = String, Path)),
    responses((status = 204, description = "the account has no quota any more")))]
async fn delete_quota(
    State(control_plane): AppState,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let caller = caller(&control_plane, &headers).await?;
    control_plane
        .devices_api()
        .set_quota(&caller, &name, None)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
