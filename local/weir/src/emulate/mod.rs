//! `weir emulate`: the deployed topology on one machine, instead of `weir up`'s single process.
//! - the control plane as its own process (`weir-control-plane`, SQLite and local files under
//!   the data directory);
//! - ingest, query, governance and transform each as its own process in Lambda mode, under a
//!   Runtime API served here (`lambda`), behind an API-Gateway-style front on one port that
//!   routes as `infra/lambda/template.yaml` does (`gateway`); other paths go to the control
//!   plane;
//! - queue messages from SQS delivered as Lambda's event source mapping does (`sqs`:
//!   `--sqs-endpoint` and `--ingest-queue`, e.g. moto);
//! - transform tasks in `weir-transform` workers scaled by the local engine provisioner.

pub mod gateway;
pub mod lambda;
pub mod sqs;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use weir_engine_provisioner::ControlPlaneDemand;

pub struct EmulateOptions {
    pub data_dir: PathBuf,
    pub listen: String,
    pub sqs_endpoint: Option<String>,
    pub ingest_queue: Option<String>,
}

fn sibling(name: &str) -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|error| error.to_string())?;
    let path = exe.with_file_name(name);
    if !path.exists() {
        return Err(format!(
            "weir emulate runs {name}, which is not built next to weir ({}): \
             cargo build --bins -p weir-control-plane -p weir-ingest -p weir-query -p weir-governance -p weir-transform",
            path.display()
        ));
    }
    Ok(path)
}

fn free_port() -> Result<u16, String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|error| error.to_string())?;
    Ok(listener
        .local_addr()
        .map_err(|error| error.to_string())?
        .port())
}

fn random_hex(bytes: usize) -> String {
    (0..bytes)
        .map(|_| format!("{:02x}", rand::random::<u8>()))
        .collect()
}

