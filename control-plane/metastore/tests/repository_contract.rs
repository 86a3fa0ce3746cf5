//! The one repository contract suite, run against SQLite (a temporary file) and PostgreSQL
//! (a fresh database per test on `WEIR_TEST_POSTGRES_URL`, default 127.0.0.1:5432).

use weir_metastore::*;

mod common;

use common::Backend;

contract_tests!(
    migrations_are_idempotent,
    accounts,
    tokens,
    datasets_registry,
    roles_and_visibility,
    listing_scopes_apply_before_paging,
    metadata_index,
    outbox,
    leases,
);

fn user(id: &str, name: &str) -> NewAccount {
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
        password_hash: Some(format!("hash-of-{name}")),
    }
}

fn dataset(id: &str, owner: &Account, name: &str) -> DatasetEntry {
    DatasetEntry {
        id: id.to_string(),
        owner_id: owner.id.clone(),
        owner_name: owner.name.clone(),
        name: name.to_string(),
        kind: "root".to_string(),
        storage_location: format!("file:///data/{id}"),
        visibility: Visibility::Private,
        created_at: 2000,
        head_hash: None,
        head_sequence: None,
    }
}

fn message(id: &str) -> OutboxMessage {
    OutboxMessage {
        event_id: id.to_string(),
        subject: format!("weir.events.test.{id}"),
        payload: format!("{{\"id\":\"{id}\"}}"),
    }
}

async fn with_owner(metastore: &SqlMetastore) -> Account {
    let alice = user("acc-alice", "Alice");
    metastore.create_account(alice.clone()).await.unwrap();
    alice.account
}

async fn migrations_are_idempotent(backend: Backend) {
    let owner = with_owner(&backend.metastore).await;
    backend.metastore.close().await;
    let reopened = SqlMetastore::connect(&backend.url).await.unwrap();
    assert_eq!(
        reopened.account_by_id(&owner.id).await.unwrap(),
        Some(owner)
    );
}

async fn accounts(backend: Backend) {
    let metastore = &backend.metastore;
    let alice = with_owner(metastore).await;
    assert_eq!(
        metastore.account_by_name("alice").await.unwrap(),
        Some(alice.clone())
    );
    assert_eq!(
        metastore.account_by_name("ALICE").await.unwrap(),
        Some(alice.clone())
    );
    assert_eq!(metastore.account_by_name("bob").await.unwrap(), None);
    let duplicate = metastore.create_account(user("acc-other", "aLiCe")).await;
    assert!(
        matches!(duplicate, Err(MetastoreError::Conflict(_))),
        "{duplicate:?}"
    );
    assert_eq!(
        metastore.password_hash(&alice.id).await.unwrap().as_deref(),
        Some("hash-of-Alice")
    );

    let mut organization = user("acc-org", "acme");
    organization.account.kind = AccountKind::Organization;
    organization.password_hash = None;
    metastore.create_account(organization).await.unwrap();
    assert_eq!(metastore.password_hash("acc-org").await.unwrap(), None);
    metastore.add_member("acc-org", &alice.id).await.unwrap();
    metastore.add_member("acc-org", &alice.id).await.unwrap();
    assert_eq!(
        metastore.organizations_of(&alice.id).await.unwrap(),
        vec!["acc-org"]
    );

    let names: Vec<String> = metastore
        .list_accounts()
        .await
        .unwrap()
        .into_iter()
        .map(|account| account.name)
        .collect();
    assert_eq!(names, vec!["acme", "Alice"]);
}

async fn tokens(backend: Backend) {
    let metastore = &backend.metastore;
    let alice = with_owner(metastore).await;
    let token = AccessToken {
        id: "tok-1".to_string(),
        account_id: alice.id.clone(),
        name: "laptop".to_string(),
        created_at: 5,
        revoked_at: None,
    };
    metastore
        .create_token(token.clone(), "secret-hash")
        .await
        .unwrap();
    assert_eq!(
        metastore.list_tokens(&alice.id).await.unwrap(),
        vec![token.clone()]
    );
    assert_eq!(
        metastore.token_by_id("tok-1").await.unwrap(),
        Some((token.clone(), "secret-hash".to_string()))
    );
    let wrong_owner = metastore.revoke_token("acc-bob", "tok-1", 9, &[]).await;
    assert!(matches!(wrong_owner, Err(MetastoreError::NotFound(_))));
    metastore
        .revoke_token(&alice.id, "tok-1", 9, &[message("revoked")])
        .await
        .unwrap();
    let (revoked, _) = metastore.token_by_id("tok-1").await.unwrap().unwrap();
    assert_eq!(revoked.revoked_at, Some(9));
    let again = metastore
        .revoke_token(&alice.id, "tok-1", 10, &[message("again")])
        .await;
    assert!(matches!(again, Err(MetastoreError::NotFound(_))));
    let pending = metastore.pending_messages(10).await.unwrap();
    assert_eq!(
        pending.len(),
        1,
        "a failed revocation must not enqueue its event"
    );
    assert_eq!(pending[0].message, message("revoked"));
}

