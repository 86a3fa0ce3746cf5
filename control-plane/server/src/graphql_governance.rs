//! Issues and discussions in GraphQL, over the same `GovernanceApi` as REST and in its JSON
//! shapes: `datasetThreads` and `datasetThread` queries; `openThread`, `changeThread`,
//! `addComment`, `changeComment`, `deleteComment` and `react` mutations.

use std::sync::Arc;

use async_graphql::{Context, Json, Object};
use serde_json::Value;
use weir_function_runtime::Caller;
use weir_metastore::governance::{ThreadFilter, ThreadKind, ThreadState};

use crate::error::ServiceError;
use crate::node::ControlPlane;
use crate::services::governance::{
    CommentChange, GovernanceApi, NewCommentRequest, NewThreadRequest, ThreadChange,
};

fn parts(context: &Context<'_>) -> (GovernanceApi, Caller) {
    (
        context
            .data_unchecked::<Arc<ControlPlane>>()
            .governance_api(),
        context.data_unchecked::<Caller>().clone(),
    )
}

fn to_graphql(error: ServiceError) -> async_graphql::Error {
    async_graphql::Error::new(error.to_string())
}

fn json(value: impl serde::Serialize) -> Json<Value> {
    Json(serde_json::to_value(value).unwrap_or_default())
}

fn kind(text: &str) -> async_graphql::Result<ThreadKind> {
    ThreadKind::parse(text).ok_or_else(|| {
        async_graphql::Error::new(format!("kind: `{text}` is not `issue` or `discussion`"))
    })
}

fn state(text: Option<String>) -> async_graphql::Result<Option<ThreadState>> {
    text.map(|text| {
        ThreadState::parse(&text).ok_or_else(|| {
            async_graphql::Error::new(format!("state: `{text}` is not `open` or `closed`"))
        })
    })
    .transpose()
}

#[derive(Default)]
pub struct GovernanceQuery;

#[Object]
impl GovernanceQuery {
    /// Issues or discussions of a dataset, newest first (`kind`: `issue` or `discussion`).
    #[allow(clippy::too_many_arguments)]
    async fn dataset_threads(
        &self,
        context: &Context<'_>,
        account: String,
        name: String,
        kind: String,
        state: Option<String>,
        label: Option<String>,
        before: Option<i64>,
        #[graphql(default = 50)] limit: i64,
    ) -> async_graphql::Result<Json<Value>> {
        let (api, caller) = parts(context);
        let filter = ThreadFilter {
            kind: Some(self::kind(&kind)?),
            state: self::state(state)?,
            label,
            before_number: before,
            limit,
        };
        Ok(json(
            api.list_threads(&caller, (&account, &name), filter)
                .await
                .map_err(to_graphql)?,
        ))
    }

    /// One thread with its comments.
    async fn dataset_thread(
        &self,
        context: &Context<'_>,
        account: String,
        name: String,
        number: i64,
    ) -> async_graphql::Result<Json<Value>> {
        let (api, caller) = parts(context);
        Ok(json(
            api.thread(&caller, (&account, &name), number)
                .await
                .map_err(to_graphql)?,
        ))
    }
}

#[derive(Default)]
pub struct GovernanceMutation;

#[Object]
impl GovernanceMutation {
    /// Opens an issue or discussion; labels and assignees (account names) are for maintainers.
    #[allow(clippy::too_many_arguments)]
    async fn open_thread(
        &self,
        context: &Context<'_>,
        account: String,
        name: String,
        kind: String,
        title: String,
        body: String,
        #[graphql(default)] labels: Vec<String>,
        #[graphql(default)] assignees: Vec<String>,
    ) -> async_graphql::Result<Json<Value>> {
        let (api, caller) = parts(context);
        let request = NewThreadRequest {
            title,
            body,
            labels,
            assignees,
        };
        Ok(json(
            api.open_thread(&caller, (&account, &name), self::kind(&kind)?, request)
                .await
                .map_err(to_graphql)?,
        ))
    }

    /// Changes a thread's title or state (author or maintainer), lock, labels or assignees
    /// (maintainers).
    #[allow(clippy::too_many_arguments)]
    async fn change_thread(
        &self,
        context: &Context<'_>,
        account: String,
        name: String,
        number: i64,
        title: Option<String>,
        state: Option<String>,
        locked: Option<bool>,
        labels: Option<Vec<String>>,
        assignees: Option<Vec<String>>,
    ) -> async_graphql::Result<Json<Value>> {
        let (api, caller) = parts(context);
        let change = ThreadChange {
            title,
            state: self::state(state)?,
            locked,
            labels,
            assignees,
        };
        Ok(json(
            api.change_thread(&caller, (&account, &name), number, change)
                .await
                .map_err(to_graphql)?,
        ))
    }

    /// Comments on a thread, optionally answering `parentId`.
    async fn add_comment(
        &self,
        context: &Context<'_>,
        account: String,
        name: String,
        number: i64,
        body: String,
        parent_id: Option<String>,
    ) -> async_graphql::Result<Json<Value>> {
        let (api, caller) = parts(context);
        let request = NewCommentRequest { body, parent_id };
        Ok(json(
            api.add_comment(&caller, (&account, &name), number, request)
                .await
                .map_err(to_graphql)?,
        ))
    }

    /// Edits a comment (its author) or hides it (maintainers).
    async fn change_comment(
        &self,
        context: &Context<'_>,
        account: String,
        name: String,
        comment_id: String,
        body: Option<String>,
        hidden: Option<bool>,
    ) -> async_graphql::Result<Json<Value>> {
        let (api, caller) = parts(context);
        Ok(json(
            api.change_comment(
                &caller,
                (&account, &name),
                &comment_id,
                CommentChange { body, hidden },
            )
            .await
            .map_err(to_graphql)?,
        ))
    }

    /// Deletes a comment (its author or a maintainer).
    async fn delete_comment(
        &self,
        context: &Context<'_>,
        account: String,
        name: String,
        comment_id: String,
    ) -> async_graphql::Result<bool> {
        let (api, caller) = parts(context);
        api.delete_comment(&caller, (&account, &name), &comment_id)
            .await
            .map_err(to_graphql)?;
        Ok(true)
    }

    /// Adds (`on: true`) or removes the caller's reaction.
    async fn react(
        &self,
        context: &Context<'_>,
        account: String,
        name: String,
        comment_id: String,
        reaction: String,
        on: bool,
    ) -> async_graphql::Result<Json<Value>> {
        let (api, caller) = parts(context);
        Ok(json(
            api.react(&caller, (&account, &name), &comment_id, &reaction, on)
                .await
                .map_err(to_graphql)?,
        ))
    }
}
