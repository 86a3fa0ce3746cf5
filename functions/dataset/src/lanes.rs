//! In-process coordination of writers to one dataset: a commit lane (one writer at a time
//! places and commits, so writers in one process never lose compare-and-swap races to each
//! other) and a cache of loaded chains (a reload reads only the blocks added since).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};
use weir_odf::DatasetId;

use crate::dataset::ChainSnapshot;

/// Most chains kept in memory; past it, any entry may go (it is only a cache).
const MAX_CACHED_CHAINS: usize = 256;

#[derive(Default)]
pub(crate) struct DatasetLanes {
    lanes: Mutex<HashMap<DatasetId, Arc<AsyncMutex<()>>>>,
    chains: Mutex<HashMap<DatasetId, ChainSnapshot>>,
}

/// Held while a writer places its records after the head and commits them.
pub struct CommitLane {
    _guard: OwnedMutexGuard<()>,
}

impl DatasetLanes {
    pub(crate) async fn enter(&self, id: &DatasetId) -> CommitLane {
        let lane = {
            let mut lanes = self.lanes.lock().expect("lanes lock");
            // Lanes nobody holds or waits for are dropped as others are made.
            lanes.retain(|_, lane| Arc::strong_count(lane) > 1);
            lanes.entry(*id).or_default().clone()
        };
        CommitLane {
            _guard: lane.lock_owned().await,
        }
    }

    pub(crate) fn cached_chain(&self, id: &DatasetId) -> Option<ChainSnapshot> {
        self.chains.lock().expect("chains lock").get(id).cloned()
    }

    pub(crate) fn cache_chain(&self, id: &DatasetId, chain: &ChainSnapshot) {
        let mut chains = self.chains.lock().expect("chains lock");
        if chains.len() >= MAX_CACHED_CHAINS
            && !chains.contains_key(id)
            && let Some(evicted) = chains.keys().next().copied()
        {
            chains.remove(&evicted);
        }
        chains.insert(*id, chain.clone());
    }
}
