//! Issues and discussions of datasets, under REST and GraphQL. Who may do what follows the
//! dataset: a caller who may not read it gets the same 404 as for a missing dataset; signed-in
//! readers open threads and comment (unless the dataset's posting setting asks for more);
//! authors edit their own posts and close their own threads; maintainers moderate (close, lock,
//! label, assign, hide, delete). Every change writes its event to the outbox in the same
//! transaction.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use weir_events::WeirEvent;
use weir_function_runtime::Caller;
use weir_metastore::governance::*;
use weir_metastore::{DatasetEntry, Metastore, Role};

use super::{DatasetService, now_millis};
use crate::error::{ServiceError, ServiceResult};
use crate::outbox::outbox_message;

pub struct GovernanceApi {
    pub store: Arc<dyn GovernanceRepository>,
    pub datasets: Arc<DatasetService>,
    pub metastore: Arc<dyn Metastore>,
    pub outbox_wake: Arc<tokio::sync::Notify>,
}

const MAX_TITLE_CHARS: usize = 256;
const MAX_BODY_BYTES: usize = 64 * 1024;
const MAX_LABELS: usize = 20;
const MAX_LABEL_CHARS: usize = 50;
const MAX_MENTIONS: usize = 50;

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewThreadRequest {
    pub title: String,
    pub body: String,
    #[serde(default)]
    pub labels: Vec<String>,
    /// Account names.
    #[serde(default)]
    pub assignees: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ThreadChange {
    pub title: Option<String>,
    pub state: Option<ThreadState>,
    pub locked: Option<bool>,
    pub labels: Option<Vec<String>>,
    /// Account names.
    pub assignees: Option<Vec<String>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewCommentRequest {
    pub body: String,
    pub parent_id: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CommentChange {
    /// Authors only.
    pub body: Option<String>,
    /// Maintainers only.
    pub hidden: Option<bool>,
}

/// A thread with its comments, as readers see it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ThreadView {
    #[serde(flatten)]
    pub thread: Thread,
    pub comments: Vec<Comment>,
}

fn invalid(message: impl Into<String>) -> ServiceError {
    ServiceError::InvalidInput(message.into())
}

fn check_title(title: &str) -> ServiceResult<String> {
    let title = title.trim();
    if title.is_empty() || title.chars().count() > MAX_TITLE_CHARS {
        return Err(invalid(format!(
            "title: must be 1 to {MAX_TITLE_CHARS} characters"
        )));
    }
    if title.chars().any(char::is_control) {
        return Err(invalid("title: must not contain control characters"));
    }
    Ok(title.to_string())
}

fn check_body(body: &str) -> ServiceResult<String> {
    if body.trim().is_empty() {
        return Err(invalid("body: must not be empty"));
    }
    if body.len() > MAX_BODY_BYTES {
        return Err(invalid(format!("body: at most {MAX_BODY_BYTES} bytes")));
    }
    if body
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(invalid("body: must not contain control characters"));
    }
    Ok(body.to_string())
}

fn check_labels(labels: &[String]) -> ServiceResult<Vec<String>> {
    let mut kept: Vec<String> = Vec::new();
    for (index, label) in labels.iter().enumerate() {
        let label = label.trim();
        if label.is_empty()
            || label.chars().count() > MAX_LABEL_CHARS
            || label.chars().any(char::is_control)
        {
            return Err(invalid(format!(
                "labels[{index}]: must be 1 to {MAX_LABEL_CHARS} characters without control characters"
            )));
        }
        if !kept.iter().any(|k| k == label) {
            kept.push(label.to_string());
        }
    }
    if kept.len() > MAX_LABELS {
        return Err(invalid(format!("labels: at most {MAX_LABELS}")));
    }
    Ok(kept)
}

/// The `@name` words of a body (names as accounts have them: letters, digits, `-`, `_`, `.`).
pub fn mentioned_names(body: &str) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    let chars: Vec<char> = body.chars().collect();
    for (index, c) in chars.iter().enumerate() {
        let at_word_start = index == 0 || !(chars[index - 1].is_alphanumeric());
        if *c != '@' || !at_word_start {
            continue;
        }
        let name: String = chars[index + 1..]
            .iter()
            .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            .collect();
        let name = name.trim_end_matches('.').to_string();
        if !name.is_empty() && !names.contains(&name) {
            names.push(name);
        }
    }
    names
}

