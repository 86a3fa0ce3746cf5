//! Leader election on a `coordination.k8s.io/v1` Lease: only the holder runs the controller.
//!
//! A candidate takes the lease when it is free or its holder has not renewed it for
//! `leaseDurationSeconds`; the holder renews it every third of that. Writes carry the
//! `resourceVersion` read, so two candidates never both win a round.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PostParams};

use crate::error::ProvisionError;

pub struct LeaseLock {
    api: Api<Lease>,
    name: String,
    identity: String,
    duration: Duration,
}

impl LeaseLock {
    pub fn new(
        client: kube::Client,
        namespace: &str,
        name: &str,
        identity: &str,
        duration: Duration,
    ) -> Self {
        Self {
            api: Api::namespaced(client, namespace),
            name: name.to_string(),
            identity: identity.to_string(),
            duration,
        }
    }

    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// The interval of renewals and of attempts to take the lease.
    pub fn retry_period(&self) -> Duration {
        (self.duration / 3).max(Duration::from_millis(200))
    }

    fn spec(&self, transitions: i32, acquired: Option<MicroTime>) -> LeaseSpec {
        let now = MicroTime(Timestamp::now());
        LeaseSpec {
            holder_identity: Some(self.identity.clone()),
            lease_duration_seconds: Some(self.duration.as_secs().max(1) as i32),
            acquire_time: Some(acquired.unwrap_or_else(|| now.clone())),
            renew_time: Some(now),
            lease_transitions: Some(transitions),
            ..Default::default()
        }
    }

    /// Takes or renews the lease; whether this replica holds it now.
    pub async fn try_acquire_or_renew(&self) -> Result<bool, ProvisionError> {
        let Some(mut lease) = self.api.get_opt(&self.name).await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.name.clone()),
                    ..Default::default()
                },
                spec: Some(self.spec(0, None)),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(true),
                Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
                Err(error) => Err(error.into()),
            };
        };
        let spec = lease.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.clone().unwrap_or_default();
        let transitions = spec.lease_transitions.unwrap_or(0);
        let new_spec = if holder == self.identity {
            self.spec(transitions, spec.acquire_time.clone())
        } else {
            let duration =
                Duration::from_secs(spec.lease_duration_seconds.unwrap_or(15).max(1) as u64);
            let expired = match &spec.renew_time {
                None => true,
                Some(renewed) => {
                    let age = Timestamp::now().duration_since(renewed.0);
                    age.as_secs_f64() > duration.as_secs_f64()
                }
            };
            if !holder.is_empty() && !expired {
                return Ok(false);
            }
            self.spec(transitions + 1, None)
        };
        lease.spec = Some(new_spec);
        match self
            .api
            .replace(&self.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
            Err(error) => Err(error.into()),
        }
    }

    /// Gives the lease up (on shutdown), so another replica need not wait for it to expire.
    pub async fn release(&self) -> Result<(), ProvisionError> {
        if let Some(mut lease) = self.api.get_opt(&self.name).await?
            && lease
                .spec
                .as_ref()
                .and_then(|spec| spec.holder_identity.as_deref())
                == Some(self.identity.as_str())
        {
            if let Some(spec) = lease.spec.as_mut() {
                spec.holder_identity = None;
                spec.renew_time = None;
            }
            let _ = self
                .api
                .replace(&self.name, &PostParams::default(), &lease)
                .await;
        }
        Ok(())
    }

    /// Runs `work` while this replica holds the lease: waits to take it, then renews it; if a
    /// renewal fails for two thirds of the lease duration (before another replica may take it), `work` is dropped (stopped) and the wait
    /// starts again. Returns only if `work` ends by itself.
    pub async fn run_while_leader<F, Fut>(&self, work: F)
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = ()>,
    {
        loop {
            loop {
                match self.try_acquire_or_renew().await {
                    Ok(true) => break,
                    Ok(false) => {}
                    Err(error) => tracing::warn!(%error, "cannot read the leader lease"),
                }
                tokio::time::sleep(self.retry_period()).await;
            }
            tracing::info!(identity = %self.identity, lease = %self.name, "leading");
            let renewals = async {
                let mut last_renewed = tokio::time::Instant::now();
                loop {
                    tokio::time::sleep(self.retry_period()).await;
                    match self.try_acquire_or_renew().await {
                        Ok(true) => last_renewed = tokio::time::Instant::now(),
                        Ok(false) => return,
                        Err(error) => {
                            tracing::warn!(%error, "cannot renew the leader lease");
                            if last_renewed.elapsed() >= self.duration * 2 / 3 {
                                return;
                            }
                        }
                    }
                }
            };
            tokio::select! {
                _ = work() => return,
                _ = renewals => tracing::warn!(identity = %self.identity, "lost the leader lease; stopping"),
            }
        }
    }
}
