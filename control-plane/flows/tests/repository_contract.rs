//! The contract suite of `FlowRepository` and `TaskRepository`, run against SQLite (a temporary
//! file) and PostgreSQL (a fresh database per test on `WEIR_TEST_POSTGRES_URL`).

use std::sync::Arc;

use weir_flows::model::{FlowConfig, FlowKey, FlowType, StopPolicy, Trigger};
use weir_flows::repository::{MergePlan, Resolution, RunFilter};
use weir_flows::run::{Cause, Priority, RunOutcome, RunStatus, WaitReason};
use weir_flows::{FlowError, FlowRepository, SqlFlowStore, TaskRepository};
use weir_metastore::SqlMetastore;
use weir_tasks::TaskKind;

struct Store {
    store: Arc<SqlFlowStore>,
    _directory: Option<tempfile::TempDir>,
}

async fn sqlite() -> Store {
    let directory = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", directory.path().join("meta.db").display());
    let metastore = SqlMetastore::connect(&url).await.unwrap();
    Store {
        store: Arc::new(SqlFlowStore::open(&metastore).await.unwrap()),
        _directory: Some(directory),
    }
}

async fn postgres() -> Store {
    use sqlx::Connection;
    let admin_url = std::env::var("WEIR_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string());
    sqlx::any::install_default_drivers();
    let mut admin = sqlx::AnyConnection::connect(&admin_url)
        .await
        .expect("postgresql must run for the contract suite (see local/test)");
    let database = format!("weir_test_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(&format!("CREATE DATABASE {database}"))
        .execute(&mut admin)
        .await
        .unwrap();
    let base = admin_url.rsplit_once('/').unwrap().0;
    let metastore = SqlMetastore::connect(&format!("{base}/{database}"))
        .await
        .unwrap();
    let store = SqlFlowStore::open(&metastore).await.unwrap();
    // Opening twice applies nothing twice.
    SqlFlowStore::open(&metastore).await.unwrap();
    Store {
        store: Arc::new(store),
        _directory: None,
    }
}

macro_rules! contract_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite_backend {
            $(#[tokio::test] async fn $name() { super::$name(super::sqlite().await).await })*
        }
        mod postgres_backend {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() { super::$name(super::postgres().await).await })*
        }
    };
}

contract_tests!(
    bindings,
    causes_merge_into_one_pending_run,
    buffering_threshold_makes_a_run_due,
    runs_of_one_flow_never_overlap,
    priorities_then_fifo,
    leases_expire_and_are_taken_again,
    retries_failures_and_stop,
    cancelling,
    history_pages,
    pausing_aborts_waiting_runs,
    concurrent_leases_take_each_task_once,
);

const T0: i64 = 1_000_000;

fn key(name: &str) -> FlowKey {
    FlowKey::new(format!("did:odf:{name}"), FlowType::Transform)
}

fn manual_config() -> FlowConfig {
    FlowConfig {
        trigger: Trigger::Manual,
        retry: None,
        stop: StopPolicy::Never,
        compaction: None,
    }
}

fn plan(cause: Cause, due_at: i64) -> MergePlan {
    MergePlan {
        cause,
        due_at,
        wait_reason: WaitReason::Executor,
        records: 0,
        due_at_records: None,
    }
}

fn manual(at: i64) -> Cause {
    Cause::Manual {
        account_id: "acc".to_string(),
        at,
    }
}

fn scheduled(at: i64) -> Cause {
    Cause::Schedule { at }
}

fn input(records: u64, at: i64) -> Cause {
    Cause::InputCommitted {
        dataset_id: "did:odf:input".to_string(),
        block_hash: "f1620".to_string(),
        records,
        at,
    }
}

fn success() -> Resolution {
    Resolution::Succeeded(RunOutcome::Success {
        changed: true,
        details: serde_json::json!({"numRecords": 3}),
    })
}

fn failure(retryable: bool) -> RunOutcome {
    RunOutcome::Failed {
        error_kind: "storage".to_string(),
        message: "boom".to_string(),
        retryable,
    }
}

