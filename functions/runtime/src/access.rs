//! What a function asks of the platform around it: who is calling (`AccessPolicy::authenticate`),
//! what they may do with a dataset (`AccessPolicy::decide`), and whom to tell about a new block
//! (`CommitNotifier`). The control plane implements both; a function run without one uses
//! `OpenAccess` (everyone may do everything: development only) and no notifier.
//!
//! Dataset ids are passed as DID strings so this crate stays free of ODF types.

use async_trait::async_trait;

use crate::error::ApiError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DatasetAction {
    Read,
    Write,
    /// Rewrites history or changes how the dataset is kept (reset): maintainers and owners.
    Maintain,
}

impl DatasetAction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Write => "write",
            Self::Maintain => "maintain",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "read" => Some(Self::Read),
            "write" => Some(Self::Write),
            "maintain" => Some(Self::Maintain),
            _ => None,
        }
    }
}

/// The bearer token a caller presented, kept so a function can forward it when it asks the
/// control plane about this caller. Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct BearerToken(String);

impl BearerToken {
    pub fn new(token: impl Into<String>) -> Self {
        Self(token.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for BearerToken {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("BearerToken(..)")
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Caller {
    /// `None` for anonymous callers.
    pub account_id: Option<String>,
    pub account_name: Option<String>,
    pub is_admin: bool,
    /// The token the caller authenticated with; `None` for anonymous callers.
    pub token: Option<BearerToken>,
}

impl Caller {
    pub fn anonymous() -> Self {
        Self::default()
    }

    /// A function acting on its own with a service token (an executor of flow tasks reporting
    /// its commits), not on behalf of a request's caller.
    pub fn service(token: &str) -> Self {
        Self {
            token: Some(BearerToken::new(token)),
            ..Self::default()
        }
    }
}

/// The `Authorization` header of a request: absent is anonymous; present but not visible ASCII
/// is refused (401), never taken for anonymous.
pub fn authorization_header(
    headers: &axum::http::HeaderMap,
) -> Result<Option<&str>, crate::ApiError> {
    match headers.get(axum::http::header::AUTHORIZATION) {
        None => Ok(None),
        Some(value) => value.to_str().map(Some).map_err(|_| {
            crate::ApiError::unauthenticated(
                "the Authorization header is not visible ASCII: send `Bearer <token>`",
            )
        }),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessDecision {
    Allowed,
    /// The caller may see the dataset but not do this (403).
    Forbidden,
    /// The caller may not even know the dataset exists (answer 404).
    Hidden,
}

#[async_trait]
pub trait AccessPolicy: Send + Sync {
    /// The caller behind an `Authorization` header value (`Bearer <token>`); no header means
    /// anonymous, a bad or revoked token is an `Unauthenticated` error.
    async fn authenticate(&self, authorization: Option<&str>) -> Result<Caller, ApiError>;

    async fn decide(
        &self,
        caller: &Caller,
        dataset_id: &str,
        action: DatasetAction,
    ) -> Result<AccessDecision, ApiError>;
}

/// Everyone may do everything. For a function run alone during development or in tests.
#[derive(Debug, Clone, Copy, Default)]
pub struct OpenAccess;

#[async_trait]
impl AccessPolicy for OpenAccess {
    async fn authenticate(&self, _authorization: Option<&str>) -> Result<Caller, ApiError> {
        Ok(Caller::anonymous())
    }

    async fn decide(
        &self,
        _caller: &Caller,
        _dataset_id: &str,
        _action: DatasetAction,
    ) -> Result<AccessDecision, ApiError> {
        Ok(AccessDecision::Allowed)
    }
}

#[async_trait]
pub trait CommitNotifier: Send + Sync {
    /// Called after `caller`'s commit made a block a dataset's head. Best effort: the control
    /// plane's repair loop finds commits whose notification was lost.
    async fn block_committed(
        &self,
        caller: &Caller,
        dataset_id: &str,
        block_hash: &str,
        sequence_number: u64,
    );
}
