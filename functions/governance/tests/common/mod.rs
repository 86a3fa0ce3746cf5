//! The deployed shape for governance tests: a control plane serving REST and GraphQL on
//! loopback (SQLite or a fresh PostgreSQL database), and the governance function as a separate
//! HTTP service linked to it (access decided and commits reported over HTTP).

#![allow(dead_code)]

use std::sync::Arc;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use weir_control_plane::{ControlPlane, ControlPlaneConfig};

pub const MANIFEST: &str = "
kind: DatasetSnapshot
version: 1
content:
  name: readings
  kind: Root
  metadata:
    - kind: SetVocab
      eventTimeColumn: event_time
";

pub struct Node {
    pub control_plane: Arc<ControlPlane>,
    /// The control plane.
    pub url: String,
    /// The governance function.
    pub function_url: String,
    pub admin: String,
    pub client: reqwest::Client,
    pub dir: tempfile::TempDir,
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

async fn serve(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    url
}

impl Node {
    /// SQLite when `postgres` is false.
    pub async fn start(postgres: bool) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let database_url = if postgres {
            fresh_postgres().await
        } else {
            format!("sqlite://{}", dir.path().join("meta.db").display())
        };
        let storage = weir_dataset::StorageConfig::LocalFs {
            root_dir: dir.path().join("datasets"),
        };
        std::fs::create_dir_all(dir.path().join("datasets")).unwrap();
        let mut config = ControlPlaneConfig {
            database_url,
            storage: storage.clone(),
            ..Default::default()
        };
        config.auth.signing_key = Some("22".repeat(32));
        let control_plane = ControlPlane::start(config).await.unwrap();
        let admin = control_plane
            .accounts
            .issue_token(&control_plane.admin, "governance test")
            .await
            .unwrap()
            .token;
        let url = serve(weir_control_plane::rest::router(control_plane.clone())).await;
        let function: weir_governance::GovernanceConfig = serde_json::from_value(json!({
            "storage": {"kind": "local_fs", "root_dir": dir.path().join("datasets")},
            "control_plane": {"url": url, "permission_cache_seconds": 0},
            "max_file_bytes": 4096,
        }))
        .unwrap();
        let function_url = serve(weir_governance::build(function).await.unwrap()).await;
        Self {
            control_plane,
            url,
            function_url,
            admin,
            client: reqwest::Client::new(),
            dir,
        }
    }

    /// A request to the function (`fn:` prefix) or the control plane.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<(&str, Vec<u8>)>,
    ) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        let url = match path.strip_prefix("fn:") {
            Some(path) => format!("{}{path}", self.function_url),
            None => format!("{}{path}", self.url),
        };
        let mut request = self.client.request(method, url);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some((content_type, body)) = body {
            request = request.header("content-type", content_type).body(body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        (
            status,
            headers,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> (StatusCode, Value) {
        let (status, _, body) = self.call(Method::GET, path, token, None).await;
        (status, body)
    }

    pub async fn json(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Value,
    ) -> (StatusCode, Value) {
        let (status, _, body) = self
            .call(
                method,
                path,
                token,
                Some(("application/json", body.to_string().into_bytes())),
            )
            .await;
        (status, body)
    }

    pub async fn create_dataset(&self, name: &str, visibility: &str) {
        let (status, _, body) = self
            .call(
                Method::POST,
                &format!("/datasets?visibility={visibility}"),
                Some(&self.admin),
                Some((
                    "application/yaml",
                    MANIFEST
                        .replace("name: readings", &format!("name: {name}"))
                        .into_bytes(),
                )),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }

    /// Creates user `name` and returns a session token.
    pub async fn user(&self, name: &str) -> String {
        let (status, body) = self
            .json(
                Method::POST,
                "/accounts",
                Some(&self.admin),
                json!({"name": name, "password": "password-1"}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let (status, body) = self
            .json(
                Method::POST,
                "/auth/login",
                None,
                json!({"login": name, "password": "password-1"}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["accessToken"].as_str().unwrap().to_string()
    }

    pub async fn grant(&self, dataset: &str, account: &str, role: &str) {
        let (status, body) = self
            .json(
                Method::PUT,
                &format!("/datasets/{dataset}/roles/{account}"),
                Some(&self.admin),
                json!({"role": role}),
            )
            .await;
        assert!(status.is_success(), "{body}");
    }

    /// The names `GET /datasets?search=` answers for `token`.
    pub async fn search(&self, expression: &str, token: Option<&str>) -> (StatusCode, Value) {
        let mut request = self
            .client
            .get(format!("{}/datasets", self.url))
            .query(&[("search", expression)]);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        (status, response.json().await.unwrap())
    }
}

pub fn names(answer: &Value) -> Vec<String> {
    answer
        .as_array()
        .unwrap_or_else(|| panic!("{answer}"))
        .iter()
        .map(|dataset| dataset["name"].as_str().unwrap().to_string())
        .collect()
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
