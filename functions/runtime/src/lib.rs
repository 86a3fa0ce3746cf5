//! weir-function-runtime: what every Weir function shares.
//!
//! A function is an axum `Router` built once per cold start from a typed config. This crate runs
//! that router as an AWS Lambda (when `AWS_LAMBDA_RUNTIME_API` is set), as a plain HTTP server
//! for Knative (`PORT`, graceful shutdown on SIGTERM, `/healthz`, `/readyz`, `/metrics`), or hands
//! it to `weir up` to mount in-process. It also defines the error shape every function answers with.
//!
//! It must not depend on dataset storage or any particular function: functions depend on it.

pub mod access;
pub mod config;
pub mod error;
pub mod metrics;
pub mod server;

pub use access::{AccessDecision, AccessPolicy, Caller, CommitNotifier, DatasetAction, OpenAccess};
pub use config::{ConfigError, load_config};
pub use error::{ApiError, ErrorKind};
pub use server::{run_function, serve_http};
