//! weir-events: the event bus every Weir component talks through. Events (dataset created, block
//! committed, ...) travel in an envelope with id, correlation id, timestamp and source, on
//! subjects of the grammar in `docs/protocols/events.md`.
//!
//! Two buses with one contract (`tests/bus_contract.rs`): NATS JetStream for deployments and an
//! in-process bus for `weir up`. Delivery is at least once; consumers must be idempotent.
//!
//! Must not depend on storage, the metastore or HTTP: producers and consumers depend on it.

pub mod bus;
pub mod envelope;
pub mod in_process;
pub mod nats;
pub mod task_doorbell;

pub use bus::{Acknowledge, BusError, Delivery, EventBus, EventStream};
pub use envelope::{EventEnvelope, WeirEvent};
pub use in_process::InProcessEventBus;
pub use nats::NatsEventBus;
pub use task_doorbell::{NatsTaskDoorbell, SqsAnnouncementConfig, SqsTaskDoorbell};
