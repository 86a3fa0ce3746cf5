//! The contract suite of `DeviceRegistry`, run against SQLite (a temporary file) and PostgreSQL
//! (a fresh database per test on `WEIR_TEST_POSTGRES_URL`).

use std::sync::Arc;

use weir_device_registry::*;
use weir_metastore::{OutboxMessage, OutboxRepository, SqlMetastore};

struct Store {
    registry: Arc<dyn DeviceRegistry>,
    metastore: SqlMetastore,
    _directory: Option<tempfile::TempDir>,
}

async fn sqlite() -> Store {
    let directory = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", directory.path().join("meta.db").display());
    let metastore = SqlMetastore::connect(&url).await.unwrap();
    Store {
        registry: Arc::new(SqlDeviceRegistry::open(&metastore).await.unwrap()),
        metastore,
        _directory: Some(directory),
    }
}

async fn postgres() -> Store {
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
    let base = admin_url.rsplit_once('/').unwrap().0;
    let metastore = SqlMetastore::connect(&format!("{base}/{database}"))
        .await
        .unwrap();
    let registry = SqlDeviceRegistry::open(&metastore).await.unwrap();
    // Opening twice applies nothing twice.
    SqlDeviceRegistry::open(&metastore).await.unwrap();
    Store {
        registry: Arc::new(registry),
        metastore,
        _directory: None,
    }
}

macro_rules! contract_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite_backend {
            $(#[tokio::test] async fn $name() { super::$name(super::sqlite().await).await })*
        }
        mod postgres_backend {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() { super::$name(super::postgres().await).await })*
        }
    };
}

contract_tests!(
    applications_and_versions_have_unique_names,
    endpoints_filter_by_attributes_and_page,
    tokens_resolve_until_revoked_and_revocation_enqueues_its_event,
    deleting_an_application_removes_everything_under_it,
    usage_sums_per_hour_and_day_and_filters,
    quotas_are_set_and_removed,
    last_seen_only_moves_forward,
);

fn application(name: &str) -> Application {
    Application {
        id: ApplicationId::generate(),
        name: name.to_string(),
        account_id: "acc-1".to_string(),
        dataset_id: "did:odf:fed01".to_string(),
        description: Some("lamps".to_string()),
        created_at: 1_000,
    }
}

fn version(application: &Application, name: &str) -> AppVersion {
    AppVersion {
        id: VersionId::generate(),
        application_id: application.id.clone(),
        name: name.to_string(),
        dataset_id: application.dataset_id.clone(),
        event_time_pointer: Some("/ts".to_string()),
        created_at: 1_000,
    }
}

fn endpoint(application: &Application, attributes: &[(&str, &str)]) -> Endpoint {
    Endpoint {
        id: EndpointId::generate(),
        application_id: application.id.clone(),
        attributes: attributes
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        created_at: 1_000,
        last_seen_at: None,
    }
}

fn token(endpoint: &Endpoint) -> DeviceToken {
    DeviceToken {
        id: DeviceTokenId::generate(),
        endpoint_id: endpoint.id.clone(),
        label: Some("factory".to_string()),
        created_at: 2_000,
        revoked_at: None,
    }
}

fn event(name: &str) -> OutboxMessage {
    OutboxMessage {
        event_id: uuid::Uuid::new_v4().to_string(),
        subject: format!("weir.v1.device.{name}.x"),
        payload: "{}".to_string(),
    }
}

