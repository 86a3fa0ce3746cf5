//! The engine provisioner against a real Kubernetes API server and controller manager (started
//! by ./local/test), with the real `weir up` and real transform workers; the test plays kubelet.
//!
//! What 1.20 and this setup cannot show: no scheduler or kubelet (the test decides placement
//! and reports pod status itself), no CEL (cross-field rules are the controller's, reported in
//! `Ready`), and unknown fields are dropped silently by the API server (the chart's manifests
//! are checked strictly by infra/validate instead).

mod support;

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, ResourceQuota, Secret};
use kube::Client;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;
use support::kubelet::{Kubelet, Mode};
use support::node::WeirNode;
use support::{client, eventually, namespace, workspace_binary};
use weir_engine_provisioner::ControlPlaneDemand;
use weir_engine_provisioner::kubernetes::config::{DoorbellConfig, WorkerTemplate};
use weir_engine_provisioner::kubernetes::{Context, EnginePool, ProvisionerConfig, run_controller};

/// The worker ConfigMap and token Secret the pool's pods use, as the chart makes them.
async fn worker_objects(client: &Client, ns: &str, node: &WeirNode) {
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    let map = json!({"metadata": {"name": "weir-engine-worker"}, "data": {"service-config.yml": node.worker_config()}});
    maps.create(
        &PostParams::default(),
        &serde_json::from_value(map).unwrap(),
    )
    .await
    .unwrap();
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    let secret =
        json!({"metadata": {"name": "weir-secrets"}, "stringData": {"tasks-token": node.token}});
    secrets
        .create(
            &PostParams::default(),
            &serde_json::from_value(secret).unwrap(),
        )
        .await
        .unwrap();
}

/// The controller, as the chart's ServiceAccount (least-privilege RBAC).
async fn start_controller(
    admin: &Client,
    ns: &str,
    node: &WeirNode,
) -> tokio::task::JoinHandle<()> {
    start_controller_with(admin, ns, node, test_config(ns)).await
}

fn test_config(ns: &str) -> ProvisionerConfig {
    ProvisionerConfig {
        namespace: Some(ns.to_string()),
        poll_seconds: 1,
        initial_backoff_seconds: 2,
        max_backoff_seconds: 8,
        worker: WorkerTemplate {
            image: "weir-transform:test".to_string(),
            ..WorkerTemplate::default()
        },
        ..ProvisionerConfig::default()
    }
}

async fn start_controller_with(
    admin: &Client,
    ns: &str,
    node: &WeirNode,
    config: ProvisionerConfig,
) -> tokio::task::JoinHandle<()> {
    let client = support::provisioner_client(admin, ns).await;
    let ctx = Arc::new(Context {
        client,
        config,
        demand: Arc::new(ControlPlaneDemand::new(&node.url, &node.token)),
    });
    let ns = ns.to_string();
    tokio::spawn(async move { run_controller(ctx, &ns).await })
}

async fn create_pool(client: &Client, ns: &str, name: &str, spec: serde_json::Value) {
    let pools: Api<EnginePool> = Api::namespaced(client.clone(), ns);
    let pool = json!({"apiVersion": "weir.dev/v1alpha1", "kind": "EnginePool", "metadata": {"name": name}, "spec": spec});
    pools
        .create(
            &PostParams::default(),
            &serde_json::from_value(pool).unwrap(),
        )
        .await
        .unwrap();
}

async fn pool(client: &Client, ns: &str, name: &str) -> EnginePool {
    Api::<EnginePool>::namespaced(client.clone(), ns)
        .get(name)
        .await
        .unwrap()
}

async fn deployment_replicas(client: &Client, ns: &str, pool: &str) -> Option<i32> {
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns);
    deployments
        .get_opt(&format!("{pool}-workers"))
        .await
        .unwrap()
        .and_then(|deployment| deployment.spec.and_then(|spec| spec.replicas))
}

async fn pods(client: &Client, ns: &str, pool: &str) -> Vec<Pod> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    pods.list(&ListParams::default().labels(&format!("weir.dev/engine-pool={pool}")))
        .await
        .unwrap()
        .items
}

