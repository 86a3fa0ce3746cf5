//! Bus events that invalidate what the bridge cached: `device.token-revoked` drops a token,
//! `device.binding-changed` an application's tokens, a dataset renamed or deleted everything
//! (cached bindings name datasets by alias). After any interruption of the event stream
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
    DatasetRenamed {},
    DatasetDeleted {},
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
        Ok(Envelope {
            event: Event::DatasetRenamed {} | Event::DatasetDeleted {},
        }) => cache.forget_all(),
        Ok(_) => {}
        Err(error) => {
            tracing::warn!(%error, "an event on the device subjects does not decode; forgetting every cached token");
            cache.forget_all();
        }
    }
}

/// The bus subjects (after `<prefix>.v1.`) whose events `apply` acts on.
pub const FILTERS: [&str; 3] = ["device.>", "dataset.renamed.>", "dataset.deleted.>"];

/// Follows `FILTERS` on NATS for as long as the process runs.
pub fn spawn_nats(config: &crate::config::EventsConfig, cache: std::sync::Arc<Cached>) {
    for filter in FILTERS {
        let on_event = cache.clone();
        weir_function_runtime::jetstream::watch_subject(
            config.url.clone(),
            format!("{}.v1.{filter}", config.prefix),
            std::sync::Arc::new(move |payload: Option<&[u8]>| match payload {
                Some(envelope) => apply(&on_event, envelope),
                None => on_event.forget_all(),
            }),
        );
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::directory::{Directory, DirectoryUnavailable, Resolution, UsageReport};

    /// A registry answering every token with the same binding, counting its answers.
    struct Counting(std::sync::atomic::AtomicUsize);

    #[async_trait::async_trait]
    impl Directory for Counting {
        async fn resolve(&self, _: &str, token: &str) -> Result<Resolution, DirectoryUnavailable> {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok(Resolution::Ok(Box::new(crate::directory::Binding {
                token_id: format!("id-{token}"),
                endpoint_id: "ep".into(),
                application_id: "app".into(),
                application_name: "a".into(),
                account_id: "acc".into(),
                dataset_id: "did".into(),
                dataset: "acc/d".into(),
                event_time_pointer: None,
                quota: None,
            })))
        }

        async fn report(
            &self,
            _: &UsageReport,
        ) -> Result<Vec<crate::directory::AccountQuota>, DirectoryUnavailable> {
            Ok(Vec::new())
        }
    }

    #[tokio::test]
    async fn events_drop_what_they_invalidate() {
        let registry = Arc::new(Counting(Default::default()));
        let cache = Cached::new(registry.clone(), std::time::Duration::from_secs(600));
        let asked = || registry.0.load(std::sync::atomic::Ordering::SeqCst);
        cache.resolve("v", "one").await.unwrap();
        cache.resolve("v", "two").await.unwrap();
        cache.resolve("v", "one").await.unwrap();
        assert_eq!(asked(), 2);
        let event = |body: &str| format!(r#"{{"id":"1","event":{body}}}"#);
        apply(
            &cache,
            event(r#"{"type":"device-token-revoked","endpointId":"ep","tokenId":"id-one"}"#)
                .as_bytes(),
        );
        cache.resolve("v", "one").await.unwrap();
        cache.resolve("v", "two").await.unwrap();
        assert_eq!(asked(), 3, "only the revoked token is asked again");
        apply(
            &cache,
            event(r#"{"type":"block-committed","datasetId":"did","blockHash":"x","sequenceNumber":1}"#)
                .as_bytes(),
        );
        cache.resolve("v", "two").await.unwrap();
        assert_eq!(asked(), 3, "other events change nothing");
        apply(
            &cache,
            event(r#"{"type":"dataset-renamed","datasetId":"did","oldAlias":"a","newAlias":"b"}"#)
                .as_bytes(),
        );
        cache.resolve("v", "two").await.unwrap();
        assert_eq!(asked(), 4, "a rename forgets everything");
        apply(&cache, b"not json");
        cache.resolve("v", "two").await.unwrap();
        assert_eq!(asked(), 5, "an undecodable event forgets everything");
        apply(
            &cache,
            event(r#"{"type":"device-binding-changed","applicationId":"app"}"#).as_bytes(),
        );
        cache.resolve("v", "two").await.unwrap();
        assert_eq!(asked(), 6);
    }
}
