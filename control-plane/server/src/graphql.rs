//! GraphQL at `/graphql` over the same services as REST: datasets (with paged metadata chain,
//! schema, lineage, statistics) and accounts.

use std::sync::Arc;

use async_graphql::{Context, EmptySubscription, MergedObject, Object, Schema, SimpleObject};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use axum::{Json, Router};
use bytes::Bytes;
use weir_function_runtime::{ApiError, Caller};
use weir_metastore::{BlockEntry, DatasetFilter};

use crate::error::ServiceError;
use crate::graphql_limits as limits;
use crate::node::ControlPlane;
use crate::services::datasets::DatasetView;

pub type WeirSchema = Schema<Query, Mutation, EmptySubscription>;

/// Every query field: datasets and accounts here, flows in `graphql_flows`, the device registry
/// in `graphql_devices`, issues and discussions in `graphql_governance`, webhooks in
/// `graphql_webhooks`.
#[derive(MergedObject)]
pub struct Query(
    QueryRoot,
    crate::graphql_flows::FlowsQuery,
    crate::graphql_devices::DevicesQuery,
    crate::graphql_governance::GovernanceQuery,
    crate::graphql_webhooks::WebhooksQuery,
);

#[derive(MergedObject, Default)]
pub struct Mutation(
    crate::graphql_flows::FlowsMutation,
    crate::graphql_devices::DevicesMutation,
    crate::graphql_governance::GovernanceMutation,
    crate::graphql_webhooks::WebhooksMutation,
);

/// The schema is built once; each request adds its caller.
pub fn routes(control_plane: Arc<ControlPlane>) -> Router<Arc<ControlPlane>> {
    let schema: WeirSchema = Schema::build(
        Query(
            QueryRoot,
            crate::graphql_flows::FlowsQuery,
            crate::graphql_devices::DevicesQuery,
            crate::graphql_governance::GovernanceQuery,
            crate::graphql_webhooks::WebhooksQuery,
        ),
        Mutation::default(),
        EmptySubscription,
    )
    .data(control_plane)
    .limit_depth(limits::MAX_DEPTH)
    .limit_complexity(limits::MAX_COMPLEXITY)
    .limit_recursive_depth(limits::MAX_PARSER_RECURSION)
    .limit_directives(limits::MAX_DIRECTIVES)
    .extension(limits::DocumentLimits)
    .finish();
    Router::new().route(
        "/graphql",
        post(move |state, headers, body| execute(state, headers, body, schema.clone()))
            .layer(axum::extract::DefaultBodyLimit::max(limits::MAX_BODY_BYTES)),
    )
}

/// Runs one request under the time limit. A request refused as a whole (unparsable, over a
/// limit, invalid) answers 400 with the GraphQL `errors` and the `{"error","message"}` shape.
async fn execute(
    State(control_plane): State<Arc<ControlPlane>>,
    headers: HeaderMap,
    body: Bytes,
    schema: WeirSchema,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    let caller = crate::rest::caller(&control_plane, &headers).await?;
    let request: async_graphql::Request = serde_json::from_slice(&body)
        .map_err(|error| ApiError::invalid_input(format!("graphql request body: {error}")))?;
    let timeout = std::time::Duration::from_secs(limits::TIMEOUT_SECONDS);
    let response = tokio::time::timeout(timeout, schema.execute(request.data(caller)))
        .await
        .map_err(|_| {
            ApiError::new(
                weir_function_runtime::ErrorKind::Retryable,
                format!(
                    "the GraphQL request did not finish within {} s",
                    limits::TIMEOUT_SECONDS
                ),
            )
        })?;
    if response.data == async_graphql::Value::Null && !response.errors.is_empty() {
        let mut response = response;
        for error in &mut response.errors {
            error.message = limits::explain(&error.message);
        }
        let message = response
            .errors
            .iter()
            .map(|error| error.message.as_str())
            .collect::<Vec<_>>()
            .join("; ");
        let body = serde_json::json!({
            "error": "invalid_input",
            "message": message,
            "errors": response.errors,
        });
        return Ok((axum::http::StatusCode::BAD_REQUEST, Json(body)).into_response());
    }
    Ok(Json(response).into_response())
}

fn parts<'a>(context: &'a Context<'_>) -> (&'a Arc<ControlPlane>, &'a Caller) {
    (
        context.data_unchecked::<Arc<ControlPlane>>(),
        context.data_unchecked::<Caller>(),
    )
}

