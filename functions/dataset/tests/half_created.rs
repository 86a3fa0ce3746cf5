//! Hardening: a creation killed between reserving the name and committing the first blocks
//! does not block the name forever. The repair rolls it back; a create over it succeeds once the
//! grace period has passed; a creation in progress (a young reservation) is left alone.

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use chrono::Utc;
use object_store::ObjectStoreExt;
use object_store::path::Path;
use weir_dataset::{CreateDatasetError, DatasetStore};
use weir_odf::{DatasetId, DatasetKind, MetadataBlock, MetadataEvent, Seed};

const MANIFEST: &str =
    "kind: DatasetSnapshot\nversion: 1\ncontent:\n  name: temps\n  kind: Root\n  metadata: []\n";

/// What a creator killed before its head swap leaves: the name reserved, `info/alias` and a
/// block, but no `refs/head`.
async fn leave_half_created(store: &DatasetStore) -> DatasetId {
    let id = DatasetId::new_generated().1;
    let alias_key = store
        .root()
        .clone()
        .join(".aliases")
        .join("alice")
        .join("temps");
    store
        .object_store()
        .put(&alias_key, Bytes::from(id.to_did_string()).into())
        .await
        .unwrap();
    let dataset = store.dataset(&id);
    dataset
        .put_info("alias", Bytes::from("alice/temps"))
        .await
        .unwrap();
    let block = MetadataBlock {
        system_time: Utc::now(),
        prev_block_hash: None,
        sequence_number: 0,
        event: MetadataEvent::Seed(Seed {
            dataset_id: id,
            dataset_kind: DatasetKind::Root,
        }),
    };
    let (bytes, hash) = weir_odf::encode_and_hash_block(&block);
    store
        .object_store()
        .put(&dataset.layout().block(&hash), Bytes::from(bytes).into())
        .await
        .unwrap();
    id
}

fn age(dir: &std::path::Path, by: Duration) {
    let file = std::fs::File::options()
        .write(true)
        .open(dir.join(".aliases/alice/temps"))
        .unwrap();
    file.set_modified(SystemTime::now() - by).unwrap();
}

async fn create(store: &DatasetStore) -> Result<(), CreateDatasetError> {
    let definition = weir_odf::manifest::parse_dataset_manifest(MANIFEST).unwrap();
    store
        .create_dataset(&"alice".parse().unwrap(), definition, Utc::now())
        .await
        .map(drop)
}

#[tokio::test]
async fn an_abandoned_creation_frees_its_name() {
    let dir = tempfile::tempdir().unwrap();
    let store = DatasetStore::local_fs(dir.path()).unwrap();
    let orphan = leave_half_created(&store).await;

    // Young: it may be a creation in progress, so the name stays taken.
    assert!(matches!(
        create(&store).await,
        Err(CreateDatasetError::NameTaken { .. })
    ));
    assert!(
        store
            .roll_back_half_created(weir_dataset::registry::HALF_CREATED_GRACE)
            .await
            .unwrap()
            .is_empty()
    );

    // Old enough: a create over it succeeds, and the orphan's objects are gone.
    age(dir.path(), Duration::from_secs(120));
    create(&store).await.unwrap();
    let id = store
        .resolve_alias(&"alice".parse().unwrap(), &"temps".parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_ne!(id, orphan);
    assert!(store.dataset(&id).head().await.unwrap().is_some());
    let prefix: Path = store.dataset(&orphan).layout().prefix().clone();
    let left: Vec<_> =
        futures::TryStreamExt::try_collect::<Vec<_>>(store.object_store().list(Some(&prefix)))
            .await
            .unwrap();
    assert!(left.is_empty(), "{left:?}");
}

#[tokio::test]
async fn the_repair_rolls_back_abandoned_creations_only() {
    let dir = tempfile::tempdir().unwrap();
    let store = DatasetStore::local_fs(dir.path()).unwrap();
    leave_half_created(&store).await;
    let definition =
        weir_odf::manifest::parse_dataset_manifest(&MANIFEST.replace("temps", "whole")).unwrap();
    store
        .create_dataset(&"alice".parse().unwrap(), definition, Utc::now())
        .await
        .unwrap();
    let freed = store.roll_back_half_created(Duration::ZERO).await.unwrap();
    assert_eq!(
        freed.iter().map(ToString::to_string).collect::<Vec<_>>(),
        vec!["alice/temps"]
    );
    assert!(
        store
            .resolve_alias(&"alice".parse().unwrap(), &"whole".parse().unwrap())
            .await
            .unwrap()
            .is_some()
    );
    create(&store).await.unwrap();
}
