//! The test's kubelet: runs each pod of a namespace as a local process (or marks it
//! unschedulable), patches its status, and stops the process when the pod goes.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret};
use kube::Client;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use serde_json::json;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Start the pod's container as a local process and report it Running and Ready.
    Run,
    /// Report it Running without a process (pods whose work the test does not need).
    Pretend,
    /// Report that no node has room for it.
    Unschedulable,
}

pub struct Kubelet {
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

struct State {
    mode: Mode,
    program: PathBuf,
    processes: HashMap<String, Child>,
    /// Pods handled, with the mode they got.
    seen: BTreeMap<String, Mode>,
    /// When each pod was first seen (for reaction times).
    first_seen: BTreeMap<String, std::time::Instant>,
}

impl Drop for Kubelet {
    fn drop(&mut self) {
        self.task.abort();
        let mut state = self.state.lock().unwrap();
        for (_, mut child) in state.processes.drain() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Kubelet {
    pub fn start(client: Client, namespace: &str, program: PathBuf, mode: Mode) -> Self {
        let state = Arc::new(Mutex::new(State {
            mode,
            program,
            processes: HashMap::new(),
            seen: BTreeMap::new(),
            first_seen: BTreeMap::new(),
        }));
        let task = tokio::spawn(run(client, namespace.to_string(), state.clone()));
        Self { state, task }
    }

    pub fn set_mode(&self, mode: Mode) {
        self.state.lock().unwrap().mode = mode;
    }

    /// Pods whose processes run now.
    pub fn running(&self) -> Vec<String> {
        let mut state = self.state.lock().unwrap();
        state
            .processes
            .retain(|_, child| matches!(child.try_wait(), Ok(None)));
        state.processes.keys().cloned().collect()
    }

    /// Every pod that ever ran a process.
    pub fn started(&self) -> usize {
        let state = self.state.lock().unwrap();
        state
            .seen
            .values()
            .filter(|mode| **mode == Mode::Run)
            .count()
    }

    /// Kills a pod's process (SIGKILL, as a crashed node would) and returns its name.
    pub fn kill_one(&self) -> Option<String> {
        let mut state = self.state.lock().unwrap();
        let name = state.processes.keys().next().cloned()?;
        let mut child = state.processes.remove(&name)?;
        let _ = child.kill();
        let _ = child.wait();
        Some(name)
    }

    pub fn first_seen(&self, pod: &str) -> Option<std::time::Instant> {
        self.state.lock().unwrap().first_seen.get(pod).copied()
    }
}

async fn run(client: Client, namespace: String, state: Arc<Mutex<State>>) {
    let pods: Api<Pod> = Api::namespaced(client.clone(), &namespace);
    loop {
        if let Ok(list) = pods.list(&ListParams::default()).await {
            let names: Vec<String> = list
                .items
                .iter()
                .map(|pod| pod.metadata.name.clone().unwrap_or_default())
                .collect();
            // Pods gone (scaled down, deleted): their processes stop.
            {
                let mut state = state.lock().unwrap();
                let gone: Vec<String> = state
                    .processes
                    .keys()
                    .filter(|name| !names.contains(name))
                    .cloned()
                    .collect();
                for name in gone {
                    if let Some(mut child) = state.processes.remove(&name) {
                        let _ = child.kill();
                        let _ = child.wait();
                    }
                }
            }
            for pod in &list.items {
                let name = pod.metadata.name.clone().unwrap_or_default();
                if pod.metadata.deletion_timestamp.is_some() {
                    // Graceful deletion waits for the kubelet: stop, then let the pod go.
                    if let Some(mut child) = state.lock().unwrap().processes.remove(&name) {
                        let _ = child.kill();
                        let _ = child.wait();
                    }
                    let _ = pods
                        .delete(&name, &DeleteParams::default().grace_period(0))
                        .await;
                    continue;
                }
                let (mode, known) = {
                    let mut state = state.lock().unwrap();
                    state
                        .first_seen
                        .entry(name.clone())
                        .or_insert_with(std::time::Instant::now);
                    let mode = state.mode;
                    (mode, state.seen.get(&name).copied())
                };
                if known == Some(mode) {
                    continue;
                }
                if known == Some(Mode::Run) {
                    continue; // a running process keeps running whatever the mode is now
                }
                let status = match mode {
                    Mode::Unschedulable => json!({"phase": "Pending", "conditions": [{
                        "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                        "message": "0/0 nodes are available: the test's cluster is full",
                        "lastTransitionTime": now()}]}),
                    Mode::Pretend => running_status(),
                    Mode::Run => match start(&client, &namespace, pod, &state).await {
                        Ok(()) => running_status(),
                        Err(error) => panic!("the test kubelet cannot start {name}: {error}"),
                    },
                };
                if pods
                    .patch_status(
                        &name,
                        &PatchParams::default(),
                        &Patch::Merge(json!({ "status": status })),
                    )
                    .await
                    .is_ok()
                {
                    state.lock().unwrap().seen.insert(name, mode);
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn running_status() -> serde_json::Value {
    json!({"phase": "Running", "podIP": "127.0.0.1", "hostIP": "127.0.0.1", "startTime": now(),
        "conditions": [
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": now()},
            {"type": "Initialized", "status": "True", "lastTransitionTime": now()},
            {"type": "ContainersReady", "status": "True", "lastTransitionTime": now()},
            {"type": "Ready", "status": "True", "lastTransitionTime": now()}]})
}

/// Starts the pod's one container as `program`, with its environment (values, the pod's name,
/// secret keys) and its config volume written to a file.
async fn start(
    client: &Client,
    namespace: &str,
    pod: &Pod,
    state: &Arc<Mutex<State>>,
) -> Result<(), String> {
    let name = pod.metadata.name.clone().unwrap_or_default();
    let spec = pod.spec.as_ref().ok_or("no spec")?;
    let container = spec.containers.first().ok_or("no container")?;
    let (env, config) = resolve(client, namespace, pod, container, spec).await?;
    let dir = std::env::temp_dir().join(format!("weir-kubelet-{namespace}-{name}"));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let config_path = dir.join("service-config.yml");
    std::fs::write(&config_path, config).map_err(|e| e.to_string())?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut state = state.lock().unwrap();
    let child = Command::new(&state.program)
        .envs(env)
        .env("PORT", port.to_string())
        .env("WEIR_CONFIG_PATH", &config_path)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .spawn()
        .map_err(|e| e.to_string())?;
    state.processes.insert(name, child);
    Ok(())
}

async fn resolve(
    client: &Client,
    namespace: &str,
    pod: &Pod,
    container: &k8s_openapi::api::core::v1::Container,
    spec: &k8s_openapi::api::core::v1::PodSpec,
) -> Result<(Vec<(String, String)>, String), String> {
    let mut env = Vec::new();
    for var in container.env.clone().unwrap_or_default() {
        let value = if let Some(value) = var.value {
            value
        } else if let Some(source) = var.value_from {
            if let Some(field) = source.field_ref {
                match field.field_path.as_str() {
                    "metadata.name" => pod.metadata.name.clone().unwrap_or_default(),
                    "metadata.namespace" => namespace.to_string(),
                    other => return Err(format!("field {other} is not played")),
                }
            } else if let Some(key) = source.secret_key_ref {
                let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
                let secret = secrets.get(&key.name).await.map_err(|e| e.to_string())?;
                let bytes = secret
                    .data
                    .and_then(|data| data.get(&key.key).cloned())
                    .ok_or("no such key")?;
                String::from_utf8(bytes.0).map_err(|e| e.to_string())?
            } else {
                return Err("an env source the test kubelet does not play".to_string());
            }
        } else {
            String::new()
        };
        env.push((var.name, value));
    }
    let volume = spec
        .volumes
        .clone()
        .unwrap_or_default()
        .into_iter()
        .find_map(|volume| volume.config_map)
        .ok_or("no config volume")?;
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let map = maps.get(&volume.name).await.map_err(|e| e.to_string())?;
    let config = map
        .data
        .and_then(|data| data.get("service-config.yml").cloned())
        .ok_or("no service-config.yml in the config map")?;
    Ok((env, config))
}
