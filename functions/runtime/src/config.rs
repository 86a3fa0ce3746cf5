//! Typed function config from a YAML file plus `WEIR__SECTION__KEY` environment overrides.
//!
//! The file is `/srv/<function>/service-config.yml` unless `WEIR_CONFIG_PATH` names another.
//! A missing default file means "defaults only"; a missing explicitly named file is an error.
//! Environment keys are lowercased and split on `__` into a path (`WEIR__STORAGE__ROOT_DIR` sets
//! `storage.root_dir`); values are read as YAML scalars, so `8080` is a number and `true` a bool,
//! except that an empty value is the empty string (YAML would read it as null).

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

const ENV_PREFIX: &str = "WEIR__";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("config file {path} is not valid YAML: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error("invalid config key `{key}`: {message}")]
    Invalid { key: String, message: String },
}

pub fn default_config_path(function_name: &str) -> PathBuf {
    PathBuf::from(format!("/srv/{function_name}/service-config.yml"))
}

fn read_file(path: &Path, required: bool) -> Result<Value, ConfigError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound && !required => {
            return Ok(Value::Object(Map::new()));
        }
        Err(error) => {
            return Err(ConfigError::File {
                path: path.to_path_buf(),
                message: error.to_string(),
            });
        }
    };
    let value: Value = serde_yaml::from_str(&text).map_err(|error| ConfigError::Syntax {
        path: path.to_path_buf(),
        message: error.to_string(),
    })?;
    Ok(match value {
        Value::Null => Value::Object(Map::new()),
        other => other,
    })
}

fn set_path(root: &mut Value, path: &[String], value: Value) {
    let mut node = root;
    for segment in &path[..path.len() - 1] {
        if !node.is_object() {
            *node = Value::Object(Map::new());
        }
        node = node
            .as_object_mut()
            .expect("node was just made an object")
            .entry(segment.clone())
            .or_insert_with(|| Value::Object(Map::new()));
    }
    if !node.is_object() {
        *node = Value::Object(Map::new());
    }
    node.as_object_mut()
        .expect("node was just made an object")
        .insert(path[path.len() - 1].clone(), value);
}

/// Loads the config of `function_name` from `file` (or the default path) and `environment`.
pub fn load_config_from<T: DeserializeOwned>(
    file: Option<&Path>,
    function_name: &str,
    environment: impl IntoIterator<Item = (String, String)>,
) -> Result<T, ConfigError> {
    let mut value = match file {
        Some(path) => read_file(path, true)?,
        None => read_file(&default_config_path(function_name), false)?,
    };
    for (key, raw) in environment {
        let Some(rest) = key.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        let path: Vec<String> = rest.split("__").map(str::to_ascii_lowercase).collect();
        if path.iter().any(String::is_empty) {
            return Err(ConfigError::Invalid {
                key,
                message: "empty path segment".to_string(),
            });
        }
        let parsed = if raw.is_empty() {
            Value::String(raw)
        } else {
            serde_yaml::from_str::<Value>(&raw).unwrap_or(Value::String(raw))
        };
        set_path(&mut value, &path, parsed);
    }
    serde_path_to_error::deserialize(value).map_err(|error| ConfigError::Invalid {
        key: error.path().to_string(),
        message: error.into_inner().to_string(),
    })
}

/// Loads the config of `function_name` from `WEIR_CONFIG_PATH` (or the default file) and the
/// process environment.
pub fn load_config<T: DeserializeOwned>(function_name: &str) -> Result<T, ConfigError> {
    let file = std::env::var_os("WEIR_CONFIG_PATH").map(PathBuf::from);
    load_config_from(file.as_deref(), function_name, std::env::vars())
}
