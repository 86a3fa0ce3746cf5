//! Datasets as SQL tables: `"account/name"` (or `"name"` in the default account), resolved lazily
//! when a query names them, at their head or at a pinned block.
//!
//! Table sources (schema + data files) are cached by dataset and block hash: a block never
//! changes, so the cache never goes stale; only the head lookup is repeated per query. The
//! dataset is part of the key because an entry is made only once the block was found in that
//! dataset's chain: a block hash alone says nothing about which dataset may be read through it. Data files are
//! content-addressed and immutable too, so their listings, Parquet footers and statistics are
//! cached across queries (`file_caches`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use datafusion::catalog::{SchemaProvider, TableProvider};
use datafusion::error::DataFusionError;
use datafusion::execution::cache::cache_manager::{CacheManager, CacheManagerConfig};
use weir_dataset::DatasetStore;
use weir_dataset::table::{TableSource, scan_table_from_source};
use weir_odf::{AccountName, DatasetAlias, DatasetId, DatasetName, Multihash};

use weir_function_runtime::{AccessDecision, AccessPolicy, Caller, DatasetAction, OpenAccess};

use crate::error::QueryError;

/// Most table sources kept; each holds a schema and a list of files.
const MAX_CACHED_SOURCES: usize = 4096;

/// A dataset a query read, with the block it read at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsedDataset {
    pub alias: DatasetAlias,
    pub id: DatasetId,
    pub block_hash: Option<Multihash>,
}

pub struct QueryCatalog {
    pub store: DatasetStore,
    pub default_account: AccountName,
    /// Who may read what; `OpenAccess` when the function runs without a control plane.
    pub access: Arc<dyn AccessPolicy>,
    sources: Mutex<HashMap<(DatasetId, Multihash), Arc<TableSource>>>,
    /// DataFusion's file caches, shared by every query's runtime.
    pub file_caches: Arc<CacheManager>,
}

impl QueryCatalog {
    pub fn new(store: DatasetStore, default_account: AccountName) -> Self {
        Self {
            store,
            default_account,
            access: Arc::new(OpenAccess),
            sources: Mutex::new(HashMap::new()),
            file_caches: CacheManager::try_new(&CacheManagerConfig::default())
                .expect("default cache config is valid"),
        }
    }

    /// The cache config of a query's runtime: the shared caches.
    pub fn file_cache_config(&self) -> CacheManagerConfig {
        CacheManagerConfig::default()
            .with_file_statistics_cache(self.file_caches.get_file_statistic_cache())
            .with_list_files_cache(self.file_caches.get_list_files_cache())
            .with_file_metadata_cache(Some(self.file_caches.get_file_metadata_cache()))
    }

    /// Parses a table name into an alias; bare names belong to the default account.
    pub fn alias_of(&self, table_name: &str) -> Result<DatasetAlias, QueryError> {
        let alias: DatasetAlias = table_name
            .parse()
            .map_err(|_| QueryError::DatasetNotFound(table_name.to_string()))?;
        Ok(match alias.account_name {
            Some(_) => alias,
            None => DatasetAlias::new(Some(self.default_account.clone()), alias.dataset_name),
        })
    }

    pub async fn resolve(&self, alias: &DatasetAlias) -> Result<DatasetId, QueryError> {
        let account = alias
            .account_name
            .clone()
            .unwrap_or_else(|| self.default_account.clone());
        let name: &DatasetName = &alias.dataset_name;
        self.store
            .resolve_alias(&account, name)
            .await
            .map_err(|error| QueryError::Internal(error.to_string()))?
            .ok_or_else(|| QueryError::DatasetNotFound(alias.to_string()))
    }

    /// Every dataset `caller` may read, as table names (`account/name`), sorted: what the SQL
    /// catalog views (`information_schema`, `SHOW TABLES`) list.
    pub async fn readable_tables(&self, caller: &Caller) -> Result<Vec<String>, QueryError> {
        let aliases = self
            .store
            .list_aliases()
            .await
            .map_err(|error| QueryError::Internal(error.to_string()))?;
        let mut names = Vec::new();
        for (alias, id) in aliases {
            match self.check_read(caller, &alias, &id).await {
                Ok(()) => names.push(alias.to_string()),
                Err(QueryError::DatasetNotFound(_)) => {}
                Err(error) => return Err(error),
            }
        }
        Ok(names)
    }

    /// Fails with `DatasetNotFound` unless `caller` may read `id` (no existence leak).
    pub async fn check_read(
        &self,
        caller: &Caller,
        alias: &DatasetAlias,
        id: &DatasetId,
    ) -> Result<(), QueryError> {
        let decision = self
            .access
            .decide(caller, &id.to_did_string(), DatasetAction::Read)
            .await
            .map_err(QueryError::Access)?;
        match decision {
            AccessDecision::Allowed => Ok(()),
            _ => Err(QueryError::DatasetNotFound(alias.to_string())),
        }
    }

