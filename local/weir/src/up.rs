//! `weir up`: the control plane, the ingest, query, transform, device and governance functions
//! and FlightSQL in one process.
//!
//! Embedded defaults (no flags): SQLite at `DIR/metadata.db`, datasets under `DIR/datasets`,
//! the in-process event bus, a signing key kept in `DIR/signing.key`. `--config FILE` reads
//! `control_plane:`, `ingest:`, `query:`, `transform:`, `devices:` and `governance:` sections
//! instead (PostgreSQL, S3,
//! NATS), and `polling:`, where polling sources may fetch from (default: private networks
//! allowed, local files below `DIR/inbox`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;
use weir_control_plane::{ControlPlane, ControlPlaneConfig};
use weir_dataset::polling::PollingPolicy;
use weir_ingest::{IngestConfig, IngestContext};
use weir_query::QueryConfig;

pub struct UpOptions {
    pub data_dir: PathBuf,
    pub listen: String,
    pub flightsql_listen: String,
    pub config: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UpConfig {
    pub control_plane: Option<ControlPlaneConfig>,
    pub ingest: IngestConfig,
    pub query: QueryConfig,
    pub transform: TransformUpConfig,
    /// Where polling sources may fetch from, for the control plane's checks and the ingest
    /// executor alike. Default: loopback and private networks allowed (the user's own
    /// services), local files only below `DATA_DIR/inbox`, no S3 buckets.
    pub polling: Option<PollingPolicy>,
    /// Whether this process polls sources (executes `ingest` tasks); off when ingest functions
    /// deployed apart take them from the queue.
    pub ingest_tasks_in_process: bool,
    /// The device function: by default its bridge connects to an MQTT broker on
    /// 127.0.0.1:1883 (`mqtt: null` turns it off; the HTTP path stays).
    pub devices: weir_devices::DevicesConfig,
    /// The governance function (dataset documentation); its storage is the control plane's.
    pub governance: weir_governance::GovernanceConfig,
}

/// The device function's defaults under `weir up`: a bridge to the local broker, its session
/// kept an hour while the node is down (its client id is set from the data directory).
fn local_devices_config() -> weir_devices::DevicesConfig {
    weir_devices::DevicesConfig {
        mqtt: Some(weir_devices::mqtt::MqttConfig {
            client_id: String::new(),
            session_expiry_seconds: 3600,
            ..Default::default()
        }),
        ..Default::default()
    }
}

impl Default for UpConfig {
    fn default() -> Self {
        Self {
            control_plane: None,
            ingest: IngestConfig::default(),
            query: QueryConfig::default(),
            transform: TransformUpConfig::default(),
            polling: None,
            ingest_tasks_in_process: true,
            devices: local_devices_config(),
            governance: weir_governance::GovernanceConfig::default(),
        }
    }
}

/// The polling policy of a local node: its user's machine and network, files in its inbox.
fn local_polling_policy(data_dir: &Path) -> Result<PollingPolicy, String> {
    let inbox = data_dir.join("inbox");
    std::fs::create_dir_all(&inbox)
        .map_err(|error| format!("cannot create {}: {error}", inbox.display()))?;
    Ok(PollingPolicy {
        allow_private_networks: true,
        file_roots: vec![inbox],
        ..PollingPolicy::default()
    })
}

/// Name of the in-process executor of ingest tasks (polls of polling sources).
pub const INGEST_EXECUTOR: &str = "weir-up/ingest";

/// The transform function under `weir up`.
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TransformUpConfig {
    /// Whether this process executes transform tasks; off when transform functions deployed
    /// apart take them from the queue.
    pub in_process_executor: bool,
    /// Runs transform tasks in worker processes started and stopped with the queue (the local
    /// engine provisioner) instead of in this process.
    pub workers: Option<crate::workers::WorkersConfig>,
}

impl Default for TransformUpConfig {
    fn default() -> Self {
        Self {
            in_process_executor: true,
            workers: None,
        }
    }
}

fn embedded_config(data_dir: &Path) -> Result<ControlPlaneConfig, String> {
    std::fs::create_dir_all(data_dir.join("datasets"))
        .map_err(|error| format!("cannot create {}: {error}", data_dir.display()))?;
    let key_path = data_dir.join("signing.key");
    let signing_key = match std::fs::read_to_string(&key_path) {
        Ok(text) => text.trim().to_string(),
        Err(_) => {
            let seed: [u8; 32] = rand::random();
            let hex: String = seed.iter().map(|byte| format!("{byte:02x}")).collect();
            write_private(&key_path, &hex)?;
            hex
        }
    };
    let mut config = ControlPlaneConfig {
        database_url: format!("sqlite://{}", data_dir.join("metadata.db").display()),
        storage: weir_dataset::StorageConfig::LocalFs {
            root_dir: data_dir.join("datasets"),
        },
        ..Default::default()
    };
    config.auth.signing_key = Some(signing_key);
    // A local node's user develops against receivers on their own machine: webhooks may call
    // loopback and private addresses here (a deployed control plane refuses them by default).
    config.webhooks.allow_private_targets = true;
    Ok(config)
}

pub(crate) fn write_private(path: &Path, content: &str) -> Result<(), String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|error| format!("cannot write {}: {error}", path.display()))?;
    file.write_all(content.as_bytes())
        .map_err(|error| format!("cannot write {}: {error}", path.display()))
}

