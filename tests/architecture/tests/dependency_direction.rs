//! The shared kernel crates must stay free of serving, database, lambda and cloud SDK crates,
//! and the ODF model must stay free of I/O. Checked on the resolved graph from `cargo metadata`.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

fn resolved_graph() -> (BTreeMap<String, Vec<String>>, BTreeMap<String, String>) {
    let platform = format!("{}-unknown-linux-gnu", std::env::consts::ARCH);
    let output = Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--locked",
            "--filter-platform",
            &platform,
        ])
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .output()
        .expect("cargo metadata runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let names: BTreeMap<String, String> = metadata["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["id"].as_str().unwrap().to_string(),
                p["name"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let graph = metadata["resolve"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|node| {
            let deps = node["deps"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|dep| {
                    // Only normal (non-dev, non-build) dependencies count.
                    dep["dep_kinds"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|kind| kind["kind"].is_null())
                })
                .map(|dep| dep["pkg"].as_str().unwrap().to_string())
                .collect();
            (node["id"].as_str().unwrap().to_string(), deps)
        })
        .collect();
    (graph, names)
}

/// The crates `crate_name` names in its own `[dependencies]`.
fn direct_dependencies(crate_name: &str) -> BTreeSet<String> {
    let (graph, names) = resolved_graph();
    let root = names
        .iter()
        .find(|(_, name)| name.as_str() == crate_name)
        .map(|(id, _)| id.clone())
        .unwrap_or_else(|| panic!("crate {crate_name} is in the workspace"));
    graph
        .get(&root)
        .into_iter()
        .flatten()
        .map(|id| names[id].clone())
        .collect()
}

fn transitive_dependencies(crate_name: &str) -> BTreeSet<String> {
    let (graph, names) = resolved_graph();
    let root = names
        .iter()
        .find(|(_, name)| name.as_str() == crate_name)
        .map(|(id, _)| id.clone())
        .unwrap_or_else(|| panic!("crate {crate_name} is in the workspace"));
    let mut seen = BTreeSet::new();
    let mut stack = vec![root];
    while let Some(id) = stack.pop() {
        for dep in graph.get(&id).into_iter().flatten() {
            if seen.insert(dep.clone()) {
                stack.push(dep.clone());
            }
        }
    }
    seen.into_iter().map(|id| names[&id].clone()).collect()
}

const SERVING_AND_INFRA: &[&str] = &[
    "axum",
    "sqlx",
    "sqlx-core",
    "lambda_runtime",
    "lambda_http",
    "aws-sdk-s3",
    "aws-sdk-sqs",
    "aws-config",
    "async-nats",
    "kube",
    "async-graphql",
];

/// The crates a build of `crate_name` alone compiles (its own features only, unlike the
/// workspace-wide resolved graph), from `cargo tree`.
fn built_alone(crate_name: &str) -> BTreeSet<String> {
    let output = Command::new(env!("CARGO"))
        .args([
            "tree", "--locked", "-p", crate_name, "-e", "normal", "--prefix", "none", "--format",
            "{lib}",
        ])
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .output()
        .expect("cargo tree runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| {
            line.split_whitespace()
                .next()
                .unwrap_or_default()
                .replace('_', "-")
        })
        .collect()
}

fn assert_built_alone_free_of(crate_name: &str, forbidden: &[&str]) {
    let deps = built_alone(crate_name);
    let found: Vec<&&str> = forbidden
        .iter()
        .filter(|name| deps.contains(**name))
        .collect();
    assert!(
        found.is_empty(),
        "{crate_name} built alone must not compile {found:?}"
    );
}

fn assert_free_of(crate_name: &str, forbidden: &[&str]) {
    let deps = transitive_dependencies(crate_name);
    let found: Vec<&&str> = forbidden
        .iter()
        .filter(|name| deps.contains(**name))
        .collect();
    assert!(
        found.is_empty(),
        "{crate_name} must not depend on {found:?}"
    );
}

#[test]
fn odf_kernel_has_no_io_dependencies() {
    let mut forbidden = SERVING_AND_INFRA.to_vec();
    forbidden.extend([
        "tokio",
        "object_store",
        "datafusion",
        "arrow",
        "parquet",
        "reqwest",
        "hyper",
        // Engine protocol messages are plain FlatBuffers; gRPC lives in weir-transform.
        "tonic",
        "prost",
    ]);
    assert_free_of("weir-odf", &forbidden);
}

#[test]
fn dataset_storage_has_no_serving_or_cloud_sdk_dependencies() {
    assert_free_of("weir-dataset", SERVING_AND_INFRA);
    assert_free_of("weir-dataset", &["tonic", "prost"]);
}

#[test]
fn kernel_crates_do_not_depend_on_functions_or_control_plane() {
    for kernel in ["weir-odf", "weir-dataset"] {
        let deps = transitive_dependencies(kernel);
        let upward: Vec<&String> = deps
            .iter()
            .filter(|name| {
                name.starts_with("weir-") && !matches!(name.as_str(), "weir-odf" | "weir-dataset")
            })
            .collect();
        assert!(upward.is_empty(), "{kernel} depends on {upward:?}");
    }
}

