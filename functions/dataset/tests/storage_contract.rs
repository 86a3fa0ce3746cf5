//! One contract for dataset storage, run against every backend: in-memory, local file system and
//! a real S3 API server on loopback (moto; `WEIR_TEST_S3_ENDPOINT`, started by `./local/test`).

use std::collections::BTreeSet;
use std::sync::Arc;

use arrow::array::{Int64Array, RecordBatch, StringArray, TimestampMillisecondArray};
use arrow::datatypes::{DataType as ArrowType, Field, Schema, TimeUnit as ArrowUnit};
use bytes::Bytes;
use chrono::{TimeZone, Utc};
use datafusion::prelude::SessionContext;
use object_store::{ObjectStoreExt, PutPayload};
use weir_dataset::schema::schema_from_arrow;
use weir_dataset::slices::{
    SliceData, SliceWriter, UPLOAD_PART_BYTES, prepare_slice, read_slice, slice_schema,
};
use weir_dataset::table::dataset_table;
use weir_dataset::{CommitError, Dataset, DatasetStore, S3Settings, StorageError};
use weir_odf::validation::ChainValidator;
use weir_odf::*;

fn s3_store() -> DatasetStore {
    let endpoint = std::env::var("WEIR_TEST_S3_ENDPOINT").expect(
        "WEIR_TEST_S3_ENDPOINT is not set: run ./local/test, which starts an S3 API server on loopback",
    );
    let bucket = format!("weir-test-{}", uuid::Uuid::new_v4().simple());
    boto3_s3(
        &endpoint,
        "s3.create_bucket(Bucket=sys.argv[2])",
        &[&bucket],
    );
    DatasetStore::s3(&S3Settings {
        bucket,
        prefix: "datasets".to_string(),
        region: "us-east-1".to_string(),
        endpoint: Some(endpoint),
        access_key_id: Some("test".to_string()),
        secret_access_key: Some("test".to_string()),
        allow_http: true,
    })
    .unwrap()
}

/// Runs `statement` with boto3's client `s3` for the S3 server at `endpoint` (`sys.argv[1]`;
/// `args` follow); returns what it printed.
fn boto3_s3(endpoint: &str, statement: &str, args: &[&str]) -> String {
    let script = format!(
        "import boto3,sys; s3=boto3.client('s3', endpoint_url=sys.argv[1], aws_access_key_id='test', aws_secret_access_key='test', region_name='us-east-1'); {statement}"
    );
    let output = std::process::Command::new("python3")
        .args(["-c", &script, endpoint])
        .args(args)
        .output()
        .expect("python3 with boto3 runs");
    assert!(
        output.status.success(),
        "{statement} failed at {endpoint}: {output:?}"
    );
    String::from_utf8(output.stdout).unwrap()
}

fn time(seconds: i64) -> chrono::DateTime<Utc> {
    Utc.timestamp_opt(1_700_000_000 + seconds, 0).unwrap()
}

fn user_batch(values: &[i64], label: &str, event_seconds: i64) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new(
            "event_time",
            ArrowType::Timestamp(ArrowUnit::Millisecond, Some("UTC".into())),
            false,
        ),
        Field::new("value", ArrowType::Int64, false),
        Field::new("label", ArrowType::Utf8, false),
    ]));
    let millis = time(event_seconds).timestamp_millis();
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(
                TimestampMillisecondArray::from(vec![millis; values.len()]).with_timezone("UTC"),
            ),
            Arc::new(Int64Array::from(values.to_vec())),
            Arc::new(StringArray::from(vec![label; values.len()])),
        ],
    )
    .unwrap()
}

fn schema_event() -> MetadataEvent {
    let data_fields = user_batch(&[1], "x", 0)
        .schema()
        .fields()
        .iter()
        .skip(1)
        .cloned()
        .collect::<Vec<_>>();
    let schema = schema_from_arrow(&slice_schema(&data_fields)).unwrap();
    MetadataEvent::SetDataSchema(SetDataSchema {
        raw_arrow_schema: None,
        schema: Some(schema),
    })
}

