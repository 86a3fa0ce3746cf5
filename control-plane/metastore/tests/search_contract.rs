//! Dataset search against both backends: each expression's rows, permissions applied before
//! paging, values bound (an injection attempt is just text), documentation replaced on reindex.

mod common;

use common::Backend;
use weir_metastore::*;

contract_tests!(
    search_expressions_select_the_expected_datasets,
    search_applies_permissions_before_paging,
    search_values_are_bound_never_spliced,
    documentation_is_replaced_not_merged,
    undocumented_datasets_meet_what_the_empty_text_meets,
);

fn account(id: &str, name: &str) -> NewAccount {
    NewAccount {
        account: Account {
            id: id.to_string(),
            name: name.to_string(),
            kind: AccountKind::User,
            display_name: name.to_string(),
            email: None,
            is_admin: false,
            created_at: 1000,
        },
        password_hash: None,
    }
}

struct Doc {
    name: &'static str,
    kind: &'static str,
    public: bool,
    records: i64,
    updated: Option<i64>,
    description: Option<&'static str>,
    keywords: &'static [&'static str],
    license: Option<&'static str>,
    readme: Option<&'static str>,
}

const DAY: i64 = 86_400_000;
/// 2026-11-30T00:00:00Z
const NOV_30: i64 = 1_796_083_200_000;

fn corpus() -> Vec<Doc> {
    vec![
        Doc {
            name: "rain-gauges",
            kind: "root",
            public: true,
            records: 5_000,
            updated: Some(NOV_30 + 3_600_000),
            description: Some("Hourly rainfall from tipping-bucket gauges"),
            keywords: &["Weather", "rain"],
            license: Some("CC0-1.0"),
            readme: Some("# Gauges\nCalibrated yearly. Quizzes in 2026q3."),
        },
        Doc {
            name: "river-levels",
            kind: "root",
            public: true,
            records: 20,
            updated: Some(NOV_30 - 10 * DAY),
            description: Some("River levels at 12 stations"),
            keywords: &["hydrology"],
            license: Some("CC-BY-4.0"),
            readme: None,
        },
        Doc {
            name: "rain-daily",
            kind: "derivative",
            public: true,
            records: 300,
            updated: Some(NOV_30 + DAY),
            description: None,
            keywords: &["weather"],
            license: Some("CC0-1.0"),
            readme: None,
        },
        Doc {
            name: "secret_rain",
            kind: "root",
            public: false,
            records: 1,
            updated: None,
            description: Some("Private gauges"),
            keywords: &["weather"],
            license: None,
            readme: None,
        },
    ]
}

async fn seed(metastore: &SqlMetastore) -> Account {
    let alice = account("acc-alice", "alice");
    metastore.create_account(alice.clone()).await.unwrap();
    for (index, doc) in corpus().iter().enumerate() {
        let id = format!("did:odf:{index}");
        let entry = DatasetEntry {
            id: id.clone(),
            owner_id: alice.account.id.clone(),
            owner_name: alice.account.name.clone(),
            name: doc.name.to_string(),
            kind: doc.kind.to_string(),
            storage_location: format!("file:///data/{index}"),
            visibility: if doc.public {
                Visibility::Public
            } else {
                Visibility::Private
            },
            created_at: 2000,
            head_hash: None,
            head_sequence: None,
        };
        metastore.create_dataset(&entry, &[]).await.unwrap();
        metastore
            .apply_index_update(&IndexUpdate {
                dataset_id: id,
                blocks: Vec::new(),
                statistics: DatasetStatistics {
                    num_records: doc.records,
                    data_size_bytes: doc.records * 10,
                    last_updated: doc.updated,
                    last_watermark: None,
                },
                upstream: None,
                rewritten: false,
                docs: Some(DatasetDocs {
                    description: doc.description.map(str::to_string),
                    keywords: doc.keywords.iter().map(|k| k.to_string()).collect(),
                    license: doc.license.map(str::to_string),
                    readme: doc.readme.map(str::to_string),
                }),
            })
            .await
            .unwrap();
    }
    alice.account
}