pub fn load_up_config(options: &UpOptions) -> Result<UpConfig, String> {
    let Some(path) = &options.config else {
        return Ok(UpConfig {
            control_plane: Some(embedded_config(&options.data_dir)?),
            ..Default::default()
        });
    };
    let text = std::fs::read_to_string(path)
        .map_err(|error| format!("cannot read {}: {error}", path.display()))?;
    let mut config: UpConfig =
        serde_yaml::from_str(&text).map_err(|error| format!("{}: {error}", path.display()))?;
    if config.control_plane.is_none() {
        config.control_plane = Some(embedded_config(&options.data_dir)?);
    }
    Ok(config)
}

/// Starts the control plane with the config of `weir up` (also used by `weir reindex`).
pub async fn start_control_plane(
    options: &UpOptions,
) -> Result<(Arc<ControlPlane>, UpConfig), String> {
    let mut config = load_up_config(options)?;
    let policy = match config.polling.clone() {
        Some(policy) => policy,
        None => local_polling_policy(&options.data_dir)?,
    };
    config.polling = Some(policy.clone());
    config.ingest.polling = policy.clone();
    let mut control_plane_config = config.control_plane.take().unwrap_or_default();
    control_plane_config.polling = policy;
    let control_plane = ControlPlane::start(control_plane_config).await?;
    Ok((control_plane, config))
}

/// The admin's token: the one in `DIR/admin.token` while it still works, else a new one.
async fn admin_token(control_plane: &ControlPlane, data_dir: &Path) -> Result<String, String> {
    let path = data_dir.join("admin.token");
    if let Ok(existing) = std::fs::read_to_string(&path) {
        let existing = existing.trim().to_string();
        let header = format!("Bearer {existing}");
        if let Ok(caller) = control_plane.accounts.authenticate(Some(&header)).await
            && caller.account_id.as_deref() == Some(control_plane.admin.id.as_str())
        {
            return Ok(existing);
        }
    }
    let created = control_plane
        .accounts
        .issue_token(&control_plane.admin, "weir up")
        .await
        .map_err(|error| error.to_string())?;
    std::fs::create_dir_all(data_dir)
        .map_err(|error| format!("cannot create {}: {error}", data_dir.display()))?;
    write_private(&path, &created.token)?;
    Ok(created.token)
}

