//! The chart's CRD is the one the controller's types define (`EnginePool::crd()`).
//! `WEIR_UPDATE_CRD=1 cargo test -p weir-engine-provisioner --test crd_in_chart` rewrites it.

mod support;

use kube::CustomResourceExt;
use weir_engine_provisioner::kubernetes::EnginePool;

const CHART_CRD: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../infra/helm/weir/crds/enginepools.weir.dev.yaml"
);

#[test]
fn the_charts_crd_matches_the_types() {
    let generated = serde_json::to_value(EnginePool::crd()).unwrap();
    if std::env::var_os("WEIR_UPDATE_CRD").is_some() {
        let text = format!(
            "# Generated from weir-engine-provisioner's EnginePool types; do not edit.\n\
             # Regenerate: WEIR_UPDATE_CRD=1 cargo test -p weir-engine-provisioner --test crd_in_chart\n{}",
            serde_yaml::to_string(&generated).unwrap()
        );
        std::fs::write(CHART_CRD, text).unwrap();
    }
    let in_chart: serde_json::Value =
        serde_yaml::from_str(&std::fs::read_to_string(CHART_CRD).unwrap()).unwrap();
    assert_eq!(
        in_chart, generated,
        "the chart's CRD is stale: regenerate it (see this file's header)"
    );
    // Kubernetes 1.20 reads `default: ""` as null and refuses the CRD: none may appear.
    let text = serde_json::to_string(&generated).unwrap();
    assert!(!text.contains("\"default\":\"\""), "{text}");
}

/// The provisioner's ConfigMap, as the chart renders it (with NATS in the cluster, and
/// without), loads into `ProvisionerConfig` the way the binary loads it: the binary rejects
/// unknown keys, so a drifted chart would crash-loop. (The other components' configs:
/// tests/e2e/chart_configs.rs.)
#[test]
fn the_charts_provisioner_config_loads() {
    use weir_engine_provisioner::kubernetes::ProvisionerConfig;
    for nats in ["true", "false"] {
        let text = support::helm_template(&[
            "--namespace",
            "weir",
            "--set",
            &format!("nats.enabled={nats}"),
            "--show-only",
            "templates/engine-provisioner.yaml",
        ]);
        let config_map = serde_yaml::Deserializer::from_str(&text)
            .map(|document| -> serde_json::Value {
                serde::Deserialize::deserialize(document).unwrap()
            })
            .find(|value| {
                value["kind"] == "ConfigMap"
                    && value["metadata"]["name"] == "weir-engine-provisioner"
            })
            .expect("the chart renders the provisioner's ConfigMap");
        let scratch = tempfile::tempdir().unwrap();
        let file = scratch.path().join("service-config.yml");
        std::fs::write(
            &file,
            config_map["data"]["service-config.yml"].as_str().unwrap(),
        )
        .unwrap();
        let config: ProvisionerConfig = weir_function_runtime::config::load_config_from(
            Some(&file),
            "engine-provisioner",
            [(
                "WEIR__CONTROL_PLANE__TOKEN".to_string(),
                "a-token".to_string(),
            )],
        )
        .unwrap_or_else(|error| panic!("nats.enabled={nats}: {error}"));
        assert_eq!(
            config.doorbell.map(|doorbell| doorbell.url),
            (nats == "true").then(|| "nats://weir-nats:4222".to_string()),
            "nats.enabled={nats}: pools are woken by task announcements exactly when NATS is there"
        );
    }
}
