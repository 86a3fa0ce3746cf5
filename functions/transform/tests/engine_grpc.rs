//! The ODF engine protocol over real gRPC sockets: a coordinator whose engine is remote
//! computes the same records as one running DataFusion in-process (verified block by block),
//! on local files and on S3; the engine refuses malformed messages and paths outside its
//! storage, and cleans nothing it was not given.

mod common;

use std::sync::Arc;

use common::{Harness, derivative_manifest, readings_manifest};
use futures::TryStreamExt;
use object_store::ObjectStoreExt;
use object_store::path::Path;
use tokio::net::TcpListener;
use weir_dataset::{DatasetStore, S3Settings};
use weir_odf::engine::{
    DatasetVocabulary, EngineMessage, TransformRequest, TransformRequestInput, TransformResponse,
    TransformResponseRoot,
};
use weir_odf::{DatasetId, MetadataEvent, Transform, TransformSql};
use weir_transform::engine::EngineIdentity;
use weir_transform::engine::datafusion::{ENGINE_NAME, ENGINE_NAME_KEY};
use weir_transform::engine::grpc::{GrpcEngine, proto, serve, server::datafusion_service};
use weir_transform::{TransformError, Transformer};

const HOURLY: &str = "SELECT date_trunc('hour', event_time) AS event_time, sensor, avg(temp) AS avg_temp, count(*) AS n FROM readings GROUP BY 1, 2";
const WARM: &str =
    "SELECT event_time, sensor, temp * 1.8 + 32 AS temp_f FROM readings WHERE temp > 20";

/// Starts an engine worker for `store` on a loopback port; returns its endpoint.
async fn start_engine(store: DatasetStore) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let service =
        datafusion_service(store).with_progress_every(std::time::Duration::from_millis(5));
    tokio::spawn(serve(listener, service, std::future::pending()));
    format!("http://{address}")
}

fn remote(endpoint: &str) -> Arc<GrpcEngine> {
    let identity = EngineIdentity {
        name: "weir-engine".to_string(),
        version: "test".to_string(),
    };
    Arc::new(GrpcEngine::new(endpoint, identity).unwrap())
}