pub async fn run(options: UpOptions) -> Result<(), String> {
    weir_function_runtime::server::init_tracing();
    let address: SocketAddr = options
        .listen
        .parse()
        .map_err(|_| format!("invalid --listen address `{}`", options.listen))?;
    let (control_plane, config) = start_control_plane(&options).await?;
    let storage = control_plane.config.storage.clone();

    let access = control_plane.access_policy();
    let mut ingest_config = config.ingest;
    ingest_config.storage = storage.clone();
    let ingest = Arc::new(IngestContext {
        store: control_plane.store.clone(),
        config: ingest_config,
        access: access.clone(),
        notifier: Some(control_plane.commit_notifier("ingest")),
    });
    let mut query_config = config.query;
    query_config.storage = storage;
    query_config.default_account = control_plane.admin.name.clone();
    let query = weir_query::build_context_with_access(query_config, access.clone())?;

    let flight_listener = tokio::net::TcpListener::bind(&options.flightsql_listen)
        .await
        .map_err(|error| {
            format!(
                "cannot listen for flightsql on {}: {error}",
                options.flightsql_listen
            )
        })?;
    let flight_address = flight_listener
        .local_addr()
        .map_err(|error| error.to_string())?;
    let engine = query.engine.clone();
    tokio::spawn(async move {
        if let Err(message) = weir_query::flight::serve_flightsql(engine, flight_listener).await {
            tracing::error!(%message, "flightsql stopped");
        }
    });

    let governance = Arc::new(weir_governance::GovernanceContext {
        store: control_plane.store.clone(),
        access: access.clone(),
        notifier: Some(control_plane.commit_notifier("governance")),
        config: weir_governance::GovernanceConfig {
            storage: control_plane.config.storage.clone(),
            ..config.governance.clone()
        },
    });
    let in_process = config.transform.in_process_executor && config.transform.workers.is_none();
    let transform = crate::transforms::start(&control_plane, in_process).await?;
    if config.ingest_tasks_in_process {
        let poller =
            weir_ingest::polling::Poller::new(ingest.clone(), ingest.config.polling.clone())
                .map_err(|error| error.to_string())?;
        crate::transforms::spawn_local_worker(
            &control_plane,
            INGEST_EXECUTOR,
            &weir_ingest::polling::task::TASK_KINDS,
            Arc::new(weir_ingest::polling::task::IngestTaskHandler {
                poller,
                context: ingest.clone(),
            }),
        )
        .await?;
    }

    let token = admin_token(&control_plane, &options.data_dir).await?;
    // Queue ingest writes as the configured identity, by default the admin of this node.
    let mut queue_config = ingest.config.queue.clone();
    if queue_config.token.is_none() {
        queue_config.token = Some(token.clone());
    }
    let queue = Arc::new(weir_ingest::queue::QueueIngest::new(ingest.clone(), queue_config).await?);
    let mut devices_config = config.devices.clone();
    if let Some(mqtt) = &mut devices_config.mqtt
        && mqtt.client_id.is_empty()
    {
        mqtt.client_id = crate::devices::client_id(&options.data_dir);
    }
    let devices =
        crate::devices::start(&control_plane, ingest.clone(), &token, &devices_config).await?;
    if let Some(jetstream) = &queue.config().jetstream {
        weir_function_runtime::jetstream::spawn(jetstream.clone(), queue.clone());
    }
    if let Some(sqs) = &queue.config().sqs {
        weir_function_runtime::sqs::spawn(sqs.clone(), queue.clone());
    }
    let router = weir_function_runtime::with_json_errors(
        weir_control_plane::rest::router(control_plane.clone())
            .merge(weir_ingest::router(ingest))
            .merge(weir_ingest::queue::cloudevents_router(queue))
            .merge(devices)
            .merge(weir_query::router(query))
            .merge(weir_governance::router(governance))
            .merge(weir_transform::router(transform)),
    );
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .map_err(|error| format!("cannot listen on {address}: {error}"))?;
    let bound = listener.local_addr().map_err(|error| error.to_string())?;
    if let Some(workers) = &config.transform.workers {
        let host = if bound.ip().is_unspecified() {
            "127.0.0.1".to_string()
        } else {
            bound.ip().to_string()
        };
        let url = format!("http://{host}:{}", bound.port());
        crate::workers::start(&control_plane, workers, &url, &token, &options.data_dir)?;
    }
    println!("weir is up on http://{bound} (flightsql on grpc://{flight_address})");
    println!(
        "admin token (also in {}):",
        options.data_dir.join("admin.token").display()
    );
    println!("{token}");
    use std::io::Write;
    let _ = std::io::stdout().flush();
    weir_function_runtime::server::serve_listener(router, "weir", listener)
        .await
        .map_err(|error| format!("http server failed: {error}"))
}
