//! Writes what search sees of a dataset's documentation: the row, its keywords and its terms.

use std::collections::BTreeSet;

use crate::error::MetastoreResult;
use crate::model::DatasetDocs;
use crate::search::words;

/// Words of one dataset kept in the full-text index at most (the rest are not searchable).
const MAX_TERMS: usize = 5_000;

pub(super) async fn replace_docs(
    transaction: &mut sqlx::Transaction<'_, sqlx::Any>,
    dataset_id: &str,
    docs: &DatasetDocs,
) -> MetastoreResult<()> {
    for table in ["dataset_docs", "dataset_keywords", "dataset_terms"] {
        sqlx::query(&format!("DELETE FROM {table} WHERE dataset_id = $1"))
            .bind(dataset_id)
            .execute(&mut **transaction)
            .await?;
    }
    sqlx::query(
        "INSERT INTO dataset_docs (dataset_id, description, license, readme) \
         VALUES ($1, $2, $3, $4)",
    )
    .bind(dataset_id)
    .bind(&docs.description)
    .bind(&docs.license)
    .bind(&docs.readme)
    .execute(&mut **transaction)
    .await?;
    let keywords: BTreeSet<String> = docs
        .keywords
        .iter()
        .map(|keyword| keyword.to_lowercase())
        .collect();
    for keyword in &keywords {
        sqlx::query("INSERT INTO dataset_keywords (dataset_id, keyword) VALUES ($1, $2)")
            .bind(dataset_id)
            .bind(keyword)
            .execute(&mut **transaction)
            .await?;
    }
    let mut terms = BTreeSet::new();
    for text in docs
        .description
        .iter()
        .chain(docs.readme.iter())
        .chain(docs.keywords.iter())
    {
        terms.extend(words(text));
    }
    for term in terms.iter().take(MAX_TERMS) {
        sqlx::query("INSERT INTO dataset_terms (dataset_id, term) VALUES ($1, $2)")
            .bind(dataset_id)
            .bind(term)
            .execute(&mut **transaction)
            .await?;
    }
    Ok(())
}
