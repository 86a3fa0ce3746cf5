//! Bus events that invalidate what the bridge cached: `device.token-revoked` drops a token,
//! `device.binding-changed` an application's tokens. After any interruption of the event stream
//! everything cached is dropped, since events may have been missed.

use serde::Deserialize;

use crate::directory::Cached;

#[derive(Deserialize)]
struct Envelope {
    event: Event,
}

#[derive(Deserialize)]
#[serde(
    tag = "type",
    rename_all = "kebab-case",
    rename_all_fields = "camelCase"
)]
enum Event {
    DeviceTokenRevoked {
        token_id: String,
    },
    DeviceBindingChanged {
        application_id: String,
    },
    #[serde(other)]
    Other,
}

/// Applies one event envelope (JSON, as the bus carries it) to the cache.
pub fn apply(cache: &Cached, envelope: &[u8]) {
    match serde_json::from_slice::<Envelope>(envelope) {
        Ok(Envelope {
            event: Event::DeviceTokenRevoked { token_id },
        }) => {
            tracing::info!(%token_id, "device token revoked");
            cache.forget_token(&token_id);
        }
        Ok(Envelope {
            event: Event::DeviceBindingChanged { application_id },
        }) => cache.forget_application(&application_id),
        Ok(_) => {}
        Err(error) => {
            tracing::warn!(%error, "an event on the device subjects does not decode; forgetting every cached token");
            cache.forget_all();
        }
    }
}

/// Follows `<prefix>.v1.device.>` on NATS for as long as the process runs.
pub fn spawn_nats(config: &crate::config::EventsConfig, cache: std::sync::Arc<Cached>) {
    let subject = format!("{}.v1.device.>", config.prefix);
    let on_event = cache.clone();
    weir_function_runtime::jetstream::watch_subject(
        config.url.clone(),
        subject,
        std::sync::Arc::new(move |payload: Option<&[u8]>| match payload {
            Some(envelope) => apply(&on_event, envelope),
            None => on_event.forget_all(),
        }),
    );
}