async fn applications_and_versions_have_unique_names(store: Store) {
    let registry = &store.registry;
    let lamps = application("lamps");
    registry.create_application(&lamps).await.unwrap();
    let again = registry.create_application(&application("lamps")).await;
    assert!(matches!(again, Err(DeviceError::Conflict(_))), "{again:?}");
    assert_eq!(
        registry.application(&lamps.id).await.unwrap(),
        Some(lamps.clone())
    );
    assert_eq!(
        registry.application_by_name("lamps").await.unwrap(),
        Some(lamps.clone())
    );
    assert_eq!(registry.application_by_name("nope").await.unwrap(), None);
    let v1 = version(&lamps, "lamps-v1");
    registry.create_version(&v1).await.unwrap();
    let clash = registry.create_version(&version(&lamps, "lamps-v1")).await;
    assert!(matches!(clash, Err(DeviceError::Conflict(_))), "{clash:?}");
    registry
        .create_version(&version(&lamps, "lamps-v2"))
        .await
        .unwrap();
    assert_eq!(
        registry.version_by_name("lamps-v1").await.unwrap(),
        Some(v1.clone())
    );
    assert_eq!(registry.versions(&lamps.id).await.unwrap().len(), 2);
    registry.delete_version(&v1.id, &[]).await.unwrap();
    assert_eq!(registry.version_by_name("lamps-v1").await.unwrap(), None);
    assert!(matches!(
        registry.delete_version(&v1.id, &[]).await,
        Err(DeviceError::NotFound(_))
    ));
    assert_eq!(registry.list_applications().await.unwrap(), vec![lamps]);
}

