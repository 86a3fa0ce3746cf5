//! The local provisioner: transform workers as child processes of `weir up` (or any host
//! process), scaled by the same policy as the Kubernetes controller.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use tokio::process::{Child, Command};

use crate::demand::DemandSource;
use crate::error::ProvisionError;
use crate::pool::{Observed, WorkerPool, autoscale};
use crate::scale::{Memory, PoolPolicy};

/// How to start one worker: `program` with `env`; each worker also gets
/// `WEIR__TASKS__EXECUTOR=<name>-<n>` so its leases name it.
#[derive(Debug, Clone)]
pub struct WorkerCommand {
    pub name: String,
    pub program: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
}

/// A command for `program` whose process dies with the one that starts it: through util-linux's
/// `setpriv --pdeathsig KILL` where it is installed (no unsafe code here), so that workers never
/// outlive a killed `weir up`; a plain command elsewhere.
pub fn die_with_parent(program: &std::path::Path) -> Command {
    const SETPRIV: &str = "/usr/bin/setpriv";
    if cfg!(target_os = "linux") && std::path::Path::new(SETPRIV).exists() {
        let mut command = Command::new(SETPRIV);
        command.args(["--pdeathsig", "KILL", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

pub struct LocalWorkerPool {
    command: WorkerCommand,
    state: Mutex<LocalState>,
}

#[derive(Default)]
struct LocalState {
    children: Vec<Child>,
    started: u64,
}

impl LocalWorkerPool {
    pub fn new(command: WorkerCommand) -> Self {
        Self {
            command,
            state: Mutex::new(LocalState::default()),
        }
    }

    fn reap(state: &mut LocalState) {
        state
            .children
            .retain_mut(|child| matches!(child.try_wait(), Ok(None)));
    }
}

#[async_trait]
impl WorkerPool for LocalWorkerPool {
    async fn observe(&self) -> Result<Observed, ProvisionError> {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        Self::reap(&mut state);
        let running = state.children.len() as u32;
        Ok(Observed {
            replicas: running,
            ready: running,
            existing: running,
            unschedulable: 0,
        })
    }

    async fn scale(&self, replicas: u32) -> Result<(), ProvisionError> {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        Self::reap(&mut state);
        while state.children.len() > replicas as usize {
            // The newest first; a task it held is leased again once its lease expires.
            if let Some(mut child) = state.children.pop() {
                let _ = child.start_kill();
            }
        }
        while state.children.len() < replicas as usize {
            state.started += 1;
            let executor = format!("{}-{}", self.command.name, state.started);
            let child = die_with_parent(&self.command.program)
                .args(&self.command.args)
                .envs(self.command.env.iter().map(|(k, v)| (k, v)))
                .env("WEIR__TASKS__EXECUTOR", &executor)
                .stdin(Stdio::null())
                .kill_on_drop(true)
                .spawn()
                .map_err(|source| ProvisionError::Process {
                    program: self.command.program.display().to_string(),
                    source,
                })?;
            tracing::info!(executor, "started a local worker");
            state.children.push(child);
        }
        Ok(())
    }
}

/// Scales `pool` every `interval` until `shutdown` resolves; then stops every worker.
pub async fn run_local(
    pool: &LocalWorkerPool,
    demand: &dyn DemandSource,
    task_kinds: &[String],
    policy: &PoolPolicy,
    interval: Duration,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let mut memory = Memory::default();
    let mut ticks = tokio::time::interval(interval);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            _ = ticks.tick() => {}
        }
        let now = chrono::Utc::now().timestamp_millis();
        match autoscale(pool, demand, task_kinds, policy, memory, now).await {
            Ok(round) => memory = round.decision.memory,
            Err(error) => tracing::warn!(%error, "local provisioner round failed"),
        }
    }
    let _ = pool.scale(0).await;
}
