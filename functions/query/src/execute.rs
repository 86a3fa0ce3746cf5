//! Running one SQL query under the function's limits.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::prelude::{SQLOptions, SessionConfig, SessionContext};
use futures::StreamExt;
use weir_odf::Multihash;

use crate::catalog::{DatasetSchemaProvider, QueryCatalog, UsedDataset};
use crate::config::QueryConfig;
use crate::error::QueryError;

pub struct QueryOutput {
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
    pub datasets: Vec<UsedDataset>,
}

/// One query's instructions beyond its SQL.
#[derive(Debug, Clone, Default)]
pub struct QueryOptions {
    /// Who asks: only datasets they may read resolve.
    pub caller: weir_function_runtime::Caller,
    pub skip: Option<u64>,
    pub limit: Option<u64>,
    /// Datasets pinned to blocks, by lowercase alias (`account/name`).
    pub pins: HashMap<String, Multihash>,
    /// Single partition so that unordered results come out the same every time (proofs).
    pub deterministic: bool,
}

pub struct QueryEngine {
    pub catalog: Arc<QueryCatalog>,
    pub config: QueryConfig,
}

impl QueryEngine {
    pub fn new(catalog: Arc<QueryCatalog>, config: QueryConfig) -> Self {
        Self { catalog, config }
    }

    /// A session whose default schema resolves dataset names, with the memory limit applied.
    /// `catalog`: the table names the SQL catalog views list (the caller's readable datasets),
    /// or `None` to leave them off.
    pub fn session(
        &self,
        options: &QueryOptions,
        catalog: Option<Vec<String>>,
    ) -> Result<(SessionContext, Arc<DatasetSchemaProvider>), QueryError> {
        let runtime = RuntimeEnvBuilder::new()
            .with_memory_limit(self.config.memory_limit_bytes as usize, 1.0)
            .with_cache_manager(self.catalog.file_cache_config())
            .build_arc()
            .map_err(|error| QueryError::Internal(error.to_string()))?;
        let mut session_config = SessionConfig::new().with_information_schema(catalog.is_some());
        // Each bracket level costs the parser about two levels of recursion: leave room so
        // that `max_query_nesting`, checked first with a clear message, is the bound users meet.
        let parser_recursion = self.config.max_query_nesting.saturating_mul(2) + 16;
        session_config.options_mut().sql_parser.recursion_limit =
            datafusion::config::ConfigNonZeroUsize::try_new(parser_recursion)
                .map_err(|error| QueryError::Internal(error.to_string()))?;
        if options.deterministic {
            session_config = session_config.with_target_partitions(1);
        } else if let Some(partitions) = self.config.target_partitions {
            session_config = session_config.with_target_partitions(partitions);
        }
        let session = SessionContext::new_with_config_rt(session_config, runtime);
        weir_dataset::table::register_store(&session, &self.catalog.store);
        let provider = Arc::new(DatasetSchemaProvider::new(
            self.catalog.clone(),
            options.pins.clone(),
            catalog.unwrap_or_default(),
            options.caller.clone(),
        ));
        let catalog = session
            .catalog("datafusion")
            .ok_or_else(|| QueryError::Internal("default catalog missing".to_string()))?;
        catalog
            .register_schema("public", provider.clone())
            .map_err(|error| QueryError::Internal(error.to_string()))?;
        Ok((session, provider))
    }

    fn engine_error(&self, error: datafusion::error::DataFusionError) -> QueryError {
        QueryError::from_datafusion(error, self.config.memory_limit_bytes)
    }

    /// Plans `sql` (read-only) and returns a stream of its results. Parsing, the limits on
    /// the syntax tree, planning and optimizing run on a planner thread (`planner`).
    pub async fn stream(
        &self,
        sql: &str,
        options: &QueryOptions,
    ) -> Result<(SendableRecordBatchStream, Arc<DatasetSchemaProvider>), QueryError> {
        let limits = self.config.sql_limits();
        crate::sql_guard::check_length(sql, limits)?;
        crate::sql_guard::check_nesting(sql, limits)?;
        // Catalog views list what the caller may read; only listed when the query asks.
        let catalog = if crate::sql_guard::mentions_catalog(sql) {
            Some(self.catalog.readable_tables(&options.caller).await?)
        } else {
            None
        };
        let (session, provider) = self.session(options, catalog)?;
        let memory_limit = self.config.memory_limit_bytes;
        let engine_error = move |error| QueryError::from_datafusion(error, memory_limit);
        let sql = sql.to_string();
        let (skip, limit) = (options.skip, options.limit);
        let task_context = session.task_ctx();
        let plan = crate::planner::plan(async move {
            let statement = parse_query_statement(&session, &sql, limits)
                .map_err(|error| with_position(error, &sql))?;
            let read_only = SQLOptions::new()
                .with_allow_ddl(false)
                .with_allow_dml(false)
                .with_allow_statements(false);
            let state = session.state();
            let plan = state
                .statement_to_plan(statement)
                .await
                .map_err(|error| with_position(engine_error(error), &sql))?;
            read_only.verify_plan(&plan).map_err(engine_error)?;
            let mut frame = session
                .execute_logical_plan(plan)
                .await
                .map_err(engine_error)?;
            if skip.is_some() || limit.is_some() {
                // DataFusion carries limits as i64: anything larger means "all".
                let clamp = |value: u64| value.min(i64::MAX as u64) as usize;
                let skip = clamp(skip.unwrap_or(0));
                let fetch = limit.map(clamp);
                frame = frame.limit(skip, fetch).map_err(engine_error)?;
            }
            frame.create_physical_plan().await.map_err(engine_error)
        })
        .await?;
        let stream = datafusion::physical_plan::execute_stream(plan, task_context)
            .map_err(|error| self.engine_error(error))?;
        Ok((with_dataset_types(stream), provider))
    }

