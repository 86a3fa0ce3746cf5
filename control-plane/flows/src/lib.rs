//! weir-flows: the control plane's flows and tasks. A flow binds a dataset (or the system) and
//! a type (ingest, transform, compaction, reset, gc) to a trigger, a retry policy and a stop
//! policy; its runs go through a task queue with priorities and leases that executors
//! (in-process workers, deployed functions over HTTP) take from. Only the leader replica
//! dispatches (`service::run_scheduler`); any replica serves the API.
//!
//! Domain (`model`, `cron`, `run`, `service`) and stores (`repository` traits, `sql`) are
//! separate. It must not depend on datasets, ODF, HTTP serving frameworks or cloud SDKs: the
//! control plane wires it to them.

pub mod cron;
pub mod duration;
pub mod error;
pub mod executor;
pub mod manifest;
pub mod model;
pub mod repository;
pub mod run;
pub mod service;
pub mod sql;

pub use error::{FieldError, FlowError, FlowResult};
pub use model::{FlowConfig, FlowKey, FlowType};
pub use repository::{FlowRepository, RunFilter, TaskRepository};
pub use run::{Cause, FlowBinding, FlowRun, RunOutcome, RunStatus, WaitReason};
pub use service::{FlowService, Target, TaskDoorbell};
pub use sql::SqlFlowStore;
