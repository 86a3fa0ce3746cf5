//! Flows over REST, on SQLite and PostgreSQL: configs and their bad inputs, every trigger
//! (manual, schedule, reactive immediate and buffering), retry and stop policies, pause, resume,
//! cancel, run history pages, leases that expire, and permissions. The test is the executor: it
//! takes tasks through `/tasks/...` over HTTP, as a deployed function does.

mod common;

use std::time::Duration;

use common::{MANIFEST, Node, assert_error, fresh_postgres, start_on};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use weir_events::{EventEnvelope, WeirEvent};

const DERIVATIVE: &str = "
kind: DatasetSnapshot
version: 1
content:
  name: hourly
  kind: Derivative
  metadata:
    - kind: SetTransform
      inputs:
        - datasetRef: admin/readings
          alias: readings
      transform:
        kind: Sql
        engine: datafusion
        query: SELECT event_time FROM readings
";

macro_rules! on_both_databases {
    ($($name:ident),* $(,)?) => {
        mod sqlite_backend {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() {
                super::$name(super::start_on(None, None).await).await
            })*
        }
        mod postgres_backend {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() {
                let url = super::fresh_postgres().await;
                super::$name(super::start_on(None, Some(url)).await).await
            })*
        }
    };
}

on_both_databases!(
    bad_flow_configs_answer_400_naming_the_field,
    manual_trigger_runs_through_the_task_queue,
    retries_then_stop_policy_pauses_the_flow,
    schedule_runs_again_after_each_run,
    derivatives_react_to_input_commits_by_default,
    buffering_waits_for_its_interval,
    pause_resume_and_cancel,
    expired_leases_are_taken_again,
    permissions_follow_the_dataset,
    graphql_configures_triggers_and_pages_runs,
    flow_types_fit_the_dataset_or_are_refused,
    polling_sources_the_policy_refuses_answer_400,
    odf_flow_manifests_apply_or_name_what_they_cannot,
    bad_requests_answer_json_4xx_and_change_nothing,
);

