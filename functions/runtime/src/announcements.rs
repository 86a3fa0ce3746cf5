//! Task announcements watched without being taken, for watchers of demand (the engine
//! provisioner) rather than executors of tasks.
//!
//! The announcement stream is a work queue: each message goes to the one consumer of its
//! kind's subject, the executors' (see `task`). A second consumer would be refused, or would take
//! announcements away from the workers. A plain NATS subscription to the same subjects sees every
//! announcement as it is published and takes nothing.

use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt};
use tokio::sync::Notify;
use weir_tasks::doorbell;

use crate::task::DoorbellConfig;

/// Yields once per announcement of a queued task of any kind; announcements that arrive while
/// the previous item is not yet taken come out as one. Reconnects after failures (the watcher's
/// own polling covers the time it is away). Dropping the stream stops the subscription.
pub fn watch(config: DoorbellConfig) -> impl Stream<Item = ()> + Send + 'static {
    let seen = Arc::new(Notify::new());
    let subscription = AbortOnDrop(tokio::spawn(subscribe(config, seen.clone())));
    futures::stream::unfold((seen, subscription), |(seen, subscription)| async move {
        seen.notified().await;
        Some(((), (seen, subscription)))
    })
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn subscribe(config: DoorbellConfig, seen: Arc<Notify>) {
    loop {
        if let Err(error) = subscription(&config, &seen).await {
            tracing::warn!(%error, url = %config.url, "task announcements unavailable; polling meanwhile");
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
}

async fn subscription(
    config: &DoorbellConfig,
    seen: &Notify,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let client = async_nats::connect(&config.url).await?;
    let mut announcements = client
        .subscribe(doorbell::all_subjects(&config.prefix))
        .await?;
    // The subscription is registered once the server has seen it; announcements from then on
    // reach us.
    client.flush().await?;
    tracing::info!(url = %config.url, "watching task announcements");
    while announcements.next().await.is_some() {
        seen.notify_one();
    }
    Err("the NATS subscription ended".into())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use futures::StreamExt;

    use super::watch;
    use crate::task::DoorbellConfig;

    /// The test suite's NATS server (`local/test` starts it).
    fn nats_url() -> String {
        "nats://127.0.0.1:4222".to_string()
    }

    /// Against the real NATS server: an announcement published on the work-queue stream (as the
    /// control plane rings) is seen by the watcher, and is still there for the executors'
    /// consumer afterwards.
    #[tokio::test]
    async fn announcements_are_seen_without_being_taken() {
        use async_nats::jetstream::{self, consumer::pull, stream};
        let prefix = format!("watch{}", std::process::id());
        let client = async_nats::connect(nats_url()).await.expect("NATS runs");
        let jetstream = jetstream::new(client);
        let stream = jetstream
            .get_or_create_stream(stream::Config {
                name: weir_tasks::doorbell::stream_name(&prefix),
                subjects: vec![weir_tasks::doorbell::all_subjects(&prefix)],
                retention: stream::RetentionPolicy::WorkQueue,
                ..Default::default()
            })
            .await
            .unwrap();
        let mut watched = Box::pin(watch(DoorbellConfig {
            url: nats_url(),
            prefix: prefix.clone(),
        }));
        let subject = weir_tasks::doorbell::subject(&prefix, weir_tasks::TaskKind::Transform);
        // Publish until the watcher has subscribed and sees one (it subscribes in the background).
        let mut published = 0;
        let seen = loop {
            jetstream
                .publish(subject.clone(), bytes::Bytes::new())
                .await
                .unwrap()
                .await
                .unwrap();
            published += 1;
            if let Ok(item) = tokio::time::timeout(Duration::from_millis(500), watched.next()).await
            {
                break item;
            }
            assert!(published < 20, "the watcher never saw an announcement");
        };
        assert_eq!(seen, Some(()));
        let consumer: jetstream::consumer::PullConsumer = stream
            .get_or_create_consumer(
                "executors",
                pull::Config {
                    durable_name: Some("executors".to_string()),
                    filter_subject: subject,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let info = consumer.cached_info();
        assert_eq!(
            info.num_pending, published,
            "every announcement is still there for the executors"
        );
        drop(watched);
        jetstream
            .delete_stream(weir_tasks::doorbell::stream_name(&prefix))
            .await
            .unwrap();
    }
}
