//! weir-control-plane: the long-running service of a Weir node.
//!
//! Accounts, tokens and dataset permissions; the dataset registry and the metadata index
//! (rebuildable from storage, which stays the source of truth); REST (`/openapi.json`) and
//! GraphQL (`/graphql`) over one service layer; the transactional outbox feeding the event bus;
//! leader-only background loops. `weir up` mounts its router next to the ingest and query
//! functions and hands them its access policy.
//!
//! Depends on the kernel crates (weir-odf, weir-dataset), weir-metastore, weir-events and
//! weir-function-runtime. Must not depend on any function crate: functions plug into it.

pub mod auth;
pub mod config;
pub mod error;
pub mod flows;
pub mod graphql;
pub mod graphql_devices;
pub mod graphql_flows;
pub mod graphql_governance;
pub mod graphql_limits;
pub mod graphql_webhooks;
pub mod indexer;
pub mod leader;
pub mod node;
pub mod outbox;
pub mod rest;
pub mod services;
pub mod webhooks;

pub use config::ControlPlaneConfig;
pub use error::{ServiceError, ServiceResult};
pub use node::ControlPlane;

pub const FUNCTION_NAME: &str = "control-plane";
