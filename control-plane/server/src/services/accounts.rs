//! Accounts, password login, personal access tokens and turning a bearer token into a caller.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use sha3::Digest;
use weir_events::WeirEvent;
use weir_function_runtime::token::bearer_token;
use weir_function_runtime::{BearerToken, Caller};
use weir_metastore::{AccessToken, Account, AccountKind, Metastore, NewAccount};

use crate::auth::jwt::{self, Claims, ISSUER, TokenSigner};
use crate::auth::password;
use crate::config::AuthConfig;
use crate::error::{ServiceError, ServiceResult};
use crate::outbox::outbox_message;

/// Names that would collide with API paths.
const RESERVED_NAMES: &[&str] = &[
    "accounts",
    "admin",
    "auth",
    "datasets",
    "graphql",
    "healthz",
    "leader",
    "metrics",
    "openapi.json",
    "query",
    "readyz",
    "verify",
];

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateAccountRequest {
    pub name: String,
    #[serde(default = "default_kind")]
    #[schema(value_type = String, example = "user")]
    pub kind: AccountKind,
    pub password: Option<String>,
    pub email: Option<String>,
    pub display_name: Option<String>,
}

fn default_kind() -> AccountKind {
    AccountKind::User
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LoginResponse {
    pub access_token: String,
    pub account_id: String,
    pub account_name: String,
    pub expires_at: i64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedToken {
    pub id: String,
    pub name: String,
    /// Shown once; only a hash is kept.
    pub token: String,
    pub created_at: i64,
}

pub struct AccountService {
    metastore: Arc<dyn Metastore>,
    signer: TokenSigner,
    config: AuthConfig,
    /// Token id -> revoked. Revocations made here update it at once; other replicas learn
    /// through `token-revoked` events.
    revocations: Mutex<HashMap<String, bool>>,
}

fn token_hash(token: &str) -> String {
    sha3::Sha3_256::digest(token.as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

pub fn validate_account_name(name: &str) -> ServiceResult<()> {
    if let Err(error) = name.parse::<weir_odf::AccountName>() {
        return Err(ServiceError::InvalidInput(format!(
            "invalid account name `{name}`: {error}"
        )));
    }
    if RESERVED_NAMES.contains(&name.to_ascii_lowercase().as_str()) {
        return Err(ServiceError::InvalidInput(format!(
            "account name `{name}` is reserved"
        )));
    }
    Ok(())
}

impl AccountService {
    pub fn new(metastore: Arc<dyn Metastore>, signer: TokenSigner, config: AuthConfig) -> Self {
        Self {
            metastore,
            signer,
            config,
            revocations: Mutex::new(HashMap::new()),
        }
    }

    pub fn signer(&self) -> &TokenSigner {
        &self.signer
    }

    /// Creates the admin account unless it exists; returns it.
    pub async fn bootstrap_admin(&self) -> ServiceResult<Account> {
        if let Some(admin) = self
            .metastore
            .account_by_name(&self.config.admin_name)
            .await?
        {
            return Ok(admin);
        }
        let password = match &self.config.admin_password {
            Some(password) => {
                Some(password::hash_password(password).map_err(ServiceError::Internal)?)
            }
            None => None,
        };
        let account = Account {
            id: uuid::Uuid::new_v4().to_string(),
            name: self.config.admin_name.clone(),
            kind: AccountKind::User,
            display_name: self.config.admin_name.clone(),
            email: None,
            is_admin: true,
            created_at: super::now_millis(),
        };
        match self
            .metastore
            .create_account(NewAccount {
                account: account.clone(),
                password_hash: password,
            })
            .await
        {
            Ok(()) => {
                tracing::info!(account = %account.name, "created admin account");
                Ok(account)
            }
            // Another replica created it first.
            Err(weir_metastore::MetastoreError::Conflict(_)) => self
                .metastore
                .account_by_name(&self.config.admin_name)
                .await?
                .ok_or_else(|| ServiceError::Internal("admin account vanished".to_string())),
            Err(error) => Err(error.into()),
        }
    }

    pub async fn create_account(
        &self,
        caller: &Caller,
        request: CreateAccountRequest,
    ) -> ServiceResult<Account> {
        let Some(caller_id) = &caller.account_id else {
            return Err(ServiceError::Unauthenticated(
                "creating accounts needs a token".to_string(),
            ));
        };
        if request.kind == AccountKind::User && !caller.is_admin {
            return Err(ServiceError::Forbidden(
                "only administrators create user accounts".to_string(),
            ));
        }
        validate_account_name(&request.name)?;
        if request.kind == AccountKind::Organization && request.password.is_some() {
            return Err(ServiceError::InvalidInput(
                "organizations cannot log in: drop `password`".to_string(),
            ));
        }
        let password_hash = match &request.password {
            Some(password) if password.len() < 8 => {
                return Err(ServiceError::InvalidInput(
                    "password must have at least 8 characters".to_string(),
                ));
            }
            Some(password) => {
                Some(password::hash_password(password).map_err(ServiceError::Internal)?)
            }
            None => None,
        };
        let account = Account {
            id: uuid::Uuid::new_v4().to_string(),
            display_name: request.display_name.unwrap_or_else(|| request.name.clone()),
            name: request.name,
            kind: request.kind,
            email: request.email,
            is_admin: false,
            created_at: super::now_millis(),
        };
        self.metastore
            .create_account(NewAccount {
                account: account.clone(),
                password_hash,
            })
            .await?;
        if account.kind == AccountKind::Organization {
            self.metastore.add_member(&account.id, caller_id).await?;
        }
        Ok(account)
    }

    pub async fn add_member(
        &self,
        caller: &Caller,
        organization: &str,
        member: &str,
    ) -> ServiceResult<()> {
        let organization = self.account_by_name(organization).await?;
        if organization.kind != AccountKind::Organization {
            return Err(ServiceError::InvalidInput(format!(
                "`{}` is not an organization",
                organization.name
            )));
        }
        let caller_id = caller.account_id.as_deref().unwrap_or_default();
        let is_member = self
            .metastore
            .organizations_of(caller_id)
            .await?
            .contains(&organization.id);
        if !caller.is_admin && !is_member {
            return Err(ServiceError::Forbidden(format!(
                "only members of `{}` add members",
                organization.name
            )));
        }
        let member = self.account_by_name(member).await?;
        self.metastore
            .add_member(&organization.id, &member.id)
            .await?;
        Ok(())
    }

    pub async fn account_by_name(&self, name: &str) -> ServiceResult<Account> {
        self.metastore
            .account_by_name(name)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("account `{name}` not found")))
    }

    pub async fn account_by_id(&self, id: &str) -> ServiceResult<Option<Account>> {
        Ok(self.metastore.account_by_id(id).await?)
    }

    pub async fn list_accounts(&self) -> ServiceResult<Vec<Account>> {
        Ok(self.metastore.list_accounts().await?)
    }

    pub async fn me(&self, caller: &Caller) -> ServiceResult<Account> {
        let id = require_account(caller)?;
        self.metastore
            .account_by_id(id)
            .await?
            .ok_or_else(|| ServiceError::Unauthenticated("account no longer exists".to_string()))
    }

    pub async fn login(&self, name: &str, password: &str) -> ServiceResult<LoginResponse> {
        let rejected =
            || ServiceError::Unauthenticated("wrong account name or password".to_string());
        let account = self
            .metastore
            .account_by_name(name)
            .await?
            .ok_or_else(rejected)?;
        let hash = self
            .metastore
            .password_hash(&account.id)
            .await?
            .ok_or_else(rejected)?;
        if !password::verify_password(password, &hash) {
            return Err(rejected());
        }
        let now = chrono::Utc::now().timestamp();
        let expires_at = now + self.config.session_ttl_seconds;
        // Sessions carry an id, so that logout can revoke them; only a logout records it.
        let id = uuid::Uuid::new_v4().to_string();
        let access_token = self.signer.sign(&Claims {
            iss: ISSUER.to_string(),
            sub: account.id.clone(),
            name: account.name.clone(),
            iat: now,
            exp: Some(expires_at),
            adm: account.is_admin,
            jti: Some(id),
        });
        Ok(LoginResponse {
            access_token,
            account_id: account.id,
            account_name: account.name,
            expires_at,
        })
    }

    /// Issues a personal access token for `account` (used by `weir up` for the admin token).
    pub async fn issue_token(&self, account: &Account, name: &str) -> ServiceResult<CreatedToken> {
        let id = uuid::Uuid::new_v4().to_string();
        let now = chrono::Utc::now();
        let token = self.signer.sign(&Claims {
            iss: ISSUER.to_string(),
            sub: account.id.clone(),
            name: account.name.clone(),
            iat: now.timestamp(),
            exp: None,
            adm: account.is_admin,
            jti: Some(id.clone()),
        });
        let record = AccessToken {
            id: id.clone(),
            account_id: account.id.clone(),
            name: name.to_string(),
            created_at: now.timestamp_millis(),
            revoked_at: None,
        };
        self.metastore
            .create_token(record, &token_hash(&token))
            .await?;
        Ok(CreatedToken {
            id,
            name: name.to_string(),
            token,
            created_at: now.timestamp_millis(),
        })
    }

    pub async fn create_token(&self, caller: &Caller, name: &str) -> ServiceResult<CreatedToken> {
        if name.trim().is_empty() {
            return Err(ServiceError::InvalidInput(
                "token `name` must not be empty".to_string(),
            ));
        }
        if name == SESSION_TOKEN_NAME {
            return Err(ServiceError::InvalidInput(format!(
                "token name `{SESSION_TOKEN_NAME}` is reserved"
            )));
        }
        let account = self.me(caller).await?;
        self.issue_token(&account, name).await
    }

    /// Personal access tokens (ended login sessions are not listed).
    pub async fn list_tokens(&self, caller: &Caller) -> ServiceResult<Vec<AccessToken>> {
        let mut tokens = self.metastore.list_tokens(require_account(caller)?).await?;
        tokens.retain(|token| token.name != SESSION_TOKEN_NAME);
        Ok(tokens)
    }

    pub async fn revoke_token(&self, caller: &Caller, token_id: &str) -> ServiceResult<()> {
        let account_id = require_account(caller)?;
        let event = WeirEvent::TokenRevoked {
            account_id: account_id.to_string(),
            token_id: token_id.to_string(),
        };
        self.metastore
            .revoke_token(
                account_id,
                token_id,
                super::now_millis(),
                &[outbox_message(event)],
            )
            .await
            .map_err(|error| match error {
                weir_metastore::MetastoreError::NotFound(_) => {
                    ServiceError::NotFound(format!("token `{token_id}` not found"))
                }
                other => other.into(),
            })?;
        self.note_revoked(token_id);
        Ok(())
    }

    /// Ends the session (or revokes the token) the caller authenticated with.
    pub async fn logout(&self, caller: &Caller) -> ServiceResult<()> {
        require_account(caller)?;
        let token = caller
            .token
            .as_ref()
            .ok_or_else(|| ServiceError::Unauthenticated("this needs a token".to_string()))?;
        let claims = jwt::verify(
            &self.signer.verifying_key(),
            token.expose(),
            chrono::Utc::now().timestamp(),
        )
        .map_err(|error| ServiceError::Unauthenticated(error.to_api_error().message))?;
        let token_id = claims.jti.ok_or_else(|| {
            ServiceError::InvalidInput(
                "this token has no id and cannot be revoked; it expires by itself".to_string(),
            )
        })?;
        if claims.exp.is_some() && self.metastore.token_by_id(&token_id).await?.is_none() {
            // A session is recorded only now, to be revoked.
            let account_id = require_account(caller)?.to_string();
            let record = AccessToken {
                id: token_id.clone(),
                account_id,
                name: SESSION_TOKEN_NAME.to_string(),
                created_at: claims.iat * 1000,
                revoked_at: None,
            };
            self.metastore
                .create_token(record, &token_hash(token.expose()))
                .await?;
        }
        self.revoke_token(caller, &token_id).await
    }

    /// Records a revocation learned from an event.
    pub fn note_revoked(&self, token_id: &str) {
        self.revocations
            .lock()
            .expect("revocations lock")
            .insert(token_id.to_string(), true);
    }

    /// Whether the token with id `token_id` was revoked. A personal access token is valid only
    /// while its record is; a login `session` has a record only once it was logged out.
    async fn is_revoked(&self, token: &str, token_id: &str, session: bool) -> ServiceResult<bool> {
        if let Some(revoked) = self
            .revocations
            .lock()
            .expect("revocations lock")
            .get(token_id)
        {
            return Ok(*revoked);
        }
        let revoked = match self.metastore.token_by_id(token_id).await? {
            Some((record, hash)) => record.revoked_at.is_some() || hash != token_hash(token),
            None => !session,
        };
        self.revocations
            .lock()
            .expect("revocations lock")
            .insert(token_id.to_string(), revoked);
        Ok(revoked)
    }

    /// The caller behind an `Authorization` header: signature and expiry are checked offline;
    /// personal access tokens are also checked against revocations (cached per token).
    pub async fn authenticate(&self, authorization: Option<&str>) -> ServiceResult<Caller> {
        let Some(token) = bearer_token(authorization)
            .map_err(|error| ServiceError::Unauthenticated(error.message))?
        else {
            return Ok(Caller::anonymous());
        };
        let now = chrono::Utc::now().timestamp();
        let claims = jwt::verify(&self.signer.verifying_key(), token, now)
            .map_err(|error| ServiceError::Unauthenticated(error.to_api_error().message))?;
        if let Some(token_id) = &claims.jti
            && self
                .is_revoked(token, token_id, claims.exp.is_some())
                .await?
        {
            return Err(ServiceError::Unauthenticated("token revoked".to_string()));
        }
        Ok(Caller {
            account_id: Some(claims.sub),
            account_name: Some(claims.name),
            is_admin: claims.adm,
            token: Some(BearerToken::new(token)),
        })
    }
}

/// The name login sessions are listed under among an account's tokens.
pub const SESSION_TOKEN_NAME: &str = "login session";

pub fn require_account(caller: &Caller) -> ServiceResult<&str> {
    caller
        .account_id
        .as_deref()
        .ok_or_else(|| ServiceError::Unauthenticated("this needs a token".to_string()))
}
