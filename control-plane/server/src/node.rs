//! Assembles the control plane from its config: metastore, storage, bus, services, and the
//! background loops (leader election, outbox relay, event consumer, repair).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use ed25519_dalek::SigningKey;
use futures::StreamExt;
use weir_dataset::DatasetStore;
use weir_events::{BusError, EventBus, EventEnvelope, InProcessEventBus, NatsEventBus, WeirEvent};
use weir_function_runtime::{AccessPolicy, Caller, CommitNotifier};
use weir_metastore::{Account, Metastore, SqlMetastore, Visibility};

use crate::auth::TokenSigner;
use crate::config::{BusConfig, ControlPlaneConfig, parse_seed};
use crate::error::ServiceError;
use crate::indexer::Indexer;
use crate::leader::Leadership;
use crate::services::access::ControlPlaneAccessPolicy;
use crate::services::{AccessService, AccountService, DatasetService};

pub struct ControlPlane {
    pub config: ControlPlaneConfig,
    pub sql: SqlMetastore,
    pub metastore: Arc<dyn Metastore>,
    pub store: DatasetStore,
    pub bus: Arc<dyn EventBus>,
    pub accounts: Arc<AccountService>,
    pub access: Arc<AccessService>,
    pub datasets: Arc<DatasetService>,
    pub indexer: Arc<Indexer>,
    pub leadership: Leadership,
    pub admin: Account,
    pub outbox_wake: Arc<tokio::sync::Notify>,
    pub flows: Arc<weir_flows::FlowService>,
    pub devices: Arc<dyn weir_device_registry::DeviceRegistry>,
    pub webhooks: Arc<dyn weir_webhooks::WebhookRepository>,
}

impl ControlPlane {
    /// Connects everything, creates the admin account on first start and spawns the
    /// background loops. Fails with a message naming what could not start.
    pub async fn start(config: ControlPlaneConfig) -> Result<Arc<Self>, String> {
        let sql = SqlMetastore::connect(&config.database_url)
            .await
            .map_err(|error| format!("metastore: {error}"))?;
        let metastore: Arc<dyn Metastore> = Arc::new(sql.clone());
        let store = config
            .storage
            .open()
            .map_err(|error| format!("storage: {error}"))?;
        let bus: Arc<dyn EventBus> = match &config.bus {
            BusConfig::InProcess { prefix } => Arc::new(InProcessEventBus::new(prefix)),
            BusConfig::Nats { url, prefix } => Arc::new(
                NatsEventBus::connect(url, prefix)
                    .await
                    .map_err(|error| format!("event bus: {error}"))?,
            ),
        };
        let signing_key = match &config.auth.signing_key {
            Some(hex) => SigningKey::from_bytes(&parse_seed(hex, "auth.signing_key")?),
            None => SigningKey::from_bytes(&rand::random::<[u8; 32]>()),
        };
        let default_visibility = Visibility::parse(&config.default_visibility).ok_or_else(|| {
            format!(
                "invalid config key `default_visibility`: expected `private` or `public`, got `{}`",
                config.default_visibility
            )
        })?;
        let accounts = Arc::new(AccountService::new(
            metastore.clone(),
            TokenSigner::new(signing_key),
            config.auth.clone(),
        ));
        let access = Arc::new(AccessService::new(
            metastore.clone(),
            Duration::from_secs(config.auth.permission_cache_seconds),
        ));
        let indexer = Arc::new(Indexer::new(store.clone(), metastore.clone()));
        let outbox_wake = Arc::new(tokio::sync::Notify::new());
        let datasets = Arc::new(DatasetService {
            store: store.clone(),
            metastore: metastore.clone(),
            access: access.clone(),
            accounts: accounts.clone(),
            indexer: indexer.clone(),
            default_visibility,
            polling: config.polling.clone(),
            outbox_wake: outbox_wake.clone(),
        });
        let admin = accounts
            .bootstrap_admin()
            .await
            .map_err(|error| format!("admin account: {error}"))?;
        let instance_id = config
            .instance_id
            .clone()
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let mut flows = crate::flows::open_store(&sql, &config).await?;
        flows.default_gc =
            weir_flows::FlowConfig::default_gc(Duration::from_secs(config.sweep_interval_seconds));
        let devices = weir_device_registry::SqlDeviceRegistry::open(&sql)
            .await
            .map_err(|error| format!("device registry: {error}"))?;
        let webhooks = weir_webhooks::SqlWebhooks::open(&sql)
            .await
            .map_err(|error| format!("webhooks: {error}"))?;
        let control_plane = Arc::new(Self {
            webhooks: Arc::new(webhooks),
            flows: Arc::new(flows),
            devices: Arc::new(devices),
            leadership: Leadership::new(instance_id),
            config,
            sql,
            metastore,
            store,
            bus,
            accounts,
            access,
            datasets,
            indexer,
            admin,
            outbox_wake,
        });
        control_plane.spawn_background_loops().await?;
        Ok(control_plane)
    }

