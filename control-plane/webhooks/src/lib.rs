//! weir-webhooks: webhooks on dataset events. Subscriptions (to one dataset, or to every
//! dataset of an account) name the event types they want (`model::EventType`, after the ODF
//! spec's `sink-webhook-dataset-events` example); each matching event becomes a delivery kept
//! with its history; deliveries are signed with HTTP Message Signatures (RFC 9421, HMAC-SHA256
//! with a secret shown once; `sign`), sent only to http(s) targets outside loopback and private
//! networks unless the operator allows them (`target`), and a subscription is disabled, with
//! its reason, after N consecutive failures (`deliver`).
//!
//! The store (`repository`, `sql` on the metastore's database, migrations 300+) has one
//! contract suite. The control plane runs deliveries as tasks of its flow system. Must not
//! depend on ODF, storage or the bus.

pub mod deliver;
pub mod model;
pub mod repository;
pub mod sign;
pub mod sql;
pub mod target;

pub use model::*;
pub use repository::WebhookRepository;
pub use sql::SqlWebhooks;
