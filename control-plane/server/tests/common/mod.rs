//! What the control plane's API tests share: a node on loopback (SQLite, local-FS storage, the
//! in-process bus) and helpers to call it.
#![allow(dead_code)]

use std::sync::Arc;

use reqwest::StatusCode;
use serde_json::{Value, json};
use weir_control_plane::{ControlPlane, ControlPlaneConfig};

pub const MANIFEST: &str = "
kind: DatasetSnapshot
version: 1
content:
  name: readings
  kind: Root
  metadata:
    - kind: SetInfo
      description: test readings
";

pub struct Node {
    pub control_plane: Arc<ControlPlane>,
    pub url: String,
    pub client: reqwest::Client,
    pub admin: String,
    pub storage_dir: std::path::PathBuf,
    _dirs: Vec<tempfile::TempDir>,
}

pub async fn start(storage: Option<tempfile::TempDir>) -> Node {
    start_on(storage, None).await
}

/// A fresh PostgreSQL database on `WEIR_TEST_POSTGRES_URL` (default 127.0.0.1:5432).
pub async fn fresh_postgres() -> String {
    use sqlx::Connection;
    let admin_url = std::env::var("WEIR_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string());
    sqlx::any::install_default_drivers();
    let mut admin = sqlx::AnyConnection::connect(&admin_url)
        .await
        .expect("postgresql must run for these tests (see local/test)");
    let database = format!("weir_test_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(&format!("CREATE DATABASE {database}"))
        .execute(&mut admin)
        .await
        .unwrap();
    format!("{}/{database}", admin_url.rsplit_once('/').unwrap().0)
}

/// A node on `database_url` (SQLite in a temporary directory when `None`), with the flow
/// scheduler ticking every 50 ms.
pub async fn start_on(storage: Option<tempfile::TempDir>, database_url: Option<String>) -> Node {
    start_configured(storage, database_url, |_| {}).await
}

/// A node as `start_on` makes it, with `configure` changing its config first.
pub async fn start_configured(
    storage: Option<tempfile::TempDir>,
    database_url: Option<String>,
    configure: impl FnOnce(&mut ControlPlaneConfig),
) -> Node {
    let storage = storage.unwrap_or_else(|| tempfile::tempdir().unwrap());
    let database = tempfile::tempdir().unwrap();
    let mut config = ControlPlaneConfig {
        database_url: database_url
            .unwrap_or_else(|| format!("sqlite://{}", database.path().join("m.db").display())),
        storage: weir_dataset::StorageConfig::LocalFs {
            root_dir: storage.path().to_path_buf(),
        },
        ..Default::default()
    };
    config.auth.signing_key = Some("11".repeat(32));
    config.flows.tick_millis = 50;
    configure(&mut config);
    let control_plane = ControlPlane::start(config).await.unwrap();
    let admin = control_plane
        .accounts
        .issue_token(&control_plane.admin, "test")
        .await
        .unwrap()
        .token;
    let router = weir_control_plane::rest::router(control_plane.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    Node {
        control_plane,
        url,
        client: reqwest::Client::new(),
        admin,
        storage_dir: storage.path().to_path_buf(),
        _dirs: vec![storage, database],
    }
}

impl Node {
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<(&str, String)>,
    ) -> (StatusCode, Value) {
        let mut request = self.client.request(method, format!("{}{path}", self.url));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some((content_type, body)) = body {
            request = request.header("content-type", content_type).body(body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> (StatusCode, Value) {
        self.call(reqwest::Method::GET, path, token, None).await
    }

    pub async fn send_json(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Value,
    ) -> (StatusCode, Value) {
        self.call(
            method,
            path,
            token,
            Some(("application/json", body.to_string())),
        )
        .await
    }

    pub async fn create_dataset(&self, token: &str, manifest: &str) -> (StatusCode, Value) {
        self.call(
            reqwest::Method::POST,
            "/datasets",
            Some(token),
            Some(("application/yaml", manifest.to_string())),
        )
        .await
    }

    /// Creates user `name` with a password and returns a session token from login.
    pub async fn user(&self, name: &str) -> String {
        let (status, body) = self
            .send_json(
                reqwest::Method::POST,
                "/accounts",
                Some(&self.admin),
                json!({"name": name, "password": "password-1"}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let (status, body) = self
            .send_json(
                reqwest::Method::POST,
                "/auth/login",
                None,
                json!({"login": name, "password": "password-1"}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["accessToken"].as_str().unwrap().to_string()
    }
}

pub fn assert_error(answer: &(StatusCode, Value), status: StatusCode, kind: &str, needle: &str) {
    assert_eq!(answer.0, status, "{}", answer.1);
    assert_eq!(answer.1["error"], kind, "{}", answer.1);
    let message = answer.1["message"].as_str().unwrap();
    assert!(
        message.contains(needle),
        "`{message}` should mention `{needle}`"
    );
}
