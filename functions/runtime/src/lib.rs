//! weir-function-runtime: what every Weir function shares.
//!
//! A function is an axum `Router` built once per cold start from a typed config, and optionally a
//! handler of queue messages (`messages`: SQS events in Lambda, with partial batch failures). This
//! crate runs it as an AWS Lambda (when `AWS_LAMBDA_RUNTIME_API` is set), as a plain HTTP server
//! for Knative (`PORT`, graceful shutdown on SIGTERM, `/healthz`, `/readyz`, `/metrics`), or hands
//! it to `weir up` to mount in-process. It also defines the error shape every function answers with,
//! and how a function learns who calls it and what they may do: in `weir up` the control plane
//! answers in-process; deployed alone, `ControlPlaneLink` verifies tokens offline and asks the
//! control plane over HTTP, caching its answers.
//!
//! Queue transports that feed a message handler live here too: `jetstream` (a durable pull
//! consumer), `sqs` (long polling, behind the `sqs` feature so that only the functions that
//! consume SQS compile the AWS SDK) and `cloudevents` (HTTP).
//!
//! It must not depend on dataset storage or any particular function: functions depend on it.

pub mod access;
pub mod announcements;
pub mod cloudevents;
pub mod config;
pub mod error;
pub mod jetstream;
pub mod json_errors;
pub mod lambda_emulator;
pub mod messages;
pub mod metrics;
pub mod remote;
pub mod server;
#[cfg(feature = "sqs")]
pub mod sqs;
pub mod task;
pub mod token;

pub use access::{
    AccessDecision, AccessPolicy, BearerToken, Caller, CommitNotifier, DatasetAction, OpenAccess,
    authorization_header,
};
pub use config::{ConfigError, load_config};
pub use error::{ApiError, ErrorKind};
pub use json_errors::with_json_errors;
pub use remote::{ControlPlaneLink, ControlPlaneLinkConfig, Platform};
pub use server::{Function, run_function, serve_http};
