//! A pool's workers as a Deployment, applied server-side and owned by the pool.
//!
//! A Deployment rather than a Job per task: workers are long-running pollers of the task queue
//! (a lease per task, renewed while it runs), so a warm worker takes the next task in
//! milliseconds instead of a pod start per task, and a worker that dies loses nothing (its
//! lease expires and the task is taken again). Scaling is the Deployment's `replicas`.

use std::collections::BTreeMap;

use async_trait::async_trait;
use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMapVolumeSource, Container, ContainerPort, EnvVar, EnvVarSource,
    HTTPGetAction, LocalObjectReference, ObjectFieldSelector, Pod, PodSecurityContext, PodSpec,
    PodTemplateSpec, Probe, ResourceQuota, SecretKeySelector, SecurityContext, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::{Resource, ResourceExt};

use super::config::WorkerTemplate;
use super::crd::EnginePool;
use super::{MANAGER, POOL_LABEL};
use crate::error::ProvisionError;
use crate::pool::{Observed, WorkerPool};

/// The Deployment of a pool is named after it.
pub fn deployment_name(pool: &EnginePool) -> String {
    format!("{}-workers", pool.name_any())
}

/// The Deployment that runs `replicas` workers of `pool`.
pub fn worker_deployment(
    pool: &EnginePool,
    template: &WorkerTemplate,
    replicas: u32,
) -> Deployment {
    let name = deployment_name(pool);
    let labels: BTreeMap<String, String> = [
        ("app.kubernetes.io/name", "weir-engine-worker".to_string()),
        ("app.kubernetes.io/part-of", "weir".to_string()),
        ("app.kubernetes.io/managed-by", MANAGER.to_string()),
        (POOL_LABEL, pool.name_any()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let selector: BTreeMap<String, String> = [(POOL_LABEL.to_string(), pool.name_any())].into();
    let image = pool
        .spec
        .image
        .clone()
        .unwrap_or_else(|| template.image.clone());
    let version = pool.spec.version.clone().unwrap_or_else(|| {
        image
            .rsplit_once(':')
            .map(|(_, tag)| tag)
            .unwrap_or("latest")
            .to_string()
    });
    let env = vec![
        plain("PORT", "8080"),
        EnvVar {
            name: "WEIR__TASKS__EXECUTOR".to_string(),
            value_from: Some(EnvVarSource {
                field_ref: Some(ObjectFieldSelector {
                    field_path: "metadata.name".to_string(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        },
        plain(
            "WEIR__TASKS__CONCURRENCY",
            &pool.spec.concurrency.to_string(),
        ),
        EnvVar {
            name: "WEIR__TASKS__TOKEN".to_string(),
            value_from: Some(EnvVarSource {
                secret_key_ref: Some(SecretKeySelector {
                    name: template.token_secret.clone(),
                    key: template.token_key.clone(),
                    optional: Some(false),
                }),
                ..Default::default()
            }),
            ..Default::default()
        },
        plain("WEIR_ENGINE", &pool.spec.engine),
        plain("WEIR_ENGINE_VERSION", &version),
    ];
    let probe = |path: &str, period: i32| Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.to_string()),
            port: IntOrString::String("http".to_string()),
            ..Default::default()
        }),
        period_seconds: Some(period),
        ..Default::default()
    };
    let container = Container {
        name: "worker".to_string(),
        image: Some(image),
        env: Some(env),
        ports: Some(vec![ContainerPort {
            name: Some("http".to_string()),
            container_port: 8080,
            ..Default::default()
        }]),
        readiness_probe: Some(probe("/readyz", 2)),
        liveness_probe: Some(probe("/healthz", 10)),
        resources: pool.spec.resources.clone(),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            read_only_root_filesystem: Some(true),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".to_string()]),
                ..Default::default()
            }),
            ..Default::default()
        }),
        volume_mounts: Some(vec![
            VolumeMount {
                name: "config".to_string(),
                mount_path: "/srv/transform".to_string(),
                read_only: Some(true),
                ..Default::default()
            },
            VolumeMount {
                name: "tmp".to_string(),
                mount_path: "/tmp".to_string(),
                ..Default::default()
            },
        ]),
        ..Default::default()
    };
    let pod = PodSpec {
        containers: vec![container],
        service_account_name: template.service_account.clone(),
        automount_service_account_token: Some(false),
        termination_grace_period_seconds: Some(template.termination_grace_seconds),
        image_pull_secrets: (!template.image_pull_secrets.is_empty()).then(|| {
            template
                .image_pull_secrets
                .iter()
                .map(|name| LocalObjectReference { name: name.clone() })
                .collect()
        }),
        security_context: Some(PodSecurityContext {
            run_as_non_root: Some(true),
            run_as_user: Some(65532),
            run_as_group: Some(65532),
            ..Default::default()
        }),
        volumes: Some(vec![
            Volume {
                name: "config".to_string(),
                config_map: Some(ConfigMapVolumeSource {
                    name: template.config_map.clone(),
                    ..Default::default()
                }),
                ..Default::default()
            },
            Volume {
                name: "tmp".to_string(),
                empty_dir: Some(Default::default()),
                ..Default::default()
            },
        ]),
        ..Default::default()
    };
    Deployment {
        metadata: ObjectMeta {
            name: Some(name),
            namespace: pool.namespace(),
            labels: Some(labels.clone()),
            owner_references: pool.controller_owner_ref(&()).map(|owner| vec![owner]),
            ..Default::default()
        },
        spec: Some(DeploymentSpec {
            replicas: Some(replicas as i32),
            selector: LabelSelector {
                match_labels: Some(selector),
                ..Default::default()
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels),
                    ..Default::default()
                }),
                spec: Some(pod),
            },
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn plain(name: &str, value: &str) -> EnvVar {
    EnvVar {
        name: name.to_string(),
        value: Some(value.to_string()),
        ..Default::default()
    }
}