async fn datasets_registry(backend: Backend) {
    let metastore = &backend.metastore;
    let alice = with_owner(metastore).await;
    let entry = dataset("did:odf:1", &alice, "sensor_temp");
    metastore
        .create_dataset(&entry, &[message("created")])
        .await
        .unwrap();
    assert_eq!(
        metastore.dataset_by_id("did:odf:1").await.unwrap(),
        Some(entry.clone())
    );
    assert_eq!(
        metastore
            .dataset_by_alias("alice", "SENSOR_TEMP")
            .await
            .unwrap(),
        Some(entry.clone())
    );
    assert_eq!(
        metastore.role_of("did:odf:1", &alice.id).await.unwrap(),
        Some(Role::Owner)
    );

    let clash = metastore
        .create_dataset(
            &dataset("did:odf:2", &alice, "Sensor_Temp"),
            &[message("clash")],
        )
        .await;
    assert!(
        matches!(clash, Err(MetastoreError::Conflict(_))),
        "{clash:?}"
    );
    assert_eq!(metastore.pending_messages(10).await.unwrap().len(), 1);

    metastore
        .create_dataset(&dataset("did:odf:3", &alice, "sensorXtemp"), &[])
        .await
        .unwrap();
    metastore
        .create_dataset(&dataset("did:odf:4", &alice, "weather"), &[])
        .await
        .unwrap();
    let names = |entries: Vec<DatasetEntry>| -> Vec<String> {
        entries.into_iter().map(|entry| entry.name).collect()
    };
    let all = metastore
        .list_datasets(&DatasetFilter::default())
        .await
        .unwrap();
    assert_eq!(names(all), vec!["sensor_temp", "sensorXtemp", "weather"]);
    let search = DatasetFilter {
        search: Some("sensor_".to_string()),
        ..Default::default()
    };
    assert_eq!(
        names(metastore.list_datasets(&search).await.unwrap()),
        vec!["sensor_temp"],
        "`_` in a search is a literal, not a wildcard"
    );
    let page = DatasetFilter {
        owner_name: Some("ALICE".to_string()),
        limit: 1,
        offset: 1,
        ..Default::default()
    };
    assert_eq!(
        names(metastore.list_datasets(&page).await.unwrap()),
        vec!["sensorXtemp"]
    );
    let other_owner = DatasetFilter {
        owner_name: Some("bob".to_string()),
        ..Default::default()
    };
    assert!(
        metastore
            .list_datasets(&other_owner)
            .await
            .unwrap()
            .is_empty()
    );

    let taken = metastore
        .rename_dataset("did:odf:4", "SENSOR_TEMP", &[])
        .await;
    assert!(
        matches!(taken, Err(MetastoreError::Conflict(_))),
        "{taken:?}"
    );
    metastore
        .rename_dataset("did:odf:4", "climate", &[])
        .await
        .unwrap();
    assert_eq!(
        metastore
            .dataset_by_alias("alice", "weather")
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        metastore
            .dataset_by_alias("alice", "climate")
            .await
            .unwrap()
            .unwrap()
            .id,
        "did:odf:4"
    );
    let missing = metastore.rename_dataset("did:odf:404", "x", &[]).await;
    assert!(matches!(missing, Err(MetastoreError::NotFound(_))));

    metastore
        .delete_dataset("did:odf:1", &[message("deleted")])
        .await
        .unwrap();
    assert_eq!(metastore.dataset_by_id("did:odf:1").await.unwrap(), None);
    assert_eq!(
        metastore.role_of("did:odf:1", &alice.id).await.unwrap(),
        None
    );
    let again = metastore.delete_dataset("did:odf:1", &[]).await;
    assert!(matches!(again, Err(MetastoreError::NotFound(_))));

    // Reindex upserts keep the visibility an admin set.
    metastore
        .set_visibility("did:odf:3", Visibility::Public, &[])
        .await
        .unwrap();
    let mut rebuilt = dataset("did:odf:3", &alice, "sensorXtemp");
    rebuilt.storage_location = "s3://bucket/did:odf:3".to_string();
    metastore.upsert_dataset(&rebuilt).await.unwrap();
    let stored = metastore.dataset_by_id("did:odf:3").await.unwrap().unwrap();
    assert_eq!(stored.visibility, Visibility::Public);
    assert_eq!(stored.storage_location, "s3://bucket/did:odf:3");

    // The repair loop registered a new dataset from storage before its creation reached the
    // database: the creation still succeeds, with its own visibility, owner and events.
    let raced = DatasetEntry {
        visibility: Visibility::Public,
        ..dataset("did:odf:4", &alice, "raced")
    };
    metastore
        .upsert_dataset(&dataset("did:odf:4", &alice, "raced"))
        .await
        .unwrap();
    metastore
        .create_dataset(&raced, &[message("created-4")])
        .await
        .unwrap();
    let stored = metastore.dataset_by_id("did:odf:4").await.unwrap().unwrap();
    assert_eq!(stored.visibility, Visibility::Public);
    assert_eq!(
        metastore.role_of("did:odf:4", &alice.id).await.unwrap(),
        Some(Role::Owner)
    );
    let pending = metastore.pending_messages(100).await.unwrap();
    assert!(pending.iter().any(|p| p.message.event_id == "created-4"));
}