async fn endpoints_filter_by_attributes_and_page(store: Store) {
    let registry = &store.registry;
    let lamps = application("lamps");
    registry.create_application(&lamps).await.unwrap();
    let other = application("other");
    registry.create_application(&other).await.unwrap();
    let mut kitchen = Vec::new();
    for index in 0..5 {
        let floor = if index % 2 == 0 { "1" } else { "2" };
        let created = endpoint(&lamps, &[("room", "kitchen"), ("floor", floor)]);
        registry.create_endpoint(&created).await.unwrap();
        kitchen.push(created);
    }
    registry
        .create_endpoint(&endpoint(&lamps, &[("room", "hall")]))
        .await
        .unwrap();
    registry
        .create_endpoint(&endpoint(&other, &[("room", "kitchen")]))
        .await
        .unwrap();
    let filter = |pairs: &[(&str, &str)]| -> Attributes {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let all = registry
        .list_endpoints(&lamps.id, &Attributes::new(), None, 100)
        .await
        .unwrap();
    assert_eq!(all.len(), 6);
    let in_kitchen = registry
        .list_endpoints(&lamps.id, &filter(&[("room", "kitchen")]), None, 100)
        .await
        .unwrap();
    assert_eq!(in_kitchen.len(), 5);
    let first_floor = registry
        .list_endpoints(
            &lamps.id,
            &filter(&[("room", "kitchen"), ("floor", "1")]),
            None,
            100,
        )
        .await
        .unwrap();
    assert_eq!(first_floor.len(), 3);
    // Pages of two cover all five exactly once, in id order.
    let mut paged = Vec::new();
    let mut after: Option<EndpointId> = None;
    loop {
        let page = registry
            .list_endpoints(
                &lamps.id,
                &filter(&[("room", "kitchen")]),
                after.as_ref(),
                2,
            )
            .await
            .unwrap();
        if page.is_empty() {
            break;
        }
        after = page.last().map(|endpoint| endpoint.id.clone());
        paged.extend(page);
    }
    let mut expected: Vec<EndpointId> = kitchen.iter().map(|e| e.id.clone()).collect();
    expected.sort();
    assert_eq!(
        paged.iter().map(|e| e.id.clone()).collect::<Vec<_>>(),
        expected
    );
    // Attributes change, and the filter follows.
    let moved = &kitchen[0];
    registry
        .set_attributes(&moved.id, &filter(&[("room", "hall")]))
        .await
        .unwrap();
    let in_hall = registry
        .list_endpoints(&lamps.id, &filter(&[("room", "hall")]), None, 100)
        .await
        .unwrap();
    assert_eq!(in_hall.len(), 2);
    assert_eq!(
        registry
            .endpoint(&moved.id)
            .await
            .unwrap()
            .unwrap()
            .attributes,
        filter(&[("room", "hall")])
    );
    assert!(matches!(
        registry
            .set_attributes(&EndpointId::generate(), &Attributes::new())
            .await,
        Err(DeviceError::NotFound(_))
    ));
}

async fn tokens_resolve_until_revoked_and_revocation_enqueues_its_event(store: Store) {
    let registry = &store.registry;
    let lamps = application("lamps");
    registry.create_application(&lamps).await.unwrap();
    let lamp = endpoint(&lamps, &[]);
    registry.create_endpoint(&lamp).await.unwrap();
    let first = token(&lamp);
    let second = token(&lamp);
    registry
        .add_token(&first, &token_hash("first-token-0123456789"))
        .await
        .unwrap();
    registry
        .add_token(&second, &token_hash("second-token-0123456789"))
        .await
        .unwrap();
    let reused = registry
        .add_token(&token(&lamp), &token_hash("first-token-0123456789"))
        .await;
    assert!(
        matches!(reused, Err(DeviceError::Conflict(_))),
        "{reused:?}"
    );
    let (found, application) = registry
        .token_by_hash(&token_hash("first-token-0123456789"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found, first);
    assert_eq!(application, lamps.id);
    assert_eq!(registry.token_by_hash("nope").await.unwrap(), None);

    let before = store.metastore.pending_messages(100).await.unwrap().len();
    let revoked = registry
        .revoke_token(&first.id, 5_000, &[event("token-revoked")])
        .await
        .unwrap();
    assert_eq!(revoked.revoked_at, Some(5_000));
    let pending = store.metastore.pending_messages(100).await.unwrap();
    assert_eq!(pending.len(), before + 1);
    assert!(
        pending
            .last()
            .unwrap()
            .message
            .subject
            .contains("token-revoked")
    );
    // A second revocation keeps the first time.
    let again = registry.revoke_token(&first.id, 9_000, &[]).await.unwrap();
    assert_eq!(again.revoked_at, Some(5_000));
    let (found, _) = registry
        .token_by_hash(&token_hash("first-token-0123456789"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.revoked_at, Some(5_000));
    let tokens = registry.tokens(&lamp.id).await.unwrap();
    assert_eq!(tokens.len(), 2);
    assert!(matches!(
        registry
            .revoke_token(&DeviceTokenId::generate(), 1, &[])
            .await,
        Err(DeviceError::NotFound(_))
    ));
    // Deleting the endpoint removes its tokens.
    registry
        .delete_endpoint(&lamp.id, &[event("endpoint-deleted")])
        .await
        .unwrap();
    assert_eq!(
        registry
            .token_by_hash(&token_hash("second-token-0123456789"))
            .await
            .unwrap(),
        None
    );
    assert!(matches!(
        registry.delete_endpoint(&lamp.id, &[]).await,
        Err(DeviceError::NotFound(_))
    ));
}

async fn deleting_an_application_removes_everything_under_it(store: Store) {
    let registry = &store.registry;
    let lamps = application("lamps");
    registry.create_application(&lamps).await.unwrap();
    registry
        .create_version(&version(&lamps, "lamps-v1"))
        .await
        .unwrap();
    let lamp = endpoint(&lamps, &[("room", "kitchen")]);
    registry.create_endpoint(&lamp).await.unwrap();
    registry
        .add_token(&token(&lamp), &token_hash("lamp-token-0123456789"))
        .await
        .unwrap();
    registry
        .delete_application(&lamps.id, &[event("binding-changed")])
        .await
        .unwrap();
    assert_eq!(registry.application(&lamps.id).await.unwrap(), None);
    assert_eq!(registry.version_by_name("lamps-v1").await.unwrap(), None);
    assert_eq!(registry.endpoint(&lamp.id).await.unwrap(), None);
    assert_eq!(
        registry
            .token_by_hash(&token_hash("lamp-token-0123456789"))
            .await
            .unwrap(),
        None
    );
    // The names are free again.
    registry
        .create_application(&application("lamps"))
        .await
        .unwrap();
}

async fn usage_sums_per_hour_and_day_and_filters(store: Store) {
    let registry = &store.registry;
    let app = ApplicationId::generate();
    let (a, b) = (EndpointId::generate(), EndpointId::generate());
    let delta = |at: i64, endpoint: &EndpointId, account: &str, samples: i64| UsageDelta {
        at,
        account_id: account.to_string(),
        dataset_id: "did:odf:fed01".to_string(),
        application_id: app.clone(),
        endpoint_id: endpoint.clone(),
        counts: Counts {
            messages: 1,
            samples,
            bytes: samples * 10,
            rejections: 0,
        },
    };
    let day = DAY_MILLIS * 100;
    registry
        .record_usage(&[
            delta(day + 10, &a, "acc-1", 3),
            delta(day + 20, &a, "acc-1", 4),
            delta(day + HOUR_MILLIS + 5, &b, "acc-1", 5),
            delta(day + DAY_MILLIS + 1, &a, "acc-2", 100),
        ])
        .await
        .unwrap();
    // Recording again adds (deltas, not totals).
    registry
        .record_usage(&[delta(day + 30, &a, "acc-1", 1)])
        .await
        .unwrap();
    let hourly = registry
        .usage(&UsageFilter {
            account_id: Some("acc-1".to_string()),
            from: day,
            to: day + DAY_MILLIS,
            period: Period::Hour,
            ..UsageFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(hourly.len(), 2);
    assert_eq!(hourly[0].period_start, day);
    assert_eq!(hourly[0].counts.samples, 8);
    assert_eq!(hourly[0].counts.messages, 3);
    assert_eq!(hourly[0].counts.bytes, 80);
    assert_eq!(hourly[1].counts.samples, 5);
    let daily = registry
        .usage(&UsageFilter {
            application_id: Some(app.clone()),
            from: day,
            to: day + 2 * DAY_MILLIS,
            period: Period::Day,
            ..UsageFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(
        daily
            .iter()
            .map(|row| row.counts.samples)
            .collect::<Vec<_>>(),
        vec![13, 100]
    );
    let of_b = registry
        .usage(&UsageFilter {
            endpoint_id: Some(b.clone()),
            from: 0,
            to: i64::MAX,
            period: Period::Day,
            ..UsageFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(of_b.len(), 1);
    assert_eq!(of_b[0].counts.samples, 5);
}

async fn quotas_are_set_and_removed(store: Store) {
    let registry = &store.registry;
    assert_eq!(registry.quota("acc-1").await.unwrap(), None);
    let quota = Quota {
        period: Period::Day,
        max_samples: Some(1000),
        max_bytes: None,
    };
    registry.set_quota("acc-1", Some(&quota)).await.unwrap();
    assert_eq!(registry.quota("acc-1").await.unwrap(), Some(quota));
    let tighter = Quota {
        period: Period::Hour,
        max_samples: None,
        max_bytes: Some(10),
    };
    registry.set_quota("acc-1", Some(&tighter)).await.unwrap();
    assert_eq!(registry.quota("acc-1").await.unwrap(), Some(tighter));
    registry.set_quota("acc-1", None).await.unwrap();
    assert_eq!(registry.quota("acc-1").await.unwrap(), None);
}

async fn last_seen_only_moves_forward(store: Store) {
    let registry = &store.registry;
    let lamps = application("lamps");
    registry.create_application(&lamps).await.unwrap();
    let lamp = endpoint(&lamps, &[]);
    registry.create_endpoint(&lamp).await.unwrap();
    registry
        .mark_seen(&[(lamp.id.clone(), 5_000)])
        .await
        .unwrap();
    registry
        .mark_seen(&[(lamp.id.clone(), 4_000)])
        .await
        .unwrap();
    let seen = registry.endpoint(&lamp.id).await.unwrap().unwrap();
    assert_eq!(seen.last_seen_at, Some(5_000));
}
