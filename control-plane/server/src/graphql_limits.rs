//! Cost limits of one GraphQL request beyond those async-graphql enforces itself (depth,
//! complexity, parser recursion): how many aliases and fields one document may hold.

use std::sync::Arc;

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextParseQuery};
use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use async_graphql::{ServerError, ServerResult, Variables};

/// The limits every request is held to (documented in docs/operations.md).
pub const MAX_DEPTH: usize = 10;
pub const MAX_COMPLEXITY: usize = 5_000;
pub const MAX_ALIASES: usize = 30;
pub const MAX_FIELDS: usize = 500;
pub const MAX_PARSER_RECURSION: usize = 32;
pub const MAX_DIRECTIVES: usize = 5;
pub const MAX_PAGE: i64 = 1000;
pub const MAX_BODY_BYTES: usize = 256 << 10;
pub const TIMEOUT_SECONDS: u64 = 15;

/// Names the limit in async-graphql's own refusals, which do not.
pub fn explain(message: &str) -> String {
    match message {
        "Query is too complex." => format!(
            "the query is too complex: its estimated cost (each field 1, lists times their page \
             size) is over the limit of {MAX_COMPLEXITY}; ask for smaller pages or fewer fields"
        ),
        "Query is nested too deep." => {
            format!("the query nests selections deeper than the limit of {MAX_DEPTH} levels")
        }
        other => other.to_string(),
    }
}

/// Refuses documents with more aliases or field selections than the limits, once parsed.
pub struct DocumentLimits;

impl ExtensionFactory for DocumentLimits {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(DocumentLimitsExtension)
    }
}

struct DocumentLimitsExtension;

#[async_trait::async_trait]
impl Extension for DocumentLimitsExtension {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let document = next.run(ctx, query, variables).await?;
        let (aliases, fields) = count_selections(&document);
        if aliases > MAX_ALIASES {
            return Err(ServerError::new(
                format!("the query uses {aliases} aliases; the limit is {MAX_ALIASES}"),
                None,
            ));
        }
        if fields > MAX_FIELDS {
            return Err(ServerError::new(
                format!("the query selects {fields} fields; the limit is {MAX_FIELDS}"),
                None,
            ));
        }
        Ok(document)
    }
}

/// Aliases and fields written in the document (operations and fragments), walked without
/// recursion.
fn count_selections(document: &ExecutableDocument) -> (usize, usize) {
    let mut pending: Vec<&SelectionSet> = document
        .operations
        .iter()
        .map(|(_, operation)| &operation.node.selection_set.node)
        .chain(
            document
                .fragments
                .values()
                .map(|fragment| &fragment.node.selection_set.node),
        )
        .collect();
    let (mut aliases, mut fields) = (0, 0);
    while let Some(set) = pending.pop() {
        for selection in &set.items {
            match &selection.node {
                Selection::Field(field) => {
                    fields += 1;
                    aliases += usize::from(field.node.alias.is_some());
                    pending.push(&field.node.selection_set.node);
                }
                Selection::InlineFragment(fragment) => {
                    pending.push(&fragment.node.selection_set.node);
                }
                Selection::FragmentSpread(_) => {}
            }
        }
    }
    (aliases, fields)
}
