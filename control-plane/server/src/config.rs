//! Config of the control plane (`/srv/control-plane/service-config.yml`, `WEIR__...` overrides).
//!
//! ```yaml
//! database_url: postgres://weir@db:5432/weir     # or sqlite:///var/lib/weir/meta.db
//! storage: { kind: s3, bucket: datasets, endpoint: http://minio:9000 }
//! bus: { kind: nats, url: nats://nats:4222 }
//! auth: { signing_key: <64 hex chars> }
//! ```

use serde::Deserialize;
use weir_dataset::StorageConfig;
use weir_dataset::polling::PollingPolicy;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ControlPlaneConfig {
    pub database_url: String,
    pub storage: StorageConfig,
    pub bus: BusConfig,
    pub auth: AuthConfig,
    /// Name of this replica in leader leases; a random id when absent.
    pub instance_id: Option<String>,
    /// How long a leader's lease lasts without renewal; a standby takes over after it.
    pub leader_lease_millis: u64,
    /// How often the leader compares storage heads with the index to repair missed events.
    pub repair_interval_seconds: u64,
    /// Visibility of datasets created without one (`private` or `public`).
    pub default_visibility: String,
    /// How often the leader sweeps storage for objects no chain refers to.
    pub sweep_interval_seconds: u64,
    /// How old an unreferenced object must be before a sweep removes it: longer than any writer
    /// takes between writing its objects and committing them.
    pub sweep_grace_seconds: u64,
    pub flows: FlowsConfig,
    /// Where datasets' polling sources may fetch from: a manifest whose source the policy
    /// refuses is answered 400. Keep it the same as the ingest functions' `polling`.
    pub polling: PollingPolicy,
    pub webhooks: WebhooksConfig,
}

/// Webhooks on dataset events.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhooksConfig {
    /// Lets subscriptions target loopback and private networks (development, tests, internal
    /// receivers). Off by default: a webhook is never a way into the node's own network.
    pub allow_private_targets: bool,
    /// Consecutive failed deliveries after which a subscription is disabled, with its reason.
    pub disable_after_failures: i64,
    /// How long a delivery waits for the receiver's answer.
    pub timeout_millis: u64,
}

impl Default for WebhooksConfig {
    fn default() -> Self {
        Self {
            allow_private_targets: false,
            disable_after_failures: 10,
            timeout_millis: 10_000,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FlowsConfig {
    /// How often the leader looks for due runs when nothing woke it sooner.
    pub tick_millis: u64,
    /// Announce queued tasks on SQS queues (one per kind) for executors that are Lambdas.
    pub sqs_announcements: Option<weir_events::SqsAnnouncementConfig>,
}

impl Default for FlowsConfig {
    fn default() -> Self {
        Self {
            tick_millis: 1000,
            sqs_announcements: None,
        }
    }
}

impl Default for ControlPlaneConfig {
    fn default() -> Self {
        Self {
            database_url: "sqlite://.weir/metadata.db".to_string(),
            storage: StorageConfig::default(),
            bus: BusConfig::default(),
            auth: AuthConfig::default(),
            instance_id: None,
            leader_lease_millis: 5000,
            repair_interval_seconds: 30,
            default_visibility: "private".to_string(),
            sweep_interval_seconds: 600,
            sweep_grace_seconds: 3600,
            flows: FlowsConfig::default(),
            polling: PollingPolicy::default(),
            webhooks: WebhooksConfig::default(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum BusConfig {
    InProcess {
        #[serde(default = "default_prefix")]
        prefix: String,
    },
    Nats {
        url: String,
        #[serde(default = "default_prefix")]
        prefix: String,
    },
}

fn default_prefix() -> String {
    "weir".to_string()
}

impl Default for BusConfig {
    fn default() -> Self {
        Self::InProcess {
            prefix: default_prefix(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Hex of the 32-byte Ed25519 seed that signs tokens. Generated when absent (tokens then
    /// do not survive a restart).
    pub signing_key: Option<String>,
    /// Lifetime of tokens returned by password login.
    pub session_ttl_seconds: i64,
    /// The admin account created on first start.
    pub admin_name: String,
    /// Password of that admin account; random (and only usable through tokens) when absent.
    pub admin_password: Option<String>,
    /// How long functions may cache a permission decision.
    pub permission_cache_seconds: u64,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            signing_key: None,
            session_ttl_seconds: 24 * 3600,
            admin_name: "admin".to_string(),
            admin_password: None,
            permission_cache_seconds: 30,
        }
    }
}

/// Parses a hex Ed25519 seed, naming `key` in the error.
pub fn parse_seed(hex: &str, key: &str) -> Result<[u8; 32], String> {
    let invalid = || format!("invalid config key `{key}`: expected 64 hex characters");
    if hex.len() != 64 {
        return Err(invalid());
    }
    let mut seed = [0u8; 32];
    for (index, byte) in seed.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[index * 2..index * 2 + 2], 16).map_err(|_| invalid())?;
    }
    Ok(seed)
}