    /// Schema and files of `id` at `block` (or its head), from the cache when possible.
    pub async fn source(
        &self,
        alias: &DatasetAlias,
        id: &DatasetId,
        block: Option<&Multihash>,
    ) -> Result<Arc<TableSource>, QueryError> {
        let dataset = self.store.dataset(id);
        let internal = |error: String| QueryError::Internal(error);
        let block = match block {
            Some(block) => *block,
            None => match dataset.head().await.map_err(|e| internal(e.to_string()))? {
                Some(head) => head.hash,
                None => return Err(QueryError::DatasetNotFound(alias.to_string())),
            },
        };
        let key = (*id, block);
        if let Some(source) = self.sources.lock().expect("cache lock").get(&key) {
            return Ok(source.clone());
        }
        let blocks = match dataset.blocks_from(&block).await {
            Ok(blocks) => blocks,
            Err(weir_dataset::StorageError::NotFound { .. }) => {
                return Err(QueryError::BlockNotFound {
                    alias: alias.to_string(),
                    block: block.to_string(),
                });
            }
            Err(error) => return Err(internal(error.to_string())),
        };
        // A pinned block must belong to this dataset's chain (it ends in this dataset's seed).
        let seed_matches = blocks.last().is_some_and(|(_, seed)| {
            matches!(&seed.event, weir_odf::MetadataEvent::Seed(s) if s.dataset_id == *id)
        });
        if !seed_matches {
            return Err(QueryError::BlockNotFound {
                alias: alias.to_string(),
                block: block.to_string(),
            });
        }
        let source = match TableSource::from_blocks(&blocks) {
            Ok(source) => Arc::new(source),
            Err(weir_dataset::table::TableError::NoSchema) => {
                return Err(QueryError::InvalidRequest(format!(
                    "dataset `{alias}` has no data schema yet"
                )));
            }
            Err(error) => return Err(internal(error.to_string())),
        };
        let mut sources = self.sources.lock().expect("cache lock");
        if sources.len() >= MAX_CACHED_SOURCES {
            // Old heads are rarely read again; any entry may go.
            if let Some(evicted) = sources.keys().next().copied() {
                sources.remove(&evicted);
            }
        }
        sources.insert(key, source.clone());
        Ok(source)
    }
}

/// The schema provider of one query: resolves table names and records what was read.
pub struct DatasetSchemaProvider {
    catalog: Arc<QueryCatalog>,
    /// Blocks the request pins datasets to, by lowercase alias.
    pins: HashMap<String, Multihash>,
    used: Mutex<Vec<UsedDataset>>,
    known_names: Vec<String>,
    caller: Caller,
}

impl DatasetSchemaProvider {
    pub fn new(
        catalog: Arc<QueryCatalog>,
        pins: HashMap<String, Multihash>,
        known_names: Vec<String>,
        caller: Caller,
    ) -> Self {
        Self {
            catalog,
            pins,
            used: Mutex::new(Vec::new()),
            known_names,
            caller,
        }
    }

    pub fn used(&self) -> Vec<UsedDataset> {
        let mut used = self.used.lock().expect("used lock").clone();
        used.sort_by_key(|u| u.alias.to_string().to_ascii_lowercase());
        used.dedup_by(|a, b| a.id == b.id && a.block_hash == b.block_hash);
        used
    }

    async fn resolve_table(&self, name: &str) -> Result<Arc<dyn TableProvider>, QueryError> {
        let mut alias = self.catalog.alias_of(name)?;
        // Bare names are the caller's own datasets when the caller has an account.
        if let Some(account) = &self.caller.account_name
            && !name.contains('/')
            && let Ok(account) = account.parse::<AccountName>()
        {
            alias = DatasetAlias::new(Some(account), alias.dataset_name);
        }
        let id = self.catalog.resolve(&alias).await?;
        self.catalog.check_read(&self.caller, &alias, &id).await?;
        let pin = self
            .pins
            .get(&alias.to_string().to_ascii_lowercase())
            .copied();
        let source = self.catalog.source(&alias, &id, pin.as_ref()).await?;
        self.used.lock().expect("used lock").push(UsedDataset {
            alias: alias.clone(),
            id,
            block_hash: source.block_hash,
        });
        let dataset = self.catalog.store.dataset(&id);
        scan_table_from_source(&self.catalog.store, &dataset, &source)
            .map_err(|error| QueryError::Internal(error.to_string()))
    }
}

impl std::fmt::Debug for DatasetSchemaProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatasetSchemaProvider")
            .field("pins", &self.pins)
            .finish()
    }
}

#[async_trait]
impl SchemaProvider for DatasetSchemaProvider {
    fn table_names(&self) -> Vec<String> {
        self.known_names.clone()
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>, DataFusionError> {
        match self.resolve_table(name).await {
            Ok(table) => Ok(Some(table)),
            // Unknown names fall through so DataFusion reports "table not found" with the name.
            Err(QueryError::DatasetNotFound(_)) => Ok(None),
            Err(error) => Err(DataFusionError::External(Box::new(error))),
        }
    }

    fn table_exist(&self, name: &str) -> bool {
        self.known_names
            .iter()
            .any(|known| known.eq_ignore_ascii_case(name))
    }
}
