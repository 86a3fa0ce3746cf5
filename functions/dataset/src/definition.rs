//! Checks of a dataset definition before it is created: what would make every later push or
//! transform fail is refused at creation, naming the field (`metadata[1].read.schema...`).

use std::collections::HashSet;

use datafusion::sql::parser::DFParserBuilder;
use weir_odf::manifest::DatasetDefinition;
use weir_odf::{MergeStrategy, MetadataEvent, ReadStep, Transform};

use crate::slices::{EVENT_TIME_COLUMN, OFFSET_COLUMN, OPERATION_TYPE_COLUMN, SYSTEM_TIME_COLUMN};

/// A field of a definition that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("at `{path}`: {message}")]
pub struct DefinitionError {
    pub path: String,
    pub message: String,
}

fn error(path: String, message: impl Into<String>) -> DefinitionError {
    DefinitionError {
        path,
        message: message.into(),
    }
}

/// Refuses definitions whose read schemas, preprocess or transform SQL, merge keys or
/// vocabulary cannot work.
pub fn check_definition(definition: &DatasetDefinition) -> Result<(), DefinitionError> {
    for (index, event) in definition.metadata.iter().enumerate() {
        let at = format!("metadata[{index}]");
        match event {
            MetadataEvent::AddPushSource(source) => {
                let columns = check_read_step(&source.read, &format!("{at}.read"))?;
                if let Some(transform) = &source.preprocess {
                    check_transform(transform, &format!("{at}.preprocess"))?;
                }
                // Without a preprocess step the records keep the read step's columns.
                if source.preprocess.is_none() {
                    check_merge_keys(&source.merge, columns.as_deref(), &format!("{at}.merge"))?;
                }
            }
            MetadataEvent::SetPollingSource(source) => {
                check_read_step(&source.read, &format!("{at}.read"))?;
                if let Some(transform) = &source.preprocess {
                    check_transform(transform, &format!("{at}.preprocess"))?;
                }
            }
            MetadataEvent::SetTransform(set) => {
                check_transform(&set.transform, &format!("{at}.transform"))?;
                crate::transform_sql::check_derivative_sql(set, &format!("{at}.transform"))?;
            }
            MetadataEvent::SetDataSchema(set) => {
                if let Some(schema) = &set.schema {
                    let names: Vec<&str> = schema.fields.iter().map(|f| f.name.as_str()).collect();
                    check_unique(&names, &format!("{at}.schema.fields"))?;
                    crate::schema::schema_to_arrow(schema)
                        .map_err(|e| error(format!("{at}.schema"), e.to_string()))?;
                }
            }
            MetadataEvent::SetVocab(vocab) => {
                let renamed = [
                    ("offsetColumn", &vocab.offset_column, OFFSET_COLUMN),
                    (
                        "operationTypeColumn",
                        &vocab.operation_type_column,
                        OPERATION_TYPE_COLUMN,
                    ),
                    (
                        "systemTimeColumn",
                        &vocab.system_time_column,
                        SYSTEM_TIME_COLUMN,
                    ),
                    (
                        "eventTimeColumn",
                        &vocab.event_time_column,
                        EVENT_TIME_COLUMN,
                    ),
                ];
                for (field, column, default) in renamed {
                    if let Some(column) = column
                        && column != default
                    {
                        return Err(error(
                            format!("{at}.{field}"),
                            format!(
                                "renaming the system column `{default}` to `{column}` is not \
                                 supported by Weir; leave it as `{default}`"
                            ),
                        ));
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// The declared columns of a read step (none when inferred), checked for types and duplicates.
fn check_read_step(read: &ReadStep, at: &str) -> Result<Option<Vec<String>>, DefinitionError> {
    let (schema, ddl) = read.declared_schema();
    let names: Vec<String> = if let Some(schema) = schema {
        crate::schema::schema_to_arrow(schema)
            .map_err(|e| error(format!("{at}.schema"), e.to_string()))?;
        let names: Vec<String> = schema.fields.iter().map(|f| f.name.clone()).collect();
        check_unique(&names, &format!("{at}.schema.fields"))?;
        names
    } else if let Some(ddl) = ddl {
        let parsed = crate::ddl::parse_ddl_schema(ddl)
            .map_err(|e| error(format!("{at}.ddlSchema[{}]", e.entry), e.message))?;
        let names: Vec<String> = parsed.fields().iter().map(|f| f.name().clone()).collect();
        check_unique(&names, &format!("{at}.ddlSchema"))?;
        names
    } else {
        return Ok(None);
    };
    for (index, name) in names.iter().enumerate() {
        if [OFFSET_COLUMN, SYSTEM_TIME_COLUMN].contains(&name.as_str()) {
            return Err(error(
                format!("{at}.schema.fields[{index}]"),
                format!("`{name}` is a system column the node fills in; rename the input column"),
            ));
        }
    }
    Ok(Some(names))
}

fn check_unique<S: AsRef<str>>(names: &[S], at: &str) -> Result<(), DefinitionError> {
    let mut seen = HashSet::new();
    for (index, name) in names.iter().enumerate() {
        if !seen.insert(name.as_ref().to_ascii_lowercase()) {
            return Err(error(
                format!("{at}[{index}]"),
                format!("column `{}` appears twice", name.as_ref()),
            ));
        }
    }
    Ok(())
}

/// Every SQL step must at least parse.
fn check_transform(transform: &Transform, at: &str) -> Result<(), DefinitionError> {
    let Transform::Sql(sql) = transform;
    let mut steps: Vec<(String, &str)> = Vec::new();
    if let Some(query) = &sql.query {
        steps.push((format!("{at}.query"), query));
    }
    for (index, step) in sql.queries.iter().flatten().enumerate() {
        steps.push((format!("{at}.queries[{index}].query"), &step.query));
    }
    if steps.is_empty() {
        return Err(error(
            at.to_string(),
            "the SQL transform has no `query` or `queries`",
        ));
    }
    for (path, query) in steps {
        let parsed = DFParserBuilder::new(query)
            .build()
            .and_then(|mut parser| parser.parse_statements());
        match parsed {
            Ok(statements) if statements.len() == 1 => {}
            Ok(statements) => {
                return Err(error(
                    path,
                    format!("expected one SQL statement, found {}", statements.len()),
                ));
            }
            Err(e) => return Err(error(path, format!("invalid SQL: {e}"))),
        }
    }
    Ok(())
}

/// Merge keys must be columns the records have (when the read step declares them);
/// `event_time` is always there.
fn check_merge_keys(
    merge: &MergeStrategy,
    columns: Option<&[String]>,
    at: &str,
) -> Result<(), DefinitionError> {
    let Some(columns) = columns else {
        return Ok(());
    };
    let keys: &[String] = match merge {
        MergeStrategy::Ledger(m) => &m.primary_key,
        MergeStrategy::Snapshot(m) => &m.primary_key,
        MergeStrategy::ChangelogStream(m) => &m.primary_key,
        MergeStrategy::UpsertStream(m) => &m.primary_key,
        MergeStrategy::Append(_) => return Ok(()),
    };
    for (index, key) in keys.iter().enumerate() {
        if key != EVENT_TIME_COLUMN && !columns.iter().any(|column| column == key) {
            return Err(error(
                format!("{at}.primaryKey[{index}]"),
                format!("`{key}` is not a column of the read schema"),
            ));
        }
    }
    Ok(())
}
