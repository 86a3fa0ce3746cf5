//! Flows in GraphQL: `flows` and `flowRuns` queries; `setFlowConfig`, `pauseFlow`,
//! `resumeFlow`, `triggerFlow` and `cancelFlowRun` mutations, over the same `FlowsApi` as REST.
//! Configs, causes and outcomes are JSON, in the shapes REST uses.

use std::sync::Arc;

use async_graphql::{Context, Json, Object, SimpleObject};
use weir_flows::FlowRun;
use weir_flows::service::FlowView;
use weir_function_runtime::Caller;
use weir_metastore::Role;

use crate::error::ServiceError;
use crate::graphql_limits as limits;
use crate::node::ControlPlane;
use crate::services::flows::{parse_config, parse_flow_type};

fn parts<'a>(context: &'a Context<'_>) -> (&'a Arc<ControlPlane>, &'a Caller) {
    (
        context.data_unchecked::<Arc<ControlPlane>>(),
        context.data_unchecked::<Caller>(),
    )
}

fn to_graphql(error: ServiceError) -> async_graphql::Error {
    async_graphql::Error::new(error.to_string())
}

#[derive(SimpleObject)]
pub struct Flow {
    dataset_id: String,
    flow_type: String,
    configured: bool,
    paused: bool,
    stop_reason: Option<String>,
    consecutive_failures: u32,
    config: Json<serde_json::Value>,
}

impl From<FlowView> for Flow {
    fn from(view: FlowView) -> Self {
        Self {
            dataset_id: view.key.dataset_id,
            flow_type: view.key.flow_type.as_str().to_string(),
            configured: view.binding.configured,
            paused: view.binding.paused,
            stop_reason: view.binding.stop_reason,
            consecutive_failures: view.binding.consecutive_failures,
            config: Json(serde_json::to_value(&view.binding.config).unwrap_or_default()),
        }
    }
}

#[derive(SimpleObject)]
#[graphql(name = "FlowRun")]
pub struct FlowRunObject {
    run_id: i64,
    flow_type: String,
    /// waiting, running, retrying or finished.
    status: String,
    /// schedule, throttling, batching or executor, while waiting.
    wait_reason: Option<String>,
    attempt: u32,
    priority: String,
    causes: Json<serde_json::Value>,
    outcome: Option<Json<serde_json::Value>>,
    last_error: Option<Json<serde_json::Value>>,
    created_at: i64,
    started_at: Option<i64>,
    finished_at: Option<i64>,
}

impl From<FlowRun> for FlowRunObject {
    fn from(run: FlowRun) -> Self {
        let json = serde_json::to_value(&run).unwrap_or_default();
        let text = |field: &str| json[field].as_str().map(str::to_string);
        Self {
            run_id: run.run_id,
            flow_type: run.key.flow_type.as_str().to_string(),
            status: text("status").unwrap_or_default(),
            wait_reason: text("waitReason"),
            attempt: run.attempt,
            priority: text("priority").unwrap_or_default(),
            causes: Json(json["causes"].clone()),
            outcome: (!json["outcome"].is_null()).then(|| Json(json["outcome"].clone())),
            last_error: (!json["lastError"].is_null()).then(|| Json(json["lastError"].clone())),
            created_at: run.created_at,
            started_at: run.started_at,
            finished_at: run.finished_at,
        }
    }
}

#[derive(SimpleObject)]
pub struct FlowRunPage {
    runs: Vec<FlowRunObject>,
    /// Pass as `before` for the next page; null on the last.
    next_before: Option<i64>,
}

#[derive(Default)]
pub struct FlowsQuery;

#[Object]
impl FlowsQuery {
    /// The flows of a dataset: configured ones and the defaults.
    async fn flows(
        &self,
        context: &Context<'_>,
        account: String,
        name: String,
    ) -> async_graphql::Result<Vec<Flow>> {
        let (control_plane, caller) = parts(context);
        let views = control_plane
            .flows_api()
            .list(caller, &account, &name)
            .await
            .map_err(to_graphql)?;
        Ok(views.into_iter().map(Flow::from).collect())
    }