async fn roles_and_visibility(backend: Backend) {
    let metastore = &backend.metastore;
    let alice = with_owner(metastore).await;
    metastore
        .create_account(user("acc-bob", "bob"))
        .await
        .unwrap();
    metastore
        .create_dataset(&dataset("did:odf:1", &alice, "d"), &[])
        .await
        .unwrap();
    metastore
        .set_role("did:odf:1", "acc-bob", Some(Role::Reader), &[message("r1")])
        .await
        .unwrap();
    assert_eq!(
        metastore.role_of("did:odf:1", "acc-bob").await.unwrap(),
        Some(Role::Reader)
    );
    metastore
        .set_role("did:odf:1", "acc-bob", Some(Role::Editor), &[])
        .await
        .unwrap();
    assert_eq!(
        metastore.list_roles("did:odf:1").await.unwrap(),
        vec![
            ("acc-alice".to_string(), Role::Owner),
            ("acc-bob".to_string(), Role::Editor)
        ]
    );
    metastore
        .set_role("did:odf:1", "acc-bob", None, &[])
        .await
        .unwrap();
    assert_eq!(
        metastore.role_of("did:odf:1", "acc-bob").await.unwrap(),
        None
    );
    assert!(Role::Owner > Role::Maintainer && Role::Editor > Role::Reader);

    metastore
        .set_visibility("did:odf:1", Visibility::Public, &[message("v")])
        .await
        .unwrap();
    let entry = metastore.dataset_by_id("did:odf:1").await.unwrap().unwrap();
    assert_eq!(entry.visibility, Visibility::Public);
    let missing = metastore
        .set_visibility("did:odf:9", Visibility::Public, &[])
        .await;
    assert!(matches!(missing, Err(MetastoreError::NotFound(_))));
    assert_eq!(metastore.pending_messages(10).await.unwrap().len(), 2);
}