/// Whether the scheduler gave up on a pod for now (no node has room).
pub fn is_unschedulable(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|status| status.conditions.as_ref())
        .is_some_and(|conditions| {
            conditions.iter().any(|condition| {
                condition.type_ == "PodScheduled"
                    && condition.status == "False"
                    && condition.reason.as_deref() == Some("Unschedulable")
            })
        })
}

/// A pool's workers in its namespace.
pub struct DeploymentPool {
    pub pool: EnginePool,
    pub template: WorkerTemplate,
    pub client: kube::Client,
}

impl DeploymentPool {
    fn namespace(&self) -> String {
        self.pool
            .namespace()
            .unwrap_or_else(|| "default".to_string())
    }
}

#[async_trait]
impl WorkerPool for DeploymentPool {
    async fn observe(&self) -> Result<Observed, ProvisionError> {
        let namespace = self.namespace();
        let deployments: Api<Deployment> = Api::namespaced(self.client.clone(), &namespace);
        let deployment = deployments.get_opt(&deployment_name(&self.pool)).await?;
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &namespace);
        let selector = format!("{POOL_LABEL}={}", self.pool.name_any());
        let pods = pods.list(&ListParams::default().labels(&selector)).await?;
        let live: Vec<&Pod> = pods
            .items
            .iter()
            .filter(|pod| pod.metadata.deletion_timestamp.is_none())
            .filter(|pod| {
                let phase = pod
                    .status
                    .as_ref()
                    .and_then(|status| status.phase.as_deref());
                !matches!(phase, Some("Succeeded" | "Failed"))
            })
            .collect();
        let replicas = deployment
            .as_ref()
            .and_then(|deployment| deployment.spec.as_ref())
            .and_then(|spec| spec.replicas)
            .unwrap_or(0);
        let ready = deployment
            .as_ref()
            .and_then(|deployment| deployment.status.as_ref())
            .and_then(|status| status.ready_replicas)
            .unwrap_or(0);
        Ok(Observed {
            replicas: replicas.max(0) as u32,
            ready: ready.max(0) as u32,
            existing: live.len() as u32,
            unschedulable: live.iter().filter(|pod| is_unschedulable(pod)).count() as u32,
        })
    }

    async fn scale(&self, replicas: u32) -> Result<(), ProvisionError> {
        let deployments: Api<Deployment> = Api::namespaced(self.client.clone(), &self.namespace());
        let deployment = worker_deployment(&self.pool, &self.template, replicas);
        deployments
            .patch(
                &deployment_name(&self.pool),
                &PatchParams::apply(MANAGER).force(),
                &Patch::Apply(&deployment),
            )
            .await?;
        Ok(())
    }

    async fn capacity(&self, observed: &Observed) -> Result<Option<u32>, ProvisionError> {
        let quotas: Api<ResourceQuota> = Api::namespaced(self.client.clone(), &self.namespace());
        let quotas = quotas.list(&ListParams::default()).await?;
        Ok(super::quota::capacity(
            &quotas.items,
            self.pool.spec.resources.as_ref(),
            observed.existing,
        ))
    }
}
