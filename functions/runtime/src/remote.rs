//! A function deployed apart from the control plane (Lambda, Knative) reaches it through a
//! `ControlPlaneLink`:
//! - tokens are verified offline against the control plane's Ed25519 public key (configured, or
//!   fetched once per cold start from `GET /auth/keys`);
//! - access decisions come from `GET /access/decision`, with the caller's token forwarded so the
//!   control plane also checks revocation, and are cached for `permission_cache_seconds`: a
//!   revoked token or a changed role takes effect in a function within that time;
//! - commits are reported to `POST /commits` so the control plane indexes them and publishes
//!   `block-committed` (best effort: its repair loop catches lost reports).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::VerifyingKey;
use serde::Deserialize;

use crate::access::{
    AccessDecision, AccessPolicy, BearerToken, Caller, CommitNotifier, DatasetAction, OpenAccess,
};
use crate::error::{ApiError, ErrorKind};
use crate::token::{TokenError, bearer_token, parse_verifying_key_hex, verify};

/// Most cached decisions kept; beyond it expired ones are dropped, then all.
const MAX_CACHED_DECISIONS: usize = 10_000;
/// A key fetched from the control plane is fetched again on a bad signature (the control plane
/// may have restarted with a new key), at most this often.
const KEY_REFRESH_INTERVAL: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControlPlaneLinkConfig {
    /// Base URL of the control plane, e.g. `http://weir-control-plane:8080`.
    pub url: String,
    /// Hex of the control plane's Ed25519 token key (`GET /auth/keys` shows it). Fetched at
    /// cold start when absent.
    #[serde(default)]
    pub token_public_key: Option<String>,
    /// How long an access decision is reused before the control plane is asked again.
    #[serde(default = "default_permission_cache_seconds")]
    pub permission_cache_seconds: u64,
    /// Limit of one request to the control plane.
    #[serde(default = "default_request_timeout_millis")]
    pub request_timeout_millis: u64,
}

fn default_permission_cache_seconds() -> u64 {
    5
}

fn default_request_timeout_millis() -> u64 {
    5_000
}

/// What a function is given to check callers and report commits.
pub struct Platform {
    pub access: Arc<dyn AccessPolicy>,
    pub notifier: Option<Arc<dyn CommitNotifier>>,
}

impl Platform {
    /// Links to the configured control plane. Without one a function fails closed: it refuses
    /// to start unless its config says `open_access: true` (development only), and then lets
    /// everyone do everything and says so loudly.
    pub async fn from_config(
        function_name: &str,
        config: Option<&ControlPlaneLinkConfig>,
        open_access: bool,
    ) -> Result<Self, String> {
        let Some(config) = config else {
            if !open_access {
                return Err(format!(
                    "the {function_name} function has no `control_plane` configured, so it cannot \
                     tell who may do what; configure `control_plane`, or set `open_access: true` \
                     (WEIR__OPEN_ACCESS=true) to let every caller read and write every dataset \
                     (development only)"
                ));
            }
            for _ in 0..3 {
                tracing::warn!(
                    function = function_name,
                    "OPEN ACCESS: no control_plane configured and open_access is set: every \
                     caller may read and write every dataset. Never run this way in production."
                );
            }
            return Ok(Self {
                access: Arc::new(OpenAccess),
                notifier: None,
            });
        };
        if open_access {
            return Err(
                "`open_access: true` and a `control_plane` contradict each other: remove one"
                    .to_string(),
            );
        }
        let link = Arc::new(ControlPlaneLink::connect(config).await?);
        Ok(Self {
            access: link.clone(),
            notifier: Some(link),
        })
    }
}

#[derive(Debug, Clone)]
enum CachedAnswer {
    Decision(AccessDecision),
    Unauthenticated(String),
}

type DecisionKey = (String, String, DatasetAction);