/// Creates a root dataset with a seed and a schema; returns it with its chain state.
async fn create_root_dataset(store: &DatasetStore) -> (Dataset, ChainValidator) {
    let (_, id) = DatasetId::new_generated();
    let dataset = store.dataset(&id);
    let seed = MetadataEvent::Seed(Seed {
        dataset_id: id,
        dataset_kind: DatasetKind::Root,
    });
    let state = ChainValidator::new();
    let result = dataset.commit(None, &state, seed, time(0)).await.unwrap();
    let chain = dataset.load_chain(None).await.unwrap();
    let result = dataset
        .commit(Some(&result.head), &chain.state, schema_event(), time(1))
        .await
        .unwrap();
    let chain = dataset.load_chain(None).await.unwrap();
    assert_eq!(chain.head.as_ref().unwrap().hash, result.new_head);
    (dataset, chain.state)
}

/// Stores one slice of `values` and commits it; retries on conflicts. Returns the new head.
async fn append_values(dataset: &Dataset, values: &[i64], label: &str) -> (Multihash, u32) {
    let mut conflicts = 0;
    loop {
        let chain = dataset.load_chain(None).await.unwrap();
        let start = chain.state.last_offset().map_or(0, |o| o + 1);
        let slice = prepare_slice(&[user_batch(values, label, 10)], start, time(20), None)
            .unwrap()
            .unwrap();
        let SliceData::Memory(bytes) = &slice.data else {
            panic!("a slice written without an upload target stays in memory");
        };
        assert_eq!(
            dataset.put_data(bytes.clone()).await.unwrap(),
            slice.physical_hash
        );
        let event = MetadataEvent::AddData(AddData {
            prev_checkpoint: None,
            prev_offset: chain.state.last_offset(),
            new_data: Some(DataSlice {
                logical_hash: slice.logical_hash,
                physical_hash: slice.physical_hash,
                offset_interval: slice.offset_interval.clone(),
                size: slice.size,
            }),
            new_checkpoint: None,
            new_watermark: slice.max_event_time,
            new_source_state: None,
            extra: None,
        });
        match dataset
            .commit(chain.head.as_ref(), &chain.state, event, time(20))
            .await
        {
            Ok(result) => return (result.new_head, conflicts),
            Err(CommitError::Conflict { .. }) => conflicts += 1,
            Err(error) => panic!("commit failed: {error}"),
        }
    }
}

async fn contract_new_dataset_has_no_head(store: DatasetStore) {
    let (_, id) = DatasetId::new_generated();
    assert!(store.dataset(&id).head().await.unwrap().is_none());
    assert!(!store.list_datasets().await.unwrap().contains(&id));
}

async fn contract_commits_build_a_valid_chain(store: DatasetStore) {
    let (dataset, _) = create_root_dataset(&store).await;
    append_values(&dataset, &[1, 2, 3], "a").await;
    append_values(&dataset, &[4, 5], "b").await;
    let chain = dataset.load_chain(None).await.unwrap();
    assert_eq!(chain.blocks.len(), 4);
    assert_eq!(chain.state.last_offset(), Some(4));
    assert_eq!(chain.blocks[0].1.sequence_number, 3);
    for (hash, block) in &chain.blocks {
        let stored = dataset.get_block_bytes(hash).await.unwrap();
        assert_eq!(
            encode_block(block),
            stored.to_vec(),
            "stored bytes are canonical"
        );
        assert_eq!(Multihash::sha3_256(&stored), *hash);
    }
    assert!(store.list_datasets().await.unwrap().contains(dataset.id()));
}

async fn contract_stale_writer_gets_conflict_and_changes_nothing(store: DatasetStore) {
    let (dataset, state) = create_root_dataset(&store).await;
    let stale = dataset.load_chain(None).await.unwrap();
    let (winner, _) = append_values(&dataset, &[1], "winner").await;
    let event = MetadataEvent::SetInfo(SetInfo {
        description: Some("late".to_string()),
        keywords: None,
    });
    let error = dataset
        .commit(stale.head.as_ref(), &state, event, time(30))
        .await
        .unwrap_err();
    match error {
        CommitError::Conflict { actual, .. } => assert_eq!(actual, Some(winner)),
        other => panic!("expected a conflict, got {other}"),
    }
    assert_eq!(dataset.head().await.unwrap().unwrap().hash, winner);
    assert_eq!(dataset.load_chain(None).await.unwrap().blocks.len(), 3);
}

