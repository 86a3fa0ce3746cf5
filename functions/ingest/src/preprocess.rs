//! The optional preprocess step of a push source: SQL over the read records as table `input`,
//! run in-process with DataFusion.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;
use weir_odf::Transform;

use crate::error::IngestError;

pub async fn preprocess(
    transform: &Transform,
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
) -> Result<(SchemaRef, Vec<RecordBatch>), IngestError> {
    let Transform::Sql(sql) = transform;
    if !sql.engine.eq_ignore_ascii_case("datafusion") {
        return Err(IngestError::Unsupported(format!(
            "preprocess engine `{}` (only datafusion runs in the ingest function)",
            sql.engine
        )));
    }
    let failed =
        |error: datafusion::error::DataFusionError| IngestError::Preprocess(error.to_string());
    let session = SessionContext::new();
    let input = MemTable::try_new(schema, vec![batches]).map_err(failed)?;
    session
        .register_table("input", Arc::new(input))
        .map_err(failed)?;

    let steps = sql
        .steps()
        .map_err(|error| IngestError::Unsupported(error.to_string()))?;
    let last = steps.len() - 1;
    for (index, step) in steps.into_iter().enumerate() {
        let frame = session.sql(step.query).await.map_err(failed)?;
        let Some(alias) = step.alias.filter(|_| index < last) else {
            let schema: SchemaRef = Arc::new(frame.schema().as_arrow().clone());
            let batches = frame.collect().await.map_err(failed)?;
            return Ok((schema, batches));
        };
        session
            .register_table(alias, frame.into_view())
            .map_err(failed)?;
    }
    unreachable!("the loop returns at the last step")
}
