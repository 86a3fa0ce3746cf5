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

/// A typed id: a prefix (`thr_`, `whk_`, …) and letters and digits, serialized as its text.
/// Callers' ids parse only in that shape, so they never reach SQL or paths as anything else.
#[macro_export]
macro_rules! typed_id {
    ($(#[$meta:meta])* $name:ident, $prefix:literal) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, ::serde::Serialize, ::serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub const PREFIX: &'static str = $prefix;

            /// A new random id.
            pub fn generate(random: &str) -> Self {
                Self(format!("{}{random}", $prefix))
            }

            /// An id a caller gave: refused unless it has our prefix and safe characters.
            pub fn parse(text: &str) -> Option<Self> {
                let rest = text.strip_prefix($prefix)?;
                (!rest.is_empty()
                    && rest.len() <= 64
                    && rest.chars().all(|c| c.is_ascii_alphanumeric()))
                .then(|| Self(text.to_string()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

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
