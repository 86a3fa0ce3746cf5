//! The flow tasks of root datasets. Polling ingest against real sources: an HTTP server on
//! loopback (ETag, Last-Modified, 304, 5xx then recovery, redirects), files on disk, and a real
//! S3 API (moto, `WEIR_TEST_S3_ENDPOINT`, started by `./local/test`); each poll runs through the
//! same read, merge and commit steps as a push, and the source's progress is the chain's
//! `newSourceState`. Compaction: small slices merged, every record kept as it was.

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use common::Harness;
use weir_dataset::polling::{PollingPolicy, S3Access};
use weir_ingest::polling::{PollError, Poller};
use weir_odf::MetadataEvent;

#[derive(Default)]
struct Source {
    body: String,
    etag: Option<String>,
    last_modified: Option<String>,
    /// Answers with this status this many times before answering normally.
    failures: Vec<u16>,
    /// Redirects every request here when set.
    redirect: Option<String>,
    /// Conditional headers seen, in order.
    seen: Vec<(Option<String>, Option<String>)>,
}

type Shared = Arc<Mutex<Source>>;

async fn serve(State(source): State<Shared>, headers: HeaderMap) -> Response {
    let mut source = source.lock().unwrap();
    let text = |name| {
        headers
            .get(name)
            .and_then(|value: &header::HeaderValue| value.to_str().ok())
            .map(str::to_string)
    };
    let if_none_match = text(header::IF_NONE_MATCH);
    let if_modified_since = text(header::IF_MODIFIED_SINCE);
    source
        .seen
        .push((if_none_match.clone(), if_modified_since.clone()));
    if let Some(location) = &source.redirect {
        return (StatusCode::FOUND, [(header::LOCATION, location.clone())]).into_response();
    }
    if !source.failures.is_empty() {
        let status = source.failures.remove(0);
        return StatusCode::from_u16(status).unwrap().into_response();
    }
    if source.etag.is_some() && if_none_match == source.etag {
        return StatusCode::NOT_MODIFIED.into_response();
    }
    if source.last_modified.is_some() && if_modified_since == source.last_modified {
        return StatusCode::NOT_MODIFIED.into_response();
    }
    let mut response = source.body.clone().into_response();
    if let Some(etag) = &source.etag {
        response
            .headers_mut()
            .insert(header::ETAG, etag.parse().unwrap());
    }
    if let Some(time) = &source.last_modified {
        response
            .headers_mut()
            .insert(header::LAST_MODIFIED, time.parse().unwrap());
    }
    response
}

async fn start_source(source: Shared) -> SocketAddr {
    let router = axum::Router::new()
        .route("/data.csv", axum::routing::get(serve))
        .with_state(source);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    address
}

fn polling_manifest(name: &str, fetch: &str) -> String {
    format!(
        "kind: DatasetSnapshot
version: 1
content:
  name: {name}
  kind: Root
  metadata:
    - kind: SetPollingSource
      fetch:
{fetch}
      read:
        kind: Csv
        header: true
        schema:
          fields:
            - name: city
              type: String
            - name: population
              type: Int64
      merge:
        kind: Ledger
        primaryKey: [city]
"
    )
}

fn open_policy() -> PollingPolicy {
    PollingPolicy {
        allow_private_networks: true,
        ..PollingPolicy::default()
    }
}

fn poller(harness: &Harness, policy: PollingPolicy) -> Poller {
    Poller::new(harness.context.clone(), policy).unwrap()
}

async fn head_of(dataset: &weir_dataset::Dataset) -> String {
    let chain = dataset.load_chain(None).await.unwrap();
    chain.head.unwrap().hash.to_string()
}

