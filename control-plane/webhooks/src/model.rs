//! Subscriptions, event types and deliveries. Times are Unix milliseconds.

use serde::{Deserialize, Serialize};

weir_metastore::typed_id!(
    /// A subscription: `whk_…` (also the signature's `keyid`).
    WebhookId,
    "whk_"
);
weir_metastore::typed_id!(
    /// A delivery: `dlv_…` (the `Webhook-Id` header; receivers deduplicate on it).
    DeliveryId,
    "dlv_"
);

/// What a subscription may ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum EventType {
    /// New blocks in the dataset (new data, or any metadata change).
    #[serde(rename = "dataset.ref.updated")]
    DatasetRefUpdated,
    /// A `SetDataSchema` block was committed.
    #[serde(rename = "dataset.schema.changed")]
    DatasetSchemaChanged,
    #[serde(rename = "issue.opened")]
    IssueOpened,
    #[serde(rename = "discussion.opened")]
    DiscussionOpened,
    /// An issue or discussion was closed, reopened, locked, edited, labeled, assigned or deleted.
    #[serde(rename = "thread.changed")]
    ThreadChanged,
    #[serde(rename = "comment.added")]
    CommentAdded,
}

impl EventType {
    pub const ALL: [EventType; 6] = [
        EventType::DatasetRefUpdated,
        EventType::DatasetSchemaChanged,
        EventType::IssueOpened,
        EventType::DiscussionOpened,
        EventType::ThreadChanged,
        EventType::CommentAdded,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::DatasetRefUpdated => "dataset.ref.updated",
            EventType::DatasetSchemaChanged => "dataset.schema.changed",
            EventType::IssueOpened => "issue.opened",
            EventType::DiscussionOpened => "discussion.opened",
            EventType::ThreadChanged => "thread.changed",
            EventType::CommentAdded => "comment.added",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|event| event.as_str() == text)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SubscriptionStatus {
    Active,
    /// After too many consecutive failures (see `disabledReason`), or by hand.
    Disabled,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Subscription {
    pub id: WebhookId,
    /// The account that created it.
    pub owner_id: String,
    /// Set for a subscription to one dataset.
    pub dataset_id: Option<String>,
    /// Set for a subscription to every dataset of an account.
    pub account_id: Option<String>,
    pub url: String,
    pub events: Vec<EventType>,
    pub status: SubscriptionStatus,
    pub disabled_reason: Option<String>,
    pub consecutive_failures: i64,
    pub created_at: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryStatus {
    Pending,
    Succeeded,
    /// Given up: the subscription was disabled before it went out.
    Skipped,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    pub id: DeliveryId,
    pub subscription_id: WebhookId,
    /// The bus event it comes from (one delivery per subscription and event).
    pub event_id: String,
    pub event_type: EventType,
    pub dataset_id: String,
    /// The JSON body sent.
    pub payload: String,
    pub status: DeliveryStatus,
    pub attempts: i64,
    /// The HTTP status of the last attempt, if one answered.
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub delivered_at: Option<i64>,
}

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("{0} not found")]
    NotFound(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Metastore(#[from] weir_metastore::MetastoreError),
    #[error("stored webhook data is unreadable: {0}")]
    Corrupt(String),
}

pub type WebhookResult<T> = Result<T, WebhookError>;
