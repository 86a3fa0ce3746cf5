//! Two real `weir-control-plane` processes on one PostgreSQL database: exactly one leads, and
//! when it is killed (SIGKILL) the standby takes over once the lease expires; flows scheduled by
//! the dead leader go on without a run lost or run twice.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Replica {
    child: Child,
    url: String,
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start(config: &std::path::Path, instance: &str) -> Replica {
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_weir-control-plane"))
        .env("WEIR_CONFIG_PATH", config)
        .env("WEIR__INSTANCE_ID", instance)
        .env("PORT", port.to_string())
        .env("WEIR_LISTEN_HOST", "127.0.0.1")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    Replica {
        child,
        url: format!("http://127.0.0.1:{port}"),
    }
}

async fn leader_state(client: &reqwest::Client, replica: &Replica) -> Option<bool> {
    let response = client
        .get(format!("{}/leader", replica.url))
        .send()
        .await
        .ok()?;
    let body: serde_json::Value = response.json().await.ok()?;
    body["leader"].as_bool()
}

/// Waits until `check` holds for the leader flags of `replicas`.
async fn wait_for(
    client: &reqwest::Client,
    replicas: &[&Replica],
    check: impl Fn(&[Option<bool>]) -> bool,
) -> Vec<Option<bool>> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mut states = Vec::new();
        for replica in replicas {
            states.push(leader_state(client, replica).await);
        }
        if check(&states) {
            return states;
        }
        assert!(
            Instant::now() < deadline,
            "leadership did not settle: {states:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn write_config(directory: &tempfile::TempDir, database_url: &str) -> std::path::PathBuf {
    let config = directory.path().join("control-plane.yml");
    std::fs::write(
        &config,
        format!(
            "database_url: {database_url}\nleader_lease_millis: 900\nstorage:\n  kind: local_fs\n  root_dir: {}\nauth:\n  signing_key: \"{}\"\n  admin_password: pw-for-tests\nflows:\n  tick_millis: 100\n",
            directory.path().join("datasets").display(),
            "22".repeat(32)
        ),
    )
    .unwrap();
    config
}

#[tokio::test]
async fn standby_takes_over_when_the_leader_dies() {
    let database_url = common::fresh_postgres().await;
    let directory = tempfile::tempdir().unwrap();
    let config = write_config(&directory, &database_url);
    let client = reqwest::Client::new();
    let first = start(&config, "replica-a");
    let second = start(&config, "replica-b");
    let states = wait_for(&client, &[&first, &second], |states| {
        states.iter().all(Option::is_some)
            && states.iter().filter(|s| **s == Some(true)).count() == 1
    })
    .await;
    // Stays that way: the standby never steals a lease its holder renews.
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let again = wait_for(&client, &[&first, &second], |_| true).await;
    assert_eq!(states, again);

    let (mut leader, standby) = if states[0] == Some(true) {
        (first, second)
    } else {
        (second, first)
    };
    leader.child.kill().unwrap();
    leader.child.wait().unwrap();
    let killed_at = Instant::now();
    wait_for(&client, &[&standby], |states| states[0] == Some(true)).await;
    let takeover = killed_at.elapsed();
    assert!(
        takeover < Duration::from_secs(5),
        "takeover took {takeover:?}"
    );
}

async fn call(
    client: &reqwest::Client,
    url: String,
    token: &str,
    body: Option<(&str, String)>,
) -> (reqwest::StatusCode, serde_json::Value) {
    let request = match body {
        Some((content_type, body)) => client
            .post(url)
            .header("content-type", content_type)
            .body(body),
        None => client.get(url),
    };
    let response = request.bearer_auth(token).send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or_default())
}