/// The `newSourceState` of the newest AddData block.
async fn last_state(dataset: &weir_dataset::Dataset) -> Option<(String, String)> {
    let chain = dataset.load_chain(None).await.unwrap();
    chain
        .blocks
        .iter()
        .find_map(|(_, block)| match &block.event {
            MetadataEvent::AddData(add) => add
                .new_source_state
                .as_ref()
                .map(|state| (state.kind.clone(), state.value.clone())),
            _ => None,
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_url_is_fetched_again_only_when_it_changed_and_recovers_from_5xx() {
    let harness = Harness::start().await;
    let source: Shared = Arc::default();
    {
        let mut source = source.lock().unwrap();
        source.body = "city,population\nA,10\nB,20\n".to_string();
        source.etag = Some("\"v1\"".to_string());
    }
    let address = start_source(source.clone()).await;
    let fetch = format!("        kind: Url\n        url: http://{address}/data.csv");
    let dataset = harness.create(&polling_manifest("cities", &fetch)).await;
    let poller = poller(&harness, open_policy());
    let id = *dataset.id();

    let first = poller.poll(&id).await.unwrap();
    assert_eq!((first.num_records, first.commits), (2, 1), "{first:?}");
    assert_eq!(
        last_state(&dataset).await,
        Some(("odf/etag".to_string(), "\"v1\"".to_string()))
    );

    // Unchanged: the recorded ETag is sent, the server answers 304, nothing is committed.
    let head = head_of(&dataset).await;
    let second = poller.poll(&id).await.unwrap();
    assert!(second.up_to_date, "{second:?}");
    assert_eq!(head_of(&dataset).await, head);
    assert_eq!(
        source.lock().unwrap().seen.last().unwrap().0.as_deref(),
        Some("\"v1\"")
    );

    // Changed: the ledger adds the one new city.
    {
        let mut source = source.lock().unwrap();
        source.body = "city,population\nA,10\nB,20\nC,30\n".to_string();
        source.etag = Some("\"v2\"".to_string());
        source.failures = vec![503, 404];
    }
    // 503 may pass: retryable, nothing committed.
    let error = poller.poll(&id).await.unwrap_err();
    assert!(
        matches!(error, PollError::Status { status: 503, .. }),
        "{error}"
    );
    assert!(error.is_retryable());
    // 404 does not pass by itself.
    let error = poller.poll(&id).await.unwrap_err();
    assert!(!error.is_retryable(), "{error}");
    assert_eq!(head_of(&dataset).await, head);
    // Recovered.
    let third = poller.poll(&id).await.unwrap();
    assert_eq!((third.num_records, third.commits), (1, 1), "{third:?}");
    assert_eq!(
        harness
            .rows(&dataset, "SELECT city, population FROM t ORDER BY city")
            .await,
        vec!["A,10", "B,20", "C,30"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_url_without_validators_is_taken_again_only_when_its_content_changed() {
    let harness = Harness::start().await;
    let source: Shared = Arc::default();
    source.lock().unwrap().body = "city,population\nA,10\nB,20\n".to_string();
    let address = start_source(source.clone()).await;
    let fetch = format!("        kind: Url\n        url: http://{address}/data.csv");
    // Append: a second copy of the same answer would show as duplicate rows.
    let manifest = polling_manifest("plain", &fetch)
        .replace("kind: Ledger\n        primaryKey: [city]", "kind: Append");
    let dataset = harness.create(&manifest).await;
    let poller = poller(&harness, open_policy());
    let id = *dataset.id();
    assert_eq!(poller.poll(&id).await.unwrap().num_records, 2);
    let (kind, hash) = last_state(&dataset).await.unwrap();
    assert_eq!(kind, "weir.dev/sha3-256");
    assert_eq!(hash.len(), 64);
    assert!(poller.poll(&id).await.unwrap().up_to_date);
    assert_eq!(
        harness.rows(&dataset, "SELECT count(*) FROM t").await,
        vec!["2"]
    );
    source.lock().unwrap().body = "city,population\nC,30\n".to_string();
    assert_eq!(poller.poll(&id).await.unwrap().num_records, 1);
    assert_eq!(
        harness
            .rows(&dataset, "SELECT city FROM t ORDER BY city")
            .await,
        vec!["A", "B", "C"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_larger_than_the_body_limit_is_refused_and_adds_nothing() {
    let harness = Harness::start_with(|config| config.max_body_bytes = 1024).await;
    let source: Shared = Arc::default();
    {
        let mut source = source.lock().unwrap();
        let rows: String = (0..200).map(|i| format!("city{i},{i}\n")).collect();
        source.body = format!("city,population\n{rows}");
        source.etag = Some("\"big\"".to_string());
    }
    let address = start_source(source.clone()).await;
    let fetch = format!("        kind: Url\n        url: http://{address}/data.csv");
    let dataset = harness.create(&polling_manifest("large", &fetch)).await;
    let poller = poller(&harness, open_policy());
    let error = poller.poll(dataset.id()).await.unwrap_err();
    assert!(
        matches!(
            error,
            PollError::Ingest(weir_ingest::IngestError::TooLarge { limit: 1024 })
        ),
        "{error}"
    );
    assert!(!error.is_retryable());
    assert!(
        last_state(&dataset).await.is_none(),
        "nothing was committed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn last_modified_is_the_state_when_there_is_no_etag() {
    let harness = Harness::start().await;
    let source: Shared = Arc::default();
    {
        let mut source = source.lock().unwrap();
        source.body = "city,population\nA,10\n".to_string();
        source.last_modified = Some("Wed, 21 Oct 2015 07:28:00 GMT".to_string());
    }
    let address = start_source(source.clone()).await;
    let fetch = format!(
        "        kind: Url\n        url: http://{address}/data.csv\n        eventTime:\n          kind: FromMetadata"
    );
    let dataset = harness.create(&polling_manifest("towns", &fetch)).await;
    let poller = poller(&harness, open_policy());
    let id = *dataset.id();
    assert_eq!(poller.poll(&id).await.unwrap().num_records, 1);
    assert_eq!(
        last_state(&dataset).await,
        Some((
            "odf/last-modified".to_string(),
            "2015-10-21T07:28:00+00:00".to_string()
        ))
    );
    // The modification time is the records' event time.
    assert_eq!(
        harness
            .rows(&dataset, "SELECT CAST(event_time AS VARCHAR) FROM t")
            .await,
        vec!["2015-10-21T07:28:00Z"]
    );
    assert!(poller.poll(&id).await.unwrap().up_to_date);
    assert_eq!(
        source.lock().unwrap().seen.last().unwrap().1.as_deref(),
        Some("Wed, 21 Oct 2015 07:28:00 +0000")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_addresses_and_bad_redirects_are_refused_for_good() {
    let harness = Harness::start().await;
    let source: Shared = Arc::default();
    source.lock().unwrap().body = "city,population\nA,10\n".to_string();
    let address = start_source(source.clone()).await;
    let fetch = format!("        kind: Url\n        url: http://{address}/data.csv");
    let dataset = harness.create(&polling_manifest("inner", &fetch)).await;
    let strict = poller(&harness, PollingPolicy::default());
    let error = strict.poll(dataset.id()).await.unwrap_err();
    assert!(matches!(error, PollError::Refused(_)), "{error}");
    assert!(!error.is_retryable());
    assert!(
        source.lock().unwrap().seen.is_empty(),
        "no request was sent"
    );

    // A host name that resolves to a private address is refused after resolution.
    let host = std::fs::read_to_string("/etc/hostname")
        .map(|name| name.trim().to_string())
        .unwrap_or_else(|_| "localhost".to_string());
    let resolved: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 80))
        .await
        .map(|found| found.collect())
        .unwrap_or_default();
    if !resolved.is_empty()
        && resolved
            .iter()
            .all(|found| !weir_dataset::polling::is_public(found.ip()))
    {
        let fetch = format!(
            "        kind: Url\n        url: http://{host}:{}/data.csv",
            address.port()
        );
        let named = harness.create(&polling_manifest("named", &fetch)).await;
        let error = strict.poll(named.id()).await.unwrap_err();
        assert!(
            matches!(
                error,
                PollError::Refused(_) | PollError::RefusedAddress { .. }
            ),
            "{error}"
        );
        assert!(!error.is_retryable());
    }

    // Redirects are checked like the first URL.
    source.lock().unwrap().redirect = Some("ftp://example.org/data.csv".to_string());
    let open = poller(&harness, open_policy());
    let error = open.poll(dataset.id()).await.unwrap_err();
    assert!(matches!(error, PollError::RefusedAddress { .. }), "{error}");
    assert!(!error.is_retryable());
    assert!(
        last_state(&dataset).await.is_none(),
        "nothing was committed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_glob_takes_each_new_file_once_in_order() {
    let harness = Harness::start().await;
    let inbox = tempfile::tempdir().unwrap();
    let root = inbox.path().canonicalize().unwrap();
    let write = |name: &str, body: &str| std::fs::write(root.join(name), body).unwrap();
    write("cities-2024-01-02.csv", "city,population\nB,20\n");
    write("cities-2024-01-01.csv", "city,population\nA,10\n");
    write("other.txt", "not data");
    let fetch = format!(
        "        kind: FilesGlob\n        path: {}/cities-*.csv\n        eventTime:\n          kind: FromPath\n          pattern: 'cities-(\\d{{4}}-\\d{{2}}-\\d{{2}})\\.csv'\n          timestampFormat: '%Y-%m-%d'",
        root.display()
    );
    let dataset = harness.create(&polling_manifest("files", &fetch)).await;
    let policy = PollingPolicy {
        file_roots: vec![root.clone()],
        ..PollingPolicy::default()
    };
    let poller = poller(&harness, policy);
    let id = *dataset.id();

    let first = poller.poll(&id).await.unwrap();
    assert_eq!((first.num_records, first.commits), (2, 2), "{first:?}");
    assert_eq!(
        last_state(&dataset).await.unwrap().1,
        root.join("cities-2024-01-02.csv").display().to_string()
    );
    assert_eq!(
        harness
            .rows(
                &dataset,
                "SELECT city, CAST(event_time AS VARCHAR) FROM t ORDER BY \"offset\""
            )
            .await,
        vec!["A,2024-01-01T00:00:00Z", "B,2024-01-02T00:00:00Z"]
    );
    assert!(poller.poll(&id).await.unwrap().up_to_date);

    write("cities-2024-01-03.csv", "city,population\nC,30\n");
    let third = poller.poll(&id).await.unwrap();
    assert_eq!((third.num_records, third.commits), (1, 1), "{third:?}");

    // A link out of the allowed directory is refused, not read.
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret.csv"), "city,population\nX,1\n").unwrap();
    std::os::unix::fs::symlink(
        outside.path().join("secret.csv"),
        root.join("cities-2024-01-04.csv"),
    )
    .unwrap();
    let error = poller.poll(&id).await.unwrap_err();
    assert!(matches!(error, PollError::Refused(_)), "{error}");
    assert_eq!(
        harness
            .rows(&dataset, "SELECT city FROM t ORDER BY city")
            .await,
        vec!["A", "B", "C"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_glob_over_an_s3_prefix_takes_new_objects() {
    let endpoint = std::env::var("WEIR_TEST_S3_ENDPOINT").expect(
        "WEIR_TEST_S3_ENDPOINT is not set: run ./local/test, which starts an S3 API server on loopback",
    );
    let bucket = format!("weir-landing-{}", uuid::Uuid::new_v4().simple());
    let access = S3Access {
        endpoint: Some(endpoint),
        region: Some("us-east-1".to_string()),
        access_key_id: Some("test".to_string()),
        secret_access_key: Some("test".to_string()),
        allow_http: true,
    };
    let store = object_store::aws::AmazonS3Builder::new()
        .with_endpoint(access.endpoint.clone().unwrap())
        .with_region("us-east-1")
        .with_access_key_id("test")
        .with_secret_access_key("test")
        .with_allow_http(true)
        .with_bucket_name(&bucket)
        .build()
        .unwrap();
    create_bucket(access.endpoint.as_deref().unwrap(), &bucket).await;
    use object_store::{ObjectStoreExt, PutPayload, path::Path};
    let put = |key: &'static str, body: &'static str| {
        let store = &store;
        async move {
            store
                .put(&Path::from(key), PutPayload::from_static(body.as_bytes()))
                .await
                .unwrap();
        }
    };
    put("sensors/a.csv", "city,population\nA,10\n").await;
    put("sensors/nested/b.csv", "city,population\nB,20\n").await;
    put("other/c.csv", "city,population\nC,30\n").await;

    let harness = Harness::start().await;
    let fetch = format!("        kind: FilesGlob\n        path: s3://{bucket}/sensors/*.csv");
    let dataset = harness.create(&polling_manifest("landing", &fetch)).await;
    let policy = PollingPolicy {
        s3_buckets: vec![bucket.clone()],
        s3: Some(access),
        ..PollingPolicy::default()
    };
    let poller = poller(&harness, policy);
    let first = poller.poll(dataset.id()).await.unwrap();
    assert_eq!(
        first.num_records, 1,
        "only sensors/*.csv, not nested: {first:?}"
    );
    put("sensors/d.csv", "city,population\nD,40\n").await;
    let second = poller.poll(dataset.id()).await.unwrap();
    assert_eq!(second.num_records, 1, "{second:?}");
    assert_eq!(
        last_state(&dataset).await.unwrap().1,
        format!("s3://{bucket}/sensors/d.csv")
    );
    assert!(poller.poll(dataset.id()).await.unwrap().up_to_date);
    assert_eq!(
        harness
            .rows(&dataset, "SELECT city FROM t ORDER BY city")
            .await,
        vec!["A", "D"]
    );
}

/// Creates a bucket with a signed request through the Python SDK the test server came with.
async fn create_bucket(endpoint: &str, bucket: &str) {
    let script = "import boto3,sys; boto3.client('s3', endpoint_url=sys.argv[1], aws_access_key_id='test', aws_secret_access_key='test', region_name='us-east-1').create_bucket(Bucket=sys.argv[2])";
    let status = tokio::process::Command::new("python3")
        .args(["-c", script, endpoint, bucket])
        .status()
        .await
        .unwrap();
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_merges_small_slices_and_keeps_every_record() {
    use weir_dataset::compaction::{CompactionParams, compact};
    let harness = Harness::start().await;
    let dataset = harness
        .create(&common::root_manifest(
            "readings",
            "        kind: NdJson",
            "        kind: Append",
        ))
        .await;
    let push = |n: u32, key: Option<&'static str>| {
        let harness = &harness;
        async move {
            let body = format!(
                "{{\"event_time\": \"2024-01-0{n}T00:00:00Z\", \"v\": {n}}}\n{{\"event_time\": \"2024-01-0{n}T12:00:00Z\", \"v\": {}}}",
                n * 10
            );
            let mut headers = vec![("content-type", "application/x-ndjson")];
            if let Some(key) = key {
                headers.push(("idempotency-key", key));
            }
            harness
                .push_with("/alice/readings/ingest", &headers, body)
                .await
        }
    };
    for n in 1..=5 {
        let key = (n == 3).then_some("third-push");
        let (status, body) = push(n, key).await;
        assert_eq!(status, 200, "{body}");
    }
    let everything = "SELECT \"offset\", op, CAST(system_time AS VARCHAR), \
                      CAST(event_time AS VARCHAR), v FROM t ORDER BY \"offset\"";
    let before = harness.rows(&dataset, everything).await;
    assert_eq!(before.len(), 10);

    let params = CompactionParams {
        max_slice_size: 1 << 30,
        max_slice_records: 4,
    };
    let outcome = compact(&dataset, &params).await.unwrap().expect("merged");
    // Pushes 1+2 and 4+5 merge; push 3 keeps its idempotency key, so it stays as it was.
    assert_eq!(
        (outcome.slices_before, outcome.slices_after),
        (5, 3),
        "{outcome:?}"
    );
    assert_eq!(outcome.records_merged, 8);
    assert_eq!(harness.rows(&dataset, everything).await, before);
    // Every slice's hashes hold: a fresh load of the chain validates it, and a full read of
    // every new file matches its logical hash.
    let chain = dataset.load_chain(None).await.unwrap();
    for (_, block) in &chain.blocks {
        if let MetadataEvent::AddData(add) = &block.event
            && let Some(slice) = &add.new_data
        {
            let bytes = dataset.get_data(&slice.physical_hash).await.unwrap();
            assert_eq!(
                weir_dataset::slices::logical_hash_of_parquet(bytes).unwrap(),
                slice.logical_hash
            );
        }
    }
    // Nothing more to merge.
    assert!(compact(&dataset, &params).await.unwrap().is_none());
    // The retried third push is still recognised; new pushes follow the compacted history.
    let (status, replay) = push(3, Some("third-push")).await;
    assert_eq!(status, 200, "{replay}");
    assert_eq!(
        replay["offsetInterval"],
        serde_json::json!({"start": 4, "end": 5})
    );
    let (status, body) = push(6, None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["offsetInterval"],
        serde_json::json!({"start": 10, "end": 11})
    );
    assert_eq!(
        harness.rows(&dataset, "SELECT count(*) FROM t").await,
        vec!["12"]
    );
}
