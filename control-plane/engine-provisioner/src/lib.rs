//! The engine provisioner: runs as many transform workers as the flows' task queue needs.
//! Must not depend on the control plane's crates, the metastore or storage: it reads demand over
//! HTTP (`GET /tasks/depth`). The only crate of the workspace that uses `kube`.
//!
//! - `scale`: the policy, a pure function of demand, what runs, capacity and time (replicas =
//!   queued + leased tasks ÷ per-worker concurrency within min/max; hold until idle before
//!   scaling down, to zero included; back off while workers cannot be scheduled).
//! - `demand`: the task queue's depth, from the control plane.
//! - `pool`: the `WorkerPool` trait the policy drives; `local` implements it with processes
//!   (for `weir up`), and with the `kubernetes` feature `kubernetes::workers` with a Deployment.
//! - `kubernetes` (feature): the `EnginePool` custom resource, its controller (reconcile with
//!   server-side apply, owner references, a finalizer and status conditions), ResourceQuota
//!   capacity, and leader election on a `coordination.k8s.io` Lease.

pub mod demand;
pub mod error;
pub mod local;
pub mod pool;
pub mod quantity;
pub mod scale;

#[cfg(feature = "kubernetes")]
pub mod kubernetes;

pub use demand::{ControlPlaneDemand, Demand, DemandError, DemandSource};
pub use error::ProvisionError;
pub use pool::{Observed, Round, WorkerPool, autoscale};
pub use scale::{Decision, Memory, PoolPolicy, Reason, decide};
