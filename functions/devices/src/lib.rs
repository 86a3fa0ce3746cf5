//! weir-devices: the device ingest function. Devices speaking Kaa's 1/KP data collection
//! (`docs/protocols/devices.md`) send JSON arrays of samples over MQTT (`kp1/<appVersionName>/
//! dcx/<endpointToken>/json[/<requestId>]`, bridged from a broker) or HTTP (`POST` to the same
//! path); the samples become records of the dataset the application version is bound to, with
//! the endpoint's id and an event time, committed through queue ingest's micro-batching path.
//! Reliable requests are answered on `…/status` once durable, or on `…/error`.
//!
//! Tokens are resolved by the control plane's device registry (`directory`), cached until a bus
//! event revokes them (`events`); traffic is metered, and quotas enforced (`meter`).
//!
//! Depends on weir-ingest (the commit path), weir-dataset and weir-function-runtime; never on
//! the control plane's crates (it speaks to the registry over HTTP, or through what `weir up`
//! hands it).

pub mod config;
pub mod directory;
pub mod events;
pub mod handler;
pub mod http;
pub mod meter;
pub mod mqtt;
pub mod protocol;

use std::sync::Arc;
use std::time::Duration;

use weir_function_runtime::Caller;
use weir_ingest::IngestContext;
use weir_ingest::queue::{QueueIngest, QueueIngestConfig};

pub use config::DevicesConfig;

pub const FUNCTION_NAME: &str = "devices";

/// The assembled function: its HTTP routes, its handler, and the cache events invalidate.
pub struct Devices {
    pub router: axum::Router,
    pub ingest: Arc<handler::DeviceIngest>,
    pub cache: Arc<directory::Cached>,
}

/// Puts the function together over an ingest context and a registry, writing as `caller`;
/// starts the usage reports and (when configured) the MQTT bridge.
pub fn assemble(
    context: Arc<IngestContext>,
    registry: Arc<dyn directory::Directory>,
    caller: Caller,
    config: &DevicesConfig,
) -> Devices {
    let queue = QueueIngest::with_caller(
        context,
        QueueIngestConfig {
            dedup_window_seconds: config.dedup_window_seconds,
            ..QueueIngestConfig::default()
        },
        caller,
    );
    let cache = Arc::new(directory::Cached::new(
        registry.clone(),
        Duration::from_secs(config.cache_seconds),
    ));
    let meter = Arc::new(meter::Meter::new());
    meter.spawn_flusher(
        registry,
        Duration::from_millis(config.usage_flush_millis.max(10)),
    );
    let ingest = Arc::new(handler::DeviceIngest {
        queue: Arc::new(queue),
        directory: cache.clone(),
        meter,
        max_payload_bytes: config.max_payload_bytes,
    });
    if let Some(mqtt) = &config.mqtt {
        mqtt::spawn(mqtt.clone(), ingest.clone());
    }
    let router = http::router(
        ingest.clone(),
        config.max_batch_messages,
        Duration::from_millis(config.max_batch_wait_millis),
    );
    Devices {
        router,
        ingest,
        cache,
    }
}

/// The function as its binary runs it (Lambda: the HTTP path only; otherwise also the bridge).
pub async fn build_function(mut config: DevicesConfig) -> Result<axum::Router, String> {
    let link = config.control_plane.clone().ok_or(
        "the devices function needs `control_plane`: its device registry says who a token is",
    )?;
    let token = config
        .token
        .clone()
        .ok_or("the devices function needs `token`: an administrator token to act with")?;
    let store = config.storage.open().map_err(|error| error.to_string())?;
    let platform =
        weir_function_runtime::Platform::from_config(FUNCTION_NAME, Some(&link), false).await?;
    let caller = platform
        .access
        .authenticate(Some(&format!("Bearer {token}")))
        .await
        .map_err(|error| format!("devices identity: {error}"))?;
    let registry = Arc::new(directory::RemoteDirectory::new(
        &link.url,
        &token,
        Duration::from_millis(link.request_timeout_millis),
    )?);
    let context = Arc::new(IngestContext {
        store,
        config: weir_ingest::IngestConfig {
            storage: config.storage.clone(),
            control_plane: Some(link),
            max_body_bytes: config.max_payload_bytes as u64 * 4,
            ..weir_ingest::IngestConfig::default()
        },
        access: platform.access,
        notifier: platform.notifier,
    });
    if weir_function_runtime::server::in_lambda() {
        config.mqtt = None;
    }
    let devices = assemble(context, registry, caller, &config);
    if let Some(events) = &config.events {
        events::spawn_nats(events, devices.cache.clone());
    }
    Ok(weir_function_runtime::with_json_errors(devices.router))
}
