//! Two real `weir-control-plane` processes on one PostgreSQL database: exactly one leads, and
//! when it is killed the standby takes over once the lease expires.

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

async fn fresh_database() -> String {
    use sqlx::Connection;
    let admin_url = std::env::var("WEIR_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string());
    sqlx::any::install_default_drivers();
    let mut admin = sqlx::AnyConnection::connect(&admin_url)
        .await
        .expect("postgresql runs");
    let database = format!("weir_test_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(&format!("CREATE DATABASE {database}"))
        .execute(&mut admin)
        .await
        .unwrap();
    format!("{}/{database}", admin_url.rsplit_once('/').unwrap().0)
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

#[tokio::test]
async fn standby_takes_over_when_the_leader_dies() {
    let database_url = fresh_database().await;
    let directory = tempfile::tempdir().unwrap();
    let config = directory.path().join("control-plane.yml");
    std::fs::write(
        &config,
        format!(
            "database_url: {database_url}\nleader_lease_millis: 900\nstorage:\n  kind: local_fs\n  root_dir: {}\nauth:\n  signing_key: \"{}\"\n",
            directory.path().join("datasets").display(),
            "22".repeat(32)
        ),
    )
    .unwrap();
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