/// Queues and leases the run's task to `executor`; returns the task id.
async fn dispatch_and_lease(store: &SqlFlowStore, run_id: i64, executor: &str, now: i64) -> i64 {
    let task_id = store
        .dispatch(run_id, &serde_json::json!({}), now)
        .await
        .unwrap()
        .expect("dispatched");
    let task = store
        .lease(&[TaskKind::Transform], executor, now, 10_000)
        .await
        .unwrap()
        .expect("leased");
    assert_eq!(task.task_id, task_id);
    assert_eq!(task.run_id, run_id);
    task_id
}

async fn bindings(s: Store) {
    let store = &s.store;
    let a = key("a");
    assert!(store.binding(&a).await.unwrap().is_none());
    store
        .ensure_binding(&a, &FlowConfig::default_transform(), T0)
        .await
        .unwrap();
    let binding = store.binding(&a).await.unwrap().unwrap();
    assert!(!binding.configured && !binding.paused);
    assert_eq!(binding.config, FlowConfig::default_transform());
    store
        .put_config(&a, &manual_config(), T0 + 1)
        .await
        .unwrap();
    // ensure_binding never overwrites a stored flow.
    store
        .ensure_binding(&a, &FlowConfig::default_transform(), T0 + 2)
        .await
        .unwrap();
    let binding = store.binding(&a).await.unwrap().unwrap();
    assert!(binding.configured);
    assert_eq!(binding.config, manual_config());
    store
        .put_config(
            &FlowKey::system(FlowType::Gc),
            &FlowConfig::default_gc(std::time::Duration::from_secs(60)),
            T0,
        )
        .await
        .unwrap();
    assert_eq!(store.bindings(None).await.unwrap().len(), 2);
    assert_eq!(store.bindings(Some("did:odf:a")).await.unwrap().len(), 1);
    assert!(store.delete_config(&a).await.unwrap());
    assert!(!store.delete_config(&a).await.unwrap());
    assert!(store.binding(&a).await.unwrap().is_none());
}

async fn causes_merge_into_one_pending_run(s: Store) {
    let store = &s.store;
    let a = key("a");
    let first = store
        .merge_cause(
            &a,
            &MergePlan {
                wait_reason: WaitReason::Schedule,
                ..plan(scheduled(T0 + 5000), T0 + 5000)
            },
            T0,
        )
        .await
        .unwrap();
    assert_eq!(first.status, RunStatus::Waiting);
    assert_eq!(first.wait_reason, Some(WaitReason::Schedule));
    assert_eq!(first.priority, Priority::Schedule);
    // A manual cause joins it, makes it due now and raises its priority.
    let merged = store
        .merge_cause(&a, &plan(manual(T0 + 1), T0 + 1), T0 + 1)
        .await
        .unwrap();
    assert_eq!(merged.run_id, first.run_id);
    assert_eq!(merged.causes.len(), 2);
    assert_eq!(merged.due_at, Some(T0 + 1));
    assert_eq!(merged.priority, Priority::Manual);
    // A later due time does not postpone it.
    let merged = store
        .merge_cause(&a, &plan(input(1, T0 + 2), T0 + 9000), T0 + 2)
        .await
        .unwrap();
    assert_eq!(merged.due_at, Some(T0 + 1));
    assert_eq!(merged.priority, Priority::Manual);
    // Queued but not started: still the pending run.
    store
        .dispatch(first.run_id, &serde_json::json!({}), T0 + 3)
        .await
        .unwrap()
        .unwrap();
    let merged = store
        .merge_cause(&a, &plan(input(1, T0 + 4), T0 + 4), T0 + 4)
        .await
        .unwrap();
    assert_eq!(merged.run_id, first.run_id);
    assert_eq!(merged.status, RunStatus::Queued);
    assert_eq!(merged.causes.len(), 4);
    // Once running, a new cause starts the next run.
    store
        .lease(&[TaskKind::Transform], "x", T0 + 5, 1000)
        .await
        .unwrap()
        .unwrap();
    let next = store
        .merge_cause(&a, &plan(input(1, T0 + 6), T0 + 6), T0 + 6)
        .await
        .unwrap();
    assert_ne!(next.run_id, first.run_id);
    assert_eq!(next.causes.len(), 1);
    // Another flow has runs of its own.
    let other = store
        .merge_cause(&key("b"), &plan(input(1, T0), T0), T0)
        .await
        .unwrap();
    assert_ne!(other.run_id, next.run_id);
}

