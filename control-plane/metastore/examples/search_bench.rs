//! Dataset search benchmark (tests/bench/search.sh): registers DATASETS datasets (default
//! 100,000: 100 owners, 70% public, documentation with descriptions, keywords and licenses) in
//! a fresh PostgreSQL database through the metastore's own schema, then runs three typical
//! search expressions through `list_datasets` as one account (permissions applied, first page
//! of 50) and, in the same run, the floor: the registry's plain `LIKE` substring listing over
//! the same table. Prints one JSON line with p50/p99 per query. Not part of the test suite.

use std::time::{Duration, Instant};

use sqlx::Connection;
use weir_metastore::{DatasetFilter, DatasetRepository, ListingScope, SqlMetastore, search};

const SEED: &str = "
INSERT INTO accounts (id, name, name_key, kind, display_name, created_at)
  SELECT 'acc-' || g, 'user' || g, 'user' || g, 'user', 'user' || g, 0 FROM generate_series(0, 99) g;
INSERT INTO datasets (id, owner_id, owner_name, name, alias_key, kind, storage_location, visibility, created_at)
  SELECT 'did:odf:' || g, 'acc-' || (g % 100), 'user' || (g % 100), 'dataset-' || g,
         'user' || (g % 100) || '/dataset-' || g,
         CASE WHEN g % 5 = 0 THEN 'derivative' ELSE 'root' END, 'file:///bench',
         CASE WHEN g % 10 < 7 THEN 'public' ELSE 'private' END, 0
  FROM generate_series(0::bigint, $N - 1) g;
INSERT INTO dataset_statistics (dataset_id, num_records, data_size_bytes, last_updated, last_watermark)
  SELECT 'did:odf:' || g, (g * 7919) % 1000000, (g * 104729) % 100000000,
         1796083200000 - (g % 365) * 86400000, NULL
  FROM generate_series(0::bigint, $N - 1) g;
INSERT INTO dataset_docs (dataset_id, description, license, readme)
  SELECT 'did:odf:' || g,
         (ARRAY['hourly','daily','monthly','yearly','raw','cleaned','aggregated'])[1 + g % 7] || ' ' ||
         (ARRAY['rain','river','air','soil','snow','wind','traffic','energy','water','noise','crop','forest'])[1 + (g / 7) % 12] || ' ' ||
         (ARRAY['gauge','sensor','station','survey','model','satellite','meter','counter'])[1 + (g / 84) % 8] || ' readings ' || g,
         (ARRAY['CC0-1.0','CC-BY-4.0','MIT','ODbL-1.0','CC-BY-SA-4.0','OGL-ON'])[1 + g % 6],
         NULL
  FROM generate_series(0::bigint, $N - 1) g;
INSERT INTO dataset_keywords (dataset_id, keyword)
  SELECT DISTINCT 'did:odf:' || g, k FROM generate_series(0::bigint, $N - 1) g,
    LATERAL unnest(ARRAY[
      (ARRAY['weather','hydrology','climate','mobility','energy','agriculture','health','urban','ocean','geology'])[1 + g % 10],
      (ARRAY['open','realtime','historical','official','community'])[1 + (g / 10) % 5]]) k;
INSERT INTO dataset_terms (dataset_id, term)
  SELECT DISTINCT d.dataset_id, w FROM dataset_docs d, LATERAL unnest(string_to_array(lower(d.description), ' ')) w
  UNION SELECT dataset_id, keyword FROM dataset_keywords;
ANALYZE;
";

fn percentile(samples: &mut [Duration], p: f64) -> f64 {
    samples.sort();
    let index = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples[index].as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let datasets: i64 = args.get(1).map_or(100_000, |n| n.parse().unwrap());
    let runs: usize = args.get(2).map_or(200, |n| n.parse().unwrap());
    let admin_url = std::env::var("WEIR_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string());
    sqlx::any::install_default_drivers();
    let mut admin = sqlx::AnyConnection::connect(&admin_url).await.unwrap();
    let database = format!("weir_search_bench_{}", std::process::id());
    sqlx::query(&format!("CREATE DATABASE {database}"))
        .execute(&mut admin)
        .await
        .unwrap();
    let url = format!("{}/{database}", admin_url.rsplit_once('/').unwrap().0);
    let metastore = SqlMetastore::connect(&url).await.unwrap();
    let started = Instant::now();
    for statement in SEED.split(";\n").filter(|s| !s.trim().is_empty()) {
        sqlx::query(&statement.replace("$N", &datasets.to_string()))
            .execute(metastore.pool())
            .await
            .unwrap();
    }
    let seeded = started.elapsed();
    let scope = ListingScope::ReadableBy("acc-7".to_string());
    let queries: Vec<(&str, DatasetFilter)> = vec![
        ("keywords = 'hydrology' AND license = 'CC-BY-4.0'", None),
        (
            "numRecords > 500000 AND lastUpdated >= '2026-06-01' AND kind = 'root'",
            None,
        ),
        ("'river gauge'", None),
        (
            "floor: LIKE '%dataset-4242%' (registry substring)",
            Some("dataset-4242"),
        ),
    ]
    .into_iter()
    .map(|(label, substring): (&str, Option<&str>)| {
        let filter = DatasetFilter {
            expression: substring.is_none().then(|| search::parse(label).unwrap()),
            search: substring.map(str::to_string),
            scope: scope.clone(),
            limit: 50,
            ..Default::default()
        };
        (label, filter)
    })
    .collect();
    let mut results = Vec::new();
    for (label, filter) in &queries {
        let found = metastore.list_datasets(filter).await.unwrap().len();
        let mut samples = Vec::with_capacity(runs);
        for _ in 0..runs {
            let start = Instant::now();
            metastore.list_datasets(filter).await.unwrap();
            samples.push(start.elapsed());
        }
        results.push(serde_json::json!({
            "query": label,
            "rows_on_page": found,
            "p50_ms": (percentile(&mut samples, 0.5) * 100.0).round() / 100.0,
            "p99_ms": (percentile(&mut samples, 0.99) * 100.0).round() / 100.0,
        }));
    }
    println!(
        "{}",
        serde_json::json!({
            "datasets": datasets,
            "runs_per_query": runs,
            "seed_seconds": seeded.as_secs_f64().round(),
            "queries": results,
        })
    );
    metastore.close().await;
    if std::env::var("WEIR_BENCH_KEEP").is_ok() {
        eprintln!("kept database {database}");
        return;
    }
    sqlx::query(&format!("DROP DATABASE {database} WITH (FORCE)"))
        .execute(&mut admin)
        .await
        .unwrap();
}
