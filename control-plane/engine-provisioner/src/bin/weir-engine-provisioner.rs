//! The engine provisioner as a service in Kubernetes: the `EnginePool` controller, run by the
//! replica holding the leader Lease. Config: `/srv/engine-provisioner/service-config.yml` or
//! `WEIR_CONFIG_PATH`, plus `WEIR__...`; the API server from the pod's service account (or
//! `KUBECONFIG`).

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use weir_engine_provisioner::ControlPlaneDemand;
use weir_engine_provisioner::kubernetes::leader::LeaseLock;
use weir_engine_provisioner::kubernetes::{Context, ProvisionerConfig, run_controller};

const FUNCTION_NAME: &str = "engine-provisioner";

#[tokio::main]
async fn main() -> ExitCode {
    weir_function_runtime::server::init_tracing();
    let config: ProvisionerConfig = match weir_function_runtime::load_config(FUNCTION_NAME) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };
    if config.control_plane.token.is_empty() {
        eprintln!("error: control_plane.token is required (WEIR__CONTROL_PLANE__TOKEN)");
        return ExitCode::from(2);
    }
    weir_engine_provisioner::kubernetes::install_crypto_provider();
    let client = match kube::Client::try_default().await {
        Ok(client) => client,
        Err(error) => {
            eprintln!("error: no Kubernetes API server: {error}");
            return ExitCode::FAILURE;
        }
    };
    let namespace = config
        .namespace
        .clone()
        .or_else(|| std::env::var("POD_NAMESPACE").ok())
        .unwrap_or_else(|| client.default_namespace().to_string());
    let identity = config
        .leader_election
        .identity
        .clone()
        .or_else(|| std::env::var("POD_NAME").ok())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| format!("provisioner-{}", std::process::id()));
    let demand = Arc::new(ControlPlaneDemand::new(
        &config.control_plane.url,
        &config.control_plane.token,
    ));
    let election = config.leader_election.clone();
    let ctx = Arc::new(Context {
        client: client.clone(),
        config,
        demand,
    });
    let controller = || run_controller(ctx.clone(), &namespace);
    let work = async {
        if election.enabled {
            let lock = LeaseLock::new(
                client.clone(),
                &namespace,
                &election.lease_name,
                &identity,
                Duration::from_secs(election.lease_seconds.max(1)),
            );
            tokio::select! {
                _ = lock.run_while_leader(controller) => {}
                _ = shutdown() => {}
            }
            let _ = lock.release().await;
        } else {
            tokio::select! {
                _ = controller() => {}
                _ = shutdown() => {}
            }
        }
    };
    work.await;
    ExitCode::SUCCESS
}

async fn shutdown() {
    let mut terminate =
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(signal) => signal,
            Err(_) => return std::future::pending().await,
        };
    tokio::select! {
        _ = terminate.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