async fn buffering_threshold_makes_a_run_due(s: Store) {
    let store = &s.store;
    let a = key("a");
    let buffering = |records, now| MergePlan {
        cause: input(records, now),
        due_at: now + 60_000,
        wait_reason: WaitReason::Batching,
        records,
        due_at_records: Some((10, now)),
    };
    assert_eq!(store.next_due_at().await.unwrap(), None);
    let run = store.merge_cause(&a, &buffering(4, T0), T0).await.unwrap();
    assert_eq!(
        (run.due_at, run.wait_reason),
        (Some(T0 + 60_000), Some(WaitReason::Batching))
    );
    assert_eq!(store.next_due_at().await.unwrap(), Some(T0 + 60_000));
    assert!(store.due_runs(T0 + 100, 10).await.unwrap().is_empty());
    let run = store
        .merge_cause(&a, &buffering(5, T0 + 100), T0 + 100)
        .await
        .unwrap();
    assert_eq!((run.records_awaited, run.due_at), (9, Some(T0 + 60_000)));
    let run = store
        .merge_cause(&a, &buffering(1, T0 + 200), T0 + 200)
        .await
        .unwrap();
    assert_eq!((run.records_awaited, run.due_at), (10, Some(T0 + 200)));
    let due = store.due_runs(T0 + 200, 10).await.unwrap();
    assert_eq!(due.len(), 1);
    // A first cause over the threshold is due at once.
    let run = store
        .merge_cause(&key("b"), &buffering(50, T0), T0)
        .await
        .unwrap();
    assert_eq!(run.due_at, Some(T0));
}