#[test]
fn function_runtime_does_not_depend_on_storage_or_functions() {
    assert_free_of(
        "weir-function-runtime",
        &[
            "weir-odf",
            "weir-dataset",
            "weir-ingest",
            "datafusion",
            "object_store",
            "sqlx",
        ],
    );
}

#[test]
fn ingest_function_has_no_database_or_cloud_sdk_dependencies() {
    // The ingest function long-polls SQS (queue ingest) through the runtime's `sqs` feature;
    // S3 it reaches through object_store.
    assert_free_of("weir-ingest", &["sqlx", "sqlx-core", "aws-sdk-s3", "kube"]);
    assert!(!direct_dependencies("weir-ingest").contains("aws-sdk-sqs"));
}

#[test]
fn metastore_knows_neither_odf_nor_storage_nor_http() {
    assert_free_of(
        "weir-metastore",
        &[
            "weir-odf",
            "weir-dataset",
            "datafusion",
            "object_store",
            "axum",
            "async-nats",
        ],
    );
}

#[test]
fn device_registry_knows_neither_odf_nor_storage_nor_http_nor_the_bus() {
    // Events it implies go through the metastore's outbox; the control plane wires it to HTTP.
    assert_free_of(
        "weir-device-registry",
        &[
            "weir-odf",
            "weir-dataset",
            "weir-events",
            "weir-function-runtime",
            "datafusion",
            "object_store",
            "axum",
            "hyper",
            "reqwest",
            "async-nats",
            "async-graphql",
        ],
    );
}

#[test]
fn only_the_device_function_speaks_mqtt() {
    assert!(
        direct_dependencies("weir-devices").contains("rumqttc"),
        "the check sees MQTT where it is"
    );
    for name in [
        "weir-odf",
        "weir-dataset",
        "weir-function-runtime",
        "weir-ingest",
        "weir-query",
        "weir-transform",
        "weir-metastore",
        "weir-events",
        "weir-flows",
        "weir-device-registry",
        "weir-control-plane",
    ] {
        assert_free_of(name, &["rumqttc"]);
    }
}

#[test]
fn event_bus_knows_neither_database_nor_storage_nor_http() {
    assert_free_of(
        "weir-events",
        &["weir-odf", "weir-dataset", "sqlx", "datafusion", "axum"],
    );
}

#[test]
fn flows_know_neither_odf_nor_storage_nor_http_nor_functions() {
    // Flows are scheduling over a database: the control plane wires them to datasets and HTTP.
    assert_free_of(
        "weir-flows",
        &[
            "weir-odf",
            "weir-dataset",
            "weir-function-runtime",
            "weir-events",
            "weir-transform",
            "weir-ingest",
            "datafusion",
            "object_store",
            "axum",
            "hyper",
            "reqwest",
            "async-graphql",
            "lambda_http",
            "async-nats",
            "kube",
        ],
    );
}

#[test]
fn task_protocol_is_plain_data_and_a_loop() {
    // Shared by the queue (weir-flows) and executors (functions): it may not pull either in.
    let mut forbidden = SERVING_AND_INFRA.to_vec();
    forbidden.extend([
        "weir-flows",
        "weir-metastore",
        "weir-function-runtime",
        "weir-odf",
        "weir-dataset",
        "reqwest",
        "hyper",
        "datafusion",
    ]);
    assert_free_of("weir-tasks", &forbidden);
}

#[test]
fn control_plane_does_not_depend_on_functions() {
    assert_free_of(
        "weir-control-plane",
        &[
            "weir-ingest",
            "weir-query",
            "weir-transform",
            "weir-devices",
            "weir-governance",
        ],
    );
}

#[test]
fn functions_do_not_depend_on_the_control_plane_or_its_database() {
    for function in [
        "weir-ingest",
        "weir-query",
        "weir-transform",
        "weir-devices",
        "weir-governance",
    ] {
        assert_free_of(
            function,
            &[
                "weir-control-plane",
                "weir-flows",
                "weir-device-registry",
                "weir-webhooks",
                "weir-metastore",
                "weir-events",
                "sqlx",
                "async-graphql",
            ],
        );
    }
}

#[test]
fn transform_function_depends_on_no_other_function_and_no_cloud_sdk() {
    assert_free_of(
        "weir-transform",
        &["weir-ingest", "weir-query", "aws-sdk-s3", "kube"],
    );
    assert_built_alone_free_of("weir-transform", &["aws-sdk-sqs", "aws-config"]);
}

