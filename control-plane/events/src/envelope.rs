//! The event envelope and the events Weir publishes.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// What happened. Serialized with a `type` tag in kebab-case, which is also the subject token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "kebab-case",
    rename_all_fields = "camelCase"
)]
pub enum WeirEvent {
    DatasetCreated {
        dataset_id: String,
        alias: String,
        kind: String,
    },
    BlockCommitted {
        dataset_id: String,
        block_hash: String,
        sequence_number: u64,
    },
    DatasetRenamed {
        dataset_id: String,
        old_alias: String,
        new_alias: String,
    },
    DatasetDeleted {
        dataset_id: String,
        alias: String,
    },
    VisibilityChanged {
        dataset_id: String,
        visibility: String,
    },
    RoleChanged {
        dataset_id: String,
        account_id: String,
        role: Option<String>,
    },
    TokenRevoked {
        account_id: String,
        token_id: String,
    },
    /// A device token stopped being valid (revoked, or its endpoint deleted): device bridges drop
    /// it from their caches at once.
    DeviceTokenRevoked {
        endpoint_id: String,
        token_id: String,
    },
    /// An application or one of its versions changed or went away: bridges forget what they
    /// cached for it.
    DeviceBindingChanged {
        application_id: String,
    },
    /// An issue was opened on a dataset.
    IssueOpened {
        dataset_id: String,
        thread_id: String,
        number: i64,
        title: String,
        author_id: String,
    },
    /// A discussion was opened on a dataset.
    DiscussionOpened {
        dataset_id: String,
        thread_id: String,
        number: i64,
        title: String,
        author_id: String,
    },
    /// An issue or discussion changed: `action` is `closed`, `reopened`, `locked`, `unlocked`,
    /// `edited`, `labeled`, `assigned` or `deleted`.
    ThreadChanged {
        dataset_id: String,
        thread_id: String,
        number: i64,
        action: String,
        actor_id: String,
    },
    /// A comment was added to an issue or discussion; `mentions` are the account ids it names.
    CommentAdded {
        dataset_id: String,
        thread_id: String,
        number: i64,
        comment_id: String,
        author_id: String,
        mentions: Vec<String>,
    },
    /// A comment was `edited`, `hidden`, `unhidden` or `deleted`.
    CommentChanged {
        dataset_id: String,
        thread_id: String,
        comment_id: String,
        action: String,
        actor_id: String,
    },
}

impl WeirEvent {
    /// `(aggregate, event, key)` of the subject `<prefix>.v1.<aggregate>.<event>.<key>`.
    fn subject_parts(&self) -> (&'static str, &'static str, &str) {
        match self {
            Self::DatasetCreated { dataset_id, .. } => ("dataset", "created", dataset_id),
            Self::BlockCommitted { dataset_id, .. } => ("dataset", "block-committed", dataset_id),
            Self::DatasetRenamed { dataset_id, .. } => ("dataset", "renamed", dataset_id),
            Self::DatasetDeleted { dataset_id, .. } => ("dataset", "deleted", dataset_id),
            Self::VisibilityChanged { dataset_id, .. } => {
                ("dataset", "visibility-changed", dataset_id)
            }
            Self::RoleChanged { dataset_id, .. } => ("dataset", "role-changed", dataset_id),
            Self::TokenRevoked { account_id, .. } => ("account", "token-revoked", account_id),
            Self::DeviceTokenRevoked { endpoint_id, .. } => {
                ("device", "token-revoked", endpoint_id)
            }
            Self::DeviceBindingChanged { application_id } => {
                ("device", "binding-changed", application_id)
            }
            Self::IssueOpened { dataset_id, .. } => ("dataset", "issue-opened", dataset_id),
            Self::DiscussionOpened { dataset_id, .. } => {
                ("dataset", "discussion-opened", dataset_id)
            }
            Self::ThreadChanged { dataset_id, .. } => ("dataset", "thread-changed", dataset_id),
            Self::CommentAdded { dataset_id, .. } => ("dataset", "comment-added", dataset_id),
            Self::CommentChanged { dataset_id, .. } => ("dataset", "comment-changed", dataset_id),
        }
    }

    /// The dataset the event is about, if any.
    pub fn dataset_id(&self) -> Option<&str> {
        match self.subject_parts() {
            ("dataset", _, key) => Some(key),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventEnvelope {
    /// Unique per event; buses and consumers deduplicate on it.
    pub id: String,
    /// Shared by all events caused by one request.
    pub correlation_id: String,
    pub timestamp: DateTime<Utc>,
    /// The component that produced the event (`control-plane`, `ingest`, ...).
    pub source: String,
    pub event: WeirEvent,
}

impl EventEnvelope {
    pub fn new(source: &str, correlation_id: Option<&str>, event: WeirEvent) -> Self {
        let id = uuid::Uuid::new_v4().to_string();
        Self {
            correlation_id: correlation_id
                .map(str::to_string)
                .unwrap_or_else(|| id.clone()),
            id,
            timestamp: Utc::now(),
            source: source.to_string(),
            event,
        }
    }

    /// The subject under `prefix` (`weir` by default): `weir.v1.dataset.created.<key>`, where
    /// the key is the dataset id without its `did:odf:` scheme (or the account id).
    pub fn subject(&self, prefix: &str) -> String {
        let (aggregate, event, key) = self.event.subject_parts();
        let key = key.strip_prefix("did:odf:").unwrap_or(key);
        let key: String = key
            .chars()
            .map(|c| match c {
                '.' | '*' | '>' | ' ' => '_',
                other => other,
            })
            .collect();
        format!("{prefix}.v1.{aggregate}.{event}.{key}")
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("envelopes always serialize")
    }

    pub fn from_json(text: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(text)
    }
}

/// Whether `subject` matches a NATS-style `filter` (`*` one token, `>` the rest).
pub fn subject_matches(filter: &str, subject: &str) -> bool {
    let mut subject_tokens = subject.split('.');
    for filter_token in filter.split('.') {
        match (filter_token, subject_tokens.next()) {
            (">", Some(_)) => return true,
            ("*", Some(_)) => {}
            (token, Some(subject_token)) if token == subject_token => {}
            _ => return false,
        }
    }
    subject_tokens.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_follow_the_grammar() {
        let envelope = EventEnvelope::new(
            "ingest",
            None,
            WeirEvent::BlockCommitted {
                dataset_id: "did:odf:fed01ab".to_string(),
                block_hash: "f1620".to_string(),
                sequence_number: 3,
            },
        );
        assert_eq!(
            envelope.subject("weir"),
            "weir.v1.dataset.block-committed.fed01ab"
        );
        assert_eq!(envelope.correlation_id, envelope.id);
        let json = envelope.to_json();
        assert!(json.contains("\"type\":\"block-committed\""), "{json}");
        assert!(json.contains("\"sequenceNumber\":3"), "{json}");
        assert_eq!(EventEnvelope::from_json(json.as_bytes()).unwrap(), envelope);
    }

    #[test]
    fn filters_match_like_nats() {
        assert!(subject_matches("weir.v1.>", "weir.v1.dataset.created.x"));
        assert!(subject_matches(
            "weir.v1.dataset.*.x",
            "weir.v1.dataset.created.x"
        ));
        assert!(!subject_matches(
            "weir.v1.dataset.*",
            "weir.v1.dataset.created.x"
        ));
        assert!(!subject_matches(
            "weir.v1.account.>",
            "weir.v1.dataset.created.x"
        ));
        assert!(!subject_matches(
            "weir.v1.dataset.created.x.y",
            "weir.v1.dataset.created.x"
        ));
        assert!(subject_matches("a.b", "a.b"));
    }
}