async fn search(metastore: &SqlMetastore, expression: &str, scope: ListingScope) -> Vec<String> {
    let filter = DatasetFilter {
        expression: Some(search::parse(expression).unwrap()),
        scope,
        limit: 100,
        ..Default::default()
    };
    metastore
        .list_datasets(&filter)
        .await
        .unwrap_or_else(|error| panic!("{expression}: {error}"))
        .into_iter()
        .map(|entry| entry.name)
        .collect()
}

async fn search_expressions_select_the_expected_datasets(backend: Backend) {
    let metastore = &backend.metastore;
    seed(metastore).await;
    let all = ListingScope::All;
    let cases: &[(&str, &[&str])] = &[
        (
            "keywords = 'weather'",
            &["rain-daily", "rain-gauges", "secret_rain"],
        ),
        (
            "keywords = 'WEATHER' AND visibility = 'public'",
            &["rain-daily", "rain-gauges"],
        ),
        ("keywords != 'weather'", &["river-levels"]),
        ("keywords LIKE 'hydro%'", &["river-levels"]),
        (
            "keywords IN ('rain', 'hydrology')",
            &["rain-gauges", "river-levels"],
        ),
        ("license = 'cc0-1.0'", &["rain-daily", "rain-gauges"]),
        ("license != 'CC0-1.0'", &["river-levels", "secret_rain"]),
        (
            "numRecords > 100 AND numRecords <= 5000",
            &["rain-daily", "rain-gauges"],
        ),
        ("dataSize >= 50000", &["rain-gauges"]),
        ("kind = 'derivative'", &["rain-daily"]),
        (
            "kind NOT IN ('derivative')",
            &["rain-gauges", "river-levels", "secret_rain"],
        ),
        ("name LIKE 'rain%'", &["rain-daily", "rain-gauges"]),
        // `_` is a wildcard in LIKE; `\_` is the character.
        ("name LIKE 'secret\\_%'", &["secret_rain"]),
        ("name NOT LIKE '%rain%'", &["river-levels"]),
        (
            "owner = 'ALICE' AND name = 'river-levels'",
            &["river-levels"],
        ),
        (
            "description LIKE '%gauges%'",
            &["rain-gauges", "secret_rain"],
        ),
        // A dataset without a description is not equal to one.
        (
            "description != 'River levels at 12 stations'",
            &["rain-daily", "rain-gauges", "secret_rain"],
        ),
        (
            "lastUpdated >= '2026-11-30'",
            &["rain-daily", "rain-gauges"],
        ),
        ("lastUpdated < '2026-11-30T00:00:00Z'", &["river-levels"]),
        // AND binds tighter than OR; NOT tighter than AND.
        (
            "kind = 'derivative' OR license = 'CC-BY-4.0' AND numRecords > 100",
            &["rain-daily"],
        ),
        (
            "(kind = 'derivative' OR license = 'CC-BY-4.0') AND numRecords > 10",
            &["rain-daily", "river-levels"],
        ),
        (
            "NOT kind = 'root' AND keywords = 'weather'",
            &["rain-daily"],
        ),
        // Full text: every word, prefixes of indexed words, names too.
        ("'calibrated'", &["rain-gauges"]),
        ("'tipping bucket'", &["rain-gauges"]),
        ("calib", &["rain-gauges"]),
        ("quiz", &["rain-gauges"]),
        ("2026", &["rain-gauges"]),
        ("2026q3 quizzes", &["rain-gauges"]),
        ("quizzesx", &[]),
        ("gauges", &["rain-gauges", "secret_rain"]),
        ("river", &["river-levels"]),
        ("'gauges' AND visibility = 'public'", &["rain-gauges"]),
        ("'nowhere'", &[]),
    ];
    for (expression, expected) in cases {
        assert_eq!(
            search(metastore, expression, all.clone()).await,
            expected.to_vec(),
            "{expression}"
        );
    }
}

