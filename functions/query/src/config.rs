//! Config of the query function (`/srv/query/service-config.yml`, `WEIR__...` overrides).

use serde::Deserialize;
use weir_dataset::StorageConfig;
use weir_function_runtime::ControlPlaneLinkConfig;

use crate::sql_guard::SqlLimits;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QueryConfig {
    pub storage: StorageConfig,
    /// The control plane that authenticates callers and decides access (and, for ingest, is told
    /// about commits). Without one every caller may do everything: development only.
    pub control_plane: Option<ControlPlaneLinkConfig>,
    /// Without a control plane the function refuses to start unless this is set: then every
    /// caller may read every dataset (development only).
    pub open_access: bool,
    /// Account whose datasets bare table names (`"cities"`) refer to.
    pub default_account: String,
    /// Memory pool of one query; exceeding it fails the query with 400.
    pub memory_limit_bytes: u64,
    /// Wall-clock limit of one query; exceeding it answers 503.
    pub timeout_seconds: u64,
    /// Most rows one response may carry; more answers 400.
    pub max_result_rows: u64,
    /// Hex of the 32-byte Ed25519 seed signing query proofs. Generated at start when absent.
    pub node_private_key: Option<String>,
    /// Address of the FlightSQL endpoint; none when absent.
    pub flightsql_listen: Option<String>,
    /// DataFusion parallelism; defaults to the number of cores.
    pub target_partitions: Option<usize>,
    /// Longest query text accepted, in bytes; longer answers 400.
    pub max_query_length: usize,
    /// Deepest nesting of a query's syntax tree (expressions, sub-queries, set operations,
    /// joins); deeper answers 400.
    pub max_query_depth: usize,
    /// Deepest nesting of brackets and `CASE` expressions in a query's text; deeper answers 400.
    pub max_query_nesting: usize,
}

impl Default for QueryConfig {
    fn default() -> Self {
        Self {
            storage: StorageConfig::default(),
            control_plane: None,
            open_access: false,
            default_account: "admin".to_string(),
            memory_limit_bytes: 1 << 30,
            timeout_seconds: 30,
            max_result_rows: 1_000_000,
            node_private_key: None,
            flightsql_listen: None,
            target_partitions: None,
            max_query_length: 256 << 10,
            max_query_depth: 128,
            max_query_nesting: 32,
        }
    }
}

impl QueryConfig {
    pub fn sql_limits(&self) -> SqlLimits {
        SqlLimits {
            max_length: self.max_query_length,
            max_depth: self.max_query_depth,
            max_nesting: self.max_query_nesting,
        }
    }
}