async fn runs_of_one_flow_never_overlap(s: Store) {
    let store = &s.store;
    let a = key("a");
    let first = store
        .merge_cause(&a, &plan(input(1, T0), T0), T0)
        .await
        .unwrap();
    let task = dispatch_and_lease(store, first.run_id, "x", T0).await;
    let second = store
        .merge_cause(&a, &plan(input(1, T0 + 1), T0 + 1), T0 + 1)
        .await
        .unwrap();
    // Due, but the first run is active: throttled without a due time.
    assert!(
        store
            .dispatch(second.run_id, &serde_json::json!({}), T0 + 2)
            .await
            .unwrap()
            .is_none()
    );
    let throttled = store.run(second.run_id).await.unwrap().unwrap();
    assert_eq!(
        (throttled.wait_reason, throttled.due_at),
        (Some(WaitReason::Throttling), None)
    );
    assert!(store.due_runs(T0 + 3, 10).await.unwrap().is_empty());
    // Finishing the first makes it due.
    let finished = store.finish(task, "x", &success(), T0 + 4).await.unwrap();
    assert_eq!(finished.status, RunStatus::Finished);
    assert!(matches!(
        finished.outcome,
        Some(RunOutcome::Success { changed: true, .. })
    ));
    let due = store.due_runs(T0 + 4, 10).await.unwrap();
    assert_eq!(
        due.iter().map(|run| run.run_id).collect::<Vec<_>>(),
        vec![second.run_id]
    );
    assert!(
        store
            .dispatch(second.run_id, &serde_json::json!({}), T0 + 5)
            .await
            .unwrap()
            .is_some()
    );
    // Dispatching twice queues one task.
    assert!(
        store
            .dispatch(second.run_id, &serde_json::json!({}), T0 + 5)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(store.queue_depth(&[]).await.unwrap(), (1, 0));
}

async fn priorities_then_fifo(s: Store) {
    let store = &s.store;
    let mut expected = Vec::new();
    let causes = [
        ("s1", scheduled(T0)),
        ("r1", input(1, T0)),
        ("m1", manual(T0)),
        ("s2", scheduled(T0)),
        ("r2", input(1, T0)),
        ("m2", manual(T0)),
    ];
    for (name, cause) in causes {
        let run = store
            .merge_cause(&key(name), &plan(cause, T0), T0)
            .await
            .unwrap();
        store
            .dispatch(run.run_id, &serde_json::json!({}), T0)
            .await
            .unwrap()
            .unwrap();
    }
    for name in ["m1", "m2", "r1", "r2", "s1", "s2"] {
        expected.push(format!("did:odf:{name}"));
    }
    // Depth counts per kind: all six are transforms.
    assert_eq!(
        store.queue_depth(&[TaskKind::Transform]).await.unwrap(),
        (6, 0)
    );
    assert_eq!(store.queue_depth(&[TaskKind::Gc]).await.unwrap(), (0, 0));
    assert_eq!(
        store
            .queue_depth(&[TaskKind::Ingest, TaskKind::Transform])
            .await
            .unwrap(),
        (6, 0)
    );
    // Other kinds are not taken.
    assert!(
        store
            .lease(&[TaskKind::Gc], "x", T0, 1000)
            .await
            .unwrap()
            .is_none()
    );
    let mut taken = Vec::new();
    while let Some(task) = store
        .lease(&[TaskKind::Gc, TaskKind::Transform], "x", T0, 1000)
        .await
        .unwrap()
    {
        taken.push(task.dataset_id);
    }
    assert_eq!(taken, expected);
    assert_eq!(store.queue_depth(&[]).await.unwrap(), (0, 6));
    assert_eq!(
        store.queue_depth(&[TaskKind::Transform]).await.unwrap(),
        (0, 6)
    );
    assert_eq!(store.queue_depth(&[TaskKind::Reset]).await.unwrap(), (0, 0));
}

async fn leases_expire_and_are_taken_again(s: Store) {
    let store = &s.store;
    let run = store
        .merge_cause(&key("a"), &plan(input(1, T0), T0), T0)
        .await
        .unwrap();
    let task = dispatch_and_lease(store, run.run_id, "dead", T0).await;
    assert_eq!(
        store.run(run.run_id).await.unwrap().unwrap().status,
        RunStatus::Running
    );
    assert!(matches!(
        store.heartbeat(task, "other", T0 + 1, 10_000).await,
        Err(FlowError::LeaseLost(_))
    ));
    assert_eq!(
        store.heartbeat(task, "dead", T0 + 1, 10_000).await.unwrap(),
        T0 + 10_001
    );
    assert_eq!(store.requeue_expired(T0 + 10_000).await.unwrap(), 0);
    assert_eq!(store.requeue_expired(T0 + 10_002).await.unwrap(), 1);
    let run_now = store.run(run.run_id).await.unwrap().unwrap();
    assert_eq!(
        (run_now.status, run_now.wait_reason),
        (RunStatus::Queued, Some(WaitReason::Executor))
    );
    let again = store
        .lease(&[TaskKind::Transform], "alive", T0 + 10_003, 10_000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.task_id, task);
    // The dead executor's late report does not count.
    assert!(matches!(
        store.finish(task, "dead", &success(), T0 + 10_004).await,
        Err(FlowError::LeaseLost(_))
    ));
    assert!(matches!(
        store.held_task(task, "dead").await,
        Err(FlowError::LeaseLost(_))
    ));
    assert_eq!(
        store.held_task(task, "alive").await.unwrap().run_id,
        run.run_id
    );
    // An executor that restarts gives back what it held.
    assert_eq!(store.requeue_held_by("alive").await.unwrap(), 1);
    assert_eq!(store.queue_depth(&[]).await.unwrap(), (1, 0));
    let last = store
        .lease(&[TaskKind::Transform], "alive", T0 + 10_005, 10_000)
        .await
        .unwrap()
        .unwrap();
    store
        .finish(last.task_id, "alive", &success(), T0 + 10_006)
        .await
        .unwrap();
    assert_eq!(store.queue_depth(&[]).await.unwrap(), (0, 0));
}

async fn retries_failures_and_stop(s: Store) {
    let store = &s.store;
    let a = key("a");
    store.put_config(&a, &manual_config(), T0).await.unwrap();
    let run = store
        .merge_cause(&a, &plan(manual(T0), T0), T0)
        .await
        .unwrap();
    let task = dispatch_and_lease(store, run.run_id, "x", T0).await;
    let retrying = store
        .finish(
            task,
            "x",
            &Resolution::Retry {
                due_at: T0 + 500,
                error: failure(true),
            },
            T0 + 1,
        )
        .await
        .unwrap();
    assert_eq!(
        (retrying.status, retrying.due_at),
        (RunStatus::Retrying, Some(T0 + 500))
    );
    assert_eq!(retrying.last_error, Some(failure(true)));
    assert!(store.due_runs(T0 + 499, 10).await.unwrap().is_empty());
    assert_eq!(store.due_runs(T0 + 500, 10).await.unwrap().len(), 1);
    let task = dispatch_and_lease(store, run.run_id, "x", T0 + 500).await;
    let held = store.held_task(task, "x").await.unwrap();
    assert_eq!(held.attempt, 2);
    let failed = store
        .finish(
            task,
            "x",
            &Resolution::Failed {
                outcome: failure(false),
                stop: None,
            },
            T0 + 600,
        )
        .await
        .unwrap();
    assert_eq!(failed.status, RunStatus::Finished);
    assert_eq!(failed.attempt, 2);
    assert_eq!(
        store
            .binding(&a)
            .await
            .unwrap()
            .unwrap()
            .consecutive_failures,
        1
    );
    // A second failure stops the flow with its reason.
    let run = store
        .merge_cause(&a, &plan(manual(T0 + 700), T0 + 700), T0 + 700)
        .await
        .unwrap();
    let task = dispatch_and_lease(store, run.run_id, "x", T0 + 700).await;
    store
        .finish(
            task,
            "x",
            &Resolution::Failed {
                outcome: failure(false),
                stop: Some("two failures".to_string()),
            },
            T0 + 800,
        )
        .await
        .unwrap();
    let binding = store.binding(&a).await.unwrap().unwrap();
    assert!(binding.paused);
    assert_eq!(binding.stop_reason.as_deref(), Some("two failures"));
    assert_eq!(binding.consecutive_failures, 2);
    // Resuming clears the reason and the count; a success resets the count too.
    store.set_paused(&a, false, None, T0 + 900).await.unwrap();
    let binding = store.binding(&a).await.unwrap().unwrap();
    assert!(!binding.paused && binding.stop_reason.is_none());
    assert_eq!(binding.consecutive_failures, 0);
}

async fn cancelling(s: Store) {
    let store = &s.store;
    let waiting = store
        .merge_cause(&key("a"), &plan(input(1, T0), T0 + 1000), T0)
        .await
        .unwrap();
    let cancelled = store
        .cancel_run(waiting.run_id, "by me", T0 + 1)
        .await
        .unwrap();
    assert_eq!(cancelled.status, RunStatus::Finished);
    assert_eq!(
        cancelled.outcome,
        Some(RunOutcome::Aborted {
            reason: "by me".to_string()
        })
    );
    assert!(matches!(
        store.cancel_run(waiting.run_id, "again", T0 + 2).await,
        Err(FlowError::Conflict(_))
    ));
    assert!(matches!(
        store.cancel_run(999_999, "none", T0).await,
        Err(FlowError::NotFound(_))
    ));
    // A running run: its executor loses the task.
    let running = store
        .merge_cause(&key("b"), &plan(input(1, T0), T0), T0)
        .await
        .unwrap();
    let task = dispatch_and_lease(store, running.run_id, "x", T0).await;
    store
        .cancel_run(running.run_id, "stop", T0 + 3)
        .await
        .unwrap();
    assert!(matches!(
        store.heartbeat(task, "x", T0 + 4, 1000).await,
        Err(FlowError::LeaseLost(_))
    ));
    assert!(matches!(
        store.finish(task, "x", &success(), T0 + 5).await,
        Err(FlowError::LeaseLost(_))
    ));
    // A queued one is withdrawn from the queue.
    let queued = store
        .merge_cause(&key("c"), &plan(input(1, T0), T0), T0)
        .await
        .unwrap();
    store
        .dispatch(queued.run_id, &serde_json::json!({}), T0)
        .await
        .unwrap()
        .unwrap();
    store
        .cancel_run(queued.run_id, "stop", T0 + 6)
        .await
        .unwrap();
    assert!(
        store
            .lease(&[TaskKind::Transform], "x", T0 + 7, 1000)
            .await
            .unwrap()
            .is_none()
    );
}

async fn history_pages(s: Store) {
    let store = &s.store;
    let mut ids = Vec::new();
    for index in 0..5 {
        let run = store
            .merge_cause(&key("a"), &plan(manual(T0 + index), T0), T0)
            .await
            .unwrap();
        store.cancel_run(run.run_id, "x", T0).await.unwrap();
        ids.push(run.run_id);
    }
    store
        .merge_cause(&key("b"), &plan(manual(T0), T0), T0)
        .await
        .unwrap();
    let filter = RunFilter {
        dataset_id: Some("did:odf:a".to_string()),
        flow_type: Some(FlowType::Transform),
        active_only: false,
    };
    let first = store.runs(&filter, None, 2).await.unwrap();
    assert_eq!(
        first.iter().map(|r| r.run_id).collect::<Vec<_>>(),
        vec![ids[4], ids[3]]
    );
    let second = store.runs(&filter, Some(ids[3]), 2).await.unwrap();
    assert_eq!(
        second.iter().map(|r| r.run_id).collect::<Vec<_>>(),
        vec![ids[2], ids[1]]
    );
    let last = store.runs(&filter, Some(ids[1]), 2).await.unwrap();
    assert_eq!(
        last.iter().map(|r| r.run_id).collect::<Vec<_>>(),
        vec![ids[0]]
    );
    assert_eq!(
        store
            .runs(&RunFilter::default(), None, 100)
            .await
            .unwrap()
            .len(),
        6
    );
    let active = RunFilter {
        active_only: true,
        ..RunFilter::default()
    };
    assert_eq!(store.runs(&active, None, 100).await.unwrap().len(), 1);
}

async fn pausing_aborts_waiting_runs(s: Store) {
    let store = &s.store;
    let a = key("a");
    assert!(matches!(
        store.set_paused(&a, true, None, T0).await,
        Err(FlowError::NotFound(_))
    ));
    store.put_config(&a, &manual_config(), T0).await.unwrap();
    let run = store
        .merge_cause(&a, &plan(scheduled(T0 + 100), T0 + 100), T0)
        .await
        .unwrap();
    store.set_paused(&a, true, None, T0 + 1).await.unwrap();
    let run = store.run(run.run_id).await.unwrap().unwrap();
    assert_eq!(run.status, RunStatus::Finished);
    assert!(matches!(run.outcome, Some(RunOutcome::Aborted { .. })));
    assert!(store.binding(&a).await.unwrap().unwrap().paused);
}

async fn concurrent_leases_take_each_task_once(s: Store) {
    let store = s.store.clone();
    for index in 0..20 {
        let run = store
            .merge_cause(&key(&format!("d{index}")), &plan(input(1, T0), T0), T0)
            .await
            .unwrap();
        store
            .dispatch(run.run_id, &serde_json::json!({}), T0)
            .await
            .unwrap()
            .unwrap();
    }
    let workers = (0..4).map(|worker| {
        let store = store.clone();
        tokio::spawn(async move {
            let mut taken = Vec::new();
            while let Some(task) = store
                .lease(&[TaskKind::Transform], &format!("w{worker}"), T0, 10_000)
                .await
                .unwrap()
            {
                taken.push(task.task_id);
            }
            taken
        })
    });
    let mut all: Vec<i64> = futures::future::join_all(workers)
        .await
        .into_iter()
        .flat_map(|taken| taken.unwrap())
        .collect();
    all.sort();
    let before = all.len();
    all.dedup();
    assert_eq!(before, all.len(), "a task was leased twice");
    assert_eq!(all.len(), 20);
}