async fn contract_first_commit_races_are_exclusive(store: DatasetStore) {
    let (_, id) = DatasetId::new_generated();
    let dataset = store.dataset(&id);
    let seed = |kind| {
        MetadataEvent::Seed(Seed {
            dataset_id: id,
            dataset_kind: kind,
        })
    };
    let state = ChainValidator::new();
    dataset
        .commit(None, &state, seed(DatasetKind::Root), time(0))
        .await
        .unwrap();
    let error = dataset
        .commit(None, &state, seed(DatasetKind::Derivative), time(0))
        .await
        .unwrap_err();
    assert!(matches!(error, CommitError::Conflict { .. }), "{error}");
}

async fn contract_invalid_blocks_are_rejected_before_writing(store: DatasetStore) {
    let (dataset, state) = create_root_dataset(&store).await;
    let head = dataset.head().await.unwrap();
    let event = MetadataEvent::AddData(AddData {
        prev_checkpoint: None,
        prev_offset: Some(41),
        new_data: None,
        new_checkpoint: None,
        new_watermark: None,
        new_source_state: None,
        extra: None,
    });
    let error = dataset
        .commit(head.as_ref(), &state, event, time(5))
        .await
        .unwrap_err();
    assert!(matches!(error, CommitError::InvalidBlock(_)), "{error}");
    assert_eq!(
        dataset.head().await.unwrap().unwrap().hash,
        head.unwrap().hash
    );
}

async fn contract_concurrent_writers_lose_nothing(store: DatasetStore) {
    const WRITERS: usize = 8;
    const COMMITS_PER_WRITER: usize = 4;
    let (dataset, _) = create_root_dataset(&store).await;
    let mut tasks = Vec::new();
    for writer in 0..WRITERS {
        let dataset = dataset.clone();
        tasks.push(tokio::spawn(async move {
            let mut heads = Vec::new();
            for commit in 0..COMMITS_PER_WRITER {
                let value = (writer * 100 + commit) as i64;
                let (head, _) = append_values(&dataset, &[value], &format!("w{writer}")).await;
                heads.push((head, value));
            }
            heads
        }));
    }
    let mut committed = Vec::new();
    for task in tasks {
        committed.extend(task.await.unwrap());
    }
    let chain = dataset.load_chain(None).await.unwrap();
    let in_chain: BTreeSet<Multihash> = chain.blocks.iter().map(|(hash, _)| *hash).collect();
    for (head, _) in &committed {
        assert!(
            in_chain.contains(head),
            "acknowledged commit {head} is missing from the chain"
        );
    }
    assert_eq!(
        chain.blocks.len(),
        2 + WRITERS * COMMITS_PER_WRITER,
        "no lost or extra blocks"
    );
    assert_eq!(
        chain.state.last_offset(),
        Some((WRITERS * COMMITS_PER_WRITER - 1) as u64)
    );

    // Every value was written exactly once.
    let session = SessionContext::new();
    let table = dataset_table(&session, &store, &dataset, None)
        .await
        .unwrap();
    session.register_table("t", table).unwrap();
    let batches = session
        .sql("SELECT value FROM t ORDER BY value")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let mut values = Vec::new();
    for batch in &batches {
        let column = batch
            .column(0)
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap();
        values.extend(column.values().iter().copied());
    }
    let mut expected: Vec<i64> = committed.iter().map(|(_, value)| *value).collect();
    expected.sort();
    assert_eq!(values, expected);
}

async fn contract_slices_round_trip_and_query_as_of(store: DatasetStore) {
    let (dataset, _) = create_root_dataset(&store).await;
    let (first_head, _) = append_values(&dataset, &[10, 20], "a").await;
    append_values(&dataset, &[30], "b").await;

    let chain = dataset.load_chain(None).await.unwrap();
    let MetadataEvent::AddData(add_data) = &chain.blocks[0].1.event else {
        panic!("head is not AddData");
    };
    let slice = add_data.new_data.as_ref().unwrap();
    let bytes = dataset.get_data(&slice.physical_hash).await.unwrap();
    assert_eq!(Multihash::sha3_256(&bytes), slice.physical_hash);
    assert_eq!(
        weir_dataset::slices::logical_hash_of_parquet(bytes.clone()).unwrap(),
        slice.logical_hash
    );
    let batches = read_slice(bytes).unwrap();
    assert_eq!(batches[0].num_rows(), 1);
    assert_eq!(batches[0].schema().field(0).name(), "offset");

    let session = SessionContext::new();
    let now = dataset_table(&session, &store, &dataset, None)
        .await
        .unwrap();
    let then = dataset_table(&session, &store, &dataset, Some(&first_head))
        .await
        .unwrap();
    session.register_table("now", now).unwrap();
    session.register_table("then", then).unwrap();
    let sum = |sql: &'static str| {
        let session = session.clone();
        async move {
            let batches = session.sql(sql).await.unwrap().collect().await.unwrap();
            batches[0]
                .column(0)
                .as_any()
                .downcast_ref::<Int64Array>()
                .unwrap()
                .value(0)
        }
    };
    assert_eq!(sum("SELECT sum(value) FROM now").await, 60);
    assert_eq!(sum("SELECT sum(value) FROM then").await, 30);
    assert_eq!(
        sum("SELECT CAST(max(\"offset\") AS BIGINT) FROM now").await,
        2
    );
}

