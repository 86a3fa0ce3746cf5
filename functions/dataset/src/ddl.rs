//! The small SQL-like DDL of legacy `ddlSchema` read steps: `name TYPE` per entry, e.g.
//! `["id BIGINT", "name STRING", "price DECIMAL(10,2)", "ts TIMESTAMP"]`.

use arrow::datatypes::{DataType, Field, Schema, TimeUnit};

/// An entry of a `ddlSchema` that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct DdlError {
    /// Index of the entry in the list.
    pub entry: usize,
    pub message: String,
}

fn parse_type(column: &str, text: &str) -> Result<DataType, String> {
    let upper = text.trim().to_ascii_uppercase();
    let bad = || format!("ddlSchema column `{column}`: unsupported type `{text}`");
    if let Some(args) = upper
        .strip_prefix("DECIMAL(")
        .and_then(|rest| rest.strip_suffix(')'))
    {
        let (precision, scale) = args.split_once(',').ok_or_else(bad)?;
        let precision: u8 = precision.trim().parse().map_err(|_| bad())?;
        let scale: i8 = scale.trim().parse().map_err(|_| bad())?;
        return Ok(DataType::Decimal128(precision, scale));
    }
    if upper.starts_with("TIMESTAMP") {
        return Ok(DataType::Timestamp(
            TimeUnit::Millisecond,
            Some("UTC".into()),
        ));
    }
    Ok(match upper.as_str() {
        "STRING" | "VARCHAR" | "TEXT" => DataType::Utf8,
        "BOOLEAN" | "BOOL" => DataType::Boolean,
        "TINYINT" => DataType::Int8,
        "SMALLINT" => DataType::Int16,
        "INT" | "INTEGER" => DataType::Int32,
        "BIGINT" => DataType::Int64,
        "FLOAT" | "REAL" => DataType::Float32,
        "DOUBLE" => DataType::Float64,
        "DATE" => DataType::Date32,
        _ => return Err(bad()),
    })
}

pub fn parse_ddl_schema(entries: &[String]) -> Result<Schema, DdlError> {
    let mut fields = Vec::with_capacity(entries.len());
    for (index, entry) in entries.iter().enumerate() {
        let failed = |message: String| DdlError {
            entry: index,
            message,
        };
        let entry = entry.trim();
        let (name, type_text) = entry
            .split_once(|c: char| c.is_whitespace() || c == ':')
            .ok_or_else(|| failed(format!("ddlSchema entry `{entry}` must be `name TYPE`")))?;
        let name = name.trim_matches('`').trim_matches('"');
        let type_text = type_text.trim_start_matches(':').trim();
        fields.push(Field::new(
            name,
            parse_type(name, type_text).map_err(failed)?,
            true,
        ));
    }
    Ok(Schema::new(fields))
}