fn ndjson(rows: &[(&str, &str, f64)]) -> String {
    rows.iter()
        .map(|(time, sensor, temp)| {
            format!("{{\"event_time\": \"2026-01-01T{time}:00Z\", \"sensor\": \"{sensor}\", \"temp\": {temp}}}")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn s3_harness() -> Option<Harness> {
    let endpoint = std::env::var("WEIR_TEST_S3_ENDPOINT").ok()?;
    let bucket = format!("weir-engine-{}", uuid::Uuid::new_v4().simple());
    let status = std::process::Command::new("python3")
        .args([
            "-c",
            "import boto3,sys; boto3.client('s3', endpoint_url=sys.argv[1], aws_access_key_id='test', aws_secret_access_key='test', region_name='us-east-1').create_bucket(Bucket=sys.argv[2])",
            &endpoint,
            &bucket,
        ])
        .status()
        .unwrap();
    assert!(status.success(), "could not create bucket {bucket}");
    let store = DatasetStore::s3(&S3Settings {
        bucket,
        prefix: "datasets".to_string(),
        region: "us-east-1".to_string(),
        endpoint: Some(endpoint),
        access_key_id: Some("test".to_string()),
        secret_access_key: Some("test".to_string()),
        allow_http: true,
    })
    .unwrap();
    Some(Harness::with_store(store, tempfile::tempdir().unwrap()))
}

async fn scratch_objects(store: &DatasetStore) -> usize {
    let scratch = store.root().clone().join(".engine");
    let objects: Vec<_> = store
        .object_store()
        .list(Some(&scratch))
        .try_collect()
        .await
        .unwrap();
    objects.len()
}

/// Three pushes (a late reading among them); after each, one step of each derivative, by the
/// remote engine for one copy and in-process for the other.
async fn remote_and_local_agree(harness: &Harness) {
    let endpoint = start_engine(harness.store.clone()).await;
    let remote = Transformer::new(harness.store.clone(), remote(&endpoint));
    let local = &harness.transformer;
    let root = harness
        .create(&readings_manifest("readings", "kind: Append"))
        .await;
    let mut pairs: Vec<(DatasetId, DatasetId, &str)> = Vec::new();
    for (name, query) in [("hourly", HOURLY), ("warm", WARM)] {
        let by_remote = harness
            .create(&derivative_manifest(
                &format!("{name}-remote"),
                &[(&root, "readings")],
                query,
            ))
            .await;
        let by_local = harness
            .create(&derivative_manifest(
                &format!("{name}-local"),
                &[(&root, "readings")],
                query,
            ))
            .await;
        pairs.push((by_remote, by_local, query));
    }
    // Before any data: a step over an input without a schema commits nothing.
    for (by_remote, _, _) in &pairs {
        let outcome = remote.run_step(by_remote).await.unwrap();
        assert_eq!(outcome.new_head, None);
    }
    let pushes = [
        vec![("10:00", "s1", 21.5), ("10:10", "s2", 19.0)],
        vec![("10:45", "s1", 25.0), ("11:05", "s2", 20.5)],
        vec![("10:20", "s2", 30.0), ("11:30", "s1", 18.0)],
    ];
    for push in pushes {
        harness.push("readings", ndjson(&push)).await;
        for (by_remote, by_local, _) in &pairs {
            let remote_step = remote.run_step(by_remote).await.unwrap();
            let local_step = local.run_step(by_local).await.unwrap();
            assert_eq!(remote_step.num_records, local_step.num_records);
        }
    }
    for (by_remote, by_local, query) in &pairs {
        let rows = harness.current_rows(by_remote).await;
        assert!(!rows.is_empty());
        assert_eq!(rows, harness.current_rows(by_local).await, "{query}");
        assert_eq!(
            rows,
            harness.batch_rows(&[(&root, "readings")], query).await,
            "{query}"
        );
        // Every remote step, computed again in-process from what its block records, gives
        // the same output hash.
        let report = local.verify(by_remote).await.unwrap();
        assert_eq!((report.steps_verified, report.first_mismatch), (3, None));
        // The checkpoint names the engine that computed it.
        let chain = harness
            .store
            .dataset(by_remote)
            .load_chain(None)
            .await
            .unwrap();
        let checkpoint = chain.state.last_checkpoint().copied().unwrap();
        let bytes = harness
            .store
            .dataset(by_remote)
            .get_checkpoint(&checkpoint)
            .await
            .unwrap();
        let reader =
            parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes).unwrap();
        let metadata = reader
            .metadata()
            .file_metadata()
            .key_value_metadata()
            .unwrap();
        assert!(
            metadata
                .iter()
                .any(|kv| kv.key == ENGINE_NAME_KEY && kv.value.as_deref() == Some(ENGINE_NAME))
        );
    }
    assert_eq!(scratch_objects(&harness.store).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_engine_computes_what_the_local_one_does_on_local_files() {
    remote_and_local_agree(&Harness::start()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_engine_computes_what_the_local_one_does_on_s3() {
    let harness = s3_harness().expect(
        "WEIR_TEST_S3_ENDPOINT is not set: run ./local/test, which starts an S3 API server on loopback",
    );
    remote_and_local_agree(&harness).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_queries_are_permanent_and_a_missing_engine_is_retryable() {
    let harness = Harness::start();
    let endpoint = start_engine(harness.store.clone()).await;
    let root = harness
        .create(&readings_manifest("readings", "kind: Append"))
        .await;
    let derived = harness
        .create(&derivative_manifest(
            "broken",
            &[(&root, "readings")],
            "SELECT event_time, no_such_column FROM readings",
        ))
        .await;
    harness
        .push("readings", ndjson(&[("10:00", "s1", 21.5)]))
        .await;
    let head = harness.store.dataset(&derived).head().await.unwrap();

    let error = Transformer::new(harness.store.clone(), remote(&endpoint))
        .run_step(&derived)
        .await
        .unwrap_err();
    assert!(matches!(error, TransformError::Engine(_)), "{error:?}");
    assert!(!error.is_retryable());
    assert!(error.to_string().contains("no_such_column"), "{error}");

    // Nothing listens on port 9 of loopback.
    let error = Transformer::new(harness.store.clone(), remote("http://127.0.0.1:9"))
        .run_step(&derived)
        .await
        .unwrap_err();
    assert!(error.is_retryable(), "{error:?}");

    let after = harness.store.dataset(&derived).head().await.unwrap();
    assert_eq!(head.map(|h| h.hash), after.map(|h| h.hash));
    assert_eq!(scratch_objects(&harness.store).await, 0);
}

/// Sends `request` with the generated client and returns the last response.
async fn send(endpoint: &str, flatbuffer: Vec<u8>) -> Result<TransformResponse, tonic::Status> {
    let mut client = proto::engine_client::EngineClient::connect(endpoint.to_string())
        .await
        .unwrap();
    let mut stream = client
        .execute_transform(proto::TransformRequest { flatbuffer })
        .await?
        .into_inner();
    let mut last = None;
    while let Some(message) = stream.message().await? {
        last = Some(
            TransformResponseRoot::decode_message(&message.flatbuffer)
                .unwrap()
                .value,
        );
    }
    Ok(last.expect("a final response"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engine_refuses_bad_messages_and_paths_outside_its_storage() {
    let harness = Harness::start();
    let store = &harness.store;
    let endpoint = start_engine(store.clone()).await;
    let root = harness
        .create(&readings_manifest("readings", "kind: Append"))
        .await;
    harness
        .push("readings", ndjson(&[("10:00", "s1", 21.5)]))
        .await;
    let chain = store.dataset(&root).load_chain(None).await.unwrap();
    let data_file = chain
        .blocks
        .iter()
        .find_map(|(_, block)| match &block.event {
            MetadataEvent::AddData(add) => add.new_data.as_ref().map(|d| d.physical_hash),
            _ => None,
        })
        .unwrap();
    let url = |key: &Path| format!("{}{}", store.url(), key.as_ref());
    let data_url = url(&store.dataset(&root).layout().data(&data_file));
    let head_key = store.dataset(&root).layout().head();
    let head_before = store
        .object_store()
        .get(&head_key)
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let scratch = |name: &str| url(&store.root().clone().join(".engine").join("test").join(name));
    let request = |data_paths: Vec<String>, new_data_path: String| TransformRequest {
        dataset_id: root,
        dataset_alias: "x".to_string(),
        system_time: chrono::Utc::now(),
        vocab: DatasetVocabulary::default(),
        transform: Transform::Sql(TransformSql {
            engine: "datafusion".to_string(),
            version: None,
            query: Some("SELECT event_time, temp FROM readings".to_string()),
            queries: None,
            temporal_tables: None,
        }),
        query_inputs: vec![TransformRequestInput {
            dataset_id: root,
            dataset_alias: "readings".to_string(),
            query_alias: "readings".to_string(),
            vocab: DatasetVocabulary::default(),
            offset_interval: None,
            data_paths,
            schema_file: data_url.clone(),
            explicit_watermarks: vec![],
        }],
        next_offset: 0,
        prev_checkpoint_path: None,
        new_checkpoint_path: scratch("checkpoint"),
        new_data_path,
    };

    // Not a flatbuffer at all.
    let status = send(&endpoint, b"\x07garbage".to_vec()).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);

    // Writing the output over the dataset's head reference.
    let response = send(
        &endpoint,
        request(vec![data_url.clone()], url(&head_key)).encode_message(),
    )
    .await
    .unwrap();
    let TransformResponse::InternalError(error) = response else {
        panic!("{response:?}")
    };
    assert!(error.message.contains("scratch"), "{}", error.message);
    let head_after = store
        .object_store()
        .get(&head_key)
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(head_before, head_after);

    // Reading a file outside the storage, or outside the input's data files.
    for path in ["file:///etc/passwd".to_string(), url(&head_key)] {
        let response = send(
            &endpoint,
            request(vec![path.clone()], scratch("data")).encode_message(),
        )
        .await
        .unwrap();
        let TransformResponse::InternalError(error) = response else {
            panic!("{response:?}")
        };
        assert!(error.message.contains(&path), "{}", error.message);
    }

    // The same request with proper paths succeeds.
    let response = send(
        &endpoint,
        request(vec![data_url.clone()], scratch("data")).encode_message(),
    )
    .await
    .unwrap();
    assert!(
        matches!(response, TransformResponse::Success(_)),
        "{response:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_queries_run_over_scratch_files() {
    use arrow::array::{Int64Array, RecordBatch};
    let harness = Harness::start();
    let store = &harness.store;
    let endpoint = start_engine(store.clone()).await;
    let engine = remote(&endpoint);
    let scratch = store.root().clone().join(".engine").join("raw");
    let batch =
        RecordBatch::try_from_iter([("a", Arc::new(Int64Array::from(vec![1, 2, 3, 4])) as _)])
            .unwrap();
    let mut file = Vec::new();
    let mut writer = parquet::arrow::ArrowWriter::try_new(&mut file, batch.schema(), None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
    let input = scratch.clone().join("input.parquet");
    store.object_store().put(&input, file.into()).await.unwrap();
    let output = scratch.clone().join("output.parquet");
    let sql = |query: &str| TransformSql {
        engine: "datafusion".to_string(),
        version: None,
        query: Some(query.to_string()),
        queries: None,
        temporal_tables: None,
    };
    let written = engine
        .execute_raw_query(
            store,
            std::slice::from_ref(&input),
            &sql("SELECT a * 10 AS b FROM input WHERE a > 1"),
            &output,
        )
        .await
        .unwrap();
    assert_eq!(written, 3);
    let bytes = store
        .object_store()
        .get(&output)
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let rows = common::lines(&weir_dataset::slices::read_slice(bytes).unwrap());
    assert_eq!(rows, vec!["b=20", "b=30", "b=40"]);

    let error = engine
        .execute_raw_query(
            store,
            std::slice::from_ref(&input),
            &sql("SELECT nope FROM input"),
            &output,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(error, weir_transform::engine::EngineError::InvalidQuery(ref m) if m.contains("nope")),
        "{error:?}"
    );
    // Raw queries read only scratch files.
    let outside = Path::from("elsewhere.parquet");
    store
        .object_store()
        .put(&outside, b"x".to_vec().into())
        .await
        .unwrap();
    let error = engine
        .execute_raw_query(store, &[outside], &sql("SELECT * FROM input"), &output)
        .await
        .unwrap_err();
    assert!(error.to_string().contains("scratch"), "{error}");
}

/// DataFusion, counting how many steps it computes at once.
#[derive(Default)]
struct Counting {
    now: std::sync::atomic::AtomicUsize,
    most: std::sync::atomic::AtomicUsize,
}

#[async_trait::async_trait]
impl weir_transform::engine::Engine for Counting {
    fn identity(&self) -> EngineIdentity {
        weir_transform::engine::Engine::identity(&weir_transform::DataFusionEngine)
    }

    async fn execute_transform(
        &self,
        store: &DatasetStore,
        request: weir_transform::engine::TransformRequest,
    ) -> Result<weir_transform::engine::TransformOutput, weir_transform::engine::EngineError> {
        use std::sync::atomic::Ordering::SeqCst;
        let now = self.now.fetch_add(1, SeqCst) + 1;
        self.most.fetch_max(now, SeqCst);
        // Long enough that requests sent together would overlap without a limit.
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let output = weir_transform::engine::Engine::execute_transform(
            &weir_transform::DataFusionEngine,
            store,
            request,
        )
        .await;
        self.now.fetch_sub(1, SeqCst);
        output
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_computes_at_most_its_concurrency_and_queues_the_rest() {
    let harness = Harness::start();
    let counting = Arc::new(Counting::default());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let service =
        weir_transform::engine::grpc::EngineService::new(harness.store.clone(), counting.clone())
            .with_progress_every(std::time::Duration::from_millis(5))
            .with_concurrency(1);
    tokio::spawn(serve(listener, service, std::future::pending()));
    let root = harness
        .create(&readings_manifest("readings", "kind: Append"))
        .await;
    let mut derivatives = Vec::new();
    for index in 0..4 {
        derivatives.push(
            harness
                .create(&derivative_manifest(
                    &format!("d{index}"),
                    &[(&root, "readings")],
                    WARM,
                ))
                .await,
        );
    }
    harness
        .push(
            "readings",
            ndjson(&[("10:00", "s1", 21.5), ("10:10", "s2", 25.0)]),
        )
        .await;
    let remote = Transformer::new(harness.store.clone(), remote(&endpoint));
    let steps = futures::future::join_all(derivatives.iter().map(|id| remote.run_step(id))).await;
    for step in steps {
        assert_eq!(step.unwrap().num_records, 2);
    }
    assert_eq!(counting.most.load(std::sync::atomic::Ordering::SeqCst), 1);
}