async fn search_applies_permissions_before_paging(backend: Backend) {
    let metastore = &backend.metastore;
    seed(metastore).await;
    let bob = account("acc-bob", "bob");
    metastore.create_account(bob.clone()).await.unwrap();
    let expression = "keywords = 'weather'";
    let as_bob = ListingScope::ReadableBy(bob.account.id.clone());
    assert_eq!(
        search(metastore, expression, as_bob.clone()).await,
        vec!["rain-daily", "rain-gauges"]
    );
    assert_eq!(
        search(metastore, expression, ListingScope::PublicOnly).await,
        vec!["rain-daily", "rain-gauges"]
    );
    assert_eq!(
        search(
            metastore,
            expression,
            ListingScope::ReadableBy("acc-alice".into())
        )
        .await,
        vec!["rain-daily", "rain-gauges", "secret_rain"]
    );
    // Pages are exact: one per page, in name order, never the hidden one.
    let mut pages = Vec::new();
    for offset in 0..3 {
        let filter = DatasetFilter {
            expression: Some(search::parse(expression).unwrap()),
            scope: as_bob.clone(),
            limit: 1,
            offset,
            ..Default::default()
        };
        pages.push(
            metastore
                .list_datasets(&filter)
                .await
                .unwrap()
                .into_iter()
                .map(|entry| entry.name)
                .collect::<Vec<_>>(),
        );
    }
    assert_eq!(
        pages,
        vec![
            vec!["rain-daily".to_string()],
            vec!["rain-gauges".to_string()],
            vec![]
        ]
    );
}

async fn search_values_are_bound_never_spliced(backend: Backend) {
    let metastore = &backend.metastore;
    seed(metastore).await;
    for attempt in [
        "name = 'x'' OR ''1''=''1'",
        "name = 'x''; DROP TABLE datasets; --'",
        "description LIKE '%'' OR 1=1 --'",
        "'rain'' OR 1=1 --'",
        "keywords IN ('a'') OR (''1''=''1')",
    ] {
        let names = search(metastore, attempt, ListingScope::All).await;
        assert!(names.is_empty(), "{attempt}: {names:?}");
    }
    assert_eq!(
        search(metastore, "numRecords >= 0", ListingScope::All)
            .await
            .len(),
        4,
        "the table is intact"
    );
}

async fn documentation_is_replaced_not_merged(backend: Backend) {
    let metastore = &backend.metastore;
    seed(metastore).await;
    metastore
        .apply_index_update(&IndexUpdate {
            dataset_id: "did:odf:0".into(),
            blocks: Vec::new(),
            statistics: DatasetStatistics::default(),
            upstream: None,
            rewritten: false,
            docs: Some(DatasetDocs {
                keywords: vec!["snow".into()],
                ..DatasetDocs::default()
            }),
        })
        .await
        .unwrap();
    assert_eq!(
        search(metastore, "keywords = 'snow'", ListingScope::All).await,
        vec!["rain-gauges"]
    );
    assert_eq!(
        search(
            metastore,
            "'calibrated' OR keywords = 'rain'",
            ListingScope::All
        )
        .await,
        Vec::<String>::new()
    );
    // Deleting the dataset takes its documentation along.
    metastore.delete_dataset("did:odf:0", &[]).await.unwrap();
    assert!(
        search(metastore, "keywords = 'snow'", ListingScope::All)
            .await
            .is_empty()
    );
}

async fn undocumented_datasets_meet_what_the_empty_text_meets(backend: Backend) {
    let metastore = &backend.metastore;
    let owner = seed(metastore).await;
    let bare = DatasetEntry {
        id: "did:odf:bare".into(),
        owner_id: owner.id.clone(),
        owner_name: owner.name.clone(),
        name: "bare".into(),
        kind: "root".into(),
        storage_location: "file:///data/bare".into(),
        visibility: Visibility::Public,
        created_at: 2000,
        head_hash: None,
        head_sequence: None,
    };
    metastore.create_dataset(&bare, &[]).await.unwrap();
    let has_bare = |names: Vec<String>| names.iter().any(|name| name == "bare");
    for (expression, expected) in [
        ("license = 'cc0-1.0'", false),
        ("license IN ('cc0-1.0', 'mit')", false),
        ("description LIKE '%gauges%'", false),
        ("license IN ('', 'mit')", true),
        ("description LIKE '%'", true),
        ("description NOT LIKE '%gauges%'", true),
        ("license != 'cc0-1.0'", true),
        ("NOT license = 'cc0-1.0'", true),
        ("description = ''", true),
    ] {
        assert_eq!(
            has_bare(search(metastore, expression, ListingScope::All).await),
            expected,
            "{expression}"
        );
    }
}