#[test]
fn only_the_bus_and_the_function_runtime_speak_nats() {
    // Functions reach NATS (task announcements, later queue consumers) only through
    // weir-function-runtime; the control plane only through weir-events.
    for name in [
        "weir-odf",
        "weir-dataset",
        "weir-tasks",
        "weir-ingest",
        "weir-query",
        "weir-transform",
        "weir-devices",
        "weir-governance",
        "weir-flows",
        "weir-metastore",
        "weir-device-registry",
        "weir-webhooks",
        "weir-control-plane",
        "weir-local",
    ] {
        assert!(
            !direct_dependencies(name).contains("async-nats"),
            "{name} must not use async-nats directly"
        );
    }
    assert_free_of("weir-tasks", &["async-nats"]);
    assert_free_of("weir-flows", &["async-nats"]);
}

#[test]
fn only_the_bus_and_the_ingest_consumer_speak_sqs() {
    // The control plane announces tasks on SQS through weir-events; the ingest function
    // long-polls its queue through weir-function-runtime's optional `sqs` feature. Every other
    // function receives SQS events from Lambda as JSON (aws_lambda_events) and needs no SDK.
    assert!(
        built_alone("weir-ingest").contains("aws-sdk-sqs"),
        "the check sees the SDK where it is"
    );
    for name in [
        "weir-function-runtime",
        "weir-query",
        "weir-transform",
        "weir-flows",
        "weir-tasks",
    ] {
        assert_built_alone_free_of(name, &["aws-sdk-sqs", "aws-config"]);
    }
    for name in [
        "weir-ingest",
        "weir-query",
        "weir-transform",
        "weir-control-plane",
        "weir-local",
        "weir-metastore",
    ] {
        assert!(
            !direct_dependencies(name).contains("aws-sdk-sqs"),
            "{name} must reach SQS through weir-events or the function runtime"
        );
    }
}

#[test]
fn only_the_transform_and_query_functions_speak_grpc() {
    // The engine protocol (transform) and FlightSQL (query) are the only gRPC surfaces.
    for name in [
        "weir-ingest",
        "weir-devices",
        "weir-function-runtime",
        "weir-metastore",
        "weir-events",
        "weir-flows",
        "weir-device-registry",
        "weir-tasks",
    ] {
        assert_free_of(name, &["tonic", "prost"]);
    }
}

#[test]
fn governance_function_depends_on_no_other_function_and_no_cloud_sdk_or_queue() {
    // Documentation is committed through weir-dataset's pipeline; access and notifications go
    // through weir-function-runtime. It neither ingests, queries nor speaks a queue protocol.
    assert_free_of(
        "weir-governance",
        &[
            "weir-ingest",
            "weir-query",
            "weir-transform",
            "weir-devices",
            "aws-sdk-s3",
            "kube",
            "rumqttc",
            "tonic",
        ],
    );
    assert_built_alone_free_of("weir-governance", &["aws-sdk-sqs", "aws-config"]);
}

#[test]
fn webhooks_know_neither_odf_nor_storage_nor_the_bus_nor_functions() {
    // Delivery (HTTP out) and its store; the control plane wires events and flows to it.
    assert_free_of(
        "weir-webhooks",
        &[
            "weir-odf",
            "weir-dataset",
            "weir-events",
            "weir-flows",
            "weir-function-runtime",
            "weir-governance",
            "datafusion",
            "object_store",
            "axum",
            "async-nats",
            "async-graphql",
        ],
    );
}

#[test]
fn only_the_engine_provisioner_speaks_kubernetes() {
    assert!(
        direct_dependencies("weir-engine-provisioner").contains("kube"),
        "the check sees kube where it is"
    );
    for name in [
        "weir-odf",
        "weir-dataset",
        "weir-function-runtime",
        "weir-tasks",
        "weir-ingest",
        "weir-query",
        "weir-transform",
        "weir-devices",
        "weir-governance",
        "weir-metastore",
        "weir-events",
        "weir-flows",
        "weir-device-registry",
        "weir-webhooks",
        "weir-control-plane",
    ] {
        assert_free_of(name, &["kube", "kube-client", "k8s-openapi"]);
    }
}

#[test]
fn engine_provisioner_reads_demand_over_http_only() {
    // The provisioner knows the control plane by its HTTP API (`GET /tasks/depth`): no control
    // plane crate, database, storage or engine.
    assert_free_of(
        "weir-engine-provisioner",
        &[
            "weir-control-plane",
            "weir-metastore",
            "weir-flows",
            "weir-dataset",
            "weir-odf",
            "weir-transform",
            "sqlx",
            "datafusion",
            "object_store",
        ],
    );
    // Without its `kubernetes` feature (as `weir up` links it) it compiles no Kubernetes client.
    let output = Command::new(env!("CARGO"))
        .args([
            "tree",
            "--locked",
            "-p",
            "weir-engine-provisioner",
            "--no-default-features",
            "-e",
            "normal",
            "--prefix",
            "none",
            "--format",
            "{lib}",
        ])
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .output()
        .expect("cargo tree runs");
    assert!(output.status.success());
    let tree = String::from_utf8_lossy(&output.stdout);
    assert!(!tree.lines().any(|line| line.starts_with("kube")), "{tree}");
    assert!(
        tree.lines().any(|line| line.starts_with("reqwest")),
        "{tree}"
    );
}
