//! weir-device-registry: the control plane's registry of devices (Kaa's application → version →
//! endpoint, `docs/protocols/devices.md`) and their metering. An application belongs to the
//! account owning its dataset; each version binds the name devices use in their topics to a
//! target dataset; endpoints hold attributes and any number of tokens. Tokens are kept only as
//! SHA3-256 digests. Usage is summed per hour and endpoint; quotas are per account.
//!
//! Domain (`model`), store trait (`repository`) and its sqlx implementation (`sql`, on the
//! metastore's database) are separate. It must not depend on ODF, storage, HTTP or the bus: the
//! control plane wires it to them (events go through the metastore's outbox).

pub mod error;
pub mod model;
pub mod repository;
pub mod sql;

pub use error::{DeviceError, DeviceResult};
pub use model::*;
pub use repository::DeviceRegistry;
pub use sql::SqlDeviceRegistry;
