//! Dataset manifests users write: the legacy `DatasetSnapshot` (bare or wrapped in
//! `{kind: DatasetSnapshot, version: 1, content: ...}`) and the RFC-018 `Dataset` resource.
//! Unknown fields and bad enum values are errors naming the path, e.g. `metadata[1].read.kind`.

use serde::{Deserialize, Serialize};

use crate::identity::{DatasetAlias, DatasetId};
use crate::model::{DatasetKind, MetadataEvent};

pub const DATASET_RESOURCE_SCHEMA: &str =
    "https://opendatafabric.org/schemas/dataset/v1alpha1/Dataset";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    #[error("invalid YAML: {0}")]
    Syntax(String),
    #[error("at `{path}`: {message}")]
    Invalid { path: String, message: String },
    #[error("unrecognized manifest: {0}")]
    Unrecognized(String),
    #[error("manifest refused: {0}")]
    OverLimit(String),
}

/// Largest manifest accepted, in bytes.
pub const MAX_MANIFEST_BYTES: usize = 256 << 10;
/// Deepest nesting of flow collections (`[…]`, `{…}`) in a manifest. Deeper flow nesting makes
/// the YAML parser's work grow faster than the text; block nesting is bounded by the parser.
pub const MAX_MANIFEST_NESTING: usize = 32;

/// Refuses manifests over the size limit or nesting flow collections deeper than the limit,
/// before the YAML parser sees them. Brackets inside quoted scalars and comments do not count.
fn check_limits(text: &str) -> Result<(), ManifestError> {
    if text.len() > MAX_MANIFEST_BYTES {
        return Err(ManifestError::OverLimit(format!(
            "the manifest is {} bytes; the limit is {MAX_MANIFEST_BYTES} bytes",
            text.len()
        )));
    }
    let mut depth = 0usize;
    let mut quote: Option<u8> = None;
    let mut escaped = false;
    for (line, bytes) in text.split('\n').enumerate() {
        let mut previous = b' ';
        for &byte in bytes.as_bytes() {
            match quote {
                Some(b'"') if escaped => escaped = false,
                Some(b'"') if byte == b'\\' => escaped = true,
                Some(open) if byte == open => quote = None,
                Some(_) => {}
                None => match byte {
                    b'#' if previous.is_ascii_whitespace() => break,
                    b'\'' | b'"' if b" \t:[{,-".contains(&previous) => quote = Some(byte),
                    b'[' | b'{' => {
                        depth += 1;
                        if depth > MAX_MANIFEST_NESTING {
                            return Err(ManifestError::OverLimit(format!(
                                "line {}: flow collections (`[`, `{{`) nest deeper than \
                                 {MAX_MANIFEST_NESTING} levels",
                                line + 1
                            )));
                        }
                    }
                    b']' | b'}' => depth = depth.saturating_sub(1),
                    _ => {}
                },
            }
            previous = byte;
        }
    }
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DatasetSnapshot {
    pub name: DatasetAlias,
    pub kind: DatasetKind,
    #[serde(default)]
    pub metadata: Vec<MetadataEvent>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResourceHeaders {
    pub id: Option<String>,
    pub name: Option<String>,
    pub account: Option<serde_json::Value>,
    pub labels: Option<serde_json::Map<String, serde_json::Value>>,
    pub annotations: Option<serde_json::Map<String, serde_json::Value>>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DatasetSpec {
    pub did: Option<DatasetId>,
    pub kind: DatasetKind,
    #[serde(default)]
    pub metadata: Vec<MetadataEvent>,
    pub volume: Option<serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetResource {
    #[serde(rename = "$schema")]
    pub schema: String,
    pub headers: ResourceHeaders,
    pub spec: DatasetSpec,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
struct LegacyManifest {
    kind: String,
    version: i32,
    content: serde_json::Value,
}

/// A dataset definition in either form, normalized.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatasetDefinition {
    /// Name from the manifest (`name` or `headers.name`), possibly with an account.
    pub alias: Option<DatasetAlias>,
    pub did: Option<DatasetId>,
    pub kind: DatasetKind,
    pub metadata: Vec<MetadataEvent>,
}

fn parse_as<T: serde::de::DeserializeOwned>(
    value: serde_json::Value,
    prefix: &str,
) -> Result<T, ManifestError> {
    serde_path_to_error::deserialize(value).map_err(|error| {
        let inner = error.path().to_string();
        let path = match (prefix.is_empty(), inner.as_str()) {
            (true, _) => inner.clone(),
            (false, ".") => prefix.to_string(),
            (false, _) => format!("{prefix}.{inner}"),
        };
        ManifestError::Invalid {
            path,
            message: error.into_inner().to_string(),
        }
    })
}

/// Parses a YAML or JSON dataset manifest of either form.
pub fn parse_dataset_manifest(text: &str) -> Result<DatasetDefinition, ManifestError> {
    check_limits(text)?;
    let value: serde_json::Value =
        serde_yaml::from_str(text).map_err(|error| ManifestError::Syntax(error.to_string()))?;
    let Some(object) = value.as_object() else {
        return Err(ManifestError::Unrecognized(
            "a manifest must be a mapping".to_string(),
        ));
    };
    if object.contains_key("$schema") {
        let resource: DatasetResource = parse_as(value, "")?;
        if resource.schema != DATASET_RESOURCE_SCHEMA {
            return Err(ManifestError::Invalid {
                path: "$schema".to_string(),
                message: format!("expected `{DATASET_RESOURCE_SCHEMA}`"),
            });
        }
        let alias = match &resource.headers.name {
            Some(name) => Some(name.parse().map_err(
                |error: crate::identity::IdentityParseError| ManifestError::Invalid {
                    path: "headers.name".to_string(),
                    message: error.to_string(),
                },
            )?),
            None => None,
        };
        return Ok(DatasetDefinition {
            alias,
            did: resource.spec.did,
            kind: resource.spec.kind,
            metadata: resource.spec.metadata,
        });
    }
    if !object.contains_key("content")
        && object.get("kind").and_then(|kind| kind.as_str()) == Some("DatasetSnapshot")
    {
        return Err(ManifestError::Invalid {
            path: "content".to_string(),
            message: "a `kind: DatasetSnapshot` manifest needs `content` with the dataset's \
                      `name`, `kind` and `metadata`"
                .to_string(),
        });
    }
    let snapshot: DatasetSnapshot = if object.contains_key("content") {
        let manifest: LegacyManifest = parse_as(value, "")?;
        if manifest.kind != "DatasetSnapshot" {
            return Err(ManifestError::Invalid {
                path: "kind".to_string(),
                message: format!("expected `DatasetSnapshot`, got `{}`", manifest.kind),
            });
        }
        if manifest.version != 1 {
            return Err(ManifestError::Invalid {
                path: "version".to_string(),
                message: format!("unsupported version {}", manifest.version),
            });
        }
        parse_as(manifest.content, "content")?
    } else {
        parse_as(value, "")?
    };
    Ok(DatasetDefinition {
        alias: Some(snapshot.name),
        did: None,
        kind: snapshot.kind,
        metadata: snapshot.metadata,
    })
}