async fn contract_tampered_blocks_are_detected(store: DatasetStore) {
    let (dataset, _) = create_root_dataset(&store).await;
    let head = dataset.head().await.unwrap().unwrap().hash;
    let key = dataset.layout().block(&head);
    store
        .object_store()
        .put(&key, PutPayload::from(Bytes::from_static(b"not a block")))
        .await
        .unwrap();
    let error = dataset.get_block(&head).await.unwrap_err();
    assert!(
        matches!(error, StorageError::HashMismatch { .. }),
        "{error}"
    );
}

/// Rows of 64 hex characters that Parquet cannot shrink much: `rows` of them make a file of
/// several upload parts.
fn incompressible_batch(start: i64, rows: i64) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", ArrowType::Int64, false),
        Field::new("payload", ArrowType::Utf8, false),
    ]));
    let payloads = (start..start + rows).map(|i| {
        let mut state = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..4)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                format!("{state:016x}")
            })
            .collect::<String>()
    });
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from_iter_values(start..start + rows)),
            Arc::new(StringArray::from_iter_values(payloads)),
        ],
    )
    .unwrap()
}

/// Writes batches of `incompressible_batch` with an upload target on a thread outside the
/// runtime, as the ingest sink does; stops early (dropping the writer) after `stop_after` rows.
async fn write_uploaded_slice(
    dataset: &Dataset,
    rows: i64,
    stop_after: Option<i64>,
) -> Option<weir_dataset::slices::PreparedSlice> {
    let target = dataset.slice_upload_target();
    tokio::task::spawn_blocking(move || {
        let mut writer = SliceWriter::new(0, time(20), Some(time(10))).with_upload(target);
        let mut start = 0;
        while start < rows {
            if stop_after.is_some_and(|stop| start >= stop) {
                return None;
            }
            let size = (rows - start).min(50_000);
            writer.write(&incompressible_batch(start, size)).unwrap();
            start += size;
        }
        writer.finish().unwrap()
    })
    .await
    .unwrap()
}

async fn staging_objects(store: &DatasetStore, dataset: &Dataset) -> Vec<String> {
    use futures::TryStreamExt;
    let prefix = dataset.layout().prefix().clone().join("staging");
    let objects: Vec<_> = store
        .object_store()
        .list(Some(&prefix))
        .try_collect()
        .await
        .unwrap();
    let mut names: Vec<String> = objects
        .into_iter()
        .map(|o| o.location.to_string())
        .collect();
    // A local file system's listing hides the part files of unfinished uploads; look on disk.
    if let Ok(root) = store.url().to_file_path() {
        let dir = root.join(prefix.as_ref());
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for entry in entries {
                let name = entry.unwrap().file_name().to_string_lossy().into_owned();
                if name.contains('#') {
                    names.push(name);
                }
            }
        }
    }
    // Nor does S3 list unfinished multipart uploads; ask for them.
    if store.url().scheme() == "s3" {
        let endpoint = std::env::var("WEIR_TEST_S3_ENDPOINT").unwrap();
        let bucket = store.url().host_str().unwrap().to_string();
        let uploads = boto3_s3(
            &endpoint,
            "[print(u['Key']) for u in s3.list_multipart_uploads(Bucket=sys.argv[2], Prefix=sys.argv[3]).get('Uploads', [])]",
            &[&bucket, prefix.as_ref()],
        );
        names.extend(
            uploads
                .lines()
                .map(|key| format!("unfinished upload {key}")),
        );
    }
    names
}