async fn setup(node: &Node) {
    let (status, body) = node.create_dataset(&node.admin, MANIFEST).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

async fn put_flow(node: &Node, path: &str, config: Value) -> (StatusCode, Value) {
    node.send_json(Method::PUT, path, Some(&node.admin), config)
        .await
}

async fn post(node: &Node, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
    node.send_json(Method::POST, path, Some(token), body).await
}

/// Takes a task of `kinds` as `executor`, waiting up to 10 s for one.
async fn lease(node: &Node, kinds: &[&str], executor: &str, lease_millis: u64) -> Value {
    for _ in 0..200 {
        let (status, body) = post(
            node,
            "/tasks/lease",
            &node.admin,
            json!({"kinds": kinds, "executor": executor, "leaseMillis": lease_millis}),
        )
        .await;
        if status == StatusCode::OK {
            return body;
        }
        assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no task of {kinds:?} was queued");
}

async fn no_task(node: &Node, kinds: &[&str]) {
    let (status, body) = post(
        node,
        "/tasks/lease",
        &node.admin,
        json!({"kinds": kinds, "executor": "x", "leaseMillis": 5000}),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
}

async fn finish(node: &Node, task: &Value, executor: &str, outcome: Value) -> (StatusCode, Value) {
    post(
        node,
        &format!("/tasks/{}/finish", task["taskId"]),
        &node.admin,
        json!({"executor": executor, "outcome": outcome}),
    )
    .await
}

fn success() -> Value {
    json!({"status": "success", "changed": true, "details": {"numRecords": 2}})
}

fn failure(retryable: bool) -> Value {
    json!({"status": "failed", "errorKind": "storage", "message": "disk on fire", "retryable": retryable})
}

async fn runs(node: &Node, query: &str) -> Value {
    let (status, body) = node
        .get(
            &format!("/datasets/admin/readings/flows/runs{query}"),
            Some(&node.admin),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

async fn bad_flow_configs_answer_400_naming_the_field(node: Node) {
    setup(&node).await;
    let cases = [
        (
            "reset",
            json!({"trigger": {"kind": "schedule", "cron": "61 * * * *"}}),
            "trigger.cron",
        ),
        (
            "reset",
            json!({"trigger": {"kind": "schedule", "cron": "* * *"}}),
            "trigger.cron",
        ),
        (
            "reset",
            json!({"trigger": {"kind": "schedule", "every": "0s"}}),
            "trigger.every",
        ),
        (
            "reset",
            json!({"trigger": {"kind": "schedule", "every": "soon"}}),
            "trigger.every",
        ),
        (
            "reset",
            json!({"trigger": {"kind": "manual"}, "retry": {"maxAttempts": 100, "minDelay": "1s"}}),
            "retry.maxAttempts",
        ),
        (
            "reset",
            json!({"trigger": {"kind": "manual"}, "retry": {"maxAttempts": 2, "minDelay": "1s", "backoff": "sometimes"}}),
            "retry.backoff",
        ),
        (
            "reset",
            json!({"trigger": {"kind": "manual"}, "stop": {"kind": "afterConsecutiveFailures", "failures": 0}}),
            "stop.failures",
        ),
        (
            "reset",
            json!({"trigger": {"kind": "reactive"}}),
            "trigger.kind",
        ),
        (
            "reset",
            json!({"trigger": {"kind": "manual"}, "colour": "red"}),
            "colour",
        ),
        ("reset", json!({"trigger": {"kind": "whenever"}}), "trigger"),
        (
            "transform",
            json!({"trigger": {"kind": "manual"}}),
            "flowType",
        ),
        ("gc", json!({"trigger": {"kind": "manual"}}), "flowType"),
        (
            "teleport",
            json!({"trigger": {"kind": "manual"}}),
            "flowType",
        ),
    ];
    for (flow_type, config, field) in cases {
        let answer = put_flow(
            &node,
            &format!("/datasets/admin/readings/flows/{flow_type}"),
            config.clone(),
        )
        .await;
        assert_error(&answer, StatusCode::BAD_REQUEST, "invalid_input", field);
    }
    let answer = node
        .call(
            Method::PUT,
            "/datasets/admin/readings/flows/reset",
            Some(&node.admin),
            Some(("application/json", "{".to_string())),
        )
        .await;
    assert_error(
        &answer,
        StatusCode::BAD_REQUEST,
        "invalid_input",
        "flow config",
    );
    // Nothing was stored: the root has no flows.
    let (status, body) = node
        .get("/datasets/admin/readings/flows", Some(&node.admin))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!([]));
    // A good one is stored and shown.
    let (status, body) = put_flow(
        &node,
        "/datasets/admin/readings/flows/reset",
        json!({"trigger": {"kind": "schedule", "cron": "*/30 * * * *"}, "retry": {"maxAttempts": 3, "minDelay": "10s", "backoff": "exponentialWithJitter"}}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["flowType"], "reset");
    assert_eq!(body["configured"], true);
    assert_eq!(body["config"]["trigger"]["cron"], "*/30 * * * *");
    // Its first run waits for the schedule.
    let page = runs(&node, "").await;
    assert_eq!(page["runs"][0]["status"], "waiting");
    assert_eq!(page["runs"][0]["waitReason"], "schedule");
    assert_eq!(page["runs"][0]["causes"][0]["kind"], "schedule");
}

async fn manual_trigger_runs_through_the_task_queue(node: Node) {
    setup(&node).await;
    let (status, run) = post(
        &node,
        "/datasets/admin/readings/flows/reset/trigger",
        &node.admin,
        json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{run}");
    assert_eq!(run["causes"][0]["kind"], "manual");
    assert_eq!(run["priority"], "manual");
    // A second trigger before it starts merges into the same run.
    let (_, again) = post(
        &node,
        "/datasets/admin/readings/flows/reset/trigger",
        &node.admin,
        json!({}),
    )
    .await;
    assert_eq!(again["runId"], run["runId"]);
    assert_eq!(again["causes"].as_array().unwrap().len(), 2);
    no_task(&node, &["transform"]).await;
    let task = lease(&node, &["reset"], "exec-1", 10_000).await;
    assert_eq!(task["runId"], run["runId"]);
    assert_eq!(task["attempt"], 1);
    let (_, running) = node
        .get(&format!("/flows/runs/{}", run["runId"]), Some(&node.admin))
        .await;
    assert_eq!(running["status"], "running");
    let (status, body) = post(
        &node,
        &format!("/tasks/{}/heartbeat", task["taskId"]),
        &node.admin,
        json!({"executor": "exec-1", "leaseMillis": 10_000}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, finished) = finish(&node, &task, "exec-1", success()).await;
    assert_eq!(status, StatusCode::OK, "{finished}");
    assert_eq!(finished["status"], "finished");
    assert_eq!(
        finished["outcome"],
        json!({"kind": "success", "changed": true, "details": {"numRecords": 2}})
    );
    // Reporting twice is refused.
    let (status, _) = finish(&node, &task, "exec-1", success()).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let page = runs(&node, "?flowType=reset").await;
    assert_eq!(page["runs"].as_array().unwrap().len(), 1);
}

async fn retries_then_stop_policy_pauses_the_flow(node: Node) {
    setup(&node).await;
    let (status, body) = put_flow(
        &node,
        "/datasets/admin/readings/flows/reset",
        json!({"trigger": {"kind": "manual"},
               "retry": {"maxAttempts": 2, "minDelay": "0s", "backoff": "fixed"},
               "stop": {"kind": "afterConsecutiveFailures", "failures": 2}}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    post(
        &node,
        "/datasets/admin/readings/flows/reset/trigger",
        &node.admin,
        json!({}),
    )
    .await;
    let task = lease(&node, &["reset"], "e", 10_000).await;
    let (_, run) = finish(&node, &task, "e", failure(true)).await;
    assert_eq!(run["status"], "retrying");
    assert_eq!(run["lastError"]["message"], "disk on fire");
    // Retried: the same run, attempt 2; this time it fails for good.
    let task = lease(&node, &["reset"], "e", 10_000).await;
    assert_eq!(
        (task["runId"].clone(), task["attempt"].clone()),
        (run["runId"].clone(), json!(2))
    );
    let (_, run) = finish(&node, &task, "e", failure(true)).await;
    assert_eq!(run["status"], "finished");
    assert_eq!(run["outcome"]["kind"], "failed");
    assert_eq!(run["outcome"]["retryable"], true);
    let (_, flow) = node
        .get("/datasets/admin/readings/flows/reset", Some(&node.admin))
        .await;
    assert_eq!(
        (flow["consecutiveFailures"].clone(), flow["paused"].clone()),
        (json!(1), json!(false))
    );
    // A permanent error is not retried; the second failure in a row stops the flow.
    post(
        &node,
        "/datasets/admin/readings/flows/reset/trigger",
        &node.admin,
        json!({}),
    )
    .await;
    let task = lease(&node, &["reset"], "e", 10_000).await;
    let (_, run) = finish(&node, &task, "e", failure(false)).await;
    assert_eq!(run["status"], "finished");
    assert_eq!(run["attempt"], 1);
    let (_, flow) = node
        .get("/datasets/admin/readings/flows/reset", Some(&node.admin))
        .await;
    assert_eq!(flow["paused"], true);
    assert!(
        flow["stopReason"]
            .as_str()
            .unwrap()
            .contains("2 failed runs in a row"),
        "{flow}"
    );
    // Resuming clears it.
    let (status, flow) = post(
        &node,
        "/datasets/admin/readings/flows/reset/resume",
        &node.admin,
        json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{flow}");
    assert_eq!(
        (
            flow["paused"].clone(),
            flow["stopReason"].clone(),
            flow["consecutiveFailures"].clone()
        ),
        (json!(false), Value::Null, json!(0))
    );
}

async fn schedule_runs_again_after_each_run(node: Node) {
    setup(&node).await;
    put_flow(
        &node,
        "/datasets/admin/readings/flows/reset",
        json!({"trigger": {"kind": "schedule", "every": "1s"}}),
    )
    .await;
    let first = lease(&node, &["reset"], "e", 10_000).await;
    let (_, run) = node
        .get(
            &format!("/flows/runs/{}", first["runId"]),
            Some(&node.admin),
        )
        .await;
    assert_eq!(run["causes"][0]["kind"], "schedule");
    assert_eq!(run["priority"], "schedule");
    finish(&node, &first, "e", success()).await;
    // The next run waits for its time, then is queued.
    let page = runs(&node, "").await;
    assert_eq!(page["runs"][0]["waitReason"], "schedule", "{page}");
    let second = lease(&node, &["reset"], "e", 10_000).await;
    assert_ne!(second["runId"], first["runId"]);
}

async fn publish_commit(node: &Node, dataset_id: &str) {
    let envelope = EventEnvelope::new(
        "ingest",
        None,
        WeirEvent::BlockCommitted {
            dataset_id: dataset_id.to_string(),
            block_hash: "f1620aaaa".to_string(),
            sequence_number: 5,
        },
    );
    node.control_plane.bus.publish(&envelope).await.unwrap();
}

async fn derivative_ids(node: &Node) -> (String, String) {
    let (status, body) = node.create_dataset(&node.admin, DERIVATIVE).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (_, root) = node
        .get("/datasets/admin/readings", Some(&node.admin))
        .await;
    (
        root["id"].as_str().unwrap().to_string(),
        body["id"].as_str().unwrap().to_string(),
    )
}

async fn derivatives_react_to_input_commits_by_default(node: Node) {
    setup(&node).await;
    let (root, derivative) = derivative_ids(&node).await;
    // The default flow of a derivative: reactive, recovering.
    let (status, flows) = node
        .get("/datasets/admin/hourly/flows", Some(&node.admin))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(flows[0]["flowType"], "transform");
    assert_eq!(flows[0]["configured"], false);
    assert_eq!(flows[0]["config"]["trigger"]["kind"], "reactive");
    assert_eq!(
        flows[0]["config"]["trigger"]["forBreakingChange"],
        "recover"
    );
    // Created: a first run computes what the inputs hold.
    let task = lease(&node, &["transform"], "e", 10_000).await;
    assert_eq!(task["datasetId"], derivative);
    assert_eq!(task["params"]["onBreakingChange"], "recover");
    finish(&node, &task, "e", success()).await;
    // An input commit starts the next.
    publish_commit(&node, &root).await;
    let task = lease(&node, &["transform"], "e", 10_000).await;
    let (_, run) = node
        .get(&format!("/flows/runs/{}", task["runId"]), Some(&node.admin))
        .await;
    assert_eq!(run["causes"][0]["kind"], "inputCommitted");
    assert_eq!(run["causes"][0]["datasetId"], root);
    assert_eq!(run["priority"], "reactive");
    // Commits while it runs start exactly one next run, holding all of them.
    publish_commit(&node, &root).await;
    publish_commit(&node, &root).await;
    let mut waiting = Value::Null;
    for _ in 0..100 {
        let (_, page) = node
            .get("/datasets/admin/hourly/flows/runs", Some(&node.admin))
            .await;
        waiting = page["runs"][0].clone();
        if waiting["causes"].as_array().map(Vec::len) == Some(2) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(waiting["status"], "waiting", "{waiting}");
    assert_eq!(waiting["causes"].as_array().unwrap().len(), 2, "{waiting}");
    no_task(&node, &["transform"]).await;
    finish(&node, &task, "e", success()).await;
    let next = lease(&node, &["transform"], "e", 10_000).await;
    assert_eq!(next["runId"], waiting["runId"]);
    // A manual trigger of a derivative with NoAction on breaking changes says so to the executor.
    let (status, body) = node
        .send_json(
            Method::PUT,
            "/datasets/admin/hourly/flows/transform",
            Some(&node.admin),
            json!({"trigger": {"kind": "reactive", "forBreakingChange": "noAction"}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    finish(&node, &next, "e", success()).await;
    post(
        &node,
        "/datasets/admin/hourly/flows/transform/trigger",
        &node.admin,
        json!({}),
    )
    .await;
    let task = lease(&node, &["transform"], "e", 10_000).await;
    assert_eq!(task["params"]["onBreakingChange"], "noAction");
}

async fn buffering_waits_for_its_interval(node: Node) {
    setup(&node).await;
    let (root, _) = derivative_ids(&node).await;
    let first = lease(&node, &["transform"], "e", 10_000).await;
    finish(&node, &first, "e", success()).await;
    let (status, body) = node
        .send_json(Method::PUT, "/datasets/admin/hourly/flows/transform", Some(&node.admin),
            json!({"trigger": {"kind": "reactive", "forNewData": {"kind": "buffering", "minRecordsToAwait": 1000, "maxBatchingInterval": "2s"}}}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    publish_commit(&node, &root).await;
    let mut run = Value::Null;
    for _ in 0..100 {
        let (_, page) = node
            .get("/datasets/admin/hourly/flows/runs", Some(&node.admin))
            .await;
        run = page["runs"][0].clone();
        if run["runId"] != first["runId"] {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        (run["status"].clone(), run["waitReason"].clone()),
        (json!("waiting"), json!("batching")),
        "{run}"
    );
    no_task(&node, &["transform"]).await;
    // The interval ends: it runs with what arrived.
    let task = lease(&node, &["transform"], "e", 10_000).await;
    assert_eq!(task["runId"], run["runId"]);
}

async fn pause_resume_and_cancel(node: Node) {
    setup(&node).await;
    let (root, _) = derivative_ids(&node).await;
    let first = lease(&node, &["transform"], "e", 10_000).await;
    finish(&node, &first, "e", success()).await;
    let (status, flow) = post(
        &node,
        "/datasets/admin/hourly/flows/transform/pause",
        &node.admin,
        json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{flow}");
    assert_eq!(flow["paused"], true);
    publish_commit(&node, &root).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    no_task(&node, &["transform"]).await;
    let (_, page) = node
        .get("/datasets/admin/hourly/flows/runs", Some(&node.admin))
        .await;
    assert_eq!(page["runs"].as_array().unwrap().len(), 1, "{page}");
    // Manual triggers run even while paused; a waiting run can be cancelled.
    post(
        &node,
        "/datasets/admin/hourly/flows/transform/resume",
        &node.admin,
        json!({}),
    )
    .await;
    let (_, run) = post(
        &node,
        "/datasets/admin/hourly/flows/transform/trigger",
        &node.admin,
        json!({}),
    )
    .await;
    let (status, cancelled) = post(
        &node,
        &format!("/flows/runs/{}/cancel", run["runId"]),
        &node.admin,
        json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{cancelled}");
    assert_eq!(cancelled["outcome"]["kind"], "aborted");
    let again = post(
        &node,
        &format!("/flows/runs/{}/cancel", run["runId"]),
        &node.admin,
        json!({}),
    )
    .await;
    assert_error(&again, StatusCode::CONFLICT, "conflict", "already finished");
    tokio::time::sleep(Duration::from_millis(200)).await;
    no_task(&node, &["transform"]).await;
    // A running run cancelled: its executor's report is refused.
    post(
        &node,
        "/datasets/admin/hourly/flows/transform/trigger",
        &node.admin,
        json!({}),
    )
    .await;
    let task = lease(&node, &["transform"], "e", 10_000).await;
    post(
        &node,
        &format!("/flows/runs/{}/cancel", task["runId"]),
        &node.admin,
        json!({}),
    )
    .await;
    let (status, _) = finish(&node, &task, "e", success()).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, _) = node.get("/flows/runs/999999", Some(&node.admin)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

async fn expired_leases_are_taken_again(node: Node) {
    setup(&node).await;
    post(
        &node,
        "/datasets/admin/readings/flows/reset/trigger",
        &node.admin,
        json!({}),
    )
    .await;
    let task = lease(&node, &["reset"], "dies", 1000).await;
    // The queue's depth per kind, as the engine provisioner reads it.
    let (status, depth) = node
        .get("/tasks/depth?kinds=reset", Some(&node.admin))
        .await;
    assert_eq!(status, StatusCode::OK, "{depth}");
    assert_eq!(depth, json!({"queued": 0, "leased": 1}));
    let (_, depth) = node
        .get("/tasks/depth?kinds=transform,ingest", Some(&node.admin))
        .await;
    assert_eq!(depth, json!({"queued": 0, "leased": 0}));
    for bad in ["kinds=nonsense", "kinds=reset,%3Cscript%3E", "other=1"] {
        let (status, body) = node
            .get(&format!("/tasks/depth?{bad}"), Some(&node.admin))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert!(body["message"].is_string(), "{body}");
    }
    // The executor never reports; the leader queues the task again once the lease ends.
    let again = lease(&node, &["reset"], "lives", 10_000).await;
    assert_eq!(again["taskId"], task["taskId"]);
    let (status, _) = finish(&node, &task, "dies", success()).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, run) = finish(&node, &again, "lives", success()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(run["outcome"]["kind"], "success");
    for bad in [
        json!({"kinds": ["reset"], "executor": "", "leaseMillis": 5000}),
        json!({"kinds": ["reset"], "executor": "x", "leaseMillis": 5}),
        json!({"kinds": ["nonsense"], "executor": "x", "leaseMillis": 5000}),
        json!({"kinds": ["reset"], "executor": "x"}),
    ] {
        let (status, body) = post(&node, "/tasks/lease", &node.admin, bad.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
    }
}

async fn permissions_follow_the_dataset(node: Node) {
    setup(&node).await;
    let stranger = node.user("stranger").await;
    let (status, _) = node
        .get("/datasets/admin/readings/flows", Some(&stranger))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let answer = post(
        &node,
        "/datasets/admin/readings/flows/reset/trigger",
        &stranger,
        json!({}),
    )
    .await;
    assert_eq!(answer.0, StatusCode::NOT_FOUND);
    // A reader sees flows but may not change them.
    let (status, body) = node
        .send_json(
            Method::PUT,
            "/datasets/admin/readings/roles/stranger",
            Some(&node.admin),
            json!({"role": "reader"}),
        )
        .await;
    assert!(status.is_success(), "{body}");
    let (status, _) = node
        .get("/datasets/admin/readings/flows", Some(&stranger))
        .await;
    assert_eq!(status, StatusCode::OK);
    let answer = node
        .send_json(
            Method::PUT,
            "/datasets/admin/readings/flows/reset",
            Some(&stranger),
            json!({"trigger": {"kind": "manual"}}),
        )
        .await;
    assert_eq!(answer.0, StatusCode::FORBIDDEN, "{}", answer.1);
    let answer = post(
        &node,
        "/datasets/admin/readings/flows/reset/trigger",
        &stranger,
        json!({}),
    )
    .await;
    assert_eq!(answer.0, StatusCode::FORBIDDEN);
    // Only administrators take tasks or see system flows.
    let answer = post(
        &node,
        "/tasks/lease",
        &stranger,
        json!({"kinds": ["reset"], "executor": "x", "leaseMillis": 5000}),
    )
    .await;
    assert_eq!(answer.0, StatusCode::FORBIDDEN);
    let (status, _) = node.get("/tasks/depth", Some(&stranger)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = node.get("/tasks/depth", None).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "as for /tasks/lease: executors only"
    );
    let (status, _) = node.get("/system/flows/gc", Some(&stranger)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, gc) = node.get("/system/flows/gc", Some(&node.admin)).await;
    assert_eq!(status, StatusCode::OK, "{gc}");
    assert_eq!(gc["config"]["trigger"]["kind"], "schedule");
}

async fn graphql(node: &Node, query: &str, variables: Value) -> (StatusCode, Value) {
    post(
        node,
        "/graphql",
        &node.admin,
        json!({"query": query, "variables": variables}),
    )
    .await
}

async fn graphql_configures_triggers_and_pages_runs(node: Node) {
    setup(&node).await;
    let set = "mutation($config: JSON!) { setFlowConfig(account: \"admin\", name: \"readings\", \
        flowType: \"reset\", config: $config) { flowType configured paused config } }";
    let (status, body) = graphql(
        &node,
        set,
        json!({"config": {"trigger": {"kind": "schedule", "every": "0s"}}}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("trigger.every"),
        "{body}"
    );
    let (status, body) = graphql(
        &node,
        set,
        json!({"config": {"trigger": {"kind": "manual"},
        "retry": {"maxAttempts": 2, "minDelay": "0s", "backoff": "linear"}}}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["setFlowConfig"]["configured"], true);
    assert_eq!(
        body["data"]["setFlowConfig"]["config"]["retry"]["backoff"],
        "linear"
    );
    let mut run_ids = Vec::new();
    for _ in 0..3 {
        let (status, body) = graphql(&node,
            "mutation { triggerFlow(account: \"admin\", name: \"readings\", flowType: \"reset\") { runId status waitReason causes } }",
            json!({})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let run = &body["data"]["triggerFlow"];
        assert_eq!(
            (run["status"].clone(), run["waitReason"].clone()),
            (json!("waiting"), json!("executor")),
            "{run}"
        );
        let task = lease(&node, &["reset"], "g", 10_000).await;
        assert_eq!(task["runId"], run["runId"]);
        finish(&node, &task, "g", success()).await;
        run_ids.push(run["runId"].as_i64().unwrap());
    }
    let page = "query($before: Int) { flowRuns(account: \"admin\", name: \"readings\", limit: 2, before: $before) \
        { nextBefore runs { runId status outcome } } }";
    let (_, first) = graphql(&node, page, json!({"before": null})).await;
    let runs = &first["data"]["flowRuns"]["runs"];
    assert_eq!(runs.as_array().unwrap().len(), 2, "{first}");
    assert_eq!(runs[0]["runId"], run_ids[2]);
    assert_eq!(runs[0]["outcome"]["kind"], "success");
    let before = first["data"]["flowRuns"]["nextBefore"].clone();
    let (_, second) = graphql(&node, page, json!({"before": before})).await;
    assert_eq!(second["data"]["flowRuns"]["runs"][0]["runId"], run_ids[0]);
    assert_eq!(second["data"]["flowRuns"]["nextBefore"], Value::Null);
    let (_, paused) = graphql(&node,
        "mutation { pauseFlow(account: \"admin\", name: \"readings\", flowType: \"reset\") { paused } }", json!({})).await;
    assert_eq!(paused["data"]["pauseFlow"]["paused"], true, "{paused}");
    let (_, resumed) = graphql(&node,
        "mutation { resumeFlow(account: \"admin\", name: \"readings\", flowType: \"reset\") { paused } }", json!({})).await;
    assert_eq!(resumed["data"]["resumeFlow"]["paused"], false, "{resumed}");
    let (_, run) = graphql(&node,
        "mutation { triggerFlow(account: \"admin\", name: \"readings\", flowType: \"reset\") { runId } }", json!({})).await;
    let run_id = run["data"]["triggerFlow"]["runId"].clone();
    let (_, cancelled) = graphql(
        &node,
        "mutation($id: Int!) { cancelFlowRun(runId: $id) { status outcome } }",
        json!({"id": run_id}),
    )
    .await;
    assert_eq!(
        cancelled["data"]["cancelFlowRun"]["outcome"]["kind"], "aborted",
        "{cancelled}"
    );
    let (_, flows) = graphql(
        &node,
        "{ flows(account: \"admin\", name: \"readings\") { flowType paused consecutiveFailures } }",
        json!({}),
    )
    .await;
    assert_eq!(flows["data"]["flows"][0]["flowType"], "reset", "{flows}");
}

/// Ingest and compaction flows fit root datasets (their tasks carry the compaction target);
/// neither fits a derivative.
async fn flow_types_fit_the_dataset_or_are_refused(node: Node) {
    setup(&node).await;
    let schedule = json!({"trigger": {"kind": "schedule", "every": "1h"}});
    // Root datasets poll their sources in ingest flows; the task goes to an ingest executor.
    let answer = put_flow(
        &node,
        "/datasets/admin/readings/flows/ingest",
        schedule.clone(),
    )
    .await;
    assert_eq!(answer.0, StatusCode::OK, "{}", answer.1);
    assert_eq!(answer.1["flowType"], "ingest");
    let (status, _) = post(
        &node,
        "/datasets/admin/readings/flows/ingest/trigger",
        &node.admin,
        json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let task = lease(&node, &["ingest"], "ingest-executor", 10_000).await;
    assert_eq!(task["kind"], "ingest", "{task}");
    let (status, body) = node.create_dataset(&node.admin, DERIVATIVE).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let answer = put_flow(
        &node,
        "/datasets/admin/hourly/flows/ingest",
        schedule.clone(),
    )
    .await;
    assert_error(
        &answer,
        StatusCode::BAD_REQUEST,
        "invalid_input",
        "does not fit",
    );
    let compaction = json!({"trigger": {"kind": "schedule", "cron": "@daily"},
                            "compaction": {"maxSliceSize": "64MiB", "maxSliceRecords": 100000}});
    let answer = put_flow(
        &node,
        "/datasets/admin/readings/flows/compaction",
        compaction,
    )
    .await;
    assert_eq!(answer.0, StatusCode::OK, "{}", answer.1);
    let (status, _) = post(
        &node,
        "/datasets/admin/readings/flows/compaction/trigger",
        &node.admin,
        json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let task = lease(&node, &["compaction"], "ingest-executor", 10_000).await;
    assert_eq!(task["params"]["maxSliceSize"], 64 << 20, "{task}");
    assert_eq!(task["params"]["maxSliceRecords"], 100000, "{task}");
    let answer = put_flow(
        &node,
        "/datasets/admin/readings/flows/compaction",
        json!({"trigger": {"kind": "manual"}, "compaction": {"maxSliceSize": "a lot"}}),
    )
    .await;
    assert_error(
        &answer,
        StatusCode::BAD_REQUEST,
        "invalid_input",
        "compaction.maxSliceSize",
    );
    let answer = put_flow(
        &node,
        "/datasets/admin/hourly/flows/compaction",
        json!({"trigger": {"kind": "manual"}}),
    )
    .await;
    assert_error(
        &answer,
        StatusCode::BAD_REQUEST,
        "invalid_input",
        "does not fit",
    );
}

/// With the default policy (no private networks, no file roots, no buckets), a manifest whose
/// polling source reaches the node's own network or files is refused naming the field, and no
/// dataset is created.
async fn polling_sources_the_policy_refuses_answer_400(node: Node) {
    let cases = [
        (
            "kind: Url\n        url: http://127.0.0.1:8080/x.csv",
            "fetch.url",
        ),
        (
            "kind: Url\n        url: http://169.254.169.254/latest/",
            "fetch.url",
        ),
        (
            "kind: Url\n        url: http://localhost/x.csv",
            "fetch.url",
        ),
        ("kind: Url\n        url: gopher://example.org/", "fetch.url"),
        ("kind: FilesGlob\n        path: /etc/*", "fetch.path"),
        (
            "kind: FilesGlob\n        path: s3://someone-elses/*.csv",
            "fetch.path",
        ),
        ("kind: Container\n        image: busybox", "fetch.kind"),
    ];
    for (fetch, field) in cases {
        let manifest = format!(
            "kind: DatasetSnapshot
version: 1
content:
  name: polled
  kind: Root
  metadata:
    - kind: SetPollingSource
      fetch:
        {fetch}
      read:
        kind: NdJson
      merge:
        kind: Append
"
        );
        let answer = node.create_dataset(&node.admin, &manifest).await;
        assert_error(&answer, StatusCode::BAD_REQUEST, "invalid_input", field);
    }
    let (status, _) = node.get("/datasets/admin/polled", Some(&node.admin)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // A public URL is fine.
    let manifest = "kind: DatasetSnapshot
version: 1
content:
  name: polled
  kind: Root
  metadata:
    - kind: SetPollingSource
      fetch:
        kind: Url
        url: https://example.org/x.ndjson
      read:
        kind: NdJson
      merge:
        kind: Append
";
    let (status, body) = node.create_dataset(&node.admin, manifest).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

const GC_MANIFEST: &str = "
$schema: https://opendatafabric.org/schemas/flow/v1alpha1/Flow
headers:
  name: gc-datasets
spec:
  target: Dataset:%
  triggers:
    - kind: Schedule
      cron: \"@daily\"
  tasks:
    - kind: GarbageCollection
";

async fn odf_flow_manifests_apply_or_name_what_they_cannot(node: Node) {
    let answer = node
        .call(
            Method::POST,
            "/flows",
            Some(&node.admin),
            Some(("application/yaml", GC_MANIFEST.to_string())),
        )
        .await;
    assert_eq!(answer.0, StatusCode::OK, "{}", answer.1);
    assert_eq!(answer.1[0]["flowType"], "gc");
    let (_, gc) = node.get("/system/flows/gc", Some(&node.admin)).await;
    assert_eq!(gc["config"]["trigger"]["cron"], "@daily", "{gc}");
    assert_eq!(gc["configured"], true);
    // The spec's polling example, on a dataset of ours: its ingest flow.
    let polling = |dataset: &str| {
        GC_MANIFEST
            .replace("Dataset:%", &format!("Dataset:{dataset}"))
            .replace("\"@daily\"", "\"*/30 * * * *\"")
            .replace(
                "- kind: GarbageCollection",
                &format!("- kind: Ingest\n      source: {dataset}\n      params:\n        targetSliceRecords: 10000"),
            )
    };
    let manifest = |text: String| {
        node.call(
            Method::POST,
            "/flows",
            Some(&node.admin),
            Some(("application/yaml", text)),
        )
    };
    let answer = manifest(polling("ca.bankofcanada")).await;
    assert_error(
        &answer,
        StatusCode::NOT_FOUND,
        "not_found",
        "ca.bankofcanada",
    );
    setup(&node).await;
    let answer = manifest(polling("readings")).await;
    assert_eq!(answer.0, StatusCode::OK, "{}", answer.1);
    assert_eq!(answer.1[0]["flowType"], "ingest", "{}", answer.1);
    let (_, flow) = node
        .get("/datasets/admin/readings/flows/ingest", Some(&node.admin))
        .await;
    assert_eq!(flow["config"]["trigger"]["cron"], "*/30 * * * *", "{flow}");
    let (status, body) = node.create_dataset(&node.admin, DERIVATIVE).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let answer = manifest(polling("hourly")).await;
    assert_error(
        &answer,
        StatusCode::BAD_REQUEST,
        "invalid_input",
        "does not fit",
    );
    // The spec's flow-compact example selects every root by label on an event: one flow per
    // dataset is what Weir has, so it names the target.
    let compaction = GC_MANIFEST.replace("- kind: GarbageCollection", "- kind: Compaction");
    let answer = manifest(compaction).await;
    assert_error(
        &answer,
        StatusCode::BAD_REQUEST,
        "invalid_input",
        "spec.target",
    );
    let compaction = GC_MANIFEST
        .replace("Dataset:%", "Dataset:readings")
        .replace(
            "- kind: GarbageCollection",
            "- kind: Compaction\n      params:\n        maxSliceSize: 100MiB\n        maxSliceRecords: 10000",
        );
    let answer = manifest(compaction).await;
    assert_eq!(answer.0, StatusCode::OK, "{}", answer.1);
    assert_eq!(answer.1[0]["flowType"], "compaction", "{}", answer.1);
    let answer = node
        .call(
            Method::POST,
            "/flows",
            Some(&node.admin),
            Some((
                "application/yaml",
                GC_MANIFEST.replace("headers:", "headerz:"),
            )),
        )
        .await;
    assert_error(
        &answer,
        StatusCode::BAD_REQUEST,
        "invalid_input",
        "flow manifest",
    );
    let stranger = node.user("stranger").await;
    let answer = node
        .call(
            Method::POST,
            "/flows",
            Some(&stranger),
            Some(("application/yaml", GC_MANIFEST.to_string())),
        )
        .await;
    assert_eq!(answer.0, StatusCode::FORBIDDEN, "{}", answer.1);
}

async fn bad_requests_answer_json_4xx_and_change_nothing(node: Node) {
    setup(&node).await;
    let json_4xx = |answer: &(StatusCode, Value), status: StatusCode| {
        assert_eq!(answer.0, status, "{}", answer.1);
        assert!(
            answer.1["error"].is_string() && answer.1["message"].is_string(),
            "{}",
            answer.1
        );
    };
    let answer = node
        .get(
            "/datasets/admin/readings/flows/runs?limit=0",
            Some(&node.admin),
        )
        .await;
    assert_error(&answer, StatusCode::BAD_REQUEST, "invalid_input", "limit");
    for query in [
        "?limit=abc",
        "?before=x",
        "?colour=red",
        "?flowType=teleport",
    ] {
        let answer = node
            .get(
                &format!("/datasets/admin/readings/flows/runs{query}"),
                Some(&node.admin),
            )
            .await;
        json_4xx(&answer, StatusCode::BAD_REQUEST);
    }
    let answer = post(
        &node,
        "/datasets/admin/readings/flows/reset/explode",
        &node.admin,
        json!({}),
    )
    .await;
    assert_error(
        &answer,
        StatusCode::NOT_FOUND,
        "not_found",
        "unknown flow action",
    );
    let answer = post(
        &node,
        "/datasets/admin/nothing/flows/reset/trigger",
        &node.admin,
        json!({}),
    )
    .await;
    json_4xx(&answer, StatusCode::NOT_FOUND);
    json_4xx(
        &node.get("/flows/runs/abc", Some(&node.admin)).await,
        StatusCode::BAD_REQUEST,
    );
    let answer = post(
        &node,
        "/tasks/1/finish",
        &node.admin,
        json!({"executor": "x", "outcome": {"status": "maybe"}}),
    )
    .await;
    json_4xx(&answer, StatusCode::BAD_REQUEST);
    let answer = post(
        &node,
        "/tasks/999/heartbeat",
        &node.admin,
        json!({"executor": "x", "leaseMillis": 5000}),
    )
    .await;
    assert_error(&answer, StatusCode::CONFLICT, "conflict", "not leased");
    let answer = finish(&node, &json!({"taskId": 999}), "x", success()).await;
    json_4xx(&answer, StatusCode::CONFLICT);
    let answer = node
        .call(
            Method::POST,
            "/flows",
            Some(&node.admin),
            Some(("application/yaml", "spec: [unclosed".to_string())),
        )
        .await;
    assert_error(
        &answer,
        StatusCode::BAD_REQUEST,
        "invalid_input",
        "flow manifest",
    );
    // None of it made a run or a flow.
    assert_eq!(runs(&node, "").await["runs"], json!([]));
    let (_, flows) = node
        .get("/datasets/admin/readings/flows", Some(&node.admin))
        .await;
    assert_eq!(flows, json!([]));
}
