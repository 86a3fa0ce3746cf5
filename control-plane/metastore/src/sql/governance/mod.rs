//! The sqlx implementation of `GovernanceRepository`: threads (`threads`) and comments
//! (`comments`).

mod comments;
mod threads;

use sqlx::any::AnyRow;

use super::get;
use crate::error::{MetastoreError, MetastoreResult};
use crate::governance::*;

const THREAD_COLUMNS: &str =
    "id, dataset_id, number, kind, title, author_id, state, locked, created_at, updated_at";

fn thread_from_row(row: &AnyRow) -> MetastoreResult<Thread> {
    let kind: String = get(row, "kind")?;
    let state: String = get(row, "state")?;
    let locked: i64 = get(row, "locked")?;
    Ok(Thread {
        id: ThreadId::parse(&get::<String>(row, "id")?)
            .ok_or_else(|| MetastoreError::Internal("bad thread id".into()))?,
        dataset_id: get(row, "dataset_id")?,
        number: get(row, "number")?,
        kind: ThreadKind::parse(&kind)
            .ok_or_else(|| MetastoreError::Internal(format!("unknown thread kind `{kind}`")))?,
        title: get(row, "title")?,
        author_id: get(row, "author_id")?,
        state: ThreadState::parse(&state)
            .ok_or_else(|| MetastoreError::Internal(format!("unknown thread state `{state}`")))?,
        locked: locked != 0,
        labels: Vec::new(),
        assignees: Vec::new(),
        created_at: get(row, "created_at")?,
        updated_at: get(row, "updated_at")?,
    })
}

const COMMENT_COLUMNS: &str =
    "id, thread_id, parent_id, author_id, body, created_at, edited_at, hidden, deleted";

fn comment_from_row(row: &AnyRow) -> MetastoreResult<Comment> {
    let bad = || MetastoreError::Internal("bad comment id".into());
    let parent: Option<String> = get(row, "parent_id")?;
    Ok(Comment {
        id: CommentId::parse(&get::<String>(row, "id")?).ok_or_else(bad)?,
        thread_id: ThreadId::parse(&get::<String>(row, "thread_id")?).ok_or_else(bad)?,
        parent_id: parent
            .map(|parent| CommentId::parse(&parent).ok_or_else(bad))
            .transpose()?,
        author_id: get(row, "author_id")?,
        body: get(row, "body")?,
        created_at: get(row, "created_at")?,
        edited_at: get(row, "edited_at")?,
        hidden: get::<i64>(row, "hidden")? != 0,
        deleted: get::<i64>(row, "deleted")? != 0,
        reactions: Default::default(),
        mentions: Vec::new(),
    })
}