async fn contract_large_slices_upload_while_written(store: DatasetStore) {
    let (dataset, _) = create_root_dataset(&store).await;
    let rows = 400_000;
    let mut slice = write_uploaded_slice(&dataset, rows, None).await.unwrap();
    assert!(
        slice.size > 2 * UPLOAD_PART_BYTES as u64,
        "the test file should take several parts: {} bytes",
        slice.size
    );
    assert!(
        matches!(slice.data, SliceData::Staged(_)),
        "{:?}",
        slice.data
    );
    assert_eq!(staging_objects(&store, &dataset).await.len(), 1);

    // The staged bytes are the file the hashes describe.
    let staged = dataset.slice_bytes(&slice).await.unwrap();
    assert_eq!(staged.len() as u64, slice.size);
    assert_eq!(Multihash::sha3_256(&staged), slice.physical_hash);
    let batches = read_slice(staged).unwrap();
    assert_eq!(
        batches.iter().map(RecordBatch::num_rows).sum::<usize>(),
        rows as usize
    );

    // Storing moves it under its hash; storing again changes nothing.
    dataset.put_slice(&mut slice).await.unwrap();
    dataset.put_slice(&mut slice).await.unwrap();
    assert!(matches!(slice.data, SliceData::Stored));
    let stored = dataset.get_data(&slice.physical_hash).await.unwrap();
    assert_eq!(Multihash::sha3_256(&stored), slice.physical_hash);
    assert_eq!(dataset.slice_bytes(&slice).await.unwrap(), stored);
    assert!(staging_objects(&store, &dataset).await.is_empty());

    // Small slices never start an upload.
    let small = write_uploaded_slice(&dataset, 1_000, None).await.unwrap();
    assert!(matches!(small.data, SliceData::Memory(_)));
}