fn to_graphql(error: ServiceError) -> async_graphql::Error {
    async_graphql::Error::new(error.to_string())
}

pub struct QueryRoot;

#[Object]
impl QueryRoot {
    /// Datasets the caller may read; `search` is a search expression, as for
    /// `GET /datasets?search=` (e.g. `keywords = 'weather' AND numRecords > 1000`).
    /// `limit` is at most 1000.
    #[graphql(complexity = "page(limit) * child_complexity")]
    async fn datasets(
        &self,
        context: &Context<'_>,
        search: Option<String>,
        account: Option<String>,
        #[graphql(default = 100)] limit: i64,
        #[graphql(default = 0)] offset: i64,
    ) -> async_graphql::Result<Vec<Dataset>> {
        let (control_plane, caller) = parts(context);
        let filter = DatasetFilter {
            owner_name: account,
            expression: crate::services::datasets::search_expression(search.as_deref())
                .map_err(to_graphql)?,
            limit: limit.clamp(1, limits::MAX_PAGE),
            offset: offset.max(0),
            ..Default::default()
        };
        let views = control_plane
            .datasets
            .list(caller, &filter)
            .await
            .map_err(to_graphql)?;
        Ok(views.into_iter().map(Dataset).collect())
    }

    /// One dataset by `account` and `name`; null when missing or not readable.
    async fn dataset(
        &self,
        context: &Context<'_>,
        account: String,
        name: String,
    ) -> async_graphql::Result<Option<Dataset>> {
        let (control_plane, caller) = parts(context);
        match control_plane.datasets.get(caller, &account, &name).await {
            Ok(view) => Ok(Some(Dataset(view))),
            Err(ServiceError::NotFound(_)) => Ok(None),
            Err(error) => Err(to_graphql(error)),
        }
    }

    #[graphql(complexity = "100 * child_complexity")]
    async fn accounts(&self, context: &Context<'_>) -> async_graphql::Result<Vec<AccountObject>> {
        let (control_plane, caller) = parts(context);
        crate::services::accounts::require_account(caller).map_err(to_graphql)?;
        let accounts = control_plane
            .accounts
            .list_accounts()
            .await
            .map_err(to_graphql)?;
        Ok(accounts.into_iter().map(AccountObject::from).collect())
    }

    /// The calling account; null for anonymous callers.
    async fn me(&self, context: &Context<'_>) -> async_graphql::Result<Option<AccountObject>> {
        let (control_plane, caller) = parts(context);
        if caller.account_id.is_none() {
            return Ok(None);
        }
        let account = control_plane
            .accounts
            .me(caller)
            .await
            .map_err(to_graphql)?;
        Ok(Some(account.into()))
    }
}

#[derive(SimpleObject)]
#[graphql(name = "Account")]
pub struct AccountObject {
    id: String,
    name: String,
    kind: String,
    display_name: String,
    is_admin: bool,
}

impl From<weir_metastore::Account> for AccountObject {
    fn from(account: weir_metastore::Account) -> Self {
        Self {
            id: account.id,
            name: account.name,
            kind: account.kind.as_str().to_string(),
            display_name: account.display_name,
            is_admin: account.is_admin,
        }
    }
}

#[derive(SimpleObject)]
pub struct Block {
    sequence_number: i64,
    block_hash: String,
    prev_block_hash: Option<String>,
    /// RFC 3339.
    system_time: String,
    event_type: String,
    /// The event's key fields as JSON text.
    event: String,
}

impl From<BlockEntry> for Block {
    fn from(block: BlockEntry) -> Self {
        Self {
            sequence_number: block.sequence_number,
            block_hash: block.block_hash,
            prev_block_hash: block.prev_block_hash,
            system_time: chrono::DateTime::from_timestamp_millis(block.system_time)
                .map(|time| time.to_rfc3339())
                .unwrap_or_default(),
            event_type: block.event_type,
            event: block.key_fields.to_string(),
        }
    }
}

#[derive(SimpleObject)]
pub struct BlockPage {
    blocks: Vec<Block>,
    /// Pass as `before` for the next page; null on the last page.
    next_before: Option<i64>,
}

/// Lineage lists are not paged; each counts as this many datasets in a request's complexity.
const LINEAGE_COST: usize = 20;