async fn listing_scopes_apply_before_paging(backend: Backend) {
    let metastore = &backend.metastore;
    let alice = with_owner(metastore).await;
    for (id, name) in [("acc-bob", "bob"), ("acc-carol", "carol")] {
        metastore.create_account(user(id, name)).await.unwrap();
    }
    let mut organization = user("acc-lab", "lab");
    organization.account.kind = AccountKind::Organization;
    organization.password_hash = None;
    metastore
        .create_account(organization.clone())
        .await
        .unwrap();
    metastore.add_member("acc-lab", "acc-carol").await.unwrap();
    // Alice owns a..f: b and e public, d shared with bob; the lab owns g.
    for name in ["a", "b", "c", "d", "e", "f"] {
        let id = format!("did:odf:{name}");
        metastore
            .create_dataset(&dataset(&id, &alice, name), &[])
            .await
            .unwrap();
    }
    for id in ["did:odf:b", "did:odf:e"] {
        metastore
            .set_visibility(id, Visibility::Public, &[])
            .await
            .unwrap();
    }
    metastore
        .set_role("did:odf:d", "acc-bob", Some(Role::Reader), &[])
        .await
        .unwrap();
    metastore
        .create_dataset(&dataset("did:odf:g", &organization.account, "g"), &[])
        .await
        .unwrap();

    let list = |scope: ListingScope, limit: i64, offset: i64| {
        let filter = DatasetFilter {
            scope,
            limit,
            offset,
            ..Default::default()
        };
        async move {
            metastore
                .list_datasets(&filter)
                .await
                .unwrap()
                .into_iter()
                .map(|entry| entry.name)
                .collect::<Vec<_>>()
        }
    };
    let bob = || ListingScope::ReadableBy("acc-bob".to_string());
    assert_eq!(list(ListingScope::All, 100, 0).await.len(), 7);
    assert_eq!(list(ListingScope::PublicOnly, 100, 0).await, ["b", "e"]);
    assert_eq!(list(bob(), 100, 0).await, ["b", "d", "e"]);
    // Pages are cut from the readable datasets, not from all of them.
    assert_eq!(list(bob(), 2, 0).await, ["b", "d"]);
    assert_eq!(list(bob(), 2, 2).await, ["e"]);
    assert_eq!(list(ListingScope::PublicOnly, 1, 1).await, ["e"]);
    let carol = ListingScope::ReadableBy("acc-carol".to_string());
    assert_eq!(list(carol, 100, 0).await, ["b", "e", "g"]);
    let owner = ListingScope::ReadableBy("acc-alice".to_string());
    assert_eq!(list(owner, 100, 0).await, ["a", "b", "c", "d", "e", "f"]);
}

fn block(sequence_number: i64, event_type: &str) -> BlockEntry {
    BlockEntry {
        sequence_number,
        block_hash: format!("hash-{sequence_number}"),
        prev_block_hash: (sequence_number > 0).then(|| format!("hash-{}", sequence_number - 1)),
        system_time: 100 + sequence_number,
        event_type: event_type.to_string(),
        key_fields: serde_json::json!({ "n": sequence_number }),
    }
}

