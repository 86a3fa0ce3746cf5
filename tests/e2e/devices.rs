//! End to end under the real `weir up`: the README's device block, run as written with the real
//! `mosquitto_pub` / `mosquitto_sub` against the real Mosquitto on 127.0.0.1:1883: a reliable
//! request is answered on `/status`, and its sample is queryable at once. The node's topics get a
//! unique prefix (`devices.mqtt.topic_prefix`, like a broker mount point) so that concurrent tests
//! sharing the broker stay apart.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use support::start_weir_up;

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .unwrap()
        .to_path_buf()
}

fn devices_script(prefix: &str) -> String {
    let readme = std::fs::read_to_string(workspace_root().join("README.md")).unwrap();
    let start = readme.find("<!-- devices:start -->").expect("start marker");
    let end = readme.find("<!-- devices:end -->").expect("end marker");
    readme[start..end]
        .lines()
        .filter(|line| !line.starts_with("```") && !line.starts_with("<!--"))
        .collect::<Vec<_>>()
        .join("\n")
        .replace("'kp1/", &format!("'{prefix}kp1/"))
}

#[test]
fn readme_device_block_is_answered_and_queryable() {
    let prefix = format!("e2e{}/", &uuid::Uuid::new_v4().simple().to_string()[..10]);
    let data_dir = tempfile::tempdir().unwrap();
    let config = data_dir.path().join("weir.yml");
    std::fs::write(
        &config,
        format!(
            "devices:\n  mqtt:\n    client_id: weir-{}\n    topic_prefix: '{prefix}'\n    session_expiry_seconds: 60\n",
            prefix.trim_end_matches('/')
        ),
    )
    .unwrap();
    let node = start_weir_up(&[
        "--data-dir".as_ref(),
        data_dir.path().as_os_str(),
        "--config".as_ref(),
        config.as_os_str(),
    ]);
    let script = devices_script(&prefix);
    assert!(script.contains("mosquitto_pub"), "{script}");
    // The bridge connects in the background: wait until it answers a probe (an unknown version
    // gets `/error` 404) before the device speaks.
    let probe = format!("{prefix}kp1/probe-v0/dcx/probe-token-000000/json/1");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let answered = Command::new("bash")
            .args([
                "-c",
                &format!(
                    "mosquitto_sub -C 1 -W 2 -t '{probe}/error' & sleep 0.3; \
                     mosquitto_pub -q 1 -t '{probe}' -m '[]'; wait"
                ),
            ])
            .output()
            .unwrap();
        if String::from_utf8_lossy(&answered.stdout).contains("404") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the bridge never answered: {}",
            String::from_utf8_lossy(&answered.stderr)
        );
    }
    let output = Command::new("bash")
        .args(["-euo", "pipefail", "-c", &script])
        .current_dir(workspace_root())
        .env("WEIR", &node.url)
        .env("WEIR_DATA_DIR", data_dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "failed:\n{stdout}\n{stderr}");
    let answer = format!("{prefix}kp1/thermostat-v1/dcx/kitchen-thermostat-01/json/1/status");
    // `mosquitto_sub -v` prints the answer's topic and its (empty) payload on one line, right
    // after the last curl's JSON.
    let at = stdout
        .find(&answer)
        .unwrap_or_else(|| panic!("no /status answer:\n{stdout}"));
    let line_end = stdout[at..].find('\n').map_or(stdout.len(), |end| at + end);
    let json = format!("{}{}", &stdout[..at], &stdout[line_end..]);
    let answers: Vec<serde_json::Value> = serde_json::Deserializer::from_str(&json)
        .into_iter::<serde_json::Value>()
        .map(|value| value.unwrap())
        .collect();
    assert_eq!(answers.len(), 5, "{stdout}");
    let endpoint = answers[3]["id"].as_str().unwrap();
    assert_eq!(answers[3]["token"]["token"], "kitchen-thermostat-01");
    assert_eq!(
        answers[4]["output"]["data"],
        serde_json::json!([{"endpoint_id": endpoint, "temperature": 21.5}]),
        "{stdout}"
    );
    // The registry heard from the endpoint (the bridge's usage reports).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let shown = Command::new("curl")
            .args(["-sS", "-H"])
            .arg(format!("Authorization: Bearer {}", node.admin_token))
            .arg(format!(
                "{}/devices/applications/thermostats/endpoints/{endpoint}",
                node.url
            ))
            .output()
            .unwrap();
        let shown: serde_json::Value = serde_json::from_slice(&shown.stdout).unwrap();
        if shown["lastSeenAt"].is_i64() {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{shown}");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}
