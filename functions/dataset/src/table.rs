//! A dataset as a DataFusion table, at its head or as of any block of its chain.

use std::sync::Arc;

use datafusion::catalog::TableProvider;
use datafusion::datasource::empty::EmptyTable;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::error::DataFusionError;
use datafusion::prelude::SessionContext;
use weir_odf::{MetadataEvent, Multihash};

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

/// Makes `store` readable by `session` (idempotent).
pub fn register_store(session: &SessionContext, store: &DatasetStore) {
    if let Some(object_store) = store.datafusion_object_store() {
        session
            .runtime_env()
            .register_object_store(store.url(), object_store);
    }
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
    let mut schema = None;
    let mut files = Vec::new();
    for (_, block) in chain.blocks.iter().rev() {
        match &block.event {
            MetadataEvent::SetDataSchema(event) => schema = event.schema.clone(),
            MetadataEvent::AddData(event) => {
                files.extend(event.new_data.as_ref().map(|s| s.physical_hash))
            }
            MetadataEvent::ExecuteTransform(event) => {
                files.extend(event.new_data.as_ref().map(|s| s.physical_hash))
            }
            _ => {}
        }
    }
    let schema = Arc::new(schema_to_arrow(&schema.ok_or(TableError::NoSchema)?)?);
    if files.is_empty() {
        return Ok(Arc::new(EmptyTable::new(schema)));
    }
    let urls = files
        .iter()
        .map(|hash| {
            let key = dataset.layout().data(hash);
            let url = store
                .url()
                .join(&format!("./{}", key.as_ref()))
                .map_err(|error| DataFusionError::External(Box::new(error)))?;
            ListingTableUrl::parse(url.as_str())
        })
        .collect::<Result<Vec<_>, _>>()?;
    let options = ListingOptions::new(Arc::new(ParquetFormat::default())).with_file_extension("");
    let config = ListingTableConfig::new_with_multi_paths(urls)
        .with_listing_options(options)
        .with_schema(schema);
    Ok(Arc::new(ListingTable::try_new(config)?))
}
