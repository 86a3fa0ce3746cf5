//! The Helm chart's configs load into the binaries that read them. Every binary rejects unknown
//! keys (`deny_unknown_fields`), so a chart whose ConfigMap or environment drifts from the code
//! would render, pass `helm lint`, apply, and then crash-loop in the cluster.
//!
//! For each workload the chart renders (in both `functions.mode`s), the test takes its
//! ConfigMap's `service-config.yml` and its container's environment, with Secret references
//! resolved from the chart's own Secret as the kubelet would, and loads them the way the binary
//! does (`load_config_from`). The engine provisioner's config is checked in its own crate
//! (`crd_in_chart.rs`), which has its types.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::Value;
use weir_function_runtime::config::load_config_from;

fn helm() -> PathBuf {
    let cache = std::env::var_os("WEIR_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache/weir"));
    let helm = cache.join("bin/helm");
    assert!(
        helm.exists(),
        "{} is missing: ./local/test installs it (infra/validate)",
        helm.display()
    );
    helm
}

fn render(mode: &str) -> Vec<Value> {
    let chart = concat!(env!("CARGO_MANIFEST_DIR"), "/../../infra/helm/weir");
    let output = std::process::Command::new(helm())
        .args(["template", "weir", chart, "--namespace", "weir"])
        .args(["--set", &format!("functions.mode={mode}")])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).unwrap();
    serde_yaml::Deserializer::from_str(&text)
        .map(|document| serde::Deserialize::deserialize(document).unwrap())
        .filter(|value: &Value| !value.is_null())
        .collect()
}

fn component(object: &Value) -> Option<&str> {
    object["metadata"]["labels"]["app.kubernetes.io/component"].as_str()
}

/// The environment the kubelet would give the workload's first container.
fn environment(
    workload: &Value,
    secrets: &BTreeMap<(String, String), String>,
) -> Vec<(String, String)> {
    let spec = &workload["spec"]["template"]["spec"]["containers"][0]["env"];
    let mut environment = Vec::new();
    for variable in spec.as_array().into_iter().flatten() {
        let name = variable["name"].as_str().unwrap().to_string();
        let value = if let Some(value) = variable["value"].as_str() {
            value.to_string()
        } else if let Some(reference) = variable["valueFrom"]["secretKeyRef"].as_object() {
            let key = (
                reference["name"].as_str().unwrap().to_string(),
                reference["key"].as_str().unwrap().to_string(),
            );
            match secrets.get(&key) {
                Some(value) => value.clone(),
                None if reference.get("optional") == Some(&Value::Bool(true)) => continue,
                None => panic!("{name} refers to {key:?}, which the chart's Secret lacks"),
            }
        } else if variable["valueFrom"]["fieldRef"].is_object() {
            "weir-pod-0".to_string()
        } else {
            panic!("{name}: an environment variable the test cannot resolve: {variable}")
        };
        environment.push((name, value));
    }
    environment
}

fn load(
    component: &str,
    file: &std::path::Path,
    environment: Vec<(String, String)>,
) -> Result<(), String> {
    fn check<T: serde::de::DeserializeOwned>(
        name: &str,
        file: &std::path::Path,
        environment: Vec<(String, String)>,
    ) -> Result<(), String> {
        load_config_from::<T>(Some(file), name, environment)
            .map(|_| ())
            .map_err(|error| error.to_string())
    }
    match component {
        "control-plane" => check::<weir_control_plane::ControlPlaneConfig>(
            weir_control_plane::FUNCTION_NAME,
            file,
            environment,
        ),
        "ingest" => {
            check::<weir_ingest::IngestConfig>(weir_ingest::FUNCTION_NAME, file, environment)
        }
        "query" => check::<weir_query::QueryConfig>(weir_query::FUNCTION_NAME, file, environment),
        "governance" => check::<weir_governance::GovernanceConfig>(
            weir_governance::FUNCTION_NAME,
            file,
            environment,
        ),
        "transform" | "engine-worker" => check::<weir_transform::TransformConfig>(
            weir_transform::FUNCTION_NAME,
            file,
            environment,
        ),
        other => panic!("the chart has a ConfigMap for `{other}`, which this test does not know"),
    }
}

#[test]
fn every_config_the_chart_renders_loads_into_its_binary() {
    for mode in ["knative", "deployment"] {
        let objects = render(mode);
        let mut secrets = BTreeMap::new();
        for secret in objects.iter().filter(|o| o["kind"] == "Secret") {
            let name = secret["metadata"]["name"].as_str().unwrap().to_string();
            for (key, value) in secret["stringData"].as_object().into_iter().flatten() {
                secrets.insert(
                    (name.clone(), key.clone()),
                    value.as_str().unwrap().to_string(),
                );
            }
        }
        let workloads: BTreeMap<&str, &Value> = objects
            .iter()
            .filter(|o| {
                o["kind"] == "Deployment"
                    || (o["kind"] == "Service" && o["apiVersion"] == "serving.knative.dev/v1")
            })
            .filter_map(|o| Some((component(o)?, o)))
            .collect();
        let scratch = tempfile::tempdir().unwrap();
        let mut checked = Vec::new();
        for config_map in objects.iter().filter(|o| o["kind"] == "ConfigMap") {
            let Some(text) = config_map["data"]["service-config.yml"].as_str() else {
                continue;
            };
            let component = component(config_map).expect("the chart labels its ConfigMaps");
            if component == "engine-provisioner" {
                continue;
            }
            let file = scratch.path().join(format!("{component}.yml"));
            std::fs::write(&file, text).unwrap();
            // Engine workers run in the pools' Deployments, made by the provisioner, which
            // gives them the tasks token from the chart's Secret.
            let environment = match (component, workloads.get(component)) {
                ("engine-worker", _) => vec![(
                    "WEIR__TASKS__TOKEN".to_string(),
                    secrets
                        .iter()
                        .find(|((_, key), _)| key == "tasks-token")
                        .map(|(_, value)| value.clone())
                        .expect("the chart's Secret has the tasks token"),
                )],
                (_, Some(workload)) => environment(workload, &secrets),
                (_, None) => panic!("no workload mounts the `{component}` ConfigMap"),
            };
            if let Err(error) = load(component, &file, environment) {
                panic!(
                    "functions.mode={mode}: the chart's `{component}` config does not load: {error}\n{text}"
                );
            }
            checked.push(component.to_string());
        }
        checked.sort();
        assert_eq!(
            checked,
            [
                "control-plane",
                "engine-worker",
                "governance",
                "ingest",
                "query",
                "transform"
            ],
            "functions.mode={mode}: the chart's configs"
        );
    }
}
