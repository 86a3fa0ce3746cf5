//! Flows as callers see them: resolves the dataset and checks the caller's role (read to see,
//! editor to trigger, maintainer to configure, pause, resume and cancel; administrators for
//! system flows and for executors taking tasks), then asks the flow service.

use std::sync::Arc;

use weir_flows::model::{FlowConfig, FlowKey, FlowType};
use weir_flows::repository::RunFilter;
use weir_flows::service::FlowView;
use weir_flows::{FlowRun, FlowService, Target};
use weir_function_runtime::Caller;
use weir_metastore::{DatasetEntry, Metastore, Role};

use crate::error::{ServiceError, ServiceResult};
use crate::services::{AccessService, DatasetService};

pub struct FlowsApi {
    pub flows: Arc<FlowService>,
    pub datasets: Arc<DatasetService>,
    pub access: Arc<AccessService>,
    pub metastore: Arc<dyn Metastore>,
}

/// One page of run history, newest first; `next_before` continues it.
#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunPage {
    pub runs: Vec<FlowRun>,
    pub next_before: Option<i64>,
}

pub const MAX_PAGE: i64 = 100;

pub fn parse_flow_type(text: &str) -> ServiceResult<FlowType> {
    FlowType::parse(text).ok_or_else(|| {
        ServiceError::InvalidInput(format!(
            "invalid `flowType`: `{text}` is not one of ingest, transform, compaction, reset, gc"
        ))
    })
}

/// A flow config from JSON, naming the field at fault.
pub fn parse_config(body: &[u8]) -> ServiceResult<FlowConfig> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        if matches!(path.as_str(), "." | "?" | "") {
            ServiceError::InvalidInput(format!("invalid flow config: {inner}"))
        } else {
            ServiceError::InvalidInput(format!("invalid flow config field `{path}`: {inner}"))
        }
    })
}

pub(crate) fn target_of(entry: &DatasetEntry) -> Target {
    if entry.kind == "derivative" {
        Target::Derivative
    } else {
        Target::Root
    }
}

fn require_admin(caller: &Caller, what: &str) -> ServiceResult<()> {
    if caller.is_admin {
        Ok(())
    } else {
        Err(ServiceError::Forbidden(format!(
            "{what} needs an administrator token"
        )))
    }
}

impl FlowsApi {
    async fn dataset(
        &self,
        caller: &Caller,
        owner: &str,
        name: &str,
        role: Role,
    ) -> ServiceResult<DatasetEntry> {
        self.datasets.authorize(caller, owner, name, role).await
    }

    /// The flow of `owner/name` (or the system's, with `owner` None) after checking `role`.
    pub async fn resolve(
        &self,
        caller: &Caller,
        dataset: Option<(&str, &str)>,
        flow_type: &str,
        role: Role,
    ) -> ServiceResult<(FlowKey, Target)> {
        let flow_type = parse_flow_type(flow_type)?;
        match dataset {
            Some((owner, name)) => {
                let entry = self.dataset(caller, owner, name, role).await?;
                Ok((FlowKey::new(entry.id.clone(), flow_type), target_of(&entry)))
            }
            None => {
                require_admin(caller, "system flows")?;
                Ok((FlowKey::system(flow_type), Target::System))
            }
        }
    }

    pub async fn get(&self, key: &FlowKey, target: Target) -> ServiceResult<FlowView> {
        let binding = self.flows.effective(key, target).await?.ok_or_else(|| {
            ServiceError::NotFound(format!(
                "no {} flow is configured here",
                key.flow_type.as_str()
            ))
        })?;
        Ok(FlowView {
            key: key.clone(),
            binding,
        })
    }

    /// Every flow of a dataset: stored ones and the defaults.
    pub async fn list(
        &self,
        caller: &Caller,
        owner: &str,
        name: &str,
    ) -> ServiceResult<Vec<FlowView>> {
        let entry = self.dataset(caller, owner, name, Role::Reader).await?;
        let target = target_of(&entry);
        let mut views = Vec::new();
        for flow_type in FlowType::ALL {
            let key = FlowKey::new(entry.id.clone(), flow_type);
            if let Some(binding) = self.flows.effective(&key, target).await? {
                views.push(FlowView { key, binding });
            }
        }
        Ok(views)
    }

    pub async fn configure(
        &self,
        key: &FlowKey,
        target: Target,
        config: FlowConfig,
    ) -> ServiceResult<FlowView> {
        Ok(self.flows.configure(key, target, config).await?)
    }

    pub async fn reset_config(&self, key: &FlowKey) -> ServiceResult<bool> {
        Ok(self.flows.flows.delete_config(key).await?)
    }

    pub async fn runs(
        &self,
        dataset_id: &str,
        flow_type: Option<FlowType>,
        before: Option<i64>,
        limit: Option<i64>,
    ) -> ServiceResult<RunPage> {
        let limit = limit.unwrap_or(20);
        if !(1..=MAX_PAGE).contains(&limit) {
            return Err(ServiceError::InvalidInput(format!(
                "invalid `limit`: must be between 1 and {MAX_PAGE}"
            )));
        }
        let filter = RunFilter {
            dataset_id: Some(dataset_id.to_string()),
            flow_type,
            active_only: false,
        };
        let runs = self.flows.flows.runs(&filter, before, limit).await?;
        let next_before = (runs.len() as i64 == limit)
            .then(|| runs.last().map(|run| run.run_id))
            .flatten();
        Ok(RunPage { runs, next_before })
    }

    /// A run, if the caller holds `role` on its dataset (else not found, as for datasets).
    pub async fn run(&self, caller: &Caller, run_id: i64, role: Role) -> ServiceResult<FlowRun> {
        let not_found = || ServiceError::NotFound(format!("run {run_id} not found"));
        let run = self.flows.flows.run(run_id).await?.ok_or_else(not_found)?;
        if run.key.dataset_id.is_empty() {
            require_admin(caller, "system flow runs")?;
            return Ok(run);
        }
        let entry = self
            .metastore
            .dataset_by_id(&run.key.dataset_id)
            .await?
            .ok_or_else(not_found)?;
        match self.access.role(caller, &entry).await? {
            Some(held) if held >= role => Ok(run),
            Some(_) if role > Role::Reader => Err(ServiceError::Forbidden(format!(
                "this on run {run_id} needs the {} role",
                role.as_str()
            ))),
            _ => Err(not_found()),
        }
    }

    pub async fn cancel(&self, caller: &Caller, run_id: i64) -> ServiceResult<FlowRun> {
        self.run(caller, run_id, Role::Maintainer).await?;
        let who = caller.account_id.clone().unwrap_or_default();
        Ok(self.flows.cancel(run_id, &who).await?)
    }

    pub fn require_system(caller: &Caller) -> ServiceResult<()> {
        require_admin(caller, "system flows")
    }

    pub fn require_executor(caller: &Caller) -> ServiceResult<()> {
        require_admin(caller, "taking tasks")
    }
}
