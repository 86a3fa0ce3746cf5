//! The webhook store on both backends (SQLite in a temporary file, PostgreSQL in a fresh
//! database): subscriptions by dataset and account, matching, deliveries kept once per event,
//! success resetting the failure count, disabling after N failures with its reason, history.

use weir_metastore::SqlMetastore;
use weir_webhooks::*;

async fn sqlite() -> (SqlWebhooks, tempfile::TempDir) {
    let directory = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", directory.path().join("meta.db").display());
    let metastore = SqlMetastore::connect(&url).await.unwrap();
    (SqlWebhooks::open(&metastore).await.unwrap(), directory)
}

async fn postgres() -> (SqlWebhooks, ()) {
    use sqlx::Connection;
    let admin_url = std::env::var("WEIR_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string());
    sqlx::any::install_default_drivers();
    let mut admin = sqlx::AnyConnection::connect(&admin_url)
        .await
        .expect("postgresql must run for the contract suite (see local/test)");
    let database = format!("weir_test_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(&format!("CREATE DATABASE {database}"))
        .execute(&mut admin)
        .await
        .unwrap();
    let url = format!("{}/{database}", admin_url.rsplit_once('/').unwrap().0);
    let metastore = SqlMetastore::connect(&url).await.unwrap();
    (SqlWebhooks::open(&metastore).await.unwrap(), ())
}

#[tokio::test]
async fn contract_on_sqlite() {
    let (store, _dir) = sqlite().await;
    contract(&store).await;
}

#[tokio::test]
async fn contract_on_postgres() {
    let (store, ()) = postgres().await;
    contract(&store).await;
}

fn subscription(
    id: &str,
    dataset: Option<&str>,
    account: Option<&str>,
    events: &[EventType],
) -> Subscription {
    Subscription {
        id: WebhookId::generate(id),
        owner_id: "acc-owner".into(),
        dataset_id: dataset.map(str::to_string),
        account_id: account.map(str::to_string),
        url: "https://example.com/hook".into(),
        events: events.to_vec(),
        status: SubscriptionStatus::Active,
        disabled_reason: None,
        consecutive_failures: 0,
        created_at: 1,
    }
}

fn delivery(n: usize, subscription: &Subscription, event_id: &str) -> Delivery {
    Delivery {
        id: DeliveryId::generate(&format!("d{n}")),
        subscription_id: subscription.id.clone(),
        event_id: event_id.into(),
        event_type: EventType::DatasetRefUpdated,
        dataset_id: "did:odf:a".into(),
        payload: format!("{{\"n\":{n}}}"),
        status: DeliveryStatus::Pending,
        attempts: 0,
        last_status: None,
        last_error: None,
        created_at: n as i64,
        delivered_at: None,
    }
}

async fn contract(store: &SqlWebhooks) {
    let on_dataset = subscription(
        "ds",
        Some("did:odf:a"),
        None,
        &[EventType::DatasetRefUpdated],
    );
    let on_account = subscription(
        "acct",
        None,
        Some("acc-owner"),
        &[EventType::DatasetRefUpdated, EventType::IssueOpened],
    );
    let elsewhere = subscription(
        "other",
        Some("did:odf:b"),
        None,
        &[EventType::DatasetRefUpdated],
    );
    for s in [&on_dataset, &on_account, &elsewhere] {
        store.create(s, "whsec_test").await.unwrap();
    }
    assert_eq!(
        store.get(&on_dataset.id).await.unwrap().unwrap(),
        on_dataset
    );
    assert_eq!(
        store.secret(&on_dataset.id).await.unwrap().as_deref(),
        Some("whsec_test")
    );
    let matching = store
        .matching("did:odf:a", "acc-owner", EventType::DatasetRefUpdated)
        .await
        .unwrap();
    assert_eq!(matching.len(), 2);
    let issues = store
        .matching("did:odf:a", "acc-owner", EventType::IssueOpened)
        .await
        .unwrap();
    assert_eq!(issues, vec![on_account.clone()]);
    assert!(
        store
            .matching("did:odf:a", "acc-someone", EventType::IssueOpened)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store.list(Some("did:odf:a"), None).await.unwrap(),
        vec![on_dataset.clone()]
    );

    // One delivery per subscription and event, however often the event comes.
    let first = delivery(1, &on_dataset, "evt-1");
    assert_eq!(
        store
            .enqueue(&[first.clone(), delivery(2, &on_dataset, "evt-1")])
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .enqueue(&[
                delivery(3, &on_dataset, "evt-2"),
                delivery(4, &on_account, "evt-2")
            ])
            .await
            .unwrap(),
        2
    );
    let pending = store.pending("did:odf:a", 10).await.unwrap();
    assert_eq!(
        pending
            .iter()
            .map(|d| d.payload.as_str())
            .collect::<Vec<_>>(),
        vec![r#"{"n":1}"#, r#"{"n":3}"#, r#"{"n":4}"#]
    );

    // Failures count up; a success resets them.
    assert!(
        !store
            .record_failure(&first.id, Some(500), "HTTP 500", 3)
            .await
            .unwrap()
    );
    assert!(
        !store
            .record_failure(&first.id, None, "timeout", 3)
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .get(&on_dataset.id)
            .await
            .unwrap()
            .unwrap()
            .consecutive_failures,
        2
    );
    store.record_success(&first.id, 204, 99).await.unwrap();
    assert_eq!(
        store
            .get(&on_dataset.id)
            .await
            .unwrap()
            .unwrap()
            .consecutive_failures,
        0
    );
    let history = store.deliveries(&on_dataset.id, 10).await.unwrap();
    let done = history.iter().find(|d| d.id == first.id).unwrap();
    assert_eq!(
        (
            done.status,
            done.attempts,
            done.last_status,
            done.delivered_at
        ),
        (DeliveryStatus::Succeeded, 3, Some(204), Some(99))
    );

    // N consecutive failures disable the subscription with its reason; its pending deliveries
    // are skipped, the other subscription's stay.
    let second = &pending[1];
    for n in 1..=3 {
        let disabled = store
            .record_failure(&second.id, Some(503), "HTTP 503", 3)
            .await
            .unwrap();
        assert_eq!(disabled, n == 3);
    }
    let disabled = store.get(&on_dataset.id).await.unwrap().unwrap();
    assert_eq!(disabled.status, SubscriptionStatus::Disabled);
    assert!(
        disabled
            .disabled_reason
            .as_deref()
            .unwrap()
            .contains("3 consecutive"),
        "{disabled:?}"
    );
    assert_eq!(store.pending("did:odf:a", 10).await.unwrap().len(), 1);
    assert_eq!(
        store
            .matching("did:odf:a", "acc-owner", EventType::DatasetRefUpdated)
            .await
            .unwrap()
            .len(),
        1
    );
    let enabled = store.enable(&on_dataset.id).await.unwrap();
    assert_eq!(
        (
            enabled.status,
            enabled.consecutive_failures,
            enabled.disabled_reason
        ),
        (SubscriptionStatus::Active, 0, None)
    );

    store.delete(&on_dataset.id).await.unwrap();
    assert!(store.get(&on_dataset.id).await.unwrap().is_none());
    assert!(matches!(
        store.delete(&on_dataset.id).await,
        Err(WebhookError::NotFound(_))
    ));
}
