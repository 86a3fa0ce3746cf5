//! Serde helpers for the YAML/JSON forms: shorthand strings for parameterless union variants.

use serde::de::{DeserializeOwned, Error};
use serde::{Deserialize, Deserializer};

/// Accepts `Int32` as a shorthand for `{kind: Int32}`.
fn expand_shorthand(value: serde_json::Value) -> serde_json::Value {
    match value {
        serde_json::Value::String(kind) => serde_json::json!({ "kind": kind }),
        other => other,
    }
}

pub fn tagged_or_shorthand<'de, D: Deserializer<'de>, T: DeserializeOwned>(
    deserializer: D,
) -> Result<T, D::Error> {
    let value = serde_json::Value::deserialize(deserializer)?;
    T::deserialize(expand_shorthand(value)).map_err(D::Error::custom)
}

pub fn boxed_tagged_or_shorthand<'de, D: Deserializer<'de>, T: DeserializeOwned>(
    deserializer: D,
) -> Result<Box<T>, D::Error> {
    tagged_or_shorthand(deserializer).map(Box::new)
}

pub fn optional_tagged_or_shorthand<'de, D: Deserializer<'de>, T: DeserializeOwned>(
    deserializer: D,
) -> Result<Option<T>, D::Error> {
    let value = Option::<serde_json::Value>::deserialize(deserializer)?;
    match value {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(value) => T::deserialize(expand_shorthand(value))
            .map(Some)
            .map_err(D::Error::custom),
    }
}