fn condition(pool: &EnginePool, type_: &str) -> Option<(String, String)> {
    pool.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| (c.status.clone(), c.reason.clone()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flow_scales_the_pool_from_zero_runs_the_transform_and_scales_back_to_zero() {
    let client = client().await;
    let ns = namespace(&client, "weir-flow").await;
    let node = WeirNode::start();
    node.create_root().await;
    worker_objects(&client, &ns, &node).await;
    let kubelet = Kubelet::start(
        client.clone(),
        &ns,
        workspace_binary("weir-transform"),
        Mode::Run,
    );
    let controller = start_controller(&client, &ns, &node).await;
    create_pool(&client, &ns, "datafusion", json!({"engine": "datafusion", "minReplicas": 0, "maxReplicas": 2, "concurrency": 1, "idleSeconds": 3})).await;

    // Nothing queued: the pool stays at zero, and says so.
    eventually(20, "the pool's first status", || async {
        let pool = pool(&client, &ns, "datafusion").await;
        let status = pool.status.clone()?;
        (condition(&pool, "Ready").is_some() && status.replicas == 0).then_some(())
    })
    .await;
    assert_eq!(
        deployment_replicas(&client, &ns, "datafusion").await,
        Some(0)
    );
    let owner = Api::<Deployment>::namespaced(client.clone(), &ns)
        .get("datafusion-workers")
        .await
        .unwrap();
    let owners = owner.metadata.owner_references.unwrap();
    assert_eq!(
        (
            owners[0].kind.as_str(),
            owners[0].name.as_str(),
            owners[0].controller
        ),
        ("EnginePool", "datafusion", Some(true))
    );
    assert_eq!(
        pool(&client, &ns, "datafusion")
            .await
            .metadata
            .finalizers
            .unwrap(),
        vec!["weir.dev/engine-pool-cleanup"]
    );

    // A flow queues a task: a worker pod appears, runs the real transform, the rows arrive.
    node.create_derivative("sensor.hourly").await;
    eventually(90, "the derivative computed by a worker pod", || async {
        (node.rows("sensor.hourly").await == json!([{"sensor": "s1", "avg_temp": 21.0}]))
            .then_some(())
    })
    .await;
    assert!(kubelet.started() >= 1, "a worker pod ran");
    assert_eq!(node.depth().await, (0, 0));
    let executed = node
        .block_events("sensor.hourly")
        .await
        .iter()
        .filter(|e| *e == "ExecuteTransform")
        .count();
    assert_eq!(executed, 1);

    // Idle for idleSeconds: back to zero, and the worker process is gone with its pod.
    eventually(30, "scaled back to zero", || async {
        let replicas = deployment_replicas(&client, &ns, "datafusion").await;
        let live = pods(&client, &ns, "datafusion").await.len();
        (replicas == Some(0) && live == 0 && kubelet.running().is_empty()).then_some(())
    })
    .await;
    let status = pool(&client, &ns, "datafusion").await.status.unwrap();
    assert_eq!(
        (status.replicas, status.queued_tasks, status.leased_tasks),
        (0, 0, 0)
    );

    // Deleting the pool removes its Deployment, then the pool itself (finalizer released).
    Api::<EnginePool>::namespaced(client.clone(), &ns)
        .delete("datafusion", &DeleteParams::default())
        .await
        .unwrap();
    eventually(30, "the pool and its Deployment gone", || async {
        let pool = Api::<EnginePool>::namespaced(client.clone(), &ns)
            .get_opt("datafusion")
            .await
            .unwrap();
        let replicas = deployment_replicas(&client, &ns, "datafusion").await;
        (pool.is_none() && replicas.is_none()).then_some(())
    })
    .await;
    controller.abort();
    support::delete_namespace(&client, &ns).await;
}

/// With the control plane's bus on NATS, a queued task wakes the pool at once: the poll is
/// ten minutes here, so without the announcement the pool would stay at zero past the deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_announced_task_wakes_the_pool_between_polls() {
    let client = client().await;
    let ns = namespace(&client, "weir-bell").await;
    let prefix = ns.replace('-', "_");
    let node = WeirNode::start_with_nats_bus(&prefix);
    node.create_root().await;
    worker_objects(&client, &ns, &node).await;
    let config = ProvisionerConfig {
        poll_seconds: 600,
        doorbell: Some(DoorbellConfig {
            url: "nats://127.0.0.1:4222".to_string(),
            prefix,
        }),
        ..test_config(&ns)
    };
    let controller = start_controller_with(&client, &ns, &node, config).await;
    create_pool(
        &client,
        &ns,
        "datafusion",
        json!({"engine": "datafusion", "minReplicas": 0, "maxReplicas": 2, "concurrency": 1}),
    )
    .await;
    eventually(20, "the pool's first status", || async {
        let pool = pool(&client, &ns, "datafusion").await;
        (pool.status?.observed_generation == Some(1)).then_some(())
    })
    .await;
    assert_eq!(
        deployment_replicas(&client, &ns, "datafusion").await,
        Some(0)
    );
    // Let the rounds that the Deployment's own changes cause die down, then queue a task.
    tokio::time::sleep(Duration::from_secs(3)).await;
    node.create_derivative("sensor.hourly").await;
    eventually(30, "a worker asked for by the announcement", || async {
        (deployment_replicas(&client, &ns, "datafusion").await == Some(1)).then_some(())
    })
    .await;
    controller.abort();
    support::delete_namespace(&client, &ns).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_that_dies_mid_task_loses_nothing_and_duplicates_nothing() {
    let client = client().await;
    let ns = namespace(&client, "weir-crash").await;
    let node = WeirNode::start();
    node.create_root().await;
    worker_objects(&client, &ns, &node).await;
    // The first pod "runs" without a process: the test holds its task for it, then it dies.
    let kubelet = Kubelet::start(
        client.clone(),
        &ns,
        workspace_binary("weir-transform"),
        Mode::Pretend,
    );
    let controller = start_controller(&client, &ns, &node).await;
    create_pool(
        &client,
        &ns,
        "pool",
        json!({"engine": "datafusion", "maxReplicas": 1, "concurrency": 1, "idleSeconds": 30}),
    )
    .await;
    node.create_derivative("sensor.hourly").await;
    let first = eventually(30, "a worker pod", || async {
        pods(&client, &ns, "pool")
            .await
            .first()
            .and_then(|pod| pod.metadata.name.clone())
    })
    .await;
    // The pod takes the task (as its worker does: executor = pod name), then dies before
    // committing: its node is gone, and so is the pod.
    let (status, task) = node
        .send(
            reqwest::Method::POST,
            "/tasks/lease",
            "application/json",
            json!({"kinds": ["transform", "reset"], "executor": first, "leaseMillis": 2000})
                .to_string(),
        )
        .await;
    assert_eq!(status, 200, "{task}");
    assert_eq!(node.depth().await, (0, 1));
    kubelet.set_mode(Mode::Run);
    Api::<Pod>::namespaced(client.clone(), &ns)
        .delete(&first, &DeleteParams::default().grace_period(0))
        .await
        .unwrap();

    // The replica set replaces the pod; once the lease expires the task is queued again and the
    // new worker runs it.
    eventually(
        90,
        "the task run again by the replacement worker",
        || async {
            (node.rows("sensor.hourly").await == json!([{"sensor": "s1", "avg_temp": 21.0}]))
                .then_some(())
        },
    )
    .await;
    let pods_now = pods(&client, &ns, "pool").await;
    assert!(
        pods_now
            .iter()
            .all(|pod| pod.metadata.name.as_deref() != Some(first.as_str()))
    );
    // The dead executor's report is refused; one ExecuteTransform block, no duplicate.
    let (status, _) = node
        .send(reqwest::Method::POST, &format!("/tasks/{}/finish", task["taskId"]), "application/json",
            json!({"executor": first, "outcome": {"status": "success", "changed": true, "details": {}}}).to_string())
        .await;
    assert_eq!(status, 409);
    let events = node.block_events("sensor.hourly").await;
    assert_eq!(
        events.iter().filter(|e| *e == "ExecuteTransform").count(),
        1,
        "{events:?}"
    );
    let runs = node
        .get("/datasets/admin/sensor.hourly/flows/runs?limit=10")
        .await;
    assert_eq!(runs["runs"][0]["outcome"]["kind"], "success", "{runs}");
    drop(kubelet);
    controller.abort();
    support::delete_namespace(&client, &ns).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pools_keep_to_their_maximum_the_quota_and_back_off_while_unschedulable() {
    let client = client().await;
    let ns = namespace(&client, "weir-bounds").await;
    let node = WeirNode::start();
    node.create_root().await;
    worker_objects(&client, &ns, &node).await;
    // Five transform tasks stay queued: no worker here runs them.
    for index in 0..5 {
        node.create_derivative(&format!("sensor.hourly{index}"))
            .await;
    }
    eventually(30, "five queued tasks", || async {
        (node.depth().await == (5, 0)).then_some(())
    })
    .await;
    let kubelet = Kubelet::start(
        client.clone(),
        &ns,
        workspace_binary("weir-transform"),
        Mode::Pretend,
    );
    // A quota admitting two worker pods in all.
    let quotas: Api<ResourceQuota> = Api::namespaced(client.clone(), &ns);
    let quota = json!({"metadata": {"name": "workers"}, "spec": {"hard": {"pods": "2"}}});
    quotas
        .create(
            &PostParams::default(),
            &serde_json::from_value(quota).unwrap(),
        )
        .await
        .unwrap();
    let controller = start_controller(&client, &ns, &node).await;

    create_pool(
        &client,
        &ns,
        "limited",
        json!({"engine": "datafusion", "maxReplicas": 4, "concurrency": 1}),
    )
    .await;
    let limited = eventually(30, "the quota to bound the pool", || async {
        let pool = pool(&client, &ns, "limited").await;
        (pool.status.as_ref()?.replicas == 2).then_some(pool)
    })
    .await;
    let status = limited.status.clone().unwrap();
    assert_eq!(
        (status.wanted_replicas, status.queued_tasks, status.capacity),
        (5, 5, Some(2))
    );
    assert_eq!(
        condition(&limited, "Scaling"),
        Some(("True".into(), "QuotaLimited".into()))
    );
    assert_eq!(deployment_replicas(&client, &ns, "limited").await, Some(2));
    // The quota's admission stops a third pod in any case; the Deployment never asked for one.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(deployment_replicas(&client, &ns, "limited").await, Some(2));
    Api::<EnginePool>::namespaced(client.clone(), &ns)
        .delete("limited", &DeleteParams::default())
        .await
        .unwrap();
    eventually(30, "the limited pool's pods gone", || async {
        pods(&client, &ns, "limited").await.is_empty().then_some(())
    })
    .await;
    quotas
        .delete("workers", &DeleteParams::default())
        .await
        .unwrap();

    // maxReplicas bounds the pool; unschedulable pods stop growth until they are placed.
    kubelet.set_mode(Mode::Unschedulable);
    create_pool(
        &client,
        &ns,
        "big",
        json!({"engine": "datafusion", "maxReplicas": 3, "concurrency": 1}),
    )
    .await;
    let big = eventually(30, "the unschedulable condition", || async {
        let pool = pool(&client, &ns, "big").await;
        (condition(&pool, "Unschedulable")?.0 == "True").then_some(pool)
    })
    .await;
    let status = big.status.clone().unwrap();
    assert_eq!(
        (status.replicas, status.wanted_replicas),
        (3, 5),
        "at maxReplicas"
    );
    assert!(
        status.backoff_seconds >= 2 && status.backoff_until.is_some(),
        "{status:?}"
    );
    let pools: Api<EnginePool> = Api::namespaced(client.clone(), &ns);
    pools
        .patch(
            "big",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"maxReplicas": 5}})),
        )
        .await
        .unwrap();
    eventually(20, "the pool backing off", || async {
        let pool = pool(&client, &ns, "big").await;
        (condition(&pool, "Scaling")?.1 == "BackingOff").then_some(())
    })
    .await;
    assert_eq!(
        deployment_replicas(&client, &ns, "big").await,
        Some(3),
        "no growth while unschedulable"
    );
    // Room appears: the pods are placed, and after the backoff the pool grows to the demand.
    kubelet.set_mode(Mode::Pretend);
    eventually(30, "growth after the backoff", || async {
        (deployment_replicas(&client, &ns, "big").await == Some(5)).then_some(())
    })
    .await;
    let big = pool(&client, &ns, "big").await;
    assert_eq!(
        condition(&big, "Unschedulable").map(|c| c.0),
        Some("False".into())
    );

    // A pool whose bounds contradict each other (no CEL on 1.20: the controller says so).
    create_pool(
        &client,
        &ns,
        "broken",
        json!({"engine": "datafusion", "minReplicas": 3, "maxReplicas": 1}),
    )
    .await;
    let broken = eventually(20, "the invalid pool's condition", || async {
        let pool = pool(&client, &ns, "broken").await;
        condition(&pool, "Ready").map(|c| (c, pool))
    })
    .await;
    assert_eq!(broken.0, ("False".into(), "InvalidSpec".into()));
    assert!(
        broken.1.status.unwrap().conditions[0]
            .message
            .contains("maxReplicas (1) is below minReplicas (3)")
    );
    assert_eq!(
        deployment_replicas(&client, &ns, "broken").await,
        None,
        "no workers for a broken pool"
    );
    // The API server's schema refuses what it can: a negative maximum.
    let refused = pools
        .create(
            &PostParams::default(),
            &serde_json::from_value(
                json!({"apiVersion": "weir.dev/v1alpha1", "kind": "EnginePool",
            "metadata": {"name": "negative"}, "spec": {"engine": "datafusion", "maxReplicas": -1}}),
            )
            .unwrap(),
        )
        .await;
    assert!(
        matches!(refused, Err(kube::Error::Api(ref status)) if status.code == 422),
        "{refused:?}"
    );
    drop(kubelet);
    controller.abort();
    support::delete_namespace(&client, &ns).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_replica_leads_and_another_takes_over_when_it_stops_renewing() {
    use weir_engine_provisioner::kubernetes::leader::LeaseLock;
    let admin = client().await;
    let ns = namespace(&admin, "weir-lease").await;
    let client = support::provisioner_client(&admin, &ns).await;
    let lock = |identity: &str| {
        LeaseLock::new(
            client.clone(),
            &ns,
            "weir-engine-provisioner",
            identity,
            Duration::from_secs(2),
        )
    };
    let (a, b) = (lock("a"), lock("b"));
    assert!(a.try_acquire_or_renew().await.unwrap());
    assert!(!b.try_acquire_or_renew().await.unwrap());
    assert!(a.try_acquire_or_renew().await.unwrap(), "the holder renews");
    assert!(!b.try_acquire_or_renew().await.unwrap());
    // `a` stops renewing (crashed): once the lease has expired, `b` takes it, and `a` is out.
    tokio::time::sleep(Duration::from_millis(2300)).await;
    assert!(b.try_acquire_or_renew().await.unwrap());
    assert!(!a.try_acquire_or_renew().await.unwrap());
    let lease = Api::<k8s_openapi::api::coordination::v1::Lease>::namespaced(admin.clone(), &ns)
        .get("weir-engine-provisioner")
        .await
        .unwrap();
    let spec = lease.spec.unwrap();
    assert_eq!(
        (spec.holder_identity.as_deref(), spec.lease_transitions),
        (Some("b"), Some(1))
    );
    // A holder shutting down gives the lease up: the other need not wait.
    b.release().await.unwrap();
    assert!(a.try_acquire_or_renew().await.unwrap());
    // Work runs only while leading: `b` waits while `a` holds the lease.
    let ran = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = ran.clone();
    let waiting = tokio::spawn(async move {
        b.run_while_leader(|| {
            let flag = flag.clone();
            async move { flag.store(true, std::sync::atomic::Ordering::SeqCst) }
        })
        .await
    });
    for _ in 0..4 {
        assert!(a.try_acquire_or_renew().await.unwrap());
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(
        !ran.load(std::sync::atomic::Ordering::SeqCst),
        "b ran while a led"
    );
    a.release().await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), waiting)
        .await
        .unwrap()
        .unwrap();
    assert!(ran.load(std::sync::atomic::Ordering::SeqCst));
    support::delete_namespace(&admin, &ns).await;
}

