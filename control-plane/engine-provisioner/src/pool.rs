//! The boundary the scaling policy drives: a set of workers that can be observed and resized.

use async_trait::async_trait;

use crate::demand::DemandSource;
use crate::error::ProvisionError;
pub use crate::scale::Observed;
use crate::scale::{Decision, Memory, PoolPolicy, decide};

#[async_trait]
pub trait WorkerPool: Send + Sync {
    /// What runs now.
    async fn observe(&self) -> Result<Observed, ProvisionError>;
    /// Asks for `replicas` workers (started or stopped by the implementation).
    async fn scale(&self, replicas: u32) -> Result<(), ProvisionError>;
    /// How many workers the environment admits in all (a quota); none: unbounded.
    async fn capacity(&self, _observed: &Observed) -> Result<Option<u32>, ProvisionError> {
        Ok(None)
    }
}

/// What one round saw and decided.
#[derive(Debug, Clone)]
pub struct Round {
    pub decision: Decision,
    pub observed: Observed,
    pub demand: crate::Demand,
    pub capacity: Option<u32>,
}

/// One round: reads the demand and the pool, decides, and asks the pool for the decided
/// replicas (every round, so a pool converges on changes of its template too; asking for what
/// runs changes nothing). Without a demand reading nothing changes.
pub async fn autoscale(
    pool: &dyn WorkerPool,
    demand: &dyn DemandSource,
    task_kinds: &[String],
    policy: &PoolPolicy,
    memory: Memory,
    now_millis: i64,
) -> Result<Round, ProvisionError> {
    let depth = demand.demand(task_kinds).await?;
    let observed = pool.observe().await?;
    let capacity = pool.capacity(&observed).await?;
    let decision = decide(
        policy,
        depth.queued,
        depth.leased,
        observed,
        capacity,
        memory,
        now_millis,
    );
    pool.scale(decision.replicas).await?;
    Ok(Round {
        decision,
        observed,
        demand: depth,
        capacity,
    })
}