    async fn spawn_background_loops(self: &Arc<Self>) -> Result<(), String> {
        tokio::spawn(
            self.leadership
                .clone()
                .run(self.metastore.clone(), self.config.leader_lease_millis),
        );
        let leadership = self.leadership.clone();
        tokio::spawn(crate::outbox::run_relay(
            self.metastore.clone(),
            self.bus.clone(),
            move || leadership.is_leader(),
            self.outbox_wake.clone(),
        ));
        let events = self
            .bus
            .subscribe(None, ">")
            .await
            .map_err(|error| format!("event bus: {error}"))?;
        tokio::spawn(self.clone().consume_events(events));
        tokio::spawn(self.clone().repair_loop());
        crate::flows::spawn(self).await?;
        Ok(())
    }

    /// Handles each event, then acknowledges it; one whose handling failed is delivered again
    /// after a pause.
    async fn consume_events(self: Arc<Self>, mut events: weir_events::EventStream) {
        while let Some(item) = events.next().await {
            match item {
                Ok(delivery) => {
                    let settled = match self.handle_event(&delivery.envelope).await {
                        Ok(()) => delivery.ack().await,
                        Err(error) => {
                            tracing::warn!(%error, "handling an event failed; it comes again");
                            delivery.nak(Duration::from_secs(1)).await
                        }
                    };
                    if let Err(error) = settled {
                        tracing::warn!(%error, "cannot settle an event; the bus delivers it again");
                    }
                }
                Err(BusError::Lagged(missed)) => {
                    tracing::warn!(missed, "event consumer lagged, rescanning storage");
                    self.access.invalidate_all();
                    if let Err(error) = self.indexer.index_all().await {
                        tracing::warn!(%error, "rescan failed");
                    }
                }
                Err(error) => tracing::warn!(%error, "bad event"),
            }
        }
        tracing::warn!("event stream ended");
    }

    async fn handle_event(&self, envelope: &EventEnvelope) -> Result<(), ServiceError> {
        match &envelope.event {
            WeirEvent::BlockCommitted { dataset_id, .. } => {
                // An id that does not parse never will: nothing to do again.
                let Ok(id) = dataset_id.parse::<weir_odf::DatasetId>() else {
                    return Ok(());
                };
                self.indexer.index_dataset(&id).await?;
            }
            WeirEvent::TokenRevoked { token_id, .. } => self.accounts.note_revoked(token_id),
            WeirEvent::VisibilityChanged { dataset_id, .. }
            | WeirEvent::RoleChanged { dataset_id, .. }
            | WeirEvent::DatasetDeleted { dataset_id, .. }
            | WeirEvent::DatasetRenamed { dataset_id, .. } => {
                self.access.invalidate_dataset(dataset_id)
            }
            WeirEvent::DatasetCreated { .. }
            | WeirEvent::DeviceTokenRevoked { .. }
            | WeirEvent::DeviceBindingChanged { .. }
            | WeirEvent::IssueOpened { .. }
            | WeirEvent::DiscussionOpened { .. }
            | WeirEvent::ThreadChanged { .. }
            | WeirEvent::CommentAdded { .. }
            | WeirEvent::CommentChanged { .. } => {}
        }
        Ok(())
    }