fn require_signed_in(caller: &Caller) -> ServiceResult<&str> {
    caller
        .account_id
        .as_deref()
        .ok_or_else(|| ServiceError::Unauthenticated("sign in to post".into()))
}

fn random_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

impl GovernanceApi {
    /// The dataset and the caller's role on it; 404 when the caller may not read it.
    async fn dataset(
        &self,
        caller: &Caller,
        owner: &str,
        name: &str,
    ) -> ServiceResult<(DatasetEntry, Role)> {
        let entry = self
            .datasets
            .authorize(caller, owner, name, Role::Reader)
            .await?;
        let role = self
            .datasets
            .access
            .role(caller, &entry)
            .await?
            .unwrap_or(Role::Reader);
        Ok((entry, role))
    }

    async fn may_post(&self, entry: &DatasetEntry, role: Role) -> ServiceResult<()> {
        let needed = match self.store.posting(&entry.id).await? {
            Posting::Readers => Role::Reader,
            Posting::Editors => Role::Editor,
            Posting::Maintainers => Role::Maintainer,
        };
        if role < needed {
            return Err(ServiceError::Forbidden(format!(
                "posting on this dataset needs the {} role",
                needed.as_str()
            )));
        }
        Ok(())
    }

    fn moderator(role: Role) -> bool {
        role >= Role::Maintainer
    }

    async fn account_ids(&self, names: &[String], field: &str) -> ServiceResult<Vec<String>> {
        let mut ids = Vec::new();
        for (index, name) in names.iter().enumerate() {
            let account = self
                .metastore
                .account_by_name(name)
                .await?
                .ok_or_else(|| invalid(format!("{field}[{index}]: no account `{name}`")))?;
            if !ids.contains(&account.id) {
                ids.push(account.id);
            }
        }
        Ok(ids)
    }

    /// Accounts named with `@` that exist; unknown names are plain text.
    async fn mentions(&self, body: &str) -> ServiceResult<Vec<String>> {
        let mut ids = Vec::new();
        for name in mentioned_names(body).into_iter().take(MAX_MENTIONS) {
            if let Some(account) = self.metastore.account_by_name(&name).await?
                && !ids.contains(&account.id)
            {
                ids.push(account.id);
            }
        }
        Ok(ids)
    }

    fn published(&self) {
        self.outbox_wake.notify_one();
    }

