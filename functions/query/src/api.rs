//! The `/query` and `/verify` operations, independent of transport.

use std::collections::HashMap;

use ed25519_dalek::SigningKey;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use weir_function_runtime::Caller;
use weir_odf::{DatasetId, Multihash};

use crate::error::QueryError;
use crate::execute::{QueryEngine, QueryOptions, QueryOutput};
use crate::formats::{DataFormat, SchemaFormat, encode_data, encode_schema};
use crate::proof::{Commitment, Proof, commitment, sign, verify_signature};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum QueryDialect {
    #[default]
    SqlDataFusion,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Include {
    Input,
    Proof,
    Schema,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DatasetPin {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<DatasetId>,
    pub alias: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block_hash: Option<Multihash>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct QueryRequest {
    pub query: String,
    #[serde(default)]
    pub query_dialect: QueryDialect,
    #[serde(default)]
    pub data_format: DataFormat,
    #[serde(default)]
    pub schema_format: SchemaFormat,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub include: Vec<Include>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub datasets: Option<Vec<DatasetPin>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct QueryResponseOutput {
    pub data: Value,
    pub data_format: DataFormat,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema_format: Option<SchemaFormat>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct QueryResponse {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<QueryRequest>,
    pub output: QueryResponseOutput,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub_queries: Option<Vec<Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commitment: Option<Commitment>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proof: Option<Proof>,
}

/// A `/query` response with `include: ["Proof"]`, as it came back: `output` is optional, and
/// when present must be the output the commitment covers.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VerifyRequest {
    pub input: QueryRequest,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<QueryResponseOutput>,
    #[serde(default)]
    pub sub_queries: Vec<Value>,
    pub commitment: Commitment,
    pub proof: Proof,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct VerifyResponse {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<VerifyFailure>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct VerifyFailure {
    /// `InputHashMismatch`, `OutputHashMismatch`, `SubQueriesHashMismatch`, `BadSignature`,
    /// `InputNotPinned`,
    /// `DatasetNotFound`, `BlockNotFound`, `QueryFailed` or `OutputMismatch`.
    pub kind: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_hash: Option<Multihash>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actual_hash: Option<Multihash>,
}

impl QueryRequest {
    pub fn simple(query: impl Into<String>) -> Self {
        Self {
            query: query.into(),
            query_dialect: QueryDialect::SqlDataFusion,
            data_format: DataFormat::JsonAoS,
            schema_format: SchemaFormat::ArrowJson,
            skip: None,
            limit: None,
            include: Vec::new(),
            datasets: None,
        }
    }

    fn options(&self, engine: &QueryEngine, caller: &Caller) -> Result<QueryOptions, QueryError> {
        let mut pins = HashMap::new();
        for pin in self.datasets.iter().flatten() {
            let alias = engine.catalog.alias_of(&pin.alias)?;
            if let Some(block) = pin.block_hash {
                pins.insert(alias.to_string().to_ascii_lowercase(), block);
            }
        }
        Ok(QueryOptions {
            caller: caller.clone(),
            skip: self.skip,
            limit: self.limit,
            pins,
            deterministic: self.include.contains(&Include::Proof),
        })
    }
}

fn output_of(
    request: &QueryRequest,
    result: &QueryOutput,
    with_schema: bool,
) -> Result<QueryResponseOutput, QueryError> {
    Ok(QueryResponseOutput {
        data: encode_data(request.data_format, &result.schema, &result.batches)?,
        data_format: request.data_format,
        schema: if with_schema {
            Some(encode_schema(request.schema_format, &result.schema)?)
        } else {
            None
        },
        schema_format: if with_schema {
            Some(request.schema_format)
        } else {
            None
        },
    })
}

/// The request as executed: every dataset read pinned to the block it was read at.
fn pinned_input(request: &QueryRequest, result: &QueryOutput) -> QueryRequest {
    let mut input = request.clone();
    input.include.retain(|include| *include != Include::Input);
    input.datasets = Some(
        result
            .datasets
            .iter()
            .map(|used| DatasetPin {
                id: Some(used.id),
                alias: used.alias.to_string(),
                block_hash: used.block_hash,
            })
            .collect(),
    );
    input
}

pub async fn run_query(
    engine: &QueryEngine,
    key: &SigningKey,
    request: QueryRequest,
    caller: &Caller,
) -> Result<QueryResponse, QueryError> {
    let options = request.options(engine, caller)?;
    let result = engine.execute(&request.query, &options).await?;
    let with_proof = request.include.contains(&Include::Proof);
    let with_schema = with_proof || request.include.contains(&Include::Schema);
    let output = output_of(&request, &result, with_schema)?;
    let mut response = QueryResponse {
        input: None,
        output,
        sub_queries: None,
        commitment: None,
        proof: None,
    };
    if with_proof || request.include.contains(&Include::Input) {
        response.input = Some(pinned_input(&request, &result));
    }
    if with_proof {
        let input = serde_json::to_value(response.input.as_ref())
            .map_err(|e| QueryError::Internal(e.to_string()))?;
        let output = serde_json::to_value(&response.output)
            .map_err(|e| QueryError::Internal(e.to_string()))?;
        let committed = commitment(&input, &output, &Value::Array(Vec::new()));
        response.proof = Some(sign(key, &committed));
        response.commitment = Some(committed);
        response.sub_queries = Some(Vec::new());
    }
    Ok(response)
}

fn failure(kind: &str, message: impl Into<String>) -> VerifyResponse {
    VerifyResponse {
        ok: false,
        error: Some(VerifyFailure {
            kind: kind.to_string(),
            message: message.into(),
            expected_hash: None,
            actual_hash: None,
        }),
    }
}

/// Re-executes a committed query and reports whether everything still matches.
pub async fn verify(
    engine: &QueryEngine,
    request: VerifyRequest,
    caller: &Caller,
) -> Result<VerifyResponse, QueryError> {
    let input_value =
        serde_json::to_value(&request.input).map_err(|e| QueryError::Internal(e.to_string()))?;
    let expected = commitment(
        &input_value,
        &Value::Null,
        &Value::Array(request.sub_queries.clone()),
    );
    if expected.input_hash != request.commitment.input_hash {
        return Ok(failure(
            "InputHashMismatch",
            "the input does not hash to commitment.inputHash",
        ));
    }
    if expected.sub_queries_hash != request.commitment.sub_queries_hash {
        return Ok(failure(
            "SubQueriesHashMismatch",
            "the sub-queries do not hash to commitment.subQueriesHash",
        ));
    }
    if let Err(message) = verify_signature(&request.commitment, &request.proof) {
        return Ok(failure("BadSignature", message));
    }
    if let Some(output) = &request.output {
        let output_value =
            serde_json::to_value(output).map_err(|e| QueryError::Internal(e.to_string()))?;
        let claimed = crate::proof::hash_json(&output_value);
        if claimed != request.commitment.output_hash {
            let mut response = failure(
                "OutputHashMismatch",
                "the output sent does not hash to commitment.outputHash: it was changed",
            );
            if let Some(error) = response.error.as_mut() {
                error.expected_hash = Some(request.commitment.output_hash);
                error.actual_hash = Some(claimed);
            }
            return Ok(response);
        }
    }
    let pins = request.input.datasets.clone().unwrap_or_default();
    if let Some(unpinned) = pins.iter().find(|pin| pin.block_hash.is_none()) {
        return Ok(failure(
            "InputNotPinned",
            format!("dataset `{}` has no blockHash", unpinned.alias),
        ));
    }
    let mut replay = request.input.clone();
    replay.include = vec![Include::Proof];
    let options = replay.options(engine, caller)?;
    let result = match engine.execute(&replay.query, &options).await {
        Ok(result) => result,
        Err(QueryError::DatasetNotFound(alias)) => {
            return Ok(failure(
                "DatasetNotFound",
                format!("dataset `{alias}` not found"),
            ));
        }
        Err(error @ QueryError::BlockNotFound { .. }) => {
            return Ok(failure("BlockNotFound", error.to_string()));
        }
        Err(error) => return Ok(failure("QueryFailed", error.to_string())),
    };
    let output = output_of(&replay, &result, true)?;
    let output_value =
        serde_json::to_value(&output).map_err(|e| QueryError::Internal(e.to_string()))?;
    let actual = crate::proof::hash_json(&output_value);
    if actual != request.commitment.output_hash {
        let mut response = failure(
            "OutputMismatch",
            "re-executing the query produced a different output",
        );
        if let Some(error) = response.error.as_mut() {
            error.expected_hash = Some(request.commitment.output_hash);
            error.actual_hash = Some(actual);
        }
        return Ok(response);
    }
    Ok(VerifyResponse {
        ok: true,
        error: None,
    })
}
