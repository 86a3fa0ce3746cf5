//! Config loading (file + `WEIR__` overrides, errors naming the key) and the error body shape.

use axum::response::IntoResponse;
use serde::Deserialize;
use weir_function_runtime::config::load_config_from;
use weir_function_runtime::{ApiError, ConfigError, ErrorKind};

#[derive(Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct Config {
    storage: Storage,
    #[serde(default)]
    max_body_bytes: u64,
    #[serde(default)]
    verbose: bool,
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct Storage {
    root_dir: String,
}

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn file_values_are_overridden_by_environment() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("service-config.yml");
    std::fs::write(
        &path,
        "storage:\n  root_dir: /from/file\nmax_body_bytes: 10\n",
    )
    .unwrap();
    let config: Config = load_config_from(
        Some(&path),
        "ingest",
        env(&[
            ("WEIR__STORAGE__ROOT_DIR", "/from/env"),
            ("WEIR__VERBOSE", "true"),
            ("OTHER", "x"),
        ]),
    )
    .unwrap();
    assert_eq!(
        config,
        Config {
            storage: Storage {
                root_dir: "/from/env".to_string()
            },
            max_body_bytes: 10,
            verbose: true,
        }
    );
}

/// An empty variable (a Secret key left empty, say) is the empty string, as YAML would read
/// `""`, not null: a string field then loads and its own check can name what is missing.
#[test]
fn an_empty_variable_is_the_empty_string() {
    let config: Config = load_config_from(
        None,
        "function-that-has-no-config-file",
        env(&[("WEIR__STORAGE__ROOT_DIR", "")]),
    )
    .unwrap();
    assert_eq!(config.storage.root_dir, "");
}

#[test]
fn environment_alone_is_enough_when_the_default_file_is_absent() {
    let config: Config = load_config_from(
        None,
        "function-that-has-no-config-file",
        env(&[
            ("WEIR__STORAGE__ROOT_DIR", "/data"),
            ("WEIR__MAX_BODY_BYTES", "42"),
        ]),
    )
    .unwrap();
    assert_eq!(config.max_body_bytes, 42);
}

#[test]
fn invalid_values_name_the_key() {
    let error = load_config_from::<Config>(
        None,
        "none",
        env(&[
            ("WEIR__STORAGE__ROOT_DIR", "/data"),
            ("WEIR__MAX_BODY_BYTES", "many"),
        ]),
    )
    .unwrap_err();
    let ConfigError::Invalid { key, .. } = &error else {
        panic!("expected an invalid key error, got {error}");
    };
    assert_eq!(key, "max_body_bytes");

    let error =
        load_config_from::<Config>(None, "none", env(&[("WEIR__STORAGE__ROOT_DIRR", "/x")]))
            .unwrap_err();
    assert!(error.to_string().contains("storage"), "{error}");
}

#[test]
fn explicitly_named_missing_file_is_an_error() {
    let error = load_config_from::<Config>(
        Some(std::path::Path::new("/no/such/file.yml")),
        "x",
        env(&[]),
    )
    .unwrap_err();
    assert!(matches!(error, ConfigError::File { .. }), "{error}");
}

#[tokio::test]
async fn errors_answer_with_status_and_json_body() {
    for (kind, status, code) in [
        (ErrorKind::InvalidInput, 400, "invalid_input"),
        (ErrorKind::NotFound, 404, "not_found"),
        (ErrorKind::Forbidden, 403, "forbidden"),
        (ErrorKind::Conflict, 409, "conflict"),
        (ErrorKind::PayloadTooLarge, 413, "payload_too_large"),
        (
            ErrorKind::UnsupportedMediaType,
            415,
            "unsupported_media_type",
        ),
        (ErrorKind::Retryable, 503, "retryable"),
        (ErrorKind::Internal, 500, "internal"),
    ] {
        let response = ApiError::new(kind, "what went wrong").into_response();
        assert_eq!(response.status().as_u16(), status);
        let bytes = axum::body::to_bytes(response.into_body(), 1024)
            .await
            .unwrap();
        let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"error": code, "message": "what went wrong"})
        );
    }
}

#[tokio::test]
async fn a_function_without_a_control_plane_fails_closed() {
    use weir_function_runtime::{ControlPlaneLinkConfig, Platform};
    let refused = Platform::from_config("ingest", None, false)
        .await
        .err()
        .unwrap();
    assert!(
        refused.contains("control_plane") && refused.contains("open_access"),
        "{refused}"
    );
    assert!(Platform::from_config("ingest", None, true).await.is_ok());
    let link = ControlPlaneLinkConfig {
        url: "http://127.0.0.1:9".to_string(),
        token_public_key: None,
        permission_cache_seconds: 5,
        request_timeout_millis: 100,
    };
    let contradiction = Platform::from_config("ingest", Some(&link), true)
        .await
        .err()
        .unwrap();
    assert!(contradiction.contains("contradict"), "{contradiction}");
}
