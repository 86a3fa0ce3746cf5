//! The bridge's guarantees with the real Mosquitto: killed (after a commit and before its acks,
//! and at a random moment), then started again under the same client id, it loses no answered
//! sample and duplicates none; two replicas in one shared subscription commit each sample once.

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use common::{Bridge, Devices, Node, unique};

/// Publishes `count` reliable requests of `samples` samples each, numbered from `first`.
async fn send(devices: &Devices, base: &str, first: u64, count: u64, samples: u64) {
    for request in first..first + count {
        let batch: Vec<serde_json::Value> = (0..samples)
            .map(|i| serde_json::json!({"temperature": 1.0, "seq": request * 1000 + i}))
            .collect();
        devices
            .publish(
                &format!("{base}/{request}"),
                serde_json::to_vec(&batch).unwrap(),
            )
            .await;
    }
}

/// Waits until every request from `first` has its answer; returns how many were `status`.
async fn answered(devices: &Devices, base: &str, first: u64, count: u64) -> usize {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let answers = devices.answers.lock().unwrap().clone();
        let done = (first..first + count)
            .filter(|request| answers.contains_key(&format!("{base}/{request}")))
            .count();
        if done as u64 == count {
            return (first..first + count)
                .filter(|request| answers[&format!("{base}/{request}")].0 == "status")
                .count();
        }
        assert!(
            Instant::now() < deadline,
            "{done} of {count} requests answered"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn assert_exactly_once(node: &Node, dataset: &str, expected: usize) {
    let seqs = node.rows(dataset, "SELECT seq FROM t").await;
    let distinct: HashSet<&String> = seqs.iter().collect();
    assert_eq!(distinct.len(), seqs.len(), "duplicated samples");
    assert_eq!(seqs.len(), expected, "lost samples");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_bridge_loses_no_answered_sample_and_duplicates_none() {
    let node = Node::start().await;
    let p = node.provision(&unique("crash")).await;
    let config = node.dir.path().join("devices.yml");
    let client_id = unique("bridge-");
    node.bridge_config(&config, &client_id, &unique("group-"));
    let base = format!(
        "{}kp1/{}/dcx/{}/json",
        node.topic_prefix, p.version, p.token
    );
    let devices = Devices::connect(&[format!("{base}/+/+")]).await;

    // Killed after its first commit, before any answer or ack.
    let mut bridge = Bridge::start(&config, Some("abort-before-ack"));
    send(&devices, &base, 1, 50, 4).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while !bridge.ended() {
        assert!(Instant::now() < deadline, "the fault aborts the bridge");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let early = devices.answers.lock().unwrap().clone();
    assert!(early.is_empty(), "answered before the crash: {early:?}");
    let committed_before_restart = node.rows(&p.dataset_id, "SELECT seq FROM t").await.len();
    assert!(committed_before_restart > 0, "it committed before it died");
    // The same client id again: the broker hands back what was not acknowledged.
    drop(bridge);
    let bridge = Bridge::start(&config, None);
    assert_eq!(answered(&devices, &base, 1, 50).await, 50);
    assert_exactly_once(&node, &p.dataset_id, 200).await;
    println!(
        "after abort-before-ack: {committed_before_restart} samples were committed before the crash; 200 of 200 once after"
    );

    // Killed (SIGKILL) at a random moment while requests stream in.
    let mut bridge = bridge;
    let stream = {
        let devices_client = devices.client.clone();
        let base = base.clone();
        tokio::spawn(async move {
            for request in 51..=250u64 {
                let batch = serde_json::json!([{"temperature": 2.0, "seq": request * 1000}]);
                devices_client
                    .publish(
                        format!("{base}/{request}"),
                        rumqttc::v5::mqttbytes::QoS::AtLeastOnce,
                        false,
                        serde_json::to_vec(&batch).unwrap(),
                    )
                    .await
                    .unwrap();
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(150 + (rand_millis() % 200))).await;
    let _ = bridge.child.kill();
    let _ = bridge.child.wait();
    let answered_at_kill = devices.answers.lock().unwrap().len();
    stream.await.unwrap();
    let _bridge = Bridge::start(&config, None);
    assert_eq!(answered(&devices, &base, 51, 200).await, 200);
    assert_exactly_once(&node, &p.dataset_id, 400).await;
    println!("after SIGKILL with {answered_at_kill} requests answered: 400 of 400 samples once");
    node.cleanup().await;
}

fn rand_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_commit_each_sample_once() {
    let node = Node::start().await;
    let p = node.provision(&unique("shared")).await;
    let group = unique("group-");
    let (first, second) = (
        node.dir.path().join("one.yml"),
        node.dir.path().join("two.yml"),
    );
    node.bridge_config(&first, &unique("replica-"), &group);
    node.bridge_config(&second, &unique("replica-"), &group);
    let one = Bridge::start(&first, None);
    let two = Bridge::start(&second, None);
    // Both subscribed before the devices speak.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut endpoints = vec![(p.endpoint.clone(), p.token.clone())];
    for _ in 0..4 {
        endpoints.push(node.endpoint(&p.application).await);
    }
    let mut all = Vec::new();
    for (index, (_, token)) in endpoints.iter().enumerate() {
        let base = format!("{}kp1/{}/dcx/{token}/json", node.topic_prefix, p.version);
        let devices = Devices::connect(&[format!("{base}/+/+")]).await;
        send(&devices, &base, 1 + index as u64 * 100, 40, 2).await;
        all.push((devices, base, 1 + index as u64 * 100));
    }
    for (devices, base, first) in &all {
        assert_eq!(answered(devices, base, *first, 40).await, 40);
    }
    assert_exactly_once(&node, &p.dataset_id, 400).await;
    // Each replica took part.
    let client = reqwest::Client::new();
    for bridge in [&one, &two] {
        let metrics = client
            .get(format!("{}/metrics", bridge.url))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let samples: u64 = metrics
            .lines()
            .filter(|line| line.starts_with("weir_device_samples_total{"))
            .filter_map(|line| line.rsplit(' ').next()?.parse::<u64>().ok())
            .sum();
        assert!(samples > 0, "a replica took no sample: {metrics}");
        println!("replica {}: {samples} samples", bridge.url);
    }
    node.cleanup().await;
}
