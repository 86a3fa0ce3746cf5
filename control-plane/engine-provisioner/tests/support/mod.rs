//! What the provisioner's cluster tests share:
//! - the real Kubernetes API server that `./local/test` starts (`WEIR_TEST_KUBECONFIG`), with a
//!   fresh namespace per test;
//! - the real `weir up` (control plane, ingest, query; transform tasks left to workers) and the
//!   real `weir-transform` binary, both from the workspace's target directory;
//! - `Kubelet`: there is no kubelet, so the test plays it: each pod the Deployment's replica set
//!   creates runs as a local process with the pod's environment and mounted config, and its
//!   status is patched (Running, Ready, podIP).

#![allow(dead_code)]

pub mod kubelet;
pub mod node;

use std::path::PathBuf;

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config, CustomResourceExt};
use weir_engine_provisioner::kubernetes::EnginePool;

/// A binary of the workspace, built next to this test (`cargo test --workspace` and nextest
/// build every binary first).
pub fn workspace_binary(name: &str) -> PathBuf {
    let test = std::env::current_exe().unwrap();
    let dir = test.parent().and_then(|deps| deps.parent()).unwrap();
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is not built: run the tests with `cargo test --workspace` or ./local/test",
        path.display()
    );
    path
}

async fn admin_config() -> Config {
    weir_engine_provisioner::kubernetes::install_crypto_provider();
    let path = std::env::var("WEIR_TEST_KUBECONFIG").expect(
        "WEIR_TEST_KUBECONFIG names the test API server's kubeconfig: run ./local/test \
         (it starts one with local/kube/start-cluster)",
    );
    let kubeconfig = Kubeconfig::read_from(path).unwrap();
    Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .unwrap()
}

/// `helm template weir infra/helm/weir ARGS`, with the helm that infra/validate installs into
/// ~/.cache/weir/bin before the tests.
pub fn helm_template(args: &[&str]) -> String {
    let cache = std::env::var_os("WEIR_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache/weir"));
    let helm = cache.join("bin/helm");
    assert!(
        helm.exists(),
        "{} is missing: ./local/test installs it (infra/validate)",
        helm.display()
    );
    let chart = concat!(env!("CARGO_MANIFEST_DIR"), "/../../infra/helm/weir");
    let output = std::process::Command::new(helm)
        .args(["template", "weir", chart])
        .args(args)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// A cluster administrator (the tests' own client: it plays kubelet and user).
pub async fn client() -> Client {
    Client::try_from(admin_config().await).unwrap()
}

/// The provisioner's client in `namespace`: the chart's ServiceAccount, Role and RoleBinding
/// (rendered by helm, which infra/validate installs into ~/.cache/weir/bin before the tests)
/// are applied, and the client impersonates that ServiceAccount. So the tests fail if the
/// chart's RBAC misses something the controller does.
pub async fn provisioner_client(admin: &Client, namespace: &str) -> Client {
    let text = helm_template(&[
        "--namespace",
        namespace,
        "--show-only",
        "templates/engine-provisioner.yaml",
    ]);
    let mut account = None;
    for document in serde_yaml::Deserializer::from_str(&text) {
        let value: serde_json::Value = serde::Deserialize::deserialize(document).unwrap();
        let kind = value["kind"].as_str().unwrap_or_default().to_string();
        if !["ServiceAccount", "Role", "RoleBinding"].contains(&kind.as_str()) {
            continue;
        }
        let name = value["metadata"]["name"].as_str().unwrap().to_string();
        if kind == "ServiceAccount" {
            account = Some(name.clone());
        }
        let resource = kube::discovery::ApiResource::from_gvk(&kube::api::GroupVersionKind::gvk(
            if kind == "ServiceAccount" {
                ""
            } else {
                "rbac.authorization.k8s.io"
            },
            "v1",
            &kind,
        ));
        let api: Api<kube::api::DynamicObject> =
            Api::namespaced_with(admin.clone(), namespace, &resource);
        api.patch(
            &name,
            &PatchParams::apply("weir-tests").force(),
            &Patch::Apply(&value),
        )
        .await
        .unwrap();
    }
    let account = account.expect("the chart has the provisioner's ServiceAccount");
    let mut config = admin_config().await;
    config.auth_info.impersonate = Some(format!("system:serviceaccount:{namespace}:{account}"));
    Client::try_from(config).unwrap()
}

/// A new namespace, and the EnginePool CRD installed (idempotent).
pub async fn namespace(client: &Client, prefix: &str) -> String {
    let crds: Api<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> =
        Api::all(client.clone());
    crds.patch(
        "enginepools.weir.dev",
        &PatchParams::apply("weir-tests").force(),
        &Patch::Apply(EnginePool::crd()),
    )
    .await
    .unwrap();
    for _ in 0..100 {
        let crd = crds.get("enginepools.weir.dev").await.unwrap();
        let established =
            crd.status
                .and_then(|status| status.conditions)
                .is_some_and(|conditions| {
                    conditions
                        .iter()
                        .any(|c| c.type_ == "Established" && c.status == "True")
                });
        if established {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let name = format!("{prefix}-{}", &uuid_like()[..8]);
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(serde_json::json!({"metadata": {"name": name}})).unwrap(),
        )
        .await
        .unwrap();
    name
}

pub async fn delete_namespace(client: &Client, name: &str) {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let _ = namespaces.delete(name, &DeleteParams::default()).await;
}

fn uuid_like() -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{:016x}", nanos ^ (u128::from(std::process::id()) << 40))
        .chars()
        .rev()
        .collect()
}

/// Polls `check` every 100 ms until it gives a value, or fails after `seconds`.
pub async fn eventually<T, F, Fut>(seconds: u64, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
