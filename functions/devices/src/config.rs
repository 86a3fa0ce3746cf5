//! Config of the device function (`/srv/devices/service-config.yml`, `WEIR__...` overrides).

use serde::Deserialize;
use weir_dataset::StorageConfig;
use weir_function_runtime::ControlPlaneLinkConfig;

use crate::mqtt::MqttConfig;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DevicesConfig {
    pub storage: StorageConfig,
    /// The control plane: its device registry says who a token is, and it checks access.
    pub control_plane: Option<ControlPlaneLinkConfig>,
    /// The bridge's own token: an administrator's, since it resolves device tokens, reports
    /// usage and writes into every application's dataset.
    pub token: Option<String>,
    /// The broker to bridge (in the binary's HTTP mode and under `weir up`).
    pub mqtt: Option<MqttConfig>,
    /// The control plane's NATS event bus: revoked tokens are dropped the moment it says so.
    pub events: Option<EventsConfig>,
    /// Largest payload; larger ones are answered 400 (MQTT) or 413 (HTTP).
    pub max_payload_bytes: usize,
    /// How long a request id (with its payload) is remembered to answer a resent request
    /// without a second copy.
    pub dedup_window_seconds: u64,
    /// Safety net only: resolved tokens are dropped on events, and after this long regardless.
    pub cache_seconds: u64,
    /// How often counts go to the registry (quotas are checked against its last answer).
    pub usage_flush_millis: u64,
    /// HTTP requests arriving together are committed together: up to this many ...
    pub max_batch_messages: usize,
    /// ... waiting at most this long for more.
    pub max_batch_wait_millis: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsConfig {
    /// `nats://host:4222`.
    pub url: String,
    /// The bus's subject prefix (`weir`).
    #[serde(default = "default_prefix")]
    pub prefix: String,
}

fn default_prefix() -> String {
    "weir".to_string()
}

impl Default for DevicesConfig {
    fn default() -> Self {
        Self {
            storage: StorageConfig::default(),
            control_plane: None,
            token: None,
            mqtt: None,
            events: None,
            max_payload_bytes: 1 << 20,
            dedup_window_seconds: 3600,
            cache_seconds: 600,
            usage_flush_millis: 1000,
            max_batch_messages: 1000,
            max_batch_wait_millis: 10,
        }
    }
}