pub struct ControlPlaneLink {
    client: reqwest::Client,
    base_url: String,
    key: RwLock<(VerifyingKey, Instant)>,
    key_is_configured: bool,
    ttl: Duration,
    decisions: Mutex<HashMap<DecisionKey, (CachedAnswer, Instant)>>,
}

#[derive(Deserialize)]
struct KeySet {
    keys: Vec<JsonWebKey>,
}

#[derive(Deserialize)]
struct JsonWebKey {
    kty: String,
    crv: Option<String>,
    x: Option<String>,
}

#[derive(Deserialize)]
struct DecisionBody {
    decision: String,
}

#[derive(Deserialize)]
struct ErrorBody {
    message: String,
}

fn unreachable(error: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        ErrorKind::Retryable,
        format!("control plane unreachable: {error}"),
    )
}

fn now_seconds() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs() as i64)
        .unwrap_or_default()
}

impl ControlPlaneLink {
    pub async fn connect(config: &ControlPlaneLinkConfig) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_millis(config.request_timeout_millis))
            .build()
            .map_err(|error| format!("control plane client: {error}"))?;
        let base_url = config.url.trim_end_matches('/').to_string();
        let key = match &config.token_public_key {
            Some(hex) => parse_verifying_key_hex(hex).map_err(|message| {
                format!("invalid config key `control_plane.token_public_key`: {message}")
            })?,
            None => fetch_key(&client, &base_url)
                .await
                .map_err(|error| error.message)?,
        };
        Ok(Self {
            client,
            base_url,
            key: RwLock::new((key, Instant::now())),
            key_is_configured: config.token_public_key.is_some(),
            ttl: Duration::from_secs(config.permission_cache_seconds),
            decisions: Mutex::new(HashMap::new()),
        })
    }

    fn current_key(&self) -> (VerifyingKey, Instant) {
        *self.key.read().expect("key lock")
    }

    /// Verifies `token`, fetching the key again once if the control plane may have rotated it.
    async fn verify_token(&self, token: &str) -> Result<crate::token::Claims, ApiError> {
        let (key, fetched_at) = self.current_key();
        match verify(&key, token, now_seconds()) {
            Err(TokenError::BadSignature)
                if !self.key_is_configured && fetched_at.elapsed() >= KEY_REFRESH_INTERVAL =>
            {
                let fresh = fetch_key(&self.client, &self.base_url).await?;
                *self.key.write().expect("key lock") = (fresh, Instant::now());
                verify(&fresh, token, now_seconds()).map_err(|error| error.to_api_error())
            }
            result => result.map_err(|error| error.to_api_error()),
        }
    }

    fn cached(&self, key: &DecisionKey) -> Option<CachedAnswer> {
        let decisions = self.decisions.lock().expect("decision cache lock");
        let (answer, at) = decisions.get(key)?;
        (at.elapsed() < self.ttl).then(|| answer.clone())
    }

    fn remember(&self, key: DecisionKey, answer: CachedAnswer) {
        let mut decisions = self.decisions.lock().expect("decision cache lock");
        if decisions.len() >= MAX_CACHED_DECISIONS {
            let ttl = self.ttl;
            decisions.retain(|_, (_, at)| at.elapsed() < ttl);
            if decisions.len() >= MAX_CACHED_DECISIONS {
                decisions.clear();
            }
        }
        decisions.insert(key, (answer, Instant::now()));
    }

    async fn ask(
        &self,
        token: Option<&BearerToken>,
        dataset_id: &str,
        action: DatasetAction,
    ) -> Result<CachedAnswer, ApiError> {
        let mut request = self
            .client
            .get(format!("{}/access/decision", self.base_url))
            .query(&[("datasetId", dataset_id), ("action", action.as_str())]);
        if let Some(token) = token {
            request = request.bearer_auth(token.expose());
        }
        let response = request.send().await.map_err(unreachable)?;
        let status = response.status();
        if status == reqwest::StatusCode::UNAUTHORIZED {
            let message = response
                .json::<ErrorBody>()
                .await
                .map(|body| body.message)
                .unwrap_or_else(|_| "token refused".to_string());
            return Ok(CachedAnswer::Unauthenticated(message));
        }
        if !status.is_success() {
            return Err(unreachable(format!("answered {status}")));
        }
        let body: DecisionBody = response.json().await.map_err(unreachable)?;
        let decision = match body.decision.as_str() {
            "allowed" => AccessDecision::Allowed,
            "forbidden" => AccessDecision::Forbidden,
            "hidden" => AccessDecision::Hidden,
            other => return Err(unreachable(format!("unknown decision `{other}`"))),
        };
        Ok(CachedAnswer::Decision(decision))
    }
}

