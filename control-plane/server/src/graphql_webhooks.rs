//! Webhook subscriptions in GraphQL, over the same `WebhooksApi` as REST and in its JSON
//! shapes: `webhooks`, `webhook` and `webhookDeliveries` queries; `createWebhook`,
//! `deleteWebhook` and `enableWebhook` mutations. With `name`, a subscription is to that
//! dataset of `account`; without, to every dataset of `account`.

use std::sync::Arc;

use async_graphql::{Context, Json, Object};
use serde_json::Value;
use weir_function_runtime::Caller;

use crate::error::ServiceError;
use crate::node::ControlPlane;
use crate::services::webhooks::{NewSubscription, Scope, WebhooksApi};

fn parts(context: &Context<'_>) -> (WebhooksApi, Caller) {
    (
        context.data_unchecked::<Arc<ControlPlane>>().webhooks_api(),
        context.data_unchecked::<Caller>().clone(),
    )
}

fn to_graphql(error: ServiceError) -> async_graphql::Error {
    async_graphql::Error::new(error.to_string())
}

fn json(value: impl serde::Serialize) -> Json<Value> {
    Json(serde_json::to_value(value).unwrap_or_default())
}

fn scope<'a>(account: &'a str, name: Option<&'a str>) -> Scope<'a> {
    match name {
        Some(name) => Scope::Dataset {
            owner: account,
            name,
        },
        None => Scope::Account { name: account },
    }
}

#[derive(Default)]
pub struct WebhooksQuery;

#[Object]
impl WebhooksQuery {
    /// Subscriptions to a dataset (with `name`) or to every dataset of an account.
    async fn webhooks(
        &self,
        context: &Context<'_>,
        account: String,
        name: Option<String>,
    ) -> async_graphql::Result<Json<Value>> {
        let (api, caller) = parts(context);
        Ok(json(
            api.list(&caller, scope(&account, name.as_deref()))
                .await
                .map_err(to_graphql)?,
        ))
    }

    async fn webhook(
        &self,
        context: &Context<'_>,
        id: String,
    ) -> async_graphql::Result<Json<Value>> {
        let (api, caller) = parts(context);
        Ok(json(api.get(&caller, &id).await.map_err(to_graphql)?))
    }

    /// Deliveries of a subscription, newest first.
    async fn webhook_deliveries(
        &self,
        context: &Context<'_>,
        id: String,
        #[graphql(default = 50)] limit: i64,
    ) -> async_graphql::Result<Json<Value>> {
        let (api, caller) = parts(context);
        Ok(json(
            api.deliveries(&caller, &id, limit)
                .await
                .map_err(to_graphql)?,
        ))
    }
}

#[derive(Default)]
pub struct WebhooksMutation;

#[Object]
impl WebhooksMutation {
    /// Subscribes `url` to `events`; the answer holds the signing secret, shown this once.
    async fn create_webhook(
        &self,
        context: &Context<'_>,
        account: String,
        name: Option<String>,
        url: String,
        events: Vec<String>,
    ) -> async_graphql::Result<Json<Value>> {
        let (api, caller) = parts(context);
        Ok(json(
            api.create(
                &caller,
                scope(&account, name.as_deref()),
                NewSubscription { url, events },
            )
            .await
            .map_err(to_graphql)?,
        ))
    }

    async fn delete_webhook(
        &self,
        context: &Context<'_>,
        id: String,
    ) -> async_graphql::Result<bool> {
        let (api, caller) = parts(context);
        api.delete(&caller, &id).await.map_err(to_graphql)?;
        Ok(true)
    }

    /// Activates a disabled subscription again.
    async fn enable_webhook(
        &self,
        context: &Context<'_>,
        id: String,
    ) -> async_graphql::Result<Json<Value>> {
        let (api, caller) = parts(context);
        Ok(json(api.enable(&caller, &id).await.map_err(to_graphql)?))
    }
}
