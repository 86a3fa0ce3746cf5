//! weir-transform: the transform function, which computes derivative datasets.
//!
//! The coordinator (`coordinator`) reads the chains, decides what input records are new, runs
//! an engine (`engine`: ours is DataFusion in-process) and commits `ExecuteTransform` through
//! the commit pipeline of weir-dataset; `trigger` runs steps when inputs change. It must not
//! depend on the control plane, its database or its event bus (those reach it through traits).

pub mod coordinator;
pub mod engine;
pub mod error;
pub mod reset;
pub mod routes;
pub mod trigger;
pub mod verify;

pub use coordinator::{StepOutcome, Transformer};
pub use engine::datafusion::DataFusionEngine;
pub use error::TransformError;
pub use routes::{TransformContext, router};
pub use trigger::{Lineage, LocalTrigger, TransformTrigger};

pub const FUNCTION_NAME: &str = "transform";
