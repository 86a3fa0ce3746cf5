//! Issues and discussions of datasets: threads with labels and assignees, threaded comments
//! whose edits keep the earlier bodies, reactions and mentions, and who may post per dataset.
//! `GovernanceRepository` is the store; the control plane decides who may do what.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::MetastoreResult;
use crate::model::OutboxMessage;

crate::typed_id!(
    /// A thread (issue or discussion): `thr_…`.
    ThreadId,
    "thr_"
);
crate::typed_id!(
    /// A comment: `cmt_…`.
    CommentId,
    "cmt_"
);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ThreadKind {
    Issue,
    Discussion,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ThreadState {
    Open,
    Closed,
}

/// Who may open threads on a dataset and comment on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Posting {
    /// Everyone who may read the dataset and is signed in (the default).
    #[default]
    Readers,
    /// Editors, maintainers and owners.
    Editors,
    /// Maintainers and owners only.
    Maintainers,
}

macro_rules! text_enum {
    ($name:ident { $($variant:ident => $text:literal),* $(,)? }) => {
        impl $name {
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text),* }
            }

            pub fn parse(text: &str) -> Option<Self> {
                match text { $($text => Some(Self::$variant),)* _ => None }
            }
        }
    };
}

text_enum!(ThreadKind { Issue => "issue", Discussion => "discussion" });
text_enum!(ThreadState { Open => "open", Closed => "closed" });
text_enum!(Posting { Readers => "readers", Editors => "editors", Maintainers => "maintainers" });

/// The reactions a comment may get (GitHub's set).
pub const REACTIONS: &[&str] = &[
    "+1", "-1", "laugh", "hooray", "confused", "heart", "rocket", "eyes",
];

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Thread {
    pub id: ThreadId,
    pub dataset_id: String,
    /// Sequential per dataset, shared by issues and discussions (`#12`).
    pub number: i64,
    pub kind: ThreadKind,
    pub title: String,
    pub author_id: String,
    pub state: ThreadState,
    pub locked: bool,
    pub labels: Vec<String>,
    pub assignees: Vec<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Comment {
    pub id: CommentId,
    pub thread_id: ThreadId,
    /// The comment this one answers; `None` at the top level.
    pub parent_id: Option<CommentId>,
    pub author_id: String,
    /// Empty once deleted.
    pub body: String,
    pub created_at: i64,
    pub edited_at: Option<i64>,
    pub hidden: bool,
    pub deleted: bool,
    /// Reaction → accounts that gave it, sorted.
    pub reactions: std::collections::BTreeMap<String, Vec<String>>,
    pub mentions: Vec<String>,
}

/// An earlier body of an edited comment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CommentEdit {
    pub version: i64,
    pub body: String,
    pub edited_by: String,
    /// When this body was replaced.
    pub replaced_at: i64,
}

#[derive(Debug, Clone)]
pub struct NewThread {
    pub id: ThreadId,
    pub dataset_id: String,
    pub kind: ThreadKind,
    pub title: String,
    pub author_id: String,
    pub labels: Vec<String>,
    pub assignees: Vec<String>,
    /// The opening post.
    pub body: NewComment,
    pub created_at: i64,
}

#[derive(Debug, Clone)]
pub struct NewComment {
    pub id: CommentId,
    pub parent_id: Option<CommentId>,
    pub author_id: String,
    pub body: String,
    /// Account ids mentioned in the body.
    pub mentions: Vec<String>,
}

/// A change to a thread; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct ThreadPatch {
    pub title: Option<String>,
    pub state: Option<ThreadState>,
    pub locked: Option<bool>,
    pub labels: Option<Vec<String>>,
    pub assignees: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default)]
pub struct ThreadFilter {
    pub kind: Option<ThreadKind>,
    pub state: Option<ThreadState>,
    pub label: Option<String>,
    /// Threads numbered below this (keyset paging, newest first).
    pub before_number: Option<i64>,
    pub limit: i64,
}

#[async_trait]
pub trait GovernanceRepository: Send + Sync {
    /// Numbers the thread after the dataset's last one; `NotFound` without the dataset.
    /// `outbox` gives the messages for the number the thread got, written in its transaction.
    async fn create_thread(
        &self,
        thread: &NewThread,
        outbox: &(dyn Fn(i64) -> Vec<OutboxMessage> + Send + Sync),
    ) -> MetastoreResult<Thread>;
    async fn thread(&self, dataset_id: &str, number: i64) -> MetastoreResult<Option<Thread>>;
    async fn thread_by_id(&self, id: &ThreadId) -> MetastoreResult<Option<Thread>>;
    /// Newest first.
    async fn list_threads(
        &self,
        dataset_id: &str,
        filter: &ThreadFilter,
    ) -> MetastoreResult<Vec<Thread>>;
    async fn update_thread(
        &self,
        id: &ThreadId,
        patch: &ThreadPatch,
        at: i64,
        outbox: &[OutboxMessage],
    ) -> MetastoreResult<Thread>;
    async fn delete_thread(&self, id: &ThreadId, outbox: &[OutboxMessage]) -> MetastoreResult<()>;
    /// `NotFound` when the parent is not a comment of the same thread.
    async fn add_comment(
        &self,
        thread_id: &ThreadId,
        comment: &NewComment,
        at: i64,
        outbox: &[OutboxMessage],
    ) -> MetastoreResult<Comment>;
    async fn comment(&self, id: &CommentId) -> MetastoreResult<Option<Comment>>;
    /// Oldest first.
    async fn comments(&self, thread_id: &ThreadId) -> MetastoreResult<Vec<Comment>>;
    /// Replaces the body, keeping the earlier one in the history.
    async fn edit_comment(
        &self,
        id: &CommentId,
        body: &str,
        mentions: &[String],
        editor_id: &str,
        at: i64,
        outbox: &[OutboxMessage],
    ) -> MetastoreResult<Comment>;
    async fn comment_history(&self, id: &CommentId) -> MetastoreResult<Vec<CommentEdit>>;
    async fn set_comment_hidden(
        &self,
        id: &CommentId,
        hidden: bool,
        outbox: &[OutboxMessage],
    ) -> MetastoreResult<Comment>;
    /// Empties the body and its history; the comment stays as a placeholder for its replies.
    async fn delete_comment(&self, id: &CommentId, outbox: &[OutboxMessage])
    -> MetastoreResult<()>;
    /// Adds (`on`) or removes a reaction; idempotent.
    async fn react(
        &self,
        id: &CommentId,
        account_id: &str,
        reaction: &str,
        on: bool,
    ) -> MetastoreResult<Comment>;
    async fn posting(&self, dataset_id: &str) -> MetastoreResult<Posting>;
    async fn set_posting(&self, dataset_id: &str, posting: Posting) -> MetastoreResult<()>;
}