    /// Runs `sql` to completion under the timeout and row limit.
    pub async fn execute(
        &self,
        sql: &str,
        options: &QueryOptions,
    ) -> Result<QueryOutput, QueryError> {
        let timeout = Duration::from_secs(self.config.timeout_seconds);
        let max_rows = self.config.max_result_rows;
        let run = async {
            let (mut stream, provider) = self.stream(sql, options).await?;
            let schema = stream.schema();
            let mut batches = Vec::new();
            let mut rows = 0u64;
            while let Some(batch) = stream.next().await {
                let batch = batch.map_err(|error| self.engine_error(error))?;
                rows += batch.num_rows() as u64;
                if rows > max_rows {
                    return Err(QueryError::TooManyRows { limit: max_rows });
                }
                batches.push(batch);
            }
            Ok(QueryOutput {
                schema,
                batches,
                datasets: provider.used(),
            })
        };
        match tokio::time::timeout(timeout, run).await {
            Ok(result) => result,
            Err(_) => Err(QueryError::Timeout {
                seconds: self.config.timeout_seconds,
            }),
        }
    }
}

/// Parser errors at the end of input carry no position; point at the end of the query.
fn with_position(error: QueryError, sql: &str) -> QueryError {
    let QueryError::InvalidSql(message) = error else {
        return error;
    };
    if message.contains("Line:") || !message.contains("EOF") {
        return QueryError::InvalidSql(message);
    }
    let line = sql.lines().count().max(1);
    let column = sql.lines().last().map_or(0, |last| last.chars().count()) + 1;
    QueryError::InvalidSql(format!(
        "{message} at end of query (Line: {line}, Column: {column})"
    ))
}

/// Tables are scanned with view-typed strings (faster); results go out with the plain string
/// and binary types the datasets declare, so clients and proofs see the dataset's types.
fn with_dataset_types(stream: SendableRecordBatchStream) -> SendableRecordBatchStream {
    let Some(schema) = weir_dataset::table::without_view_types(&stream.schema()) else {
        return stream;
    };
    let schema: SchemaRef = Arc::new(schema);
    let output_schema = schema.clone();
    let batches = stream.map(move |batch| {
        let batch = batch?;
        let columns = batch
            .columns()
            .iter()
            .zip(schema.fields())
            .map(|(column, field)| arrow::compute::cast(column, field.data_type()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(RecordBatch::try_new(schema.clone(), columns)?)
    });
    Box::pin(RecordBatchStreamAdapter::new(output_schema, batches))
}

/// Parses `sql` into one statement, within the length and depth limits, and accepts only
/// `SELECT`-like statements (and `EXPLAIN` of them), so a DDL/DML statement never reaches the
/// planner.
fn parse_query_statement(
    session: &SessionContext,
    sql: &str,
    limits: crate::sql_guard::SqlLimits,
) -> Result<datafusion::sql::parser::Statement, QueryError> {
    use datafusion::sql::parser::Statement;
    use datafusion::sql::sqlparser::ast::Statement as SqlStatement;
    let state = session.state();
    let dialect = state.config().options().sql_parser.dialect;
    let statement = state
        .sql_to_statement(sql, &dialect)
        .map_err(|error| QueryError::from_datafusion(error, 0))?;
    let not_read_only =
        || QueryError::NotReadOnly("only SELECT queries (and EXPLAIN of them) are allowed".into());
    let mut statement = statement;
    let inner = match &mut statement {
        Statement::Statement(inner) => inner.as_mut(),
        Statement::Explain(explain) => match explain.statement.as_mut() {
            Statement::Statement(inner) => inner.as_mut(),
            _ => return Err(not_read_only()),
        },
        _ => return Err(not_read_only()),
    };
    match &*inner {
        SqlStatement::Query(_)
        | SqlStatement::ShowTables { .. }
        | SqlStatement::ShowColumns { .. } => {}
        SqlStatement::Explain { statement, .. }
            if matches!(statement.as_ref(), SqlStatement::Query(_)) => {}
        other => {
            let kind = other
                .to_string()
                .split_whitespace()
                .next()
                .unwrap_or("statement")
                .to_ascii_uppercase();
            return Err(QueryError::NotReadOnly(format!(
                "{kind} statements are not allowed"
            )));
        }
    }
    crate::sql_guard::check_depth(inner, limits)?;
    crate::sql_guard::clamp_limits(inner);
    Ok(statement)
}
