//! The ODF metadata model: events, blocks and everything they contain.

pub mod data;
pub mod engine;
pub mod events;
mod serde_util;
pub mod source;
pub mod sql_steps;

pub use data::*;
pub use events::*;
pub use source::*;
pub use sql_steps::{SqlStep, SqlStepsError};