async fn fetch_key(client: &reqwest::Client, base_url: &str) -> Result<VerifyingKey, ApiError> {
    let response = client
        .get(format!("{base_url}/auth/keys"))
        .send()
        .await
        .map_err(unreachable)?;
    if !response.status().is_success() {
        return Err(unreachable(format!(
            "`/auth/keys` answered {}",
            response.status()
        )));
    }
    let key_set: KeySet = response.json().await.map_err(unreachable)?;
    key_set
        .keys
        .iter()
        .filter(|key| key.kty == "OKP" && key.crv.as_deref() == Some("Ed25519"))
        .find_map(|key| {
            let bytes: [u8; 32] = URL_SAFE_NO_PAD
                .decode(key.x.as_deref()?)
                .ok()?
                .try_into()
                .ok()?;
            VerifyingKey::from_bytes(&bytes).ok()
        })
        .ok_or_else(|| unreachable("`/auth/keys` holds no Ed25519 key"))
}

#[async_trait]
impl AccessPolicy for ControlPlaneLink {
    async fn authenticate(&self, authorization: Option<&str>) -> Result<Caller, ApiError> {
        let Some(token) = bearer_token(authorization)? else {
            return Ok(Caller::anonymous());
        };
        let claims = self.verify_token(token).await?;
        Ok(Caller {
            account_id: Some(claims.sub),
            account_name: Some(claims.name),
            is_admin: claims.adm,
            token: Some(BearerToken::new(token)),
        })
    }

    async fn decide(
        &self,
        caller: &Caller,
        dataset_id: &str,
        action: DatasetAction,
    ) -> Result<AccessDecision, ApiError> {
        let token = caller.token.as_ref();
        let key = (
            token
                .map(|token| token.expose().to_string())
                .unwrap_or_default(),
            dataset_id.to_string(),
            action,
        );
        let answer = match self.cached(&key) {
            Some(answer) => answer,
            None => {
                let answer = self.ask(token, dataset_id, action).await?;
                self.remember(key, answer.clone());
                answer
            }
        };
        match answer {
            CachedAnswer::Decision(decision) => Ok(decision),
            CachedAnswer::Unauthenticated(message) => Err(ApiError::unauthenticated(message)),
        }
    }
}

#[async_trait]
impl CommitNotifier for ControlPlaneLink {
    async fn block_committed(
        &self,
        caller: &Caller,
        dataset_id: &str,
        block_hash: &str,
        sequence_number: u64,
    ) {
        let mut request =
            self.client
                .post(format!("{}/commits", self.base_url))
                .json(&serde_json::json!({
                    "datasetId": dataset_id,
                    "blockHash": block_hash,
                    "sequenceNumber": sequence_number,
                }));
        if let Some(token) = &caller.token {
            request = request.bearer_auth(token.expose());
        }
        match request.send().await {
            Ok(response) if response.status().is_success() => {}
            Ok(response) => tracing::warn!(
                %dataset_id, status = %response.status(),
                "control plane refused the commit report; its repair loop will index it"
            ),
            Err(error) => tracing::warn!(
                %dataset_id, %error,
                "cannot report the commit to the control plane; its repair loop will index it"
            ),
        }
    }
}