async fn metadata_index(backend: Backend) {
    let metastore = &backend.metastore;
    let alice = with_owner(metastore).await;
    metastore
        .create_dataset(&dataset("did:odf:up", &alice, "up"), &[])
        .await
        .unwrap();
    metastore
        .create_dataset(&dataset("did:odf:down", &alice, "down"), &[])
        .await
        .unwrap();
    let statistics = DatasetStatistics {
        num_records: 10,
        data_size_bytes: 2048,
        last_updated: Some(103),
        last_watermark: Some(99),
    };
    let update = IndexUpdate {
        dataset_id: "did:odf:up".to_string(),
        blocks: vec![
            block(0, "Seed"),
            block(1, "SetDataSchema"),
            block(2, "AddData"),
            block(3, "AddData"),
        ],
        statistics: statistics.clone(),
        upstream: None,
        rewritten: false,
        docs: None,
    };
    metastore.apply_index_update(&update).await.unwrap();
    metastore.apply_index_update(&update).await.unwrap();
    let entry = metastore
        .dataset_by_id("did:odf:up")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(entry.head_hash.as_deref(), Some("hash-3"));
    assert_eq!(entry.head_sequence, Some(3));

    // A late, older update never moves the head back.
    let stale = IndexUpdate {
        blocks: vec![block(1, "SetDataSchema")],
        ..update.clone()
    };
    metastore.apply_index_update(&stale).await.unwrap();
    let entry = metastore
        .dataset_by_id("did:odf:up")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(entry.head_sequence, Some(3));

    let newest = metastore.blocks("did:odf:up", None, 2).await.unwrap();
    assert_eq!(newest, vec![block(3, "AddData"), block(2, "AddData")]);
    let older = metastore.blocks("did:odf:up", Some(2), 10).await.unwrap();
    assert_eq!(older, vec![block(1, "SetDataSchema"), block(0, "Seed")]);
    assert_eq!(
        metastore
            .block_by_hash("did:odf:up", "hash-2")
            .await
            .unwrap(),
        Some(block(2, "AddData"))
    );
    assert_eq!(
        metastore
            .block_by_hash("did:odf:down", "hash-2")
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        metastore
            .last_block_of_type("did:odf:up", "AddData")
            .await
            .unwrap(),
        Some(block(3, "AddData"))
    );
    assert_eq!(
        metastore.statistics("did:odf:up").await.unwrap(),
        Some(statistics)
    );

    let lineage = IndexUpdate {
        dataset_id: "did:odf:down".to_string(),
        blocks: vec![block(0, "Seed"), block(1, "SetTransform")],
        statistics: DatasetStatistics::default(),
        upstream: Some(vec!["did:odf:up".to_string(), "did:odf:gone".to_string()]),
        rewritten: false,
        docs: None,
    };
    metastore.apply_index_update(&lineage).await.unwrap();
    assert_eq!(
        metastore.upstream("did:odf:down").await.unwrap(),
        vec!["did:odf:gone", "did:odf:up"]
    );
    assert_eq!(
        metastore.downstream("did:odf:up").await.unwrap(),
        vec!["did:odf:down"]
    );
    let narrowed = IndexUpdate {
        blocks: vec![block(2, "SetTransform")],
        upstream: Some(vec!["did:odf:up".to_string()]),
        ..lineage
    };
    metastore.apply_index_update(&narrowed).await.unwrap();
    assert_eq!(
        metastore.upstream("did:odf:down").await.unwrap(),
        vec!["did:odf:up"]
    );

    // A reset chain replaces the index: the head moves back, later blocks are gone.
    let reset = IndexUpdate {
        blocks: vec![block(0, "Seed"), block(1, "SetDataSchema")],
        statistics: DatasetStatistics::default(),
        rewritten: true,
        ..update.clone()
    };
    metastore.apply_index_update(&reset).await.unwrap();
    let entry = metastore
        .dataset_by_id("did:odf:up")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(entry.head_sequence, Some(1));
    assert_eq!(
        metastore.blocks("did:odf:up", None, 10).await.unwrap(),
        vec![block(1, "SetDataSchema"), block(0, "Seed")]
    );
    assert_eq!(
        metastore.statistics("did:odf:up").await.unwrap(),
        Some(DatasetStatistics::default())
    );
    metastore.apply_index_update(&update).await.unwrap();

    let unknown = IndexUpdate {
        dataset_id: "did:odf:unknown".to_string(),
        ..update
    };
    let result = metastore.apply_index_update(&unknown).await;
    assert!(
        result.is_err(),
        "indexing an unregistered dataset must fail"
    );
    metastore.delete_dataset("did:odf:up", &[]).await.unwrap();
    assert!(
        metastore
            .blocks("did:odf:up", None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(metastore.statistics("did:odf:up").await.unwrap(), None);
}

async fn outbox(backend: Backend) {
    let metastore = &backend.metastore;
    metastore
        .enqueue(&[message("a"), message("b"), message("c")])
        .await
        .unwrap();
    let pending = metastore.pending_messages(2).await.unwrap();
    let ids: Vec<&str> = pending
        .iter()
        .map(|p| p.message.event_id.as_str())
        .collect();
    assert_eq!(ids, vec!["a", "b"]);
    metastore
        .mark_published(&[pending[0].seq], 77)
        .await
        .unwrap();
    let ids: Vec<String> = metastore
        .pending_messages(10)
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.message.event_id)
        .collect();
    assert_eq!(ids, vec!["b", "c"]);
    let duplicate = metastore.enqueue(&[message("d"), message("a")]).await;
    assert!(duplicate.is_err(), "event ids are unique");
    assert_eq!(
        metastore.pending_messages(10).await.unwrap().len(),
        2,
        "all or nothing"
    );
}

async fn leases(backend: Backend) {
    let metastore = &backend.metastore;
    assert!(
        metastore
            .try_acquire_lease("relay", "a", 1000, 500)
            .await
            .unwrap()
    );
    assert!(
        !metastore
            .try_acquire_lease("relay", "b", 1200, 500)
            .await
            .unwrap()
    );
    assert!(
        metastore
            .try_acquire_lease("relay", "a", 1400, 500)
            .await
            .unwrap()
    );
    assert!(
        !metastore
            .try_acquire_lease("relay", "b", 1800, 500)
            .await
            .unwrap()
    );
    assert!(
        metastore
            .try_acquire_lease("relay", "b", 1901, 500)
            .await
            .unwrap(),
        "expired"
    );
    assert!(
        !metastore
            .try_acquire_lease("relay", "a", 1950, 500)
            .await
            .unwrap()
    );
    assert!(
        metastore
            .try_acquire_lease("other", "a", 1950, 500)
            .await
            .unwrap()
    );
    metastore.release_lease("relay", "a").await.unwrap();
    assert!(
        !metastore
            .try_acquire_lease("relay", "a", 1960, 500)
            .await
            .unwrap()
    );
    metastore.release_lease("relay", "b").await.unwrap();
    assert!(
        metastore
            .try_acquire_lease("relay", "a", 1970, 500)
            .await
            .unwrap()
    );
}
