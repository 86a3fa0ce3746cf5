//! The scaling policy: how many workers a pool should run now. Pure: no I/O, no clock.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A pool's bounds.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolPolicy {
    pub min_replicas: u32,
    pub max_replicas: u32,
    /// Tasks one worker runs at once.
    pub concurrency: u32,
    /// How long demand must stay below the running workers before they are scaled down.
    pub idle: Duration,
    /// First pause after workers are found unschedulable; doubled while they stay so.
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
}

/// What the pool's workers look like now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Observed {
    /// Workers asked for (a Deployment's `spec.replicas`, processes started).
    pub replicas: u32,
    /// Workers ready to take tasks.
    pub ready: u32,
    /// Workers that exist (pods, running or not); they count against a quota.
    pub existing: u32,
    /// Workers that cannot be placed (pods the scheduler marked unschedulable).
    pub unschedulable: u32,
}

/// What the policy remembers between rounds (kept in the pool's status).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Memory {
    /// The last time the demand needed at least the workers that ran (epoch milliseconds).
    pub last_busy_millis: Option<i64>,
    /// No scaling up before this (epoch milliseconds).
    pub backoff_until_millis: Option<i64>,
    pub backoff_millis: u64,
}

/// Why the decision is what it is (a status condition's reason).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    Steady,
    ScaledUp,
    ScaledDown,
    /// Demand fell, but the idle period has not passed yet.
    Holding,
    /// Workers cannot be scheduled: no more are added until the backoff ends.
    BackingOff,
    /// The demand wants more than `maxReplicas`.
    AtMaximum,
    /// The namespace's ResourceQuota leaves room for fewer workers than the demand wants.
    QuotaLimited,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Steady => "Steady",
            Self::ScaledUp => "ScaledUp",
            Self::ScaledDown => "ScaledDown",
            Self::Holding => "Holding",
            Self::BackingOff => "BackingOff",
            Self::AtMaximum => "AtMaximum",
            Self::QuotaLimited => "QuotaLimited",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub replicas: u32,
    /// Workers the demand alone asks for (before bounds, capacity and backoff).
    pub wanted: u32,
    pub reason: Reason,
    pub memory: Memory,
}

/// Workers the queue needs: queued and leased tasks ÷ per-worker concurrency, rounded up.
pub fn workers_for(queued: u64, leased: u64, concurrency: u32) -> u32 {
    let tasks = queued.saturating_add(leased);
    let per_worker = u64::from(concurrency.max(1));
    u32::try_from(tasks.div_ceil(per_worker)).unwrap_or(u32::MAX)
}

/// Decides the replicas of a pool.
///
/// `capacity` is how many workers the namespace's quota admits in all (none: unbounded).
pub fn decide(
    policy: &PoolPolicy,
    queued: u64,
    leased: u64,
    observed: Observed,
    capacity: Option<u32>,
    memory: Memory,
    now_millis: i64,
) -> Decision {
    let wanted = workers_for(queued, leased, policy.concurrency);
    let mut memory = memory;
    let mut reason = Reason::Steady;

    let mut target = wanted.max(policy.min_replicas);
    if target > policy.max_replicas {
        target = policy.max_replicas;
        reason = Reason::AtMaximum;
    }
    if let Some(capacity) = capacity
        && target > capacity
    {
        target = capacity;
        reason = Reason::QuotaLimited;
    }

    let current = observed.replicas;
    if target >= current || memory.last_busy_millis.is_none() {
        memory.last_busy_millis = Some(now_millis);
    }

    // Unschedulable workers: wait before adding more, longer each time it happens again.
    if observed.unschedulable > 0 {
        let backing_off = memory
            .backoff_until_millis
            .is_some_and(|until| now_millis < until);
        if !backing_off {
            let next = if memory.backoff_millis == 0 {
                policy.initial_backoff.as_millis() as u64
            } else {
                memory.backoff_millis.saturating_mul(2)
            }
            .min(policy.max_backoff.as_millis() as u64);
            memory.backoff_millis = next;
            memory.backoff_until_millis = Some(now_millis.saturating_add(next as i64));
        }
    } else {
        memory.backoff_millis = 0;
        memory.backoff_until_millis = None;
    }
    let backing_off = memory
        .backoff_until_millis
        .is_some_and(|until| now_millis < until);

    let replicas = if target > current {
        if backing_off {
            reason = Reason::BackingOff;
            current
        } else {
            if reason == Reason::Steady {
                reason = Reason::ScaledUp;
            }
            target
        }
    } else if target < current {
        let idle_since = memory.last_busy_millis.unwrap_or(now_millis);
        let idle_for = now_millis.saturating_sub(idle_since);
        let over_bounds =
            current > policy.max_replicas || capacity.is_some_and(|capacity| current > capacity);
        if over_bounds && reason != Reason::Steady {
            // The maximum or the quota was lowered: down at once, saying which.
            target
        } else if idle_for >= policy.idle.as_millis() as i64 || over_bounds {
            reason = Reason::ScaledDown;
            target
        } else {
            reason = Reason::Holding;
            current
        }
    } else {
        if backing_off {
            reason = Reason::BackingOff;
        }
        target
    };
    Decision {
        replicas,
        wanted,
        reason,
        memory,
    }
}

#[cfg(test)]
mod tests;
