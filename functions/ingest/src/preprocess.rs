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

    let steps: Vec<(Option<String>, String)> = match (&sql.query, &sql.queries) {
        (Some(query), None) => vec![(None, query.clone())],
        (None, Some(queries)) if !queries.is_empty() => queries
            .iter()
            .map(|step| (step.alias.clone(), step.query.clone()))
            .collect(),
        _ => {
            return Err(IngestError::Unsupported(
                "preprocess needs exactly one of `query` or `queries`".to_string(),
            ));
        }
    };
    let last = steps.len() - 1;
    for (index, (alias, query)) in steps.into_iter().enumerate() {
        let frame = session.sql(&query).await.map_err(failed)?;
        if index == last {
            let schema: SchemaRef = Arc::new(frame.schema().as_arrow().clone());
            let batches = frame.collect().await.map_err(failed)?;
            return Ok((schema, batches));
        }
        let alias = alias.ok_or_else(|| {
            IngestError::Unsupported("every query but the last needs an alias".to_string())
        })?;
        session
            .register_table(alias.as_str(), frame.into_view())
            .map_err(failed)?;
    }
    unreachable!("the loop returns at the last step")
}