/// The provisioner's reaction times (a benchmark, not a test: `tests/bench/provisioner.sh` runs
/// it with `--ignored`). For ROUNDS derivative datasets in turn, from the moment its creation
/// queued a transform task: the Deployment asked for a worker, the pod created, a worker held
/// the task, the task done. Once from a pool at zero (each round waits for it to scale back to
/// zero) and once with a warm pool (minReplicas 1). Prints one JSON line per round.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark: tests/bench/provisioner.sh"]
async fn reaction_times() {
    let rounds: usize = std::env::var("ROUNDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(10);
    let poll: u64 = std::env::var("POLL_SECONDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1);
    let doorbell = std::env::var("DOORBELL").is_ok_and(|value| value == "1");
    let admin = client().await;
    let ns = namespace(&admin, "weir-bench").await;
    let prefix = ns.replace('-', "_");
    let node = if doorbell {
        WeirNode::start_with_nats_bus(&prefix)
    } else {
        WeirNode::start()
    };
    node.create_root().await;
    worker_objects(&admin, &ns, &node).await;
    let _kubelet = Kubelet::start(
        admin.clone(),
        &ns,
        workspace_binary("weir-transform"),
        Mode::Run,
    );
    let provisioner = support::provisioner_client(&admin, &ns).await;
    let ctx = Arc::new(Context {
        client: provisioner,
        config: ProvisionerConfig {
            namespace: Some(ns.clone()),
            poll_seconds: poll,
            doorbell: doorbell.then(|| DoorbellConfig {
                url: "nats://127.0.0.1:4222".to_string(),
                prefix: prefix.clone(),
            }),
            ..ProvisionerConfig::default()
        },
        demand: Arc::new(ControlPlaneDemand::new(&node.url, &node.token)),
    });
    let controller = {
        let ns = ns.clone();
        tokio::spawn(async move { run_controller(ctx, &ns).await })
    };
    for (mode, min) in [("zero", 0), ("warm", 1)] {
        let name = format!("pool-{mode}");
        create_pool(&admin, &ns, &name, json!({"engine": "datafusion", "minReplicas": min, "maxReplicas": 1, "concurrency": 1, "idleSeconds": 1})).await;
        for round in 0..rounds {
            // Settle: the pool at its minimum, its workers ready.
            eventually(60, "the pool settled", || async {
                let live = pods(&admin, &ns, &name).await;
                let ready = live.iter().all(|pod| {
                    pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
                });
                (live.len() == min
                    && ready
                    && deployment_replicas(&admin, &ns, &name).await == Some(min as i32))
                .then_some(())
            })
            .await;
            let dataset = format!("bench.{mode}{round}");
            let start = std::time::Instant::now();
            node.create_derivative(&dataset).await;
            let (mut asked, mut created, mut leased) = (None, None, None);
            loop {
                let elapsed = start.elapsed().as_secs_f64() * 1000.0;
                if asked.is_none()
                    && deployment_replicas(&admin, &ns, &name).await.unwrap_or(0) >= 1
                {
                    asked = Some(elapsed);
                }
                if created.is_none() && !pods(&admin, &ns, &name).await.is_empty() {
                    created = Some(elapsed);
                }
                let depth = node.depth().await;
                if leased.is_none() && depth.1 > 0 {
                    leased = Some(elapsed);
                }
                let runs = node
                    .get(&format!("/datasets/admin/{dataset}/flows/runs?limit=1"))
                    .await;
                if runs["runs"][0]["outcome"]["kind"] == "success" {
                    let done = start.elapsed().as_secs_f64() * 1000.0;
                    println!(
                        "{}",
                        json!({"pool": mode, "round": round, "pollSeconds": poll, "doorbell": doorbell, "askedMs": asked, "podMs": created, "leasedMs": leased, "doneMs": done})
                    );
                    break;
                }
                assert!(
                    start.elapsed() < Duration::from_secs(60),
                    "round {round} of {mode} never finished"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        Api::<EnginePool>::namespaced(admin.clone(), &ns)
            .delete(&name, &DeleteParams::default())
            .await
            .unwrap();
        eventually(60, "the pool gone", || async {
            pods(&admin, &ns, &name).await.is_empty().then_some(())
        })
        .await;
    }
    controller.abort();
    support::delete_namespace(&admin, &ns).await;
}
