//! End to end under the real `weir up`: the README's governance block, run as written with curl
//! after the walkthrough's first step: the documentation is committed to the chain as ODF
//! events, and the search expression finds the dataset.

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

fn readme_block(name: &str) -> String {
    let readme = std::fs::read_to_string(workspace_root().join("README.md")).unwrap();
    let start = readme
        .find(&format!("<!-- {name}:start -->"))
        .expect("start marker");
    let end = readme
        .find(&format!("<!-- {name}:end -->"))
        .expect("end marker");
    readme[start..end]
        .lines()
        .filter(|line| !line.starts_with("```") && !line.starts_with("<!--"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn run(script: &str, url: &str, data_dir: &Path) -> Vec<serde_json::Value> {
    let output = Command::new("bash")
        .args(["-euo", "pipefail", "-c", script])
        .current_dir(workspace_root())
        .env("WEIR", url)
        .env("WEIR_DATA_DIR", data_dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(
        output.status.success(),
        "failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::Deserializer::from_str(&stdout)
        .into_iter::<serde_json::Value>()
        .map(|value| value.unwrap())
        .collect()
}

#[test]
fn readme_governance_block_documents_and_finds_a_dataset() {
    let data_dir = tempfile::tempdir().unwrap();
    let node = start_weir_up(&["--data-dir".as_ref(), data_dir.path().as_os_str()]);
    // The walkthrough's first step creates the dataset.
    let walkthrough = readme_block("walkthrough");
    let create: String = walkthrough
        .split("\n\n")
        .find(|step| step.contains("# 1."))
        .expect("step 1")
        .to_string();
    let header: String = walkthrough.lines().take(2).collect::<Vec<_>>().join("\n");
    run(&format!("{header}\n{create}"), &node.url, data_dir.path());

    let script = readme_block("governance");
    let answers = run(&script, &node.url, data_dir.path());
    assert_eq!(answers.len(), 2, "{answers:?}");
    assert_eq!(
        answers[0]["committed"],
        serde_json::json!(["SetInfo", "SetLicense", "SetAttachments"]),
        "{answers:?}"
    );
    assert_eq!(answers[0]["license"]["spdxId"], "CC-BY-4.0");
    // The index hears of the commit over the in-process bus: the search may run a moment early.
    let search = script
        .lines()
        .skip_while(|line| !line.contains("-G"))
        .collect::<Vec<_>>()
        .join("\n");
    let header: String = script.lines().take(2).collect::<Vec<_>>().join("\n");
    let mut found = answers[1].clone();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while found.as_array().is_none_or(|list| list.is_empty()) {
        assert!(std::time::Instant::now() < deadline, "never found: {found}");
        std::thread::sleep(std::time::Duration::from_millis(100));
        found = run(&format!("{header}\n{search}"), &node.url, data_dir.path())[0].clone();
    }
    let names: Vec<&str> = found
        .as_array()
        .unwrap()
        .iter()
        .map(|dataset| dataset["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["sensor.temp"], "{found}");
    // The chain holds the documentation.
    let blocks = Command::new("curl")
        .args(["-sS", "-H"])
        .arg(format!("Authorization: Bearer {}", node.admin_token))
        .arg(format!(
            "{}/datasets/admin/sensor.temp/blocks?limit=3",
            node.url
        ))
        .output()
        .unwrap();
    let blocks = String::from_utf8_lossy(&blocks.stdout);
    for kind in ["SetAttachments", "SetLicense", "SetInfo"] {
        assert!(blocks.contains(kind), "{blocks}");
    }
}
