//! Who may do what with a dataset. Effective role = the strongest of: administrator (owner of
//! everything), a granted role, membership of the owning organization (maintainer), and reader
//! when the dataset is public. Decisions are cached briefly and dropped when an event says the
//! dataset's visibility, roles or existence changed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use weir_function_runtime::{AccessDecision, AccessPolicy, ApiError, Caller, DatasetAction};
use weir_metastore::{DatasetEntry, Metastore, Role, Visibility};

use crate::error::ServiceResult;
use crate::services::AccountService;

type CacheKey = (String, String);

pub struct AccessService {
    metastore: Arc<dyn Metastore>,
    ttl: Duration,
    cache: Mutex<HashMap<CacheKey, (Option<Role>, Instant)>>,
}

pub fn required_role(action: DatasetAction) -> Role {
    match action {
        DatasetAction::Read => Role::Reader,
        DatasetAction::Write => Role::Editor,
        DatasetAction::Maintain => Role::Maintainer,
    }
}

impl AccessService {
    pub fn new(metastore: Arc<dyn Metastore>, ttl: Duration) -> Self {
        Self {
            metastore,
            ttl,
            cache: Mutex::new(HashMap::new()),
        }
    }

    async fn compute_role(
        &self,
        caller: &Caller,
        dataset: &DatasetEntry,
    ) -> ServiceResult<Option<Role>> {
        if caller.is_admin {
            return Ok(Some(Role::Owner));
        }
        let mut role = (dataset.visibility == Visibility::Public).then_some(Role::Reader);
        let Some(account_id) = &caller.account_id else {
            return Ok(role);
        };
        if let Some(granted) = self.metastore.role_of(&dataset.id, account_id).await? {
            role = role.max(Some(granted));
        }
        if role < Some(Role::Maintainer)
            && self
                .metastore
                .organizations_of(account_id)
                .await?
                .contains(&dataset.owner_id)
        {
            role = Some(Role::Maintainer);
        }
        Ok(role)
    }

    fn cache_key(caller: &Caller, dataset_id: &str) -> CacheKey {
        (
            caller.account_id.clone().unwrap_or_default(),
            dataset_id.to_string(),
        )
    }

    /// A cached decision younger than the TTL: `Some(role)` where `role` may be `None`.
    fn cached(&self, key: &CacheKey) -> Option<Option<Role>> {
        let cache = self.cache.lock().expect("cache lock");
        let (role, at) = cache.get(key)?;
        (at.elapsed() < self.ttl).then_some(*role)
    }

    /// The caller's effective role on `dataset` (`None`: may not know it exists).
    pub async fn role(
        &self,
        caller: &Caller,
        dataset: &DatasetEntry,
    ) -> ServiceResult<Option<Role>> {
        let key = Self::cache_key(caller, &dataset.id);
        if let Some(role) = self.cached(&key) {
            return Ok(role);
        }
        let role = self.compute_role(caller, dataset).await?;
        self.cache
            .lock()
            .expect("cache lock")
            .insert(key, (role, Instant::now()));
        Ok(role)
    }

    pub fn invalidate_dataset(&self, dataset_id: &str) {
        self.cache
            .lock()
            .expect("cache lock")
            .retain(|(_, cached_dataset), _| cached_dataset != dataset_id);
    }

    pub fn invalidate_all(&self) {
        self.cache.lock().expect("cache lock").clear();
    }

    pub async fn decide(
        &self,
        caller: &Caller,
        dataset_id: &str,
        action: DatasetAction,
    ) -> ServiceResult<AccessDecision> {
        // A cached role answers without a database round trip (functions call this per request).
        let role = match self.cached(&Self::cache_key(caller, dataset_id)) {
            Some(role) => role,
            None => match self.metastore.dataset_by_id(dataset_id).await? {
                Some(dataset) => self.role(caller, &dataset).await?,
                // Not registered (yet): only administrators may touch it.
                None if caller.is_admin => Some(Role::Owner),
                None => None,
            },
        };
        Ok(match role {
            None => AccessDecision::Hidden,
            Some(role) if role >= required_role(action) => AccessDecision::Allowed,
            Some(_) => AccessDecision::Forbidden,
        })
    }
}

/// The policy the in-process functions of `weir up` use.
pub struct ControlPlaneAccessPolicy {
    pub accounts: Arc<AccountService>,
    pub access: Arc<AccessService>,
}

#[async_trait]
impl AccessPolicy for ControlPlaneAccessPolicy {
    async fn authenticate(&self, authorization: Option<&str>) -> Result<Caller, ApiError> {
        Ok(self.accounts.authenticate(authorization).await?)
    }

    async fn decide(
        &self,
        caller: &Caller,
        dataset_id: &str,
        action: DatasetAction,
    ) -> Result<AccessDecision, ApiError> {
        Ok(self.access.decide(caller, dataset_id, action).await?)
    }
}
