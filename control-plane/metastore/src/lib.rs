//! weir-metastore: the control plane's metadata store. Accounts and access tokens, the dataset
//! registry with visibility and roles, an index of every metadata block, lineage, statistics,
//! the transactional outbox and leader leases; what search sees of datasets' documentation,
//! and the search expressions (`search`) compiled to parameterized SQL.
//!
//! The index mirrors dataset storage, which stays the source of truth: everything here except
//! accounts, tokens and roles can be rebuilt from storage (`weir reindex`).
//!
//! Domain records and repository traits are separate from the sqlx implementation
//! (`SqlMetastore`, PostgreSQL or SQLite). Must not depend on dataset storage, ODF or HTTP.

pub mod error;
pub mod governance;
pub mod model;
pub mod repository;
pub mod search;
pub mod sql;

pub use error::{MetastoreError, MetastoreResult};
pub use model::*;
pub use repository::*;
pub use sql::{Backend, SqlMetastore};
