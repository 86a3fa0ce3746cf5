//! End to end: starts the real `weir up` binary on loopback ports with a fresh data directory and
//! runs the README's curl walkthrough verbatim, then checks what each step answered. Registered
//! as a test of the `weir-local` package (it needs the `weir` binary).

mod support;

use support::start_weir_up;

use std::path::{Path, PathBuf};
use std::process::Command;

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .unwrap()
        .to_path_buf()
}

fn walkthrough_script() -> String {
    let readme = std::fs::read_to_string(workspace_root().join("README.md")).unwrap();
    let start = readme
        .find("<!-- walkthrough:start -->")
        .expect("start marker");
    let end = readme.find("<!-- walkthrough:end -->").expect("end marker");
    readme[start..end]
        .lines()
        .filter(|line| !line.starts_with("```") && !line.starts_with("<!--"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn readme_walkthrough_works_with_curl_only() {
    let data_dir = tempfile::tempdir().unwrap();
    let node = start_weir_up(&["--data-dir".as_ref(), data_dir.path().as_os_str()]);
    // The token weir up prints is the one it writes to DIR/admin.token (the walkthrough reads it).
    let written = std::fs::read_to_string(data_dir.path().join("admin.token")).unwrap();
    assert_eq!(node.admin_token, written.trim());
    run_walkthrough(&node.url, data_dir.path());
}

/// The same walkthrough against `weir emulate`: the control plane and each function in its own
/// process, the functions in Lambda mode behind the API-Gateway-style front, the derivative
/// computed by an engine worker process.
#[test]
fn readme_walkthrough_works_against_the_deployed_topology() {
    let data_dir = tempfile::tempdir().unwrap();
    let node = support::start_weir(
        "emulate",
        &["--data-dir".as_ref(), data_dir.path().as_os_str()],
    );
    let written = std::fs::read_to_string(data_dir.path().join("admin.token")).unwrap();
    assert_eq!(node.admin_token, written.trim());
    run_walkthrough(&node.url, data_dir.path());
}

fn run_walkthrough(url: &str, data_dir: &Path) {
    let script = walkthrough_script();
    assert!(script.contains("curl"), "walkthrough found: {script}");
    let output = Command::new("bash")
        .args(["-euo", "pipefail", "-c", &script])
        .current_dir(workspace_root())
        .env("WEIR", url)
        .env("WEIR_DATA_DIR", data_dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "walkthrough failed:\n{stdout}\n{stderr}"
    );

    // Each curl printed one JSON document; newlines between them are not guaranteed.
    let answers: Vec<serde_json::Value> = serde_json::Deserializer::from_str(&stdout)
        .into_iter::<serde_json::Value>()
        .map(|value| value.unwrap())
        .collect();
    assert_eq!(answers.len(), 10, "{stdout}");
    let [
        created,
        pushed,
        queried,
        blocks,
        derived,
        lineage,
        anonymous,
        late,
        changelog,
        batch,
    ] = &answers[..]
    else {
        unreachable!()
    };
    assert_eq!(created["alias"], "admin/sensor.temp");
    assert_eq!(created["visibility"], "private");
    assert_eq!(pushed["numRecords"], 3);
    assert_eq!(pushed["offsetInterval"]["start"], 0);
    assert_eq!(pushed["offsetInterval"]["end"], 2);
    assert_eq!(
        queried["output"]["data"],
        serde_json::json!([
            {"sensor": "s1", "avg_temp": 22.0},
            {"sensor": "s2", "avg_temp": 19.0}
        ]),
        "{queried}"
    );
    let event_types: Vec<&str> = blocks
        .as_array()
        .unwrap()
        .iter()
        .map(|block| block["eventType"].as_str().unwrap())
        .collect();
    assert_eq!(
        event_types,
        [
            "AddData",
            "SetDataSchema",
            "SetInfo",
            "AddPushSource",
            "Seed"
        ]
    );
    assert_eq!(
        blocks[0]["keyFields"]["newData"]["offsetInterval"]["end"],
        2
    );
    assert_eq!(derived["kind"], "derivative");
    assert_eq!(lineage["downstream"][0]["alias"], "admin/sensor.hourly");
    assert_eq!(anonymous["error"], "not_found", "{anonymous}");
    assert_eq!(late["numRecords"], 2);

    // The derivative computed itself: its changelog, with retractions and corrections applied,
    // is exactly what the batch GROUP BY over the input gives.
    let mut current: Vec<serde_json::Value> = Vec::new();
    let rows = changelog["output"]["data"].as_array().unwrap();
    for row in rows {
        let value = serde_json::json!({
            "event_time": row["event_time"],
            "sensor": row["sensor"],
            "avg_temp": row["avg_temp"],
        });
        match row["op"].as_i64().unwrap() {
            0 | 3 => current.push(value),
            _ => {
                let at = current
                    .iter()
                    .position(|v| *v == value)
                    .expect("retracts a row");
                current.remove(at);
            }
        }
    }
    let ops: Vec<i64> = rows.iter().map(|row| row["op"].as_i64().unwrap()).collect();
    assert!(
        ops.contains(&2) && ops.contains(&3),
        "the late reading corrected an hour: {changelog}"
    );
    current.sort_by_key(|v| v.to_string());
    let mut expected = batch["output"]["data"].as_array().unwrap().clone();
    expected.sort_by_key(|v| v.to_string());
    assert_eq!(expected.len(), 3, "{batch}");
    assert_eq!(current, expected, "{changelog}");
}