    /// Runs of a dataset's flows, newest first; `limit` is at most 100.
    #[graphql(complexity = "page(limit) * child_complexity")]
    async fn flow_runs(
        &self,
        context: &Context<'_>,
        account: String,
        name: String,
        flow_type: Option<String>,
        before: Option<i64>,
        #[graphql(default = 20)] limit: i64,
    ) -> async_graphql::Result<FlowRunPage> {
        let (control_plane, caller) = parts(context);
        let entry = control_plane
            .datasets
            .authorize(caller, &account, &name, Role::Reader)
            .await
            .map_err(to_graphql)?;
        let flow_type = flow_type
            .as_deref()
            .map(parse_flow_type)
            .transpose()
            .map_err(to_graphql)?;
        let page = control_plane
            .flows_api()
            .runs(&entry.id, flow_type, before, Some(limit))
            .await
            .map_err(to_graphql)?;
        Ok(FlowRunPage {
            runs: page.runs.into_iter().map(FlowRunObject::from).collect(),
            next_before: page.next_before,
        })
    }
}

fn page(limit: i64) -> usize {
    limit.clamp(1, limits::MAX_PAGE) as usize
}

#[derive(Default)]
pub struct FlowsMutation;

#[Object]
impl FlowsMutation {
    /// Stores a flow config (JSON, as REST's `PUT .../flows/{flowType}` takes).
    async fn set_flow_config(
        &self,
        context: &Context<'_>,
        account: String,
        name: String,
        flow_type: String,
        config: Json<serde_json::Value>,
    ) -> async_graphql::Result<Flow> {
        let (control_plane, caller) = parts(context);
        let api = control_plane.flows_api();
        let (key, target) = api
            .resolve(
                caller,
                Some((&account, &name)),
                &flow_type,
                Role::Maintainer,
            )
            .await
            .map_err(to_graphql)?;
        let bytes = serde_json::to_vec(&config.0).unwrap_or_default();
        let config = parse_config(&bytes).map_err(to_graphql)?;
        Ok(api
            .configure(&key, target, config)
            .await
            .map_err(to_graphql)?
            .into())
    }

    async fn pause_flow(
        &self,
        context: &Context<'_>,
        account: String,
        name: String,
        flow_type: String,
    ) -> async_graphql::Result<Flow> {
        set_paused(context, &account, &name, &flow_type, true).await
    }

    async fn resume_flow(
        &self,
        context: &Context<'_>,
        account: String,
        name: String,
        flow_type: String,
    ) -> async_graphql::Result<Flow> {
        set_paused(context, &account, &name, &flow_type, false).await
    }

    /// Runs the flow now (merging into its pending run).
    async fn trigger_flow(
        &self,
        context: &Context<'_>,
        account: String,
        name: String,
        flow_type: String,
    ) -> async_graphql::Result<FlowRunObject> {
        let (control_plane, caller) = parts(context);
        let api = control_plane.flows_api();
        let (key, target) = api
            .resolve(caller, Some((&account, &name)), &flow_type, Role::Editor)
            .await
            .map_err(to_graphql)?;
        let who = caller.account_id.clone().unwrap_or_default();
        Ok(api
            .flows
            .trigger_manual(&key, target, &who)
            .await
            .map_err(|error| to_graphql(error.into()))?
            .into())
    }

    async fn cancel_flow_run(
        &self,
        context: &Context<'_>,
        run_id: i64,
    ) -> async_graphql::Result<FlowRunObject> {
        let (control_plane, caller) = parts(context);
        Ok(control_plane
            .flows_api()
            .cancel(caller, run_id)
            .await
            .map_err(to_graphql)?
            .into())
    }
}

/// Pauses or resumes a dataset's flow (maintainer role).
async fn set_paused(
    context: &Context<'_>,
    account: &str,
    name: &str,
    flow_type: &str,
    paused: bool,
) -> async_graphql::Result<Flow> {
    let (control_plane, caller) = parts(context);
    let api = control_plane.flows_api();
    let (key, target) = api
        .resolve(caller, Some((account, name)), flow_type, Role::Maintainer)
        .await
        .map_err(to_graphql)?;
    let result = match paused {
        true => api.flows.pause(&key, target).await,
        false => api.flows.resume(&key, target).await,
    };
    result.map_err(|error| to_graphql(error.into()))?;
    Ok(api.get(&key, target).await.map_err(to_graphql)?.into())
}
