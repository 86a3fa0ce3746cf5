//! weir-dataset: dataset storage for Weir.
//!
//! Keeps datasets in the ODF layout over `object_store` (local FS, S3, in-memory): reading and
//! validating metadata chains, committing blocks with a compare-and-swap of `refs/head`, writing
//! and reading Parquet data slices with their logical and physical hashes, and exposing a dataset
//! to DataFusion as a table at its head or at any block.
//!
//! Functions and the control plane depend on it; it must not depend on HTTP frameworks, sqlx,
//! lambda runtimes or AWS SDKs (S3 access goes through `object_store`).

pub mod commit;
pub mod compaction;
pub mod config;
pub mod dataset;
pub mod ddl;
pub mod definition;
pub mod error;
pub mod lanes;
pub mod layout;
pub mod polling;
pub mod registry;
pub mod schema;
mod sha3_asm;
mod slice_output;
mod slice_writer;
pub mod slices;
pub mod store;
pub mod sweep;
pub mod table;
pub mod temporal;
pub mod transform_sql;

pub use commit::{CommitListener, CommitPipeline, CommitWriter, Prepared};
pub use config::StorageConfig;
pub use dataset::{ChainSnapshot, CommitResult, Dataset};
pub use error::{CommitError, SliceError, StorageError};
pub use registry::CreateDatasetError;
pub use sha3_asm::Sha3_256;
pub use store::{DatasetStore, HeadRef, S3Settings};
