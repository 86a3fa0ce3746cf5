//! Devices over the real Mosquitto through the real `weir-devices` binary, with the control
//! plane's registry over HTTP and its events over the real NATS: answers, bad payloads, unknown
//! versions and tokens, revocation, HTTP, quotas and metering.

mod common;

use std::time::{Duration, Instant};

use common::{Bridge, Devices, Node, unique};
use serde_json::{Value, json};

const ANSWER: Duration = Duration::from_secs(15);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devices_are_answered_and_their_samples_committed_once() {
    let node = Node::start().await;
    let name = unique("lamps");
    let p = node.provision(&name).await;
    let config = node.dir.path().join("devices.yml");
    node.bridge_config(&config, &unique("bridge-"), &unique("group-"));
    let bridge = Bridge::start(&config, None);
    let path = format!("kp1/{}/dcx/{}/json", p.version, p.token);
    let base = format!("{}{path}", node.topic_prefix);
    let devices = Devices::connect(&[
        format!("{base}/+/status"),
        format!("{base}/+/error"),
        format!("{base}/status"),
        format!("{}kp1/+/dcx/+/json/+/error", node.topic_prefix),
    ])
    .await;
    let count = |sql: &'static str| {
        let node = &node;
        let dataset = p.dataset_id.clone();
        async move { node.rows(&dataset, sql).await }
    };

    // Reliable: answered on /status once durable; the pointed field is the event time, and the
    // endpoint's id is recorded.
    let first = r#"[{"temperature": 21.5, "seq": 1, "ts": "2026-01-01T10:00:00Z"}]"#;
    devices.publish(&format!("{base}/1"), first).await;
    let (kind, _) = devices
        .answer(&format!("{base}/1"), ANSWER)
        .await
        .expect("an answer");
    assert_eq!(kind, "status");
    assert_eq!(
        count("SELECT seq, endpoint_id, CAST(event_time AS VARCHAR) FROM t").await,
        vec![format!("1,{},2026-01-01T10:00:00Z", p.endpoint)]
    );

    // A resent request (same id, same payload) is answered without a second copy.
    devices.answers.lock().unwrap().clear();
    devices.publish(&format!("{base}/1"), first).await;
    let (kind, _) = devices.answer(&format!("{base}/1"), ANSWER).await.unwrap();
    assert_eq!(kind, "status");
    assert_eq!(count("SELECT seq FROM t").await, vec!["1"]);

    // A batch payload: one request, fifty samples, without event times (ingestion time).
    let batch: Vec<Value> = (100..150)
        .map(|seq| json!({"temperature": 20.0, "seq": seq}))
        .collect();
    devices
        .publish(&format!("{base}/2"), serde_json::to_vec(&batch).unwrap())
        .await;
    let (kind, body) = devices.answer(&format!("{base}/2"), ANSWER).await.unwrap();
    assert_eq!(kind, "status", "{body}");
    assert_eq!(
        count("SELECT count(*) FROM t WHERE seq >= 100 AND event_time > now() - INTERVAL '1 hour'")
            .await,
        vec!["50"]
    );

    // Fire-and-forget: no answer, but committed; the same reading twice is two rows.
    let reading = r#"[{"temperature": 19.0, "seq": 7}]"#;
    devices.publish(&base, reading).await;
    devices.publish(&base, reading).await;
    let deadline = Instant::now() + ANSWER;
    while count("SELECT count(*) FROM t WHERE seq = 7").await != vec!["2"] {
        assert!(Instant::now() < deadline, "fire-and-forget samples arrive");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        devices
            .answer(&base, Duration::from_millis(300))
            .await
            .is_none()
    );

    // Bad payloads: /error 400 naming the problem; nothing committed.
    let before = count("SELECT count(*) FROM t").await;
    let too_large = vec![b' '; (1 << 20) + 10];
    for (id, payload, expected) in [
        (3, b"{\"temperature\": 1}".to_vec(), "JSON array"),
        (4, b"[\"\xff\xfe\"]".to_vec(), "not UTF-8"),
        (5, too_large, "over the limit"),
        (6, b"[{\"seq\": 1, \"ts\": true}]".to_vec(), "not a time"),
        (7, b"[{\"seq\": \"x\"}]".to_vec(), "seq"),
        (8, Vec::new(), "not JSON"),
    ] {
        devices.publish(&format!("{base}/{id}"), payload).await;
        let (kind, body) = devices
            .answer(&format!("{base}/{id}"), ANSWER)
            .await
            .unwrap();
        assert_eq!(kind, "error", "{id}: {body}");
        assert_eq!(body["statusCode"], 400, "{id}: {body}");
        let reason = body["reasonPhrase"].as_str().unwrap();
        assert!(reason.contains(expected), "{id}: {reason}");
    }
    // Unknown version, unknown token.
    let unknown_version = format!("{}kp1/nope-v9/dcx/{}/json/8", node.topic_prefix, p.token);
    devices.publish(&unknown_version, "[]").await;
    let (_, body) = devices.answer(&unknown_version, ANSWER).await.unwrap();
    assert_eq!(body["statusCode"], 404, "{body}");
    let unknown_token = format!(
        "{}kp1/{}/dcx/not-a-token-at-all/json/9",
        node.topic_prefix, p.version
    );
    devices.publish(&unknown_token, "[]").await;
    let (_, body) = devices.answer(&unknown_token, ANSWER).await.unwrap();
    assert_eq!(body["statusCode"], 401, "{body}");
    assert_eq!(count("SELECT count(*) FROM t").await, before);

    // HTTP: the same data collection, answered as JSON.
    let http = reqwest::Client::new();
    let response = http
        .post(format!("{}/{path}", bridge.url))
        .body(r#"[{"temperature": 1.5, "seq": 500}]"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        count("SELECT count(*) FROM t WHERE seq = 500").await,
        vec!["1"]
    );
    let response = http
        .post(format!("{}/{path}", bridge.url))
        .body("not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["reasonPhrase"].as_str().unwrap().contains("not JSON"),
        "{body}"
    );
    let response = http
        .post(format!("{}/{path}", bridge.url))
        .body(vec![b' '; (1 << 20) + 10])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["statusCode"], 413, "{body}");
    let response = http
        .post(format!(
            "{}/kp1/{}/dcx/wrong-token-0000000/json",
            bridge.url, p.version
        ))
        .body("[]")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);

    // Revocation: from the moment the bridge hears the event, the token is refused, though
    // it was cached a moment ago.
    let (status, tokens) = node
        .call(
            "GET",
            &format!(
                "/devices/applications/{}/endpoints/{}/tokens",
                p.application, p.endpoint
            ),
            None,
        )
        .await;
    assert_eq!(status, 200);
    let token_id = tokens[0]["id"].as_str().unwrap().to_string();
    let (status, revoked) = node
        .call(
            "POST",
            &format!(
                "/devices/applications/{}/endpoints/{}/tokens/{token_id}/revoke",
                p.application, p.endpoint
            ),
            None,
        )
        .await;
    assert_eq!(status, 200, "{revoked}");
    let revoked_at = Instant::now();
    let mut refused_after = None;
    for id in 10..40 {
        let topic = format!("{base}/{id}");
        devices
            .publish(
                &topic,
                format!(r#"[{{"temperature": 0, "seq": {}}}]"#, 1000 + id),
            )
            .await;
        let (kind, body) = devices.answer(&topic, ANSWER).await.unwrap();
        match (kind.as_str(), refused_after) {
            ("error", _) => {
                assert_eq!(body["statusCode"], 401, "{body}");
                assert!(body["reasonPhrase"].as_str().unwrap().contains("revoked"));
                refused_after.get_or_insert(revoked_at.elapsed());
            }
            (_, Some(_)) => panic!("request {id} was accepted after a refusal"),
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    let refused_after = refused_after.expect("the revoked token is refused");
    assert!(refused_after < Duration::from_secs(2), "{refused_after:?}");
    println!("revocation took effect at the bridge after {refused_after:?}");

    // Metering: the registry's totals match what was answered, per application: every committed
    // sample, and the resent request once more.
    let (_, second_token) = node.endpoint(&p.application).await;
    let committed: i64 = count("SELECT count(*) FROM t").await[0]
        .parse::<i64>()
        .unwrap()
        + 1;
    let deadline = Instant::now() + ANSWER;
    let usage = loop {
        let (status, usage) = node
            .call(
                "GET",
                &format!("/devices/usage?application={}&period=day", p.application),
                None,
            )
            .await;
        assert_eq!(status, 200, "{usage}");
        if usage[0]["samples"] == committed {
            break usage;
        }
        assert!(Instant::now() < deadline, "{usage} vs {committed}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(usage[0]["rejections"].as_i64().unwrap() >= 5, "{usage}");
    let metrics = http
        .get(format!("{}/metrics", bridge.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("weir_device_samples_total{"), "{metrics}");
    assert!(!metrics.contains(&p.endpoint), "no per-endpoint labels");
    let (_, endpoint) = node
        .call(
            "GET",
            &format!(
                "/devices/applications/{}/endpoints/{}",
                p.application, p.endpoint
            ),
            None,
        )
        .await;
    assert!(endpoint["lastSeenAt"].is_i64(), "{endpoint}");

    // A quota: once used up, 429 over MQTT and HTTP; lifted, samples go in again.
    let (status, body) = node
        .call(
            "PUT",
            "/accounts/admin/device-quota",
            Some(json!({"period": "hour", "maxSamples": 1})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let path2 = format!("kp1/{}/dcx/{second_token}/json", p.version);
    let base2 = format!("{}{path2}", node.topic_prefix);
    let quota_devices = Devices::connect(&[format!("{base2}/+/+")]).await;
    let mut limited = false;
    for id in 1..40 {
        let topic = format!("{base2}/{id}");
        quota_devices
            .publish(&topic, r#"[{"seq": 9000, "temperature": 1.0}]"#)
            .await;
        let (kind, body) = quota_devices.answer(&topic, ANSWER).await.unwrap();
        if kind == "error" {
            assert_eq!(body["statusCode"], 429, "{body}");
            assert!(
                body["reasonPhrase"].as_str().unwrap().contains("quota"),
                "{body}"
            );
            limited = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(limited, "the quota is enforced");
    let response = http
        .post(format!("{}/{path2}", bridge.url))
        .body(r#"[{"seq": 9001, "temperature": 1.0}]"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 429);
    let (status, _) = node
        .call("DELETE", "/accounts/admin/device-quota", None)
        .await;
    assert_eq!(status, 204);
    let deadline = Instant::now() + ANSWER;
    loop {
        let response = http
            .post(format!("{}/{path2}", bridge.url))
            .body(r#"[{"seq": 9002, "temperature": 1.0}]"#)
            .send()
            .await
            .unwrap();
        if response.status() == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "lifting the quota lets samples in"
        );
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    node.cleanup().await;
}
