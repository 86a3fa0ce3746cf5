//! The device registry in GraphQL, over the same `DevicesApi` as REST and in its JSON shapes:
//! `deviceApplications`, `deviceApplication`, `deviceEndpoints` and `deviceUsage` queries;
//! `createDeviceApplication`, `createDeviceVersion`, `createDeviceEndpoint`, `setDeviceAttributes`,
//! `deleteDeviceEndpoint`, `issueDeviceToken` and `revokeDeviceToken` mutations.

use std::sync::Arc;

use async_graphql::{Context, Json, Object};
use serde_json::Value;
use weir_device_registry::{Attributes, Period, UsageFilter};
use weir_function_runtime::Caller;

use crate::error::ServiceError;
use crate::node::ControlPlane;
use crate::services::devices::{DevicesApi, NewApplication, NewToken, NewVersion};

fn parts(context: &Context<'_>) -> (DevicesApi, Caller) {
    (
        context.data_unchecked::<Arc<ControlPlane>>().devices_api(),
        context.data_unchecked::<Caller>().clone(),
    )
}

fn to_graphql(error: ServiceError) -> async_graphql::Error {
    async_graphql::Error::new(error.to_string())
}

fn json(value: impl serde::Serialize) -> Json<Value> {
    Json(serde_json::to_value(value).unwrap_or_default())
}

fn attributes(value: Option<Json<Value>>) -> async_graphql::Result<Attributes> {
    match value {
        None => Ok(Attributes::new()),
        Some(Json(value)) => serde_json::from_value(value).map_err(|error| {
            async_graphql::Error::new(format!(
                "invalid `attributes`: an object of strings ({error})"
            ))
        }),
    }
}

#[derive(Default)]
pub struct DevicesQuery;

#[Object]
impl DevicesQuery {
    /// Applications whose dataset the caller maintains.
    async fn device_applications(
        &self,
        context: &Context<'_>,
    ) -> async_graphql::Result<Json<Value>> {
        let (api, caller) = parts(context);
        Ok(json(
            api.list_applications(&caller).await.map_err(to_graphql)?,
        ))
    }

    /// An application with its versions.
    async fn device_application(
        &self,
        context: &Context<'_>,
        name: String,
    ) -> async_graphql::Result<Json<Value>> {
        let (api, caller) = parts(context);
        let application = api.application(&caller, &name).await.map_err(to_graphql)?;
        let versions = api.versions(&caller, &name).await.map_err(to_graphql)?;
        let mut value = serde_json::to_value(application).unwrap_or_default();
        value["versions"] = serde_json::to_value(versions).unwrap_or_default();
        Ok(Json(value))
    }

    /// Endpoints having every attribute of `attributes`, in id order after `after`.
    async fn device_endpoints(
        &self,
        context: &Context<'_>,
        application: String,
        attributes: Option<Json<Value>>,
        after: Option<String>,
        #[graphql(default = 100)] limit: i64,
    ) -> async_graphql::Result<Json<Value>> {
        let (api, caller) = parts(context);
        let filter = self::attributes(attributes)?;
        Ok(json(
            api.list_endpoints(&caller, &application, &filter, after.as_deref(), limit)
                .await
                .map_err(to_graphql)?,
        ))
    }

    /// Sums per `hour` or `day` of an application (or one endpoint of it) or an account.
    #[allow(clippy::too_many_arguments)]
    async fn device_usage(
        &self,
        context: &Context<'_>,
        application: Option<String>,
        endpoint: Option<String>,
        account: Option<String>,
        from: Option<i64>,
        to: Option<i64>,
        #[graphql(default_with = "String::from(\"hour\")")] period: String,
    ) -> async_graphql::Result<Json<Value>> {
        let (api, caller) = parts(context);
        let period = Period::parse(&period).ok_or_else(|| {
            async_graphql::Error::new(format!("invalid `period`: `{period}` is not hour or day"))
        })?;
        let now = chrono::Utc::now().timestamp_millis();
        let filter = UsageFilter {
            from: from.unwrap_or(now - 30 * weir_device_registry::DAY_MILLIS),
            to: to.unwrap_or(now + 1),
            period,
            ..UsageFilter::default()
        };
        Ok(json(
            api.usage(
                &caller,
                application.as_deref(),
                endpoint.as_deref(),
                account.as_deref(),
                filter,
            )
            .await
            .map_err(to_graphql)?,
        ))
    }
}

#[derive(Default)]
pub struct DevicesMutation;

#[Object]
impl DevicesMutation {
    async fn create_device_application(
        &self,
        context: &Context<'_>,
        name: String,
        dataset: String,
        description: Option<String>,
    ) -> async_graphql::Result<Json<Value>> {
        let (api, caller) = parts(context);
        let request = NewApplication {
            name,
            dataset,
            description,
        };
        Ok(json(
            api.create_application(&caller, request)
                .await
                .map_err(to_graphql)?,
        ))
    }

    async fn create_device_version(
        &self,
        context: &Context<'_>,
        application: String,
        name: String,
        dataset: Option<String>,
        event_time_pointer: Option<String>,
    ) -> async_graphql::Result<Json<Value>> {
        let (api, caller) = parts(context);
        let request = NewVersion {
            name,
            dataset,
            event_time_pointer,
        };
        Ok(json(
            api.create_version(&caller, &application, request)
                .await
                .map_err(to_graphql)?,
        ))
    }

    async fn create_device_endpoint(
        &self,
        context: &Context<'_>,
        application: String,
        attributes: Option<Json<Value>>,
    ) -> async_graphql::Result<Json<Value>> {
        let (api, caller) = parts(context);
        let attributes = self::attributes(attributes)?;
        Ok(json(
            api.create_endpoint(&caller, &application, attributes)
                .await
                .map_err(to_graphql)?,
        ))
    }

    async fn set_device_attributes(
        &self,
        context: &Context<'_>,
        application: String,
        endpoint: String,
        attributes: Json<Value>,
    ) -> async_graphql::Result<Json<Value>> {
        let (api, caller) = parts(context);
        let attributes = self::attributes(Some(attributes))?;
        Ok(json(
            api.set_attributes(&caller, &application, &endpoint, attributes)
                .await
                .map_err(to_graphql)?,
        ))
    }

    async fn delete_device_endpoint(
        &self,
        context: &Context<'_>,
        application: String,
        endpoint: String,
    ) -> async_graphql::Result<bool> {
        let (api, caller) = parts(context);
        api.delete_endpoint(&caller, &application, &endpoint)
            .await
            .map_err(to_graphql)?;
        Ok(true)
    }

    /// Issues a token (chosen, or generated when `token` is absent); its value is in the answer
    /// once.
    async fn issue_device_token(
        &self,
        context: &Context<'_>,
        application: String,
        endpoint: String,
        token: Option<String>,
        label: Option<String>,
    ) -> async_graphql::Result<Json<Value>> {
        let (api, caller) = parts(context);
        Ok(json(
            api.issue_token(&caller, &application, &endpoint, NewToken { token, label })
                .await
                .map_err(to_graphql)?,
        ))
    }

    async fn revoke_device_token(
        &self,
        context: &Context<'_>,
        application: String,
        endpoint: String,
        token_id: String,
    ) -> async_graphql::Result<Json<Value>> {
        let (api, caller) = parts(context);
        Ok(json(
            api.revoke_token(&caller, &application, &endpoint, &token_id)
                .await
                .map_err(to_graphql)?,
        ))
    }
}