async fn contract_abandoned_uploads_leave_nothing(store: DatasetStore) {
    let (dataset, _) = create_root_dataset(&store).await;
    // Dropped after several parts went out.
    assert!(
        write_uploaded_slice(&dataset, 400_000, Some(300_000))
            .await
            .is_none()
    );
    // Finished, then discarded (as a slice re-encoded after a lost commit race is).
    let slice = write_uploaded_slice(&dataset, 300_000, None).await.unwrap();
    assert!(matches!(slice.data, SliceData::Staged(_)));
    dataset.discard_staged(&slice.data).await.unwrap();
    // Discarding what is gone already is fine.
    dataset.discard_staged(&slice.data).await.unwrap();
    // The abort of the dropped upload runs in the background.
    for _ in 0..100 {
        if staging_objects(&store, &dataset).await.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(
        staging_objects(&store, &dataset).await,
        Vec::<String>::new()
    );
}

async fn contract_cached_chains_follow_new_commits(store: DatasetStore) {
    let (dataset, _) = create_root_dataset(&store).await;
    for round in 0..3 {
        append_values(&dataset, &[round], "cached").await;
        // At the head, a reload extends the cached chain; it must equal a full load.
        let cached = dataset.load_chain(None).await.unwrap();
        let head = cached.head.as_ref().unwrap().hash;
        let full = dataset.load_chain(Some(&head)).await.unwrap();
        let hashes = |chain: &weir_dataset::ChainSnapshot| {
            chain
                .blocks
                .iter()
                .map(|(hash, _)| *hash)
                .collect::<Vec<_>>()
        };
        assert_eq!(hashes(&cached), hashes(&full));
        assert_eq!(cached.state.last_offset(), full.state.last_offset());
        assert_eq!(
            cached.state.next_sequence_number(),
            full.state.next_sequence_number()
        );
    }
}

async fn contract_sweep_removes_only_unreferenced_objects(store: DatasetStore) {
    use futures::TryStreamExt;
    let (dataset, _) = create_root_dataset(&store).await;
    let stale = dataset.load_chain(None).await.unwrap();
    append_values(&dataset, &[1, 2], "kept").await;
    // A writer that lost the race: its data object and block stay behind.
    let slice = prepare_slice(&[user_batch(&[9], "lost", 10)], 0, time(20), None)
        .unwrap()
        .unwrap();
    let SliceData::Memory(bytes) = &slice.data else {
        panic!("small slices stay in memory");
    };
    dataset.put_data(bytes.clone()).await.unwrap();
    let lost = MetadataEvent::AddData(AddData {
        prev_checkpoint: None,
        prev_offset: None,
        new_data: Some(DataSlice {
            logical_hash: slice.logical_hash,
            physical_hash: slice.physical_hash,
            offset_interval: slice.offset_interval.clone(),
            size: slice.size,
        }),
        new_checkpoint: None,
        new_watermark: None,
        new_source_state: None,
        extra: None,
    });
    assert!(matches!(
        dataset
            .commit(stale.head.as_ref(), &stale.state, lost, time(20))
            .await,
        Err(CommitError::Conflict { .. })
    ));
    // And an upload that was never moved under its hash.
    let staged = write_uploaded_slice(&dataset, 300_000, None).await.unwrap();
    assert!(matches!(staged.data, SliceData::Staged(_)));

    let list = || async {
        let prefix = dataset.layout().prefix().clone();
        let mut keys: Vec<String> = store
            .object_store()
            .list(Some(&prefix))
            .map_ok(|meta| meta.location.to_string())
            .try_collect()
            .await
            .unwrap();
        keys.sort();
        keys
    };
    let before = list().await;
    // Within the grace period nothing goes.
    let report = dataset
        .sweep_unreferenced(std::time::Duration::from_secs(3600))
        .await
        .unwrap();
    assert_eq!((report.deleted, report.recent), (0, 3), "{report:?}");
    assert_eq!(list().await, before);
    let report = dataset
        .sweep_unreferenced(std::time::Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(report.deleted, 3, "{report:?}");
    // What is left is exactly what the chain refers to, plus the head and info.
    let chain = dataset.load_chain(None).await.unwrap();
    let mut expected: Vec<String> = vec![dataset.layout().head().to_string()];
    for (hash, block) in &chain.blocks {
        expected.push(dataset.layout().block(hash).to_string());
        if let MetadataEvent::AddData(add) = &block.event
            && let Some(data) = &add.new_data
        {
            expected.push(dataset.layout().data(&data.physical_hash).to_string());
        }
    }
    let left: Vec<String> = list()
        .await
        .into_iter()
        .filter(|key| !key.contains("/info/") && !key.ends_with("refs/.head.lock"))
        .collect();
    expected.sort();
    assert_eq!(left, expected);
    // And the dataset still reads.
    let session = SessionContext::new();
    let table = dataset_table(&session, &store, &dataset, None)
        .await
        .unwrap();
    session.register_table("t", table).unwrap();
    let batches = session
        .sql("SELECT sum(value) FROM t")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let total = batches[0]
        .column(0)
        .as_any()
        .downcast_ref::<Int64Array>()
        .unwrap()
        .value(0);
    assert_eq!(total, 3);

    // Engine exchange files of a step that never ended go too, once older than the grace
    // period; the datasets are untouched by that.
    let dataset_objects = list().await;
    let scratch = weir_dataset::layout::engine_scratch(store.root())
        .join("step")
        .join("data.parquet");
    store
        .object_store()
        .put(&scratch, b"left by a crashed step".to_vec().into())
        .await
        .unwrap();
    let report = store
        .sweep_unreferenced(std::time::Duration::from_secs(3600))
        .await
        .unwrap();
    assert_eq!((report.deleted, report.recent), (0, 1), "{report:?}");
    let report = store
        .sweep_unreferenced(std::time::Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(report.deleted, 1, "{report:?}");
    assert!(store.object_store().head(&scratch).await.is_err());
    assert_eq!(list().await, dataset_objects);
}

macro_rules! contract_suite {
    ($backend:ident, $make_store:expr) => {
        mod $backend {
            use super::*;

            macro_rules! case {
                ($name:ident) => {
                    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                    async fn $name() {
                        let (store, _guard) = $make_store;
                        super::$name(store).await;
                    }
                };
            }

            case!(contract_new_dataset_has_no_head);
            case!(contract_commits_build_a_valid_chain);
            case!(contract_stale_writer_gets_conflict_and_changes_nothing);
            case!(contract_first_commit_races_are_exclusive);
            case!(contract_invalid_blocks_are_rejected_before_writing);
            case!(contract_concurrent_writers_lose_nothing);
            case!(contract_slices_round_trip_and_query_as_of);
            case!(contract_tampered_blocks_are_detected);
            case!(contract_large_slices_upload_while_written);
            case!(contract_abandoned_uploads_leave_nothing);
            case!(contract_cached_chains_follow_new_commits);
            case!(contract_sweep_removes_only_unreferenced_objects);
        }
    };
}

contract_suite!(in_memory, (DatasetStore::in_memory(), ()));
contract_suite!(local_fs, {
    let dir = tempfile::tempdir().unwrap();
    (DatasetStore::local_fs(dir.path()).unwrap(), dir)
});
contract_suite!(s3, (s3_store(), ()));
