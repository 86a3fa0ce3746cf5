//! A dataset as a DataFusion table, at its head or as of any block of its chain.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::TableProvider;
use datafusion::datasource::empty::EmptyTable;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::error::DataFusionError;
use datafusion::prelude::SessionContext;
use weir_odf::{MetadataBlock, MetadataEvent, Multihash};

use crate::dataset::Dataset;
use crate::error::CommitError;
use crate::schema::{SchemaConversionError, schema_to_arrow};
use crate::store::DatasetStore;

#[derive(Debug, thiserror::Error)]
pub enum TableError {
    #[error("dataset has no schema yet")]
    NoSchema,
    #[error(transparent)]
    Schema(#[from] SchemaConversionError),
    #[error(transparent)]
    Chain(#[from] CommitError),
    #[error("internal query engine error: {0}")]
    DataFusion(#[from] DataFusionError),
}

/// What a table over a chain prefix needs: the schema and the data files, oldest first.
/// Immutable for a given block hash, so it can be cached by it.
#[derive(Debug, Clone)]
pub struct TableSource {
    pub block_hash: Option<Multihash>,
    pub schema: SchemaRef,
    pub files: Vec<Multihash>,
    pub num_records: u64,
}

impl TableSource {
    /// Builds the source from blocks given newest first (as `Dataset::blocks_from` returns).
    pub fn from_blocks(blocks: &[(Multihash, MetadataBlock)]) -> Result<Self, TableError> {
        let mut schema = None;
        let mut files = Vec::new();
        let mut num_records = 0;
        for (_, block) in blocks.iter().rev() {
            let slice = match &block.event {
                MetadataEvent::SetDataSchema(event) => {
                    schema = event.schema.clone();
                    None
                }
                MetadataEvent::AddData(event) => event.new_data.as_ref(),
                MetadataEvent::ExecuteTransform(event) => event.new_data.as_ref(),
                _ => None,
            };
            if let Some(slice) = slice {
                files.push(slice.physical_hash);
                num_records += slice.offset_interval.len();
            }
        }
        let schema = Arc::new(schema_to_arrow(&schema.ok_or(TableError::NoSchema)?)?);
        Ok(Self {
            block_hash: blocks.first().map(|(hash, _)| *hash),
            schema,
            files,
            num_records,
        })
    }
}

/// Makes `store` readable by `session` (idempotent).
pub fn register_store(session: &SessionContext, store: &DatasetStore) {
    if let Some(object_store) = store.datafusion_object_store() {
        session
            .runtime_env()
            .register_object_store(store.url(), object_store);
    }
}

/// Table over the files of `source` in `dataset`, typed exactly as the dataset's schema. The
/// store must be registered with the session that runs queries over it (`register_store`).
pub fn table_from_source(
    store: &DatasetStore,
    dataset: &Dataset,
    source: &TableSource,
) -> Result<Arc<dyn TableProvider>, TableError> {
    listing_table(store, dataset, source, source.schema.clone(), false)
}

/// Like `table_from_source`, declaring that the files hold records in `offset` order: a session
/// with `datafusion.execution.split_file_groups_by_statistics` and one target partition then
/// reads them in offset order (by their statistics) rather than in the order of their paths,
/// which are hashes. For engines, whose output order must follow the input's.
pub fn offset_ordered_table_from_source(
    store: &DatasetStore,
    dataset: &Dataset,
    source: &TableSource,
) -> Result<Arc<dyn TableProvider>, TableError> {
    listing_table(store, dataset, source, source.schema.clone(), true)
}

/// Like `table_from_source`, but strings and binaries are read as Arrow view types
/// (`Utf8View`, `BinaryView`), as DataFusion reads Parquet by default: grouping, sorting and
/// comparing strings is markedly faster on them. For queries; callers that need the dataset's
/// exact types back cast the results (`without_view_types`).
pub fn scan_table_from_source(
    store: &DatasetStore,
    dataset: &Dataset,
    source: &TableSource,
) -> Result<Arc<dyn TableProvider>, TableError> {
    listing_table(
        store,
        dataset,
        source,
        Arc::new(with_view_types(&source.schema)),
        false,
    )
}

fn listing_table(
    store: &DatasetStore,
    dataset: &Dataset,
    source: &TableSource,
    schema: SchemaRef,
    offset_ordered: bool,
) -> Result<Arc<dyn TableProvider>, TableError> {
    if source.files.is_empty() {
        return Ok(Arc::new(EmptyTable::new(schema)));
    }
    let urls = source
        .files
        .iter()
        .map(|hash| {
            let key = dataset.layout().data(hash);
            let url = store
                .object_url(&key)
                .map_err(|error| DataFusionError::External(Box::new(error)))?;
            ListingTableUrl::parse(url.as_str())
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut options =
        ListingOptions::new(Arc::new(ParquetFormat::default())).with_file_extension("");
    if offset_ordered {
        options = options.with_file_sort_order(vec![vec![
            datafusion::prelude::col(crate::slices::OFFSET_COLUMN).sort(true, false),
        ]]);
    }
    let config = ListingTableConfig::new_with_multi_paths(urls)
        .with_listing_options(options)
        .with_schema(schema);
    Ok(Arc::new(ListingTable::try_new(config)?))
}

/// `schema` with top-level strings and binaries as view types.
pub fn with_view_types(schema: &Schema) -> Schema {
    map_field_types(schema, |data_type| match data_type {
        DataType::Utf8 | DataType::LargeUtf8 => Some(DataType::Utf8View),
        DataType::Binary | DataType::LargeBinary => Some(DataType::BinaryView),
        _ => None,
    })
}

/// `schema` with top-level view types as plain strings and binaries; `None` if it has none.
pub fn without_view_types(schema: &Schema) -> Option<Schema> {
    let has_views = schema
        .fields()
        .iter()
        .any(|field| matches!(field.data_type(), DataType::Utf8View | DataType::BinaryView));
    has_views.then(|| {
        map_field_types(schema, |data_type| match data_type {
            DataType::Utf8View => Some(DataType::Utf8),
            DataType::BinaryView => Some(DataType::Binary),
            _ => None,
        })
    })
}

fn map_field_types(schema: &Schema, map: impl Fn(&DataType) -> Option<DataType>) -> Schema {
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|field| match map(field.data_type()) {
            Some(data_type) => field.as_ref().clone().with_data_type(data_type),
            None => field.as_ref().clone(),
        })
        .collect();
    Schema::new_with_metadata(fields, schema.metadata().clone())
}

/// Table over the data slices of `dataset` up to `as_of` (or its current head), oldest first.
/// Its schema is the last `SetDataSchema` of that chain prefix.
pub async fn dataset_table(
    session: &SessionContext,
    store: &DatasetStore,
    dataset: &Dataset,
    as_of: Option<&Multihash>,
) -> Result<Arc<dyn TableProvider>, TableError> {
    register_store(session, store);
    let chain = dataset.load_chain(as_of).await?;
    let source = TableSource::from_blocks(&chain.blocks)?;
    table_from_source(store, dataset, &source)
}
