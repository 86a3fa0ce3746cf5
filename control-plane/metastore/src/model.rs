//! Records the metastore keeps. Times are Unix milliseconds (UTC); ids are strings.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AccountKind {
    User,
    Organization,
}

impl AccountKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Organization => "organization",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "user" => Some(Self::User),
            "organization" => Some(Self::Organization),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Account {
    pub id: String,
    pub name: String,
    pub kind: AccountKind,
    pub display_name: String,
    pub email: Option<String>,
    pub is_admin: bool,
    pub created_at: i64,
}

#[derive(Debug, Clone)]
pub struct NewAccount {
    pub account: Account,
    pub password_hash: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccessToken {
    pub id: String,
    pub account_id: String,
    pub name: String,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Visibility {
    Public,
    Private,
}

impl Visibility {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Public => "public",
            Self::Private => "private",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "public" => Some(Self::Public),
            "private" => Some(Self::Private),
            _ => None,
        }
    }
}

/// Roles on a dataset, weakest first: each includes what the ones before it allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Reader,
    Editor,
    Maintainer,
    Owner,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Reader => "reader",
            Self::Editor => "editor",
            Self::Maintainer => "maintainer",
            Self::Owner => "owner",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "reader" => Some(Self::Reader),
            "editor" => Some(Self::Editor),
            "maintainer" => Some(Self::Maintainer),
            "owner" => Some(Self::Owner),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DatasetEntry {
    pub id: String,
    pub owner_id: String,
    pub owner_name: String,
    pub name: String,
    pub kind: String,
    pub storage_location: String,
    pub visibility: Visibility,
    pub created_at: i64,
    pub head_hash: Option<String>,
    pub head_sequence: Option<i64>,
}

impl DatasetEntry {
    pub fn alias(&self) -> String {
        format!("{}/{}", self.owner_name, self.name)
    }
}

/// Key used for case-insensitive uniqueness of `owner/name`.
pub fn alias_key(owner_name: &str, name: &str) -> String {
    format!("{}/{}", owner_name.to_lowercase(), name.to_lowercase())
}

#[derive(Debug, Clone, Default)]
pub struct DatasetFilter {
    pub owner_name: Option<String>,
    /// Case-insensitive substring of `owner/name`.
    pub search: Option<String>,
    /// A search expression (`crate::search`), applied with the scope before paging.
    pub expression: Option<crate::search::Expr>,
    /// Whose listing this is: applied before paging, so a page is full whenever more datasets
    /// the caller may read exist.
    pub scope: ListingScope,
    pub limit: i64,
    pub offset: i64,
}

/// Which datasets a listing may show; the same rule as access checks: public datasets, plus for
/// an account those it owns, holds any role on, or whose owning organization it belongs to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ListingScope {
    /// Every dataset (administrators, internal use).
    #[default]
    All,
    /// Public datasets only (anonymous callers).
    PublicOnly,
    /// Datasets this account id may read.
    ReadableBy(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockEntry {
    pub sequence_number: i64,
    pub block_hash: String,
    pub prev_block_hash: Option<String>,
    pub system_time: i64,
    pub event_type: String,
    /// The event's key fields (offsets, watermark, source names, queries...) as JSON.
    pub key_fields: serde_json::Value,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DatasetStatistics {
    pub num_records: i64,
    pub data_size_bytes: i64,
    pub last_updated: Option<i64>,
    pub last_watermark: Option<i64>,
}

/// New blocks of one dataset, in chain order, with the statistics and lineage they imply.
#[derive(Debug, Clone)]
pub struct IndexUpdate {
    pub dataset_id: String,
    pub blocks: Vec<BlockEntry>,
    pub statistics: DatasetStatistics,
    /// Replaces the dataset's upstream set when present (a SetTransform was among the blocks).
    pub upstream: Option<Vec<String>>,
    /// The chain was reset: `blocks` is the whole chain, replacing the indexed one, and the
    /// head may move back.
    pub rewritten: bool,
    /// Replaces the dataset's documentation (what search sees of it) when present: a
    /// `SetInfo`, `SetLicense` or `SetAttachments` was among the blocks, or the chain was reset.
    pub docs: Option<DatasetDocs>,
}

/// What search knows of a dataset's documentation, from its chain.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DatasetDocs {
    pub description: Option<String>,
    pub keywords: Vec<String>,
    /// The SPDX id, else the short name.
    pub license: Option<String>,
    /// The readme attachment (`README.md`, any case).
    pub readme: Option<String>,
}

/// An event to publish, written in the same transaction as the change that implies it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxMessage {
    pub event_id: String,
    pub subject: String,
    pub payload: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingMessage {
    pub seq: i64,
    pub message: OutboxMessage,
    pub created_at: i64,
}