    /// On the leader: index everything at start, then every `repair_interval_seconds`, so
    /// commits whose event was lost are still indexed. (The sweep of storage is the system GC
    /// flow's task.)
    async fn repair_loop(self: Arc<Self>) {
        let interval = Duration::from_secs(self.config.repair_interval_seconds.max(1));
        let mut repaired_once = false;
        loop {
            if self.leadership.is_leader() {
                match self.indexer.index_all().await {
                    Ok(report) if report.blocks > 0 => {
                        tracing::info!(
                            datasets = report.datasets,
                            blocks = report.blocks,
                            "repair indexed missed blocks"
                        )
                    }
                    Ok(_) => {}
                    Err(error) => tracing::warn!(%error, "repair failed"),
                }
                repaired_once = true;
            }
            let wait = if repaired_once {
                interval
            } else {
                Duration::from_millis(200)
            };
            tokio::time::sleep(wait).await;
        }
    }

    /// Flows behind the caller checks REST and GraphQL share.
    pub fn flows_api(&self) -> crate::services::flows::FlowsApi {
        crate::services::flows::FlowsApi {
            flows: self.flows.clone(),
            datasets: self.datasets.clone(),
            access: self.access.clone(),
            metastore: self.metastore.clone(),
        }
    }

    /// The device registry behind the caller checks REST and GraphQL share.
    pub fn devices_api(&self) -> crate::services::devices::DevicesApi {
        crate::services::devices::DevicesApi {
            registry: self.devices.clone(),
            datasets: self.datasets.clone(),
            metastore: self.metastore.clone(),
            outbox_wake: self.outbox_wake.clone(),
        }
    }

    /// Issues and discussions behind the caller checks REST and GraphQL share.
    pub fn governance_api(&self) -> crate::services::governance::GovernanceApi {
        crate::services::governance::GovernanceApi {
            store: Arc::new(self.sql.clone()),
            datasets: self.datasets.clone(),
            metastore: self.metastore.clone(),
            outbox_wake: self.outbox_wake.clone(),
        }
    }

    /// Webhook subscriptions behind the caller checks of REST.
    pub fn webhooks_api(&self) -> crate::services::webhooks::WebhooksApi {
        crate::services::webhooks::WebhooksApi {
            store: self.webhooks.clone(),
            datasets: self.datasets.clone(),
            metastore: self.metastore.clone(),
            config: self.config.webhooks.clone(),
        }
    }

    /// The access policy in-process functions use.
    pub fn access_policy(&self) -> Arc<dyn AccessPolicy> {
        Arc::new(ControlPlaneAccessPolicy {
            accounts: self.accounts.clone(),
            access: self.access.clone(),
        })
    }

    /// Publishes `block-committed` for in-process functions' commits.
    pub fn commit_notifier(&self, source: &str) -> Arc<dyn CommitNotifier> {
        Arc::new(BusCommitNotifier {
            bus: self.bus.clone(),
            source: source.to_string(),
        })
    }
}

struct BusCommitNotifier {
    bus: Arc<dyn EventBus>,
    source: String,
}

#[async_trait]
impl CommitNotifier for BusCommitNotifier {
    async fn block_committed(
        &self,
        _caller: &Caller,
        dataset_id: &str,
        block_hash: &str,
        sequence_number: u64,
    ) {
        let envelope = EventEnvelope::new(
            &self.source,
            None,
            WeirEvent::BlockCommitted {
                dataset_id: dataset_id.to_string(),
                block_hash: block_hash.to_string(),
                sequence_number,
            },
        );
        if let Err(error) = self.bus.publish(&envelope).await {
            tracing::warn!(%dataset_id, %error, "cannot publish block-committed; repair will index it");
        }
    }
}