    async fn thread_of(&self, entry: &DatasetEntry, number: i64) -> ServiceResult<Thread> {
        self.store
            .thread(&entry.id, number)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("thread #{number} not found")))
    }

    pub async fn open_thread(
        &self,
        caller: &Caller,
        (owner, name): (&str, &str),
        kind: ThreadKind,
        request: NewThreadRequest,
    ) -> ServiceResult<ThreadView> {
        let (entry, role) = self.dataset(caller, owner, name).await?;
        let author = require_signed_in(caller)?.to_string();
        self.may_post(&entry, role).await?;
        let title = check_title(&request.title)?;
        let body = check_body(&request.body)?;
        let labels = check_labels(&request.labels)?;
        if (!labels.is_empty() || !request.assignees.is_empty()) && !Self::moderator(role) {
            return Err(ServiceError::Forbidden(
                "labels and assignees are set by maintainers".into(),
            ));
        }
        let assignees = self.account_ids(&request.assignees, "assignees").await?;
        let id = ThreadId::generate(&random_id());
        let mentions = self.mentions(&body).await?;
        let new = NewThread {
            id: id.clone(),
            dataset_id: entry.id.clone(),
            kind,
            title: title.clone(),
            author_id: author.clone(),
            labels,
            assignees,
            body: NewComment {
                id: CommentId::generate(&random_id()),
                parent_id: None,
                author_id: author.clone(),
                body,
                mentions,
            },
            created_at: now_millis(),
        };
        let event = |number: i64| {
            let (dataset_id, thread_id, title, author_id) = (
                entry.id.clone(),
                id.to_string(),
                title.clone(),
                author.clone(),
            );
            vec![outbox_message(match kind {
                ThreadKind::Issue => WeirEvent::IssueOpened {
                    dataset_id,
                    thread_id,
                    number,
                    title,
                    author_id,
                },
                ThreadKind::Discussion => WeirEvent::DiscussionOpened {
                    dataset_id,
                    thread_id,
                    number,
                    title,
                    author_id,
                },
            })]
        };
        let thread = self.store.create_thread(&new, &event).await?;
        self.published();
        let comments = self.store.comments(&thread.id).await?;
        Ok(ThreadView { thread, comments })
    }

    pub async fn list_threads(
        &self,
        caller: &Caller,
        (owner, name): (&str, &str),
        filter: ThreadFilter,
    ) -> ServiceResult<Vec<Thread>> {
        let (entry, _) = self.dataset(caller, owner, name).await?;
        let filter = ThreadFilter {
            limit: filter.limit.clamp(1, 200),
            ..filter
        };
        Ok(self.store.list_threads(&entry.id, &filter).await?)
    }

    pub async fn thread(
        &self,
        caller: &Caller,
        (owner, name): (&str, &str),
        number: i64,
    ) -> ServiceResult<ThreadView> {
        let (entry, role) = self.dataset(caller, owner, name).await?;
        let thread = self.thread_of(&entry, number).await?;
        let mut comments = self.store.comments(&thread.id).await?;
        if !Self::moderator(role) {
            // Hidden comments keep their place, not their text.
            for comment in comments.iter_mut().filter(|comment| comment.hidden) {
                comment.body.clear();
                comment.mentions.clear();
            }
        }
        Ok(ThreadView { thread, comments })
    }

    pub async fn change_thread(
        &self,
        caller: &Caller,
        (owner, name): (&str, &str),
        number: i64,
        change: ThreadChange,
    ) -> ServiceResult<Thread> {
        let (entry, role) = self.dataset(caller, owner, name).await?;
        let actor = require_signed_in(caller)?.to_string();
        let thread = self.thread_of(&entry, number).await?;
        let author = thread.author_id == actor;
        let moderator = Self::moderator(role);
        if (change.title.is_some() || change.state.is_some()) && !(author || moderator) {
            return Err(ServiceError::Forbidden(
                "only its author or a maintainer changes a thread's title or state".into(),
            ));
        }
        if (change.locked.is_some() || change.labels.is_some() || change.assignees.is_some())
            && !moderator
        {
            return Err(ServiceError::Forbidden(
                "locking, labels and assignees need the maintainer role".into(),
            ));
        }
        if thread.locked && !moderator {
            return Err(ServiceError::Forbidden("the thread is locked".into()));
        }
        let patch = ThreadPatch {
            title: change.title.as_deref().map(check_title).transpose()?,
            state: change.state,
            locked: change.locked,
            labels: change.labels.as_deref().map(check_labels).transpose()?,
            assignees: match &change.assignees {
                Some(names) => Some(self.account_ids(names, "assignees").await?),
                None => None,
            },
        };
        let mut outbox = Vec::new();
        let mut action = |action: &str| {
            outbox.push(outbox_message(WeirEvent::ThreadChanged {
                dataset_id: entry.id.clone(),
                thread_id: thread.id.to_string(),
                number,
                action: action.to_string(),
                actor_id: actor.clone(),
            }))
        };
        match patch.state {
            Some(ThreadState::Closed) if thread.state == ThreadState::Open => action("closed"),
            Some(ThreadState::Open) if thread.state == ThreadState::Closed => action("reopened"),
            _ => {}
        }
        match patch.locked {
            Some(true) if !thread.locked => action("locked"),
            Some(false) if thread.locked => action("unlocked"),
            _ => {}
        }
        if patch
            .title
            .as_ref()
            .is_some_and(|title| *title != thread.title)
        {
            action("edited");
        }
        if patch
            .labels
            .as_ref()
            .is_some_and(|labels| *labels != thread.labels)
        {
            action("labeled");
        }
        if patch
            .assignees
            .as_ref()
            .is_some_and(|ids| *ids != thread.assignees)
        {
            action("assigned");
        }
        let updated = self
            .store
            .update_thread(&thread.id, &patch, now_millis(), &outbox)
            .await?;
        self.published();
        Ok(updated)
    }

    pub async fn delete_thread(
        &self,
        caller: &Caller,
        (owner, name): (&str, &str),
        number: i64,
    ) -> ServiceResult<()> {
        let (entry, role) = self.dataset(caller, owner, name).await?;
        let actor = require_signed_in(caller)?.to_string();
        if !Self::moderator(role) {
            return Err(ServiceError::Forbidden(
                "deleting a thread needs the maintainer role".into(),
            ));
        }
        let thread = self.thread_of(&entry, number).await?;
        let event = outbox_message(WeirEvent::ThreadChanged {
            dataset_id: entry.id.clone(),
            thread_id: thread.id.to_string(),
            number,
            action: "deleted".into(),
            actor_id: actor,
        });
        self.store.delete_thread(&thread.id, &[event]).await?;
        self.published();
        Ok(())
    }

    pub async fn add_comment(
        &self,
        caller: &Caller,
        (owner, name): (&str, &str),
        number: i64,
        request: NewCommentRequest,
    ) -> ServiceResult<Comment> {
        let (entry, role) = self.dataset(caller, owner, name).await?;
        let author = require_signed_in(caller)?.to_string();
        self.may_post(&entry, role).await?;
        let thread = self.thread_of(&entry, number).await?;
        if thread.locked && !Self::moderator(role) {
            return Err(ServiceError::Forbidden(
                "the thread is locked: only maintainers comment".into(),
            ));
        }
        let body = check_body(&request.body)?;
        let parent_id = request
            .parent_id
            .as_deref()
            .map(|id| {
                CommentId::parse(id)
                    .ok_or_else(|| invalid(format!("parentId: `{id}` is not a comment id")))
            })
            .transpose()?;
        let mentions = self.mentions(&body).await?;
        let id = CommentId::generate(&random_id());
        let event = outbox_message(WeirEvent::CommentAdded {
            dataset_id: entry.id.clone(),
            thread_id: thread.id.to_string(),
            number,
            comment_id: id.to_string(),
            author_id: author.clone(),
            mentions: mentions.clone(),
        });
        let comment = NewComment {
            id,
            parent_id,
            author_id: author,
            body,
            mentions,
        };
        let added = self
            .store
            .add_comment(&thread.id, &comment, now_millis(), &[event])
            .await?;
        self.published();
        Ok(added)
    }

    /// The comment, if it belongs to a thread of this dataset.
    async fn comment_of(&self, entry: &DatasetEntry, id: &str) -> ServiceResult<(Thread, Comment)> {
        let not_found = || ServiceError::NotFound(format!("comment `{id}` not found"));
        let id = CommentId::parse(id).ok_or_else(not_found)?;
        let comment = self.store.comment(&id).await?.ok_or_else(not_found)?;
        let thread = self
            .store
            .thread_by_id(&comment.thread_id)
            .await?
            .filter(|thread| thread.dataset_id == entry.id)
            .ok_or_else(not_found)?;
        Ok((thread, comment))
    }

    pub async fn change_comment(
        &self,
        caller: &Caller,
        (owner, name): (&str, &str),
        comment_id: &str,
        change: CommentChange,
    ) -> ServiceResult<Comment> {
        let (entry, role) = self.dataset(caller, owner, name).await?;
        let actor = require_signed_in(caller)?.to_string();
        let (thread, comment) = self.comment_of(&entry, comment_id).await?;
        if change.body.is_none() && change.hidden.is_none() {
            return Err(invalid("give `body` (authors) or `hidden` (maintainers)"));
        }
        let event = |action: &str| {
            outbox_message(WeirEvent::CommentChanged {
                dataset_id: entry.id.clone(),
                thread_id: thread.id.to_string(),
                comment_id: comment.id.to_string(),
                action: action.to_string(),
                actor_id: actor.clone(),
            })
        };
        let mut current = comment.clone();
        if let Some(body) = &change.body {
            if comment.author_id != actor {
                return Err(ServiceError::Forbidden(
                    "only its author edits a comment".into(),
                ));
            }
            if thread.locked && !Self::moderator(role) {
                return Err(ServiceError::Forbidden("the thread is locked".into()));
            }
            let body = check_body(body)?;
            let mentions = self.mentions(&body).await?;
            current = self
                .store
                .edit_comment(
                    &comment.id,
                    &body,
                    &mentions,
                    &actor,
                    now_millis(),
                    &[event("edited")],
                )
                .await?;
        }
        if let Some(hidden) = change.hidden {
            if !Self::moderator(role) {
                return Err(ServiceError::Forbidden(
                    "hiding comments needs the maintainer role".into(),
                ));
            }
            let action = if hidden { "hidden" } else { "unhidden" };
            current = self
                .store
                .set_comment_hidden(&comment.id, hidden, &[event(action)])
                .await?;
        }
        self.published();
        Ok(current)
    }

    pub async fn delete_comment(
        &self,
        caller: &Caller,
        (owner, name): (&str, &str),
        comment_id: &str,
    ) -> ServiceResult<()> {
        let (entry, role) = self.dataset(caller, owner, name).await?;
        let actor = require_signed_in(caller)?.to_string();
        let (thread, comment) = self.comment_of(&entry, comment_id).await?;
        if comment.author_id != actor && !Self::moderator(role) {
            return Err(ServiceError::Forbidden(
                "only its author or a maintainer deletes a comment".into(),
            ));
        }
        let event = outbox_message(WeirEvent::CommentChanged {
            dataset_id: entry.id.clone(),
            thread_id: thread.id.to_string(),
            comment_id: comment.id.to_string(),
            action: "deleted".into(),
            actor_id: actor,
        });
        self.store.delete_comment(&comment.id, &[event]).await?;
        self.published();
        Ok(())
    }

    pub async fn comment_history(
        &self,
        caller: &Caller,
        (owner, name): (&str, &str),
        comment_id: &str,
    ) -> ServiceResult<Vec<CommentEdit>> {
        let (entry, role) = self.dataset(caller, owner, name).await?;
        let (_, comment) = self.comment_of(&entry, comment_id).await?;
        if comment.hidden && !Self::moderator(role) {
            return Ok(Vec::new());
        }
        Ok(self.store.comment_history(&comment.id).await?)
    }

    pub async fn react(
        &self,
        caller: &Caller,
        (owner, name): (&str, &str),
        comment_id: &str,
        reaction: &str,
        on: bool,
    ) -> ServiceResult<Comment> {
        let (entry, _) = self.dataset(caller, owner, name).await?;
        let account = require_signed_in(caller)?.to_string();
        if !REACTIONS.contains(&reaction) {
            return Err(invalid(format!(
                "reaction: `{reaction}` is not one of {}",
                REACTIONS.join(", ")
            )));
        }
        let (_, comment) = self.comment_of(&entry, comment_id).await?;
        Ok(self
            .store
            .react(&comment.id, &account, reaction, on)
            .await?)
    }

    pub async fn posting(
        &self,
        caller: &Caller,
        (owner, name): (&str, &str),
    ) -> ServiceResult<Posting> {
        let (entry, _) = self.dataset(caller, owner, name).await?;
        Ok(self.store.posting(&entry.id).await?)
    }

    pub async fn set_posting(
        &self,
        caller: &Caller,
        (owner, name): (&str, &str),
        posting: Posting,
    ) -> ServiceResult<Posting> {
        let entry = self
            .datasets
            .authorize(caller, owner, name, Role::Maintainer)
            .await?;
        self.store.set_posting(&entry.id, posting).await?;
        Ok(posting)
    }
}

#[cfg(test)]
mod tests {
    use super::mentioned_names;

    #[test]
    fn mentions_are_at_word_starts() {
        assert_eq!(
            mentioned_names("cc @alice, @bob-2. mail me at x@y.org; @alice again"),
            vec!["alice", "bob-2"]
        );
        assert!(mentioned_names("no mentions @ all").is_empty());
    }
}