/// Leases a reset task through `replica`, waiting up to 15 s for one.
async fn lease(client: &reqwest::Client, replica: &Replica, token: &str) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let body = serde_json::json!({"kinds": ["reset"], "executor": "test-executor", "leaseMillis": 30000});
        let (status, task) = call(
            client,
            format!("{}/tasks/lease", replica.url),
            token,
            Some(("application/json", body.to_string())),
        )
        .await;
        if status == reqwest::StatusCode::OK {
            return task;
        }
        assert!(
            Instant::now() < deadline,
            "no task was dispatched: {status} {task}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn flows_survive_a_leader_kill() {
    let database_url = common::fresh_postgres().await;
    let directory = tempfile::tempdir().unwrap();
    let config = write_config(&directory, &database_url);
    let client = reqwest::Client::new();
    let first = start(&config, "replica-a");
    let second = start(&config, "replica-b");
    let states = wait_for(&client, &[&first, &second], |states| {
        states.iter().all(Option::is_some)
            && states.iter().filter(|s| **s == Some(true)).count() == 1
    })
    .await;
    let (mut leader, standby) = if states[0] == Some(true) {
        (first, second)
    } else {
        (second, first)
    };
    let login = serde_json::json!({"login": "admin", "password": "pw-for-tests"}).to_string();
    let (status, session) = call(
        &client,
        format!("{}/auth/login", standby.url),
        "",
        Some(("application/json", login)),
    )
    .await;
    assert_eq!(status, reqwest::StatusCode::OK, "{session}");
    let token = session["accessToken"].as_str().unwrap().to_string();
    // Created and configured through the standby: any replica serves the API.
    let (status, body) = call(
        &client,
        format!("{}/datasets", standby.url),
        &token,
        Some(("application/yaml", common::MANIFEST.to_string())),
    )
    .await;
    assert_eq!(status, reqwest::StatusCode::CREATED, "{body}");
    let flow = serde_json::json!({"trigger": {"kind": "schedule", "every": "1s"}}).to_string();
    let response = client
        .put(format!(
            "{}/datasets/admin/readings/flows/reset",
            standby.url
        ))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body(flow)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::OK);

    // A run dispatched by the leader is running when the leader is killed.
    let running = lease(&client, &standby, &token).await;
    leader.child.kill().unwrap();
    leader.child.wait().unwrap();
    wait_for(&client, &[&standby], |states| states[0] == Some(true)).await;
    let done = serde_json::json!({"executor": "test-executor", "outcome": {"status": "success", "changed": false}});
    let (status, run) = call(
        &client,
        format!("{}/tasks/{}/finish", standby.url, running["taskId"]),
        &token,
        Some(("application/json", done.to_string())),
    )
    .await;
    assert_eq!(status, reqwest::StatusCode::OK, "{run}");
    assert_eq!(run["outcome"]["kind"], "success");
    // The new leader goes on scheduling: two more runs, each dispatched once.
    for _ in 0..2 {
        let task = lease(&client, &standby, &token).await;
        assert_ne!(task["runId"], running["runId"]);
        let (status, _) = call(
            &client,
            format!("{}/tasks/{}/finish", standby.url, task["taskId"]),
            &token,
            Some(("application/json", done.to_string())),
        )
        .await;
        assert_eq!(status, reqwest::StatusCode::OK);
    }
    let (status, page) = call(
        &client,
        format!(
            "{}/datasets/admin/readings/flows/runs?limit=100",
            standby.url
        ),
        &token,
        None,
    )
    .await;
    assert_eq!(status, reqwest::StatusCode::OK, "{page}");
    let runs = page["runs"].as_array().unwrap();
    let finished: Vec<_> = runs
        .iter()
        .filter(|run| run["status"] == "finished")
        .collect();
    assert_eq!(finished.len(), 3, "{page}");
    for run in &finished {
        assert_eq!(run["attempt"], 1, "a run was dispatched twice: {run}");
        assert_eq!(run["outcome"]["kind"], "success", "{run}");
    }
    // Never two runs of the flow at once.
    let mut spans: Vec<(i64, i64)> = finished
        .iter()
        .map(|run| {
            (
                run["startedAt"].as_i64().unwrap(),
                run["finishedAt"].as_i64().unwrap(),
            )
        })
        .collect();
    spans.sort();
    for pair in spans.windows(2) {
        assert!(pair[0].1 <= pair[1].0, "runs overlapped: {spans:?}");
    }
    assert!(runs.len() <= 4, "more runs than the schedule made: {page}");
}
