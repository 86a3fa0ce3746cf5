//! End to end: starts the real `weir up` binary on loopback ports with a fresh data directory and
//! runs the README's curl walkthrough verbatim, then checks what each step answered. Registered
//! as a test of the `weir-local` package (it needs the `weir` binary).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

struct Node {
    child: Child,
    url: String,
}

impl Drop for Node {
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

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .unwrap()
        .to_path_buf()
}

fn start_weir(data_dir: &Path) -> Node {
    let http_port = free_port();
    let flight_port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(["up", "--data-dir"])
        .arg(data_dir)
        .args(["--listen", &format!("127.0.0.1:{http_port}")])
        .args(["--flightsql-listen", &format!("127.0.0.1:{flight_port}")])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let first = lines.next().expect("weir up prints a line").unwrap();
    assert!(first.starts_with("weir is up on http://"), "{first}");
    std::thread::spawn(move || for _ in lines {});
    Node {
        child,
        url: format!("http://127.0.0.1:{http_port}"),
    }
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
    let node = start_weir(data_dir.path());
    let script = walkthrough_script();
    assert!(script.contains("curl"), "walkthrough found: {script}");
    let output = Command::new("bash")
        .args(["-euo", "pipefail", "-c", &script])
        .current_dir(workspace_root())
        .env("WEIR", &node.url)
        .env("WEIR_DATA_DIR", data_dir.path())
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
    assert_eq!(answers.len(), 7, "{stdout}");
    let [
        created,
        pushed,
        queried,
        blocks,
        derived,
        lineage,
        anonymous,
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
}
