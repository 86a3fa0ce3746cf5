//! Leader election over a lease row in the metastore (works on PostgreSQL and SQLite alike):
//! the holder renews it every third of its lifetime; when the holder dies, a standby takes it
//! once it expires. Singleton loops (outbox relay, repair) run only on the leader.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use weir_metastore::Metastore;

pub const LEASE_NAME: &str = "control-plane-leader";

#[derive(Clone)]
pub struct Leadership {
    pub instance_id: String,
    is_leader: Arc<AtomicBool>,
}

impl Leadership {
    pub fn new(instance_id: String) -> Self {
        Self {
            instance_id,
            is_leader: Arc::new(AtomicBool::new(false)),
        }
    }

    pub fn is_leader(&self) -> bool {
        self.is_leader.load(Ordering::Relaxed)
    }

    /// Campaigns forever. Losing the database counts as losing the lease.
    pub async fn run(self, metastore: Arc<dyn Metastore>, lease_millis: u64) {
        let period = Duration::from_millis((lease_millis / 3).max(50));
        loop {
            let now = chrono::Utc::now().timestamp_millis();
            let held = match metastore
                .try_acquire_lease(LEASE_NAME, &self.instance_id, now, lease_millis as i64)
                .await
            {
                Ok(held) => held,
                Err(error) => {
                    tracing::warn!(%error, "cannot renew leader lease");
                    false
                }
            };
            let was = self.is_leader.swap(held, Ordering::Relaxed);
            if held != was {
                tracing::info!(instance_id = %self.instance_id, leader = held, "leadership changed");
            }
            tokio::time::sleep(period).await;
        }
    }
}
