use std::time::Duration;

use super::*;

fn policy() -> PoolPolicy {
    PoolPolicy {
        min_replicas: 0,
        max_replicas: 4,
        concurrency: 2,
        idle: Duration::from_secs(60),
        initial_backoff: Duration::from_secs(10),
        max_backoff: Duration::from_secs(40),
    }
}

fn running(replicas: u32) -> Observed {
    Observed {
        replicas,
        ready: replicas,
        existing: replicas,
        unschedulable: 0,
    }
}

const T: i64 = 1_000_000;

#[test]
fn workers_round_tasks_up_by_concurrency() {
    assert_eq!(workers_for(0, 0, 2), 0);
    assert_eq!(workers_for(1, 0, 2), 1);
    assert_eq!(workers_for(2, 1, 2), 2);
    assert_eq!(workers_for(5, 0, 0), 5, "concurrency 0 counts as 1");
    assert_eq!(workers_for(u64::MAX, u64::MAX, 1), u32::MAX);
}

#[test]
fn scales_up_from_zero_to_the_demand_within_the_maximum() {
    let decision = decide(&policy(), 3, 0, running(0), None, Memory::default(), T);
    assert_eq!((decision.replicas, decision.reason), (2, Reason::ScaledUp));
    let decision = decide(&policy(), 30, 4, running(2), None, decision.memory, T + 1);
    assert_eq!(decision.wanted, 17);
    assert_eq!((decision.replicas, decision.reason), (4, Reason::AtMaximum));
}

#[test]
fn keeps_the_minimum_without_demand() {
    let policy = PoolPolicy {
        min_replicas: 1,
        ..policy()
    };
    let decision = decide(&policy, 0, 0, running(0), None, Memory::default(), T);
    assert_eq!(decision.replicas, 1);
    let later = decide(
        &policy,
        0,
        0,
        running(1),
        None,
        decision.memory,
        T + 3_600_000,
    );
    assert_eq!((later.replicas, later.reason), (1, Reason::Steady));
}

#[test]
fn holds_workers_until_idle_then_scales_to_zero() {
    let busy = decide(&policy(), 4, 0, running(2), None, Memory::default(), T);
    assert_eq!(busy.replicas, 2);
    // The queue empties: the workers stay for the idle period.
    let held = decide(&policy(), 0, 0, running(2), None, busy.memory, T + 59_999);
    assert_eq!((held.replicas, held.reason), (2, Reason::Holding));
    let gone = decide(&policy(), 0, 0, running(2), None, held.memory, T + 60_000);
    assert_eq!((gone.replicas, gone.reason), (0, Reason::ScaledDown));
}

#[test]
fn new_demand_during_the_idle_period_restarts_it() {
    let busy = decide(&policy(), 4, 0, running(2), None, Memory::default(), T);
    let quiet = decide(&policy(), 1, 0, running(2), None, busy.memory, T + 50_000);
    assert_eq!(quiet.reason, Reason::Holding);
    let again = decide(&policy(), 3, 1, running(2), None, quiet.memory, T + 55_000);
    assert_eq!(again.replicas, 2);
    let still = decide(&policy(), 1, 0, running(2), None, again.memory, T + 100_000);
    assert_eq!(
        still.reason,
        Reason::Holding,
        "idle counts from the last busy round"
    );
    let down = decide(&policy(), 1, 0, running(2), None, still.memory, T + 115_000);
    assert_eq!((down.replicas, down.reason), (1, Reason::ScaledDown));
}

#[test]
fn a_lowered_maximum_or_quota_applies_at_once() {
    let busy = decide(&policy(), 8, 0, running(4), None, Memory::default(), T);
    let lowered = PoolPolicy {
        max_replicas: 2,
        ..policy()
    };
    let decision = decide(&lowered, 8, 0, running(4), None, busy.memory, T + 1);
    assert_eq!(decision.replicas, 2);
    let decision = decide(&policy(), 8, 0, running(4), Some(3), busy.memory, T + 1);
    assert_eq!(
        (decision.replicas, decision.reason),
        (3, Reason::QuotaLimited)
    );
}

#[test]
fn unschedulable_workers_back_off_doubling_up_to_the_maximum() {
    let pending = Observed {
        replicas: 2,
        ready: 1,
        existing: 2,
        unschedulable: 1,
    };
    let first = decide(&policy(), 8, 0, pending, None, Memory::default(), T);
    assert_eq!((first.replicas, first.reason), (2, Reason::BackingOff));
    assert_eq!(first.memory.backoff_millis, 10_000);
    // Within the backoff: still no growth, and the backoff is not extended.
    let within = decide(&policy(), 8, 0, pending, None, first.memory, T + 5_000);
    assert_eq!(within.replicas, 2);
    assert_eq!(
        (
            within.memory.backoff_until_millis,
            within.memory.backoff_millis
        ),
        (
            first.memory.backoff_until_millis,
            first.memory.backoff_millis
        )
    );
    // Still unschedulable when it ends: the next backoff is twice as long...
    let second = decide(&policy(), 8, 0, pending, None, within.memory, T + 10_000);
    assert_eq!(second.memory.backoff_millis, 20_000);
    assert_eq!(second.replicas, 2);
    let third = decide(&policy(), 8, 0, pending, None, second.memory, T + 30_000);
    let fourth = decide(&policy(), 8, 0, pending, None, third.memory, T + 70_000);
    assert_eq!(
        fourth.memory.backoff_millis, 40_000,
        "capped at max_backoff"
    );
    // ...and once the workers are placed, scaling up resumes at once.
    let placed = decide(&policy(), 8, 0, running(2), None, fourth.memory, T + 71_000);
    assert_eq!((placed.replicas, placed.reason), (4, Reason::ScaledUp));
    assert_eq!(placed.memory.backoff_until_millis, None);
}

#[test]
fn backoff_does_not_stop_scaling_down() {
    let pending = Observed {
        replicas: 3,
        ready: 1,
        existing: 3,
        unschedulable: 2,
    };
    let memory = Memory {
        last_busy_millis: Some(T),
        ..Memory::default()
    };
    let decision = decide(&policy(), 0, 0, pending, None, memory, T + 60_000);
    assert_eq!(
        (decision.replicas, decision.reason),
        (0, Reason::ScaledDown)
    );
}
