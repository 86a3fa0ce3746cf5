//! The device registry as callers see it (`docs/protocols/devices.md`): maintainers of a
//! dataset manage the applications bound to it, their versions, endpoints and tokens; device
//! bridges (administrator tokens) resolve tokens and report usage; account owners read their
//! metering and administrators set quotas. Changes that invalidate what bridges cached publish
//! events through the outbox, in the change's own transaction.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use weir_device_registry::*;
use weir_events::WeirEvent;
use weir_function_runtime::Caller;
use weir_metastore::{DatasetEntry, Metastore, Role};

use crate::error::{ServiceError, ServiceResult};
use crate::outbox::outbox_message;
use crate::services::{DatasetService, now_millis};

pub struct DevicesApi {
    pub registry: Arc<dyn DeviceRegistry>,
    pub datasets: Arc<DatasetService>,
    pub metastore: Arc<dyn Metastore>,
    pub outbox_wake: Arc<tokio::sync::Notify>,
}

impl From<DeviceError> for ServiceError {
    fn from(error: DeviceError) -> Self {
        match error {
            DeviceError::InvalidField { .. } => Self::InvalidInput(error.to_string()),
            DeviceError::NotFound(message) => Self::NotFound(message),
            DeviceError::Conflict(message) => Self::Conflict(message),
            DeviceError::Store(_) => Self::Internal(error.to_string()),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewApplication {
    pub name: String,
    /// `owner/name` of a root dataset the caller maintains.
    pub dataset: String,
    #[serde(default)]
    pub description: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewVersion {
    pub name: String,
    /// `owner/name`; the application's dataset when absent.
    #[serde(default)]
    pub dataset: Option<String>,
    #[serde(default)]
    pub event_time_pointer: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewToken {
    /// A token of the caller's choosing (devices moving from Kaa keep theirs); generated when
    /// absent.
    #[serde(default)]
    pub token: Option<String>,
    #[serde(default)]
    pub label: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IssuedToken {
    #[serde(flatten)]
    pub record: DeviceToken,
    /// Shown once: only its digest is kept.
    pub token: String,
}

/// What a bridge learns about a token in a topic.
#[derive(Debug, Serialize)]
#[serde(rename_all = "kebab-case", tag = "outcome")]
pub enum ResolveAnswer {
    UnknownVersion,
    UnknownToken,
    Revoked,
    /// The token's endpoint belongs to another application than the version's.
    OtherApplication,
    Ok(Box<ResolvedToken>),
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResolvedToken {
    pub token_id: DeviceTokenId,
    pub endpoint_id: EndpointId,
    pub application_id: ApplicationId,
    pub application_name: String,
    pub account_id: String,
    pub dataset_id: String,
    /// `owner/name` of the target dataset now.
    pub dataset: String,
    pub event_time_pointer: Option<String>,
    pub quota: Option<QuotaState>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeenAt {
    pub endpoint_id: EndpointId,
    pub at: i64,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UsageReport {
    #[serde(default)]
    pub usage: Vec<UsageDelta>,
    #[serde(default)]
    pub seen: Vec<SeenAt>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountQuota {
    pub account_id: String,
    #[serde(flatten)]
    pub state: QuotaState,
}

/// At most this many deltas in one report.
pub const MAX_REPORT: usize = 10_000;

fn require_admin(caller: &Caller, what: &str) -> ServiceResult<()> {
    if caller.is_admin {
        Ok(())
    } else {
        Err(ServiceError::Forbidden(format!(
            "{what} needs an administrator token"
        )))
    }
}

fn split_alias(alias: &str) -> ServiceResult<(&str, &str)> {
    alias.split_once('/').ok_or_else(|| {
        ServiceError::InvalidInput(format!(
            "invalid `dataset`: `{alias}` is not `<owner>/<name>`"
        ))
    })
}

impl DevicesApi {
    async fn maintained(&self, caller: &Caller, alias: &str) -> ServiceResult<DatasetEntry> {
        let (owner, name) = split_alias(alias)?;
        let entry = self
            .datasets
            .authorize(caller, owner, name, Role::Maintainer)
            .await?;
        if entry.kind != "root" {
            return Err(ServiceError::InvalidInput(format!(
                "invalid `dataset`: `{alias}` is a {} dataset; devices write into root datasets",
                entry.kind
            )));
        }
        Ok(entry)
    }

    async fn dataset_by_id(&self, id: &str) -> ServiceResult<DatasetEntry> {
        self.metastore
            .dataset_by_id(id)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("dataset `{id}` is gone")))
    }

    /// The application named `name` if the caller maintains its dataset (else not found, like
    /// a dataset the caller may not see).
    pub async fn application(&self, caller: &Caller, name: &str) -> ServiceResult<Application> {
        let not_found = || ServiceError::NotFound(format!("application `{name}` not found"));
        let application = self
            .registry
            .application_by_name(name)
            .await?
            .ok_or_else(not_found)?;
        let entry = self.dataset_by_id(&application.dataset_id).await?;
        match self.datasets.access.role(caller, &entry).await? {
            Some(role) if role >= Role::Maintainer => Ok(application),
            Some(_) => Err(ServiceError::Forbidden(format!(
                "managing application `{name}` needs the maintainer role on `{}`",
                entry.alias()
            ))),
            None => Err(not_found()),
        }
    }

    pub async fn create_application(
        &self,
        caller: &Caller,
        request: NewApplication,
    ) -> ServiceResult<Application> {
        check_name("name", &request.name)?;
        let entry = self.maintained(caller, &request.dataset).await?;
        let application = Application {
            id: ApplicationId::generate(),
            name: request.name,
            account_id: entry.owner_id.clone(),
            dataset_id: entry.id.clone(),
            description: request.description,
            created_at: now_millis(),
        };
        self.registry.create_application(&application).await?;
        Ok(application)
    }

    /// The applications whose dataset the caller maintains.
    pub async fn list_applications(&self, caller: &Caller) -> ServiceResult<Vec<Application>> {
        let mut visible = Vec::new();
        for application in self.registry.list_applications().await? {
            let Ok(entry) = self.dataset_by_id(&application.dataset_id).await else {
                continue;
            };
            if self
                .datasets
                .access
                .role(caller, &entry)
                .await?
                .is_some_and(|role| role >= Role::Maintainer)
            {
                visible.push(application);
            }
        }
        Ok(visible)
    }

    pub async fn delete_application(&self, caller: &Caller, name: &str) -> ServiceResult<()> {
        let application = self.application(caller, name).await?;
        let event = binding_changed(&application.id);
        self.registry
            .delete_application(&application.id, &[event])
            .await?;
        self.outbox_wake.notify_one();
        Ok(())
    }

    pub async fn create_version(
        &self,
        caller: &Caller,
        application: &str,
        request: NewVersion,
    ) -> ServiceResult<AppVersion> {
        let application = self.application(caller, application).await?;
        check_name("name", &request.name)?;
        if let Some(pointer) = &request.event_time_pointer {
            check_pointer(pointer)?;
        }
        let dataset_id = match &request.dataset {
            Some(alias) => self.maintained(caller, alias).await?.id,
            None => application.dataset_id.clone(),
        };
        let version = AppVersion {
            id: VersionId::generate(),
            application_id: application.id.clone(),
            name: request.name,
            dataset_id,
            event_time_pointer: request.event_time_pointer.filter(|p| !p.is_empty()),
            created_at: now_millis(),
        };
        self.registry.create_version(&version).await?;
        Ok(version)
    }

    pub async fn versions(
        &self,
        caller: &Caller,
        application: &str,
    ) -> ServiceResult<Vec<AppVersion>> {
        let application = self.application(caller, application).await?;
        Ok(self.registry.versions(&application.id).await?)
    }

    pub async fn delete_version(
        &self,
        caller: &Caller,
        application: &str,
        version: &str,
    ) -> ServiceResult<()> {
        let application = self.application(caller, application).await?;
        let found = self
            .registry
            .version_by_name(version)
            .await?
            .filter(|found| found.application_id == application.id)
            .ok_or_else(|| ServiceError::NotFound(format!("version `{version}` not found")))?;
        self.registry
            .delete_version(&found.id, &[binding_changed(&application.id)])
            .await?;
        self.outbox_wake.notify_one();
        Ok(())
    }

    pub async fn create_endpoint(
        &self,
        caller: &Caller,
        application: &str,
        attributes: Attributes,
    ) -> ServiceResult<Endpoint> {
        let application = self.application(caller, application).await?;
        check_attributes(&attributes)?;
        let endpoint = Endpoint {
            id: EndpointId::generate(),
            application_id: application.id,
            attributes,
            created_at: now_millis(),
            last_seen_at: None,
        };
        self.registry.create_endpoint(&endpoint).await?;
        Ok(endpoint)
    }

    /// The endpoint `id` of the application the caller manages.
    pub async fn endpoint(
        &self,
        caller: &Caller,
        application: &str,
        id: &str,
    ) -> ServiceResult<Endpoint> {
        let application = self.application(caller, application).await?;
        self.registry
            .endpoint(&EndpointId::from_string(id))
            .await?
            .filter(|endpoint| endpoint.application_id == application.id)
            .ok_or_else(|| ServiceError::NotFound(format!("endpoint `{id}` not found")))
    }

    pub async fn list_endpoints(
        &self,
        caller: &Caller,
        application: &str,
        filter: &Attributes,
        after: Option<&str>,
        limit: i64,
    ) -> ServiceResult<Vec<Endpoint>> {
        let application = self.application(caller, application).await?;
        let after = after.map(EndpointId::from_string);
        Ok(self
            .registry
            .list_endpoints(
                &application.id,
                filter,
                after.as_ref(),
                limit.clamp(1, 1000),
            )
            .await?)
    }

    pub async fn set_attributes(
        &self,
        caller: &Caller,
        application: &str,
        id: &str,
        attributes: Attributes,
    ) -> ServiceResult<Endpoint> {
        let endpoint = self.endpoint(caller, application, id).await?;
        check_attributes(&attributes)?;
        self.registry
            .set_attributes(&endpoint.id, &attributes)
            .await?;
        Ok(Endpoint {
            attributes,
            ..endpoint
        })
    }

    pub async fn delete_endpoint(
        &self,
        caller: &Caller,
        application: &str,
        id: &str,
    ) -> ServiceResult<()> {
        let endpoint = self.endpoint(caller, application, id).await?;
        let events: Vec<_> = self
            .registry
            .tokens(&endpoint.id)
            .await?
            .iter()
            .map(|token| revoked(&endpoint.id, &token.id))
            .collect();
        self.registry.delete_endpoint(&endpoint.id, &events).await?;
        self.outbox_wake.notify_one();
        Ok(())
    }

    pub async fn issue_token(
        &self,
        caller: &Caller,
        application: &str,
        endpoint: &str,
        request: NewToken,
    ) -> ServiceResult<IssuedToken> {
        let endpoint = self.endpoint(caller, application, endpoint).await?;
        let token = match request.token {
            Some(chosen) => {
                check_token(&chosen)?;
                chosen
            }
            None => format!(
                "{}{}",
                uuid::Uuid::new_v4().simple(),
                uuid::Uuid::new_v4().simple()
            ),
        };
        let record = DeviceToken {
            id: DeviceTokenId::generate(),
            endpoint_id: endpoint.id,
            label: request.label,
            created_at: now_millis(),
            revoked_at: None,
        };
        self.registry
            .add_token(&record, &token_hash(&token))
            .await?;
        Ok(IssuedToken { record, token })
    }

    pub async fn tokens(
        &self,
        caller: &Caller,
        application: &str,
        endpoint: &str,
    ) -> ServiceResult<Vec<DeviceToken>> {
        let endpoint = self.endpoint(caller, application, endpoint).await?;
        Ok(self.registry.tokens(&endpoint.id).await?)
    }

    pub async fn revoke_token(
        &self,
        caller: &Caller,
        application: &str,
        endpoint: &str,
        token: &str,
    ) -> ServiceResult<DeviceToken> {
        let endpoint = self.endpoint(caller, application, endpoint).await?;
        let id = DeviceTokenId::from_string(token);
        let owned = self
            .registry
            .tokens(&endpoint.id)
            .await?
            .iter()
            .any(|token| token.id == id);
        if !owned {
            return Err(ServiceError::NotFound(format!("token `{token}` not found")));
        }
        let record = self
            .registry
            .revoke_token(&id, now_millis(), &[revoked(&endpoint.id, &id)])
            .await?;
        self.outbox_wake.notify_one();
        Ok(record)
    }

    /// What `token` in a topic of version `version` stands for (device bridges only).
    pub async fn resolve(
        &self,
        caller: &Caller,
        version: &str,
        token: &str,
    ) -> ServiceResult<ResolveAnswer> {
        require_admin(caller, "resolving device tokens")?;
        let Some(version) = self.registry.version_by_name(version).await? else {
            return Ok(ResolveAnswer::UnknownVersion);
        };
        let Some((record, application_id)) =
            self.registry.token_by_hash(&token_hash(token)).await?
        else {
            return Ok(ResolveAnswer::UnknownToken);
        };
        if record.revoked_at.is_some() {
            return Ok(ResolveAnswer::Revoked);
        }
        if application_id != version.application_id {
            return Ok(ResolveAnswer::OtherApplication);
        }
        let application = self
            .registry
            .application(&application_id)
            .await?
            .ok_or_else(|| ServiceError::NotFound("the application is gone".to_string()))?;
        let entry = self.dataset_by_id(&version.dataset_id).await?;
        let quota = self.quota_state(&application.account_id).await?;
        Ok(ResolveAnswer::Ok(Box::new(ResolvedToken {
            token_id: record.id,
            endpoint_id: record.endpoint_id,
            application_id: application.id,
            application_name: application.name,
            account_id: application.account_id,
            dataset: entry.alias(),
            dataset_id: entry.id,
            event_time_pointer: version.event_time_pointer,
            quota,
        })))
    }

    async fn quota_state(&self, account_id: &str) -> ServiceResult<Option<QuotaState>> {
        let Some(quota) = self.registry.quota(account_id).await? else {
            return Ok(None);
        };
        let period_start = quota.period.start_of(now_millis());
        let used = self
            .registry
            .usage(&UsageFilter {
                account_id: Some(account_id.to_string()),
                from: period_start,
                to: period_start + quota.period.millis(),
                period: quota.period,
                ..UsageFilter::default()
            })
            .await?
            .iter()
            .fold(Counts::default(), |mut sum, row| {
                sum.add(&row.counts);
                sum
            });
        Ok(Some(QuotaState {
            quota,
            period_start,
            used,
        }))
    }

    /// Records a bridge's counts and sightings; answers where the accounts involved stand
    /// against their quotas.
    pub async fn report_usage(
        &self,
        caller: &Caller,
        report: UsageReport,
    ) -> ServiceResult<Vec<AccountQuota>> {
        require_admin(caller, "reporting device usage")?;
        if report.usage.len() > MAX_REPORT || report.seen.len() > MAX_REPORT {
            return Err(ServiceError::InvalidInput(format!(
                "a usage report holds at most {MAX_REPORT} deltas and sightings"
            )));
        }
        self.registry.record_usage(&report.usage).await?;
        let seen: Vec<(EndpointId, i64)> = report
            .seen
            .into_iter()
            .map(|seen| (seen.endpoint_id, seen.at))
            .collect();
        self.registry.mark_seen(&seen).await?;
        let mut accounts: Vec<&str> = report
            .usage
            .iter()
            .map(|delta| delta.account_id.as_str())
            .collect();
        accounts.sort_unstable();
        accounts.dedup();
        let mut quotas = Vec::new();
        for account_id in accounts {
            if let Some(state) = self.quota_state(account_id).await? {
                quotas.push(AccountQuota {
                    account_id: account_id.to_string(),
                    state,
                });
            }
        }
        Ok(quotas)
    }

    /// Usage sums per period. Maintainers see their applications' and endpoints' usage,
    /// accounts their own, administrators everything.
    pub async fn usage(
        &self,
        caller: &Caller,
        application: Option<&str>,
        endpoint: Option<&str>,
        account: Option<&str>,
        mut filter: UsageFilter,
    ) -> ServiceResult<Vec<UsageRow>> {
        if let Some(application) = application {
            let application = self.application(caller, application).await?;
            if let Some(endpoint) = endpoint {
                let endpoint = self.endpoint(caller, &application.name, endpoint).await?;
                filter.endpoint_id = Some(endpoint.id);
            }
            filter.application_id = Some(application.id);
        } else if endpoint.is_some() {
            return Err(ServiceError::InvalidInput(
                "an `endpoint` is named with its `application`".to_string(),
            ));
        }
        if let Some(account) = account {
            let found = self
                .metastore
                .account_by_name(account)
                .await?
                .ok_or_else(|| ServiceError::NotFound(format!("account `{account}` not found")))?;
            if !caller.is_admin && caller.account_id.as_deref() != Some(found.id.as_str()) {
                return Err(ServiceError::Forbidden(format!(
                    "the usage of `{account}` is for that account and administrators"
                )));
            }
            filter.account_id = Some(found.id);
        }
        if filter.application_id.is_none() && filter.account_id.is_none() {
            require_admin(caller, "the usage of the whole node")?;
        }
        if filter.to <= filter.from {
            return Err(ServiceError::InvalidInput(
                "invalid range: `to` must be after `from`".to_string(),
            ));
        }
        Ok(self.registry.usage(&filter).await?)
    }

    pub async fn set_quota(
        &self,
        caller: &Caller,
        account: &str,
        quota: Option<Quota>,
    ) -> ServiceResult<()> {
        require_admin(caller, "setting quotas")?;
        let found = self
            .metastore
            .account_by_name(account)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("account `{account}` not found")))?;
        if let Some(quota) = &quota {
            let bad = |limit: Option<i64>| limit.is_some_and(|limit| limit < 0);
            if quota.max_samples.is_none() && quota.max_bytes.is_none()
                || bad(quota.max_samples)
                || bad(quota.max_bytes)
            {
                return Err(ServiceError::InvalidInput(
                    "a quota sets `maxSamples`, `maxBytes` or both, not negative".to_string(),
                ));
            }
        }
        self.registry.set_quota(&found.id, quota.as_ref()).await?;
        Ok(())
    }

    pub async fn quota(&self, caller: &Caller, account: &str) -> ServiceResult<Option<QuotaState>> {
        let found = self
            .metastore
            .account_by_name(account)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("account `{account}` not found")))?;
        if !caller.is_admin && caller.account_id.as_deref() != Some(found.id.as_str()) {
            return Err(ServiceError::Forbidden(format!(
                "the quota of `{account}` is for that account and administrators"
            )));
        }
        self.quota_state(&found.id).await
    }
}

fn binding_changed(application: &ApplicationId) -> weir_metastore::OutboxMessage {
    outbox_message(WeirEvent::DeviceBindingChanged {
        application_id: application.to_string(),
    })
}

fn revoked(endpoint: &EndpointId, token: &DeviceTokenId) -> weir_metastore::OutboxMessage {
    outbox_message(WeirEvent::DeviceTokenRevoked {
        endpoint_id: endpoint.to_string(),
        token_id: token.to_string(),
    })
}