/// Starts the control plane process and waits until it is ready; returns its URL.
async fn start_control_plane(
    data_dir: &Path,
    password: &str,
) -> Result<(String, tokio::process::Child), String> {
    let port = free_port()?;
    let key_path = data_dir.join("signing.key");
    let signing_key = match std::fs::read_to_string(&key_path) {
        Ok(text) => text.trim().to_string(),
        Err(_) => {
            let key = random_hex(32);
            crate::up::write_private(&key_path, &key)?;
            key
        }
    };
    let child = weir_engine_provisioner::local::die_with_parent(&sibling("weir-control-plane")?)
        .env("PORT", port.to_string())
        .env("WEIR_LISTEN_HOST", "127.0.0.1")
        .env("WEIR_CONFIG_PATH", data_dir.join("control-plane.yml"))
        .env(
            "WEIR__DATABASE_URL",
            format!("sqlite://{}", data_dir.join("metadata.db").display()),
        )
        .env("WEIR__STORAGE__KIND", "local_fs")
        .env("WEIR__STORAGE__ROOT_DIR", data_dir.join("datasets"))
        .env("WEIR__AUTH__SIGNING_KEY", signing_key)
        .env("WEIR__AUTH__ADMIN_PASSWORD", password)
        .env("WEIR__WEBHOOKS__ALLOW_PRIVATE_TARGETS", "true")
        .env(
            "RUST_LOG",
            std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .kill_on_drop(true)
        .spawn()
        .map_err(|error| format!("cannot start the control plane: {error}"))?;
    let url = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    for _ in 0..300 {
        if let Ok(response) = client.get(format!("{url}/readyz")).send().await
            && response.status().is_success()
        {
            return Ok((url, child));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err("the control plane did not become ready within 30 s".to_string())
}

/// Sends `body` as JSON and reads the JSON answer.
async fn post_json(
    request: reqwest::RequestBuilder,
    body: serde_json::Value,
) -> Result<serde_json::Value, String> {
    let response = request
        .json(&body)
        .send()
        .await
        .map_err(|error| error.to_string())?;
    response.json().await.map_err(|error| error.to_string())
}

/// The admin's personal access token (kept in DIR/admin.token while it works).
async fn admin_token(url: &str, password: &str, data_dir: &Path) -> Result<String, String> {
    let client = reqwest::Client::new();
    let path = data_dir.join("admin.token");
    if let Ok(existing) = std::fs::read_to_string(&path) {
        let existing = existing.trim().to_string();
        let me = client
            .get(format!("{url}/accounts/me"))
            .bearer_auth(&existing)
            .send()
            .await;
        if me.is_ok_and(|response| response.status().is_success()) {
            return Ok(existing);
        }
    }
    let login = post_json(
        client.post(format!("{url}/auth/login")),
        serde_json::json!({"login": "admin", "password": password}),
    )
    .await?;
    let session = login["accessToken"]
        .as_str()
        .or_else(|| login["access_token"].as_str())
        .ok_or_else(|| format!("admin login failed: {login}"))?;
    let created = post_json(
        client
            .post(format!("{url}/accounts/me/tokens"))
            .bearer_auth(session),
        serde_json::json!({"name": "weir emulate"}),
    )
    .await?;
    let token = created["token"]
        .as_str()
        .ok_or_else(|| format!("no token: {created}"))?
        .to_string();
    crate::up::write_private(&path, &token)?;
    Ok(token)
}

pub async fn run(options: EmulateOptions) -> Result<(), String> {
    weir_function_runtime::server::init_tracing();
    let data_dir = &options.data_dir;
    std::fs::create_dir_all(data_dir.join("datasets"))
        .map_err(|error| format!("cannot create {}: {error}", data_dir.display()))?;
    let password_path = data_dir.join("admin.password");
    let password = match std::fs::read_to_string(&password_path) {
        Ok(text) => text.trim().to_string(),
        Err(_) => {
            let password = random_hex(24);
            crate::up::write_private(&password_path, &password)?;
            password
        }
    };
    // Every setting comes from the environment below; the files stay for the user's own.
    for file in ["control-plane.yml", "function.yml"] {
        let path = data_dir.join(file);
        if !path.exists() {
            std::fs::write(
                &path,
                "# weir emulate: settings on top of its environment\n{}\n",
            )
            .map_err(|error| format!("cannot write {}: {error}", path.display()))?;
        }
    }
    let (control_plane, _control_plane_process) = start_control_plane(data_dir, &password).await?;
    let token = admin_token(&control_plane, &password, data_dir).await?;

    let common = vec![
        (
            "WEIR_CONFIG_PATH".to_string(),
            data_dir.join("function.yml").display().to_string(),
        ),
        ("WEIR__STORAGE__KIND".to_string(), "local_fs".to_string()),
        (
            "WEIR__STORAGE__ROOT_DIR".to_string(),
            data_dir.join("datasets").display().to_string(),
        ),
        (
            "WEIR__CONTROL_PLANE__URL".to_string(),
            control_plane.clone(),
        ),
        (
            "RUST_LOG".to_string(),
            std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()),
        ),
    ];
    let mut ingest_env = common.clone();
    ingest_env.push(("WEIR__QUEUE__TOKEN".to_string(), token.clone()));
    let ingest =
        lambda::LambdaFunction::start("weir-ingest", sibling("weir-ingest")?, ingest_env).await?;
    let query =
        lambda::LambdaFunction::start("weir-query", sibling("weir-query")?, common.clone()).await?;
    let governance = lambda::LambdaFunction::start(
        "weir-governance",
        sibling("weir-governance")?,
        common.clone(),
    )
    .await?;
    let transform =
        lambda::LambdaFunction::start("weir-transform", sibling("weir-transform")?, common.clone())
            .await?;

    // Transform tasks: worker processes (HTTP mode with `tasks`) scaled with the queue.
    let mut worker_env = common.clone();
    worker_env.extend([
        ("WEIR__TASKS__TOKEN".to_string(), token.clone()),
        ("WEIR__TASKS__POLL_MILLIS".to_string(), "200".to_string()),
    ]);
    crate::workers::spawn_pool(
        "weir-emulate-worker",
        sibling("weir-transform")?,
        worker_env,
        &crate::workers::WorkersConfig::default(),
        Arc::new(ControlPlaneDemand::new(&control_plane, &token)),
    );

    if let (Some(endpoint), Some(queue_url)) = (&options.sqs_endpoint, &options.ingest_queue) {
        let config = weir_function_runtime::sqs::SqsConsumerConfig {
            queue_url: queue_url.clone(),
            endpoint: Some(endpoint.clone()),
            region: Some("us-east-1".to_string()),
            access_key_id: Some(
                std::env::var("AWS_ACCESS_KEY_ID").unwrap_or_else(|_| "testing".into()),
            ),
            secret_access_key: Some(
                std::env::var("AWS_SECRET_ACCESS_KEY").unwrap_or_else(|_| "testing".into()),
            ),
            wait_seconds: 1,
            ..weir_function_runtime::sqs::SqsConsumerConfig::default()
        };
        tokio::spawn(sqs::run(config, ingest.clone(), 10));
    }

    let gateway = Arc::new(gateway::Gateway {
        ingest,
        query,
        governance,
        transform,
        control_plane: control_plane.clone(),
        client: reqwest::Client::new(),
    });
    let router = axum::Router::new()
        .fallback(gateway::handle)
        .with_state(gateway);
    let listener = tokio::net::TcpListener::bind(&options.listen)
        .await
        .map_err(|error| format!("cannot listen on {}: {error}", options.listen))?;
    let bound = listener.local_addr().map_err(|error| error.to_string())?;
    println!(
        "weir is up on http://{bound} (emulated deployment: control plane on {control_plane}, functions in Lambda mode)"
    );
    println!(
        "admin token (also in {}):",
        data_dir.join("admin.token").display()
    );
    println!("{token}");
    use std::io::Write;
    let _ = std::io::stdout().flush();
    axum::serve(listener, router)
        .await
        .map_err(|error| format!("gateway failed: {error}"))
}
