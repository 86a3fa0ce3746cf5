//! The chart's CRD is the one the controller's types define (`EnginePool::crd()`).
//! `WEIR_UPDATE_CRD=1 cargo test -p weir-engine-provisioner --test crd_in_chart` rewrites it.

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