#[derive(SimpleObject)]
pub struct LineageObject {
    #[graphql(complexity = "LINEAGE_COST * child_complexity")]
    upstream: Vec<Dataset>,
    #[graphql(complexity = "LINEAGE_COST * child_complexity")]
    downstream: Vec<Dataset>,
}

/// The cost multiplier of a paged list: the page size it will hold.
fn page(size: i64) -> usize {
    size.clamp(1, limits::MAX_PAGE) as usize
}

pub struct Dataset(DatasetView);

#[Object]
impl Dataset {
    async fn id(&self) -> &str {
        &self.0.id
    }
    async fn alias(&self) -> &str {
        &self.0.alias
    }
    async fn owner(&self) -> &str {
        &self.0.owner
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn kind(&self) -> &str {
        &self.0.kind
    }
    async fn visibility(&self) -> &str {
        self.0.visibility.as_str()
    }
    async fn head(&self) -> Option<&str> {
        self.0.head.as_deref()
    }
    async fn your_role(&self) -> Option<&str> {
        self.0.your_role.map(|role| role.as_str())
    }
    /// Its documentation as its chain holds it (the governance function changes it):
    /// `{description, keywords, license, readme}`; `license` is the SPDX id or short name.
    /// Read from storage, so it costs as much as 50 fields (pages of at most 100 datasets).
    #[graphql(complexity = 50)]
    async fn documentation(
        &self,
        context: &Context<'_>,
    ) -> async_graphql::Result<async_graphql::Json<serde_json::Value>> {
        let control_plane = context.data_unchecked::<Arc<ControlPlane>>();
        let id: weir_odf::DatasetId = self
            .0
            .id
            .parse()
            .map_err(|_| async_graphql::Error::new("the dataset id does not parse"))?;
        let docs = control_plane
            .indexer
            .documentation(&id)
            .await
            .map_err(to_graphql)?;
        Ok(async_graphql::Json(serde_json::json!({
            "description": docs.description,
            "keywords": docs.keywords,
            "license": docs.license,
            "readme": docs.readme,
        })))
    }
    async fn num_records(&self) -> i64 {
        self.0
            .statistics
            .as_ref()
            .map(|s| s.num_records)
            .unwrap_or(0)
    }
    async fn data_size_bytes(&self) -> i64 {
        self.0
            .statistics
            .as_ref()
            .map(|s| s.data_size_bytes)
            .unwrap_or(0)
    }

    /// The metadata chain, newest first, `first` (at most 1000) blocks below sequence number
    /// `before`.
    #[graphql(complexity = "page(first) * child_complexity")]
    async fn metadata_chain(
        &self,
        context: &Context<'_>,
        before: Option<i64>,
        #[graphql(default = 20)] first: i64,
    ) -> async_graphql::Result<BlockPage> {
        let (control_plane, caller) = parts(context);
        let blocks = control_plane
            .datasets
            .blocks(caller, &self.0.owner, &self.0.name, before, first)
            .await
            .map_err(to_graphql)?;
        let next_before = blocks
            .last()
            .filter(|last| last.sequence_number > 0 && blocks.len() as i64 == first.clamp(1, 1000))
            .map(|last| last.sequence_number);
        Ok(BlockPage {
            blocks: blocks.into_iter().map(Block::from).collect(),
            next_before,
        })
    }

    /// The current data schema (ODF DataSchema as JSON text); null before the first data.
    async fn schema(&self, context: &Context<'_>) -> async_graphql::Result<Option<String>> {
        let (control_plane, _) = parts(context);
        let block = control_plane
            .metastore
            .last_block_of_type(&self.0.id, "SetDataSchema")
            .await
            .map_err(|error| to_graphql(error.into()))?;
        Ok(block.and_then(|block| {
            block
                .key_fields
                .get("schema")
                .map(|schema| schema.to_string())
        }))
    }

    async fn lineage(&self, context: &Context<'_>) -> async_graphql::Result<LineageObject> {
        let (control_plane, caller) = parts(context);
        let lineage = control_plane
            .datasets
            .lineage(caller, &self.0.owner, &self.0.name)
            .await
            .map_err(to_graphql)?;
        Ok(LineageObject {
            upstream: lineage.upstream.into_iter().map(Dataset).collect(),
            downstream: lineage.downstream.into_iter().map(Dataset).collect(),
        })
    }
}
