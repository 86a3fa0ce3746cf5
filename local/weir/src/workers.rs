//! The local engine provisioner under `weir up`: instead of the in-process executor, transform
//! tasks run in `weir-transform` worker processes that `weir up` starts and stops with the
//! queue (weir-engine-provisioner's policy and `LocalWorkerPool`, as the EnginePool controller
//! does with pods). The deployed shape, on one machine:
//!
//! ```yaml
//! transform:
//!   workers: {max_replicas: 2, concurrency: 2, idle_seconds: 60}
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;
use weir_control_plane::ControlPlane;
use weir_engine_provisioner::local::{LocalWorkerPool, WorkerCommand, run_local};
use weir_engine_provisioner::{Demand, DemandError, DemandSource, PoolPolicy};
use weir_function_runtime::task::TaskKind;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WorkersConfig {
    pub min_replicas: u32,
    pub max_replicas: u32,
    /// Tasks per worker.
    pub concurrency: u32,
    /// Seconds the queue must stay below the workers before they stop.
    pub idle_seconds: u64,
    /// The worker binary; `weir-transform` next to `weir` when absent.
    pub program: Option<PathBuf>,
    /// Seconds between rounds.
    pub poll_seconds: u64,
}

impl Default for WorkersConfig {
    fn default() -> Self {
        Self {
            min_replicas: 0,
            max_replicas: 2,
            concurrency: 2,
            idle_seconds: 60,
            program: None,
            poll_seconds: 1,
        }
    }
}

/// The queue's depth, read in-process.
struct QueueDepth(Arc<ControlPlane>);

#[async_trait]
impl DemandSource for QueueDepth {
    async fn demand(&self, _task_kinds: &[String]) -> Result<Demand, DemandError> {
        let kinds = [TaskKind::Transform, TaskKind::Reset];
        match self.0.flows.queue_depth(&kinds).await {
            Ok((queued, leased)) => Ok(Demand { queued, leased }),
            Err(error) => Err(DemandError::Refused {
                status: 503,
                body: error.to_string(),
            }),
        }
    }
}

fn worker_program(config: &WorkersConfig) -> Result<PathBuf, String> {
    if let Some(program) = &config.program {
        return Ok(program.clone());
    }
    let exe = std::env::current_exe().map_err(|error| error.to_string())?;
    let program = exe.with_file_name("weir-transform");
    if !program.exists() {
        return Err(format!(
            "transform.workers needs the weir-transform binary next to weir ({}): build it with \
             `cargo build -p weir-transform`, or set transform.workers.program",
            program.display()
        ));
    }
    Ok(program)
}

/// Starts the local provisioner; workers reach this node at `url` with `token`.
pub fn start(
    control_plane: &Arc<ControlPlane>,
    config: &WorkersConfig,
    url: &str,
    token: &str,
    data_dir: &Path,
) -> Result<(), String> {
    if config.max_replicas < config.min_replicas || config.max_replicas == 0 {
        return Err("transform.workers: max_replicas must be at least 1 and min_replicas".into());
    }
    if !(1..=64).contains(&config.concurrency) {
        return Err("transform.workers.concurrency must be 1 to 64".into());
    }
    let storage = &control_plane.config.storage;
    if matches!(storage, weir_dataset::StorageConfig::Memory) {
        return Err("transform.workers needs storage the workers can share, not memory".into());
    }
    let program = worker_program(config)?;
    let dir = data_dir.join("workers");
    std::fs::create_dir_all(&dir)
        .map_err(|error| format!("cannot create {}: {error}", dir.display()))?;
    let worker_config = serde_json::json!({
        "storage": storage,
        "control_plane": {"url": url},
        "tasks": {"url": url, "poll_millis": 200},
    });
    let path = dir.join("service-config.yml");
    let text = serde_yaml::to_string(&worker_config).map_err(|error| error.to_string())?;
    crate::up::write_private(&path, &text)?;
    let env = vec![
        ("WEIR_CONFIG_PATH".to_string(), path.display().to_string()),
        ("WEIR__TASKS__TOKEN".to_string(), token.to_string()),
        ("RUST_LOG".to_string(), "warn".to_string()),
    ];
    spawn_pool(
        "weir-up-worker",
        program,
        env,
        config,
        Arc::new(QueueDepth(control_plane.clone())),
    );
    Ok(())
}

/// Runs `program` workers with `env` (plus their concurrency and a port of their own) scaled by
/// `config` on `demand`, in the background for the life of the process.
pub fn spawn_pool(
    name: &str,
    program: PathBuf,
    mut env: Vec<(String, String)>,
    config: &WorkersConfig,
    demand: Arc<dyn DemandSource>,
) {
    env.push((
        "WEIR__TASKS__CONCURRENCY".to_string(),
        config.concurrency.to_string(),
    ));
    // Workers serve their HTTP routes on a port of their own choosing.
    env.push(("PORT".to_string(), "0".to_string()));
    let pool = LocalWorkerPool::new(WorkerCommand {
        name: name.to_string(),
        program,
        args: Vec::new(),
        env,
    });
    let policy = PoolPolicy {
        min_replicas: config.min_replicas,
        max_replicas: config.max_replicas,
        concurrency: config.concurrency,
        idle: Duration::from_secs(config.idle_seconds),
        initial_backoff: Duration::from_secs(1),
        max_backoff: Duration::from_secs(30),
    };
    let interval = Duration::from_secs(config.poll_seconds.max(1));
    tokio::spawn(async move {
        let kinds = vec!["transform".to_string(), "reset".to_string()];
        run_local(
            &pool,
            demand.as_ref(),
            &kinds,
            &policy,
            interval,
            std::future::pending(),
        )
        .await;
    });
}
