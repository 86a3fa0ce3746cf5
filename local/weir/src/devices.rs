//! The device function under `weir up`: its registry is this process's control plane (called
//! in-process, through the same JSON the HTTP API speaks), its revocations come from the
//! in-process bus, and its bridge connects to the configured broker (127.0.0.1:1883 by default;
//! while no broker answers, it keeps trying and the HTTP path works on).

use std::sync::Arc;

use async_trait::async_trait;
use futures::StreamExt;
use weir_control_plane::ControlPlane;
use weir_devices::directory::{
    AccountQuota, Directory, DirectoryUnavailable, Resolution, UsageReport,
};
use weir_function_runtime::Caller;

struct InProcessDirectory {
    control_plane: Arc<ControlPlane>,
    caller: Caller,
}

fn relay<T: serde::Serialize, U: serde::de::DeserializeOwned>(
    value: &T,
) -> Result<U, DirectoryUnavailable> {
    serde_json::to_value(value)
        .and_then(serde_json::from_value)
        .map_err(|error| DirectoryUnavailable::new(format!("registry answer: {error}")))
}

#[async_trait]
impl Directory for InProcessDirectory {
    async fn resolve(
        &self,
        version: &str,
        token: &str,
    ) -> Result<Resolution, DirectoryUnavailable> {
        let answer = self
            .control_plane
            .devices_api()
            .resolve(&self.caller, version, token)
            .await
            .map_err(|error| DirectoryUnavailable::new(error.to_string()))?;
        relay(&answer)
    }

    async fn report(
        &self,
        report: &UsageReport,
    ) -> Result<Vec<AccountQuota>, DirectoryUnavailable> {
        let report = relay(report)?;
        let answer = self
            .control_plane
            .devices_api()
            .report_usage(&self.caller, report)
            .await
            .map_err(|error| DirectoryUnavailable::new(error.to_string()))?;
        relay(&answer)
    }
}

/// The bridge's MQTT client id for a data directory: the same node gets its session (and what
/// the broker kept for it) back after a restart, and two nodes never take each other's.
pub fn client_id(data_dir: &std::path::Path) -> String {
    let path = data_dir
        .canonicalize()
        .unwrap_or_else(|_| data_dir.to_path_buf());
    // FNV-1a: stable across builds, unlike the standard library's hasher.
    let hash = path
        .as_os_str()
        .as_encoded_bytes()
        .iter()
        .fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
            (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
        });
    format!("weir-up-{hash:016x}")
}

/// Starts the device function in-process; answers its HTTP routes.
pub async fn start(
    control_plane: &Arc<ControlPlane>,
    ingest: Arc<weir_ingest::IngestContext>,
    admin_token: &str,
    config: &weir_devices::DevicesConfig,
) -> Result<axum::Router, String> {
    let caller = control_plane
        .accounts
        .authenticate(Some(&format!("Bearer {admin_token}")))
        .await
        .map_err(|error| format!("devices identity: {error}"))?;
    let registry = Arc::new(InProcessDirectory {
        control_plane: control_plane.clone(),
        caller: caller.clone(),
    });
    let devices = weir_devices::assemble(ingest, registry, caller, config);
    for filter in weir_devices::events::FILTERS {
        let mut events = control_plane
            .bus
            .subscribe(None, filter)
            .await
            .map_err(|error| format!("event bus: {error}"))?;
        let cache = devices.cache.clone();
        tokio::spawn(async move {
            while let Some(item) = events.next().await {
                match item {
                    Ok(delivery) => {
                        weir_devices::events::apply(&cache, delivery.envelope.to_json().as_bytes());
                        let _ = delivery.ack().await;
                    }
                    Err(_) => cache.forget_all(),
                }
            }
        });
    }
    Ok(devices.router)
}
