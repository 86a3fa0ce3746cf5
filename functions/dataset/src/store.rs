//! A dataset repository over `object_store`: where datasets live and how their head reference is
//! swapped atomically.
//!
//! Commit protocol: data and checkpoint objects first, then the block, then a compare-and-swap of
//! `refs/head`. Readers only follow `refs/head`, so nothing of a commit is visible until the swap
//! succeeds, and objects left by a losing writer are unreferenced garbage.

use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion};
use url::Url;
use weir_odf::{DatasetId, Multihash};

use crate::dataset::Dataset;
use crate::error::StorageError;

/// How `refs/head` is compared-and-swapped.
#[derive(Debug, Clone)]
pub(crate) enum HeadSwap {
    /// The store supports conditional puts (`If-None-Match: *` / `If-Match: <etag>`): S3, memory.
    ConditionalPut,
    /// Local file system: an exclusive file lock around read-compare-rename of the head file.
    LocalFileLock { root_dir: PathBuf },
}

/// Connection settings of an S3 (or S3-compatible) bucket.
#[derive(Debug, Clone)]
pub struct S3Settings {
    pub bucket: String,
    pub prefix: String,
    pub region: String,
    pub endpoint: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub allow_http: bool,
}

/// An S3 client for `region`, at `endpoint` (S3-compatible servers) when given, with static
/// `(access key id, secret)` credentials when given (the environment is not read: settings are
/// explicit).
pub fn s3_builder(
    region: &str,
    endpoint: Option<&str>,
    credentials: Option<(&str, &str)>,
    allow_http: bool,
) -> AmazonS3Builder {
    let mut builder = AmazonS3Builder::new()
        .with_region(region)
        .with_allow_http(allow_http);
    if let Some(endpoint) = endpoint {
        builder = builder.with_endpoint(endpoint);
    }
    if let Some((key, secret)) = credentials {
        builder = builder
            .with_access_key_id(key)
            .with_secret_access_key(secret);
    }
    builder
}

pub(crate) struct StoreInner {
    pub object_store: Arc<dyn ObjectStore>,
    pub root: Path,
    pub head_swap: HeadSwap,
    pub url: Url,
    /// The store DataFusion should resolve `url` with; `None` for local files, which DataFusion
    /// reads through its default `file://` store.
    pub datafusion_store: Option<Arc<dyn ObjectStore>>,
    /// Commit lanes and cached chains of the datasets this store's users write and read.
    pub lanes: crate::lanes::DatasetLanes,
}

/// A place holding many datasets, each under `<root>/<did>/`.
#[derive(Clone)]
pub struct DatasetStore {
    inner: Arc<StoreInner>,
}

/// A head reference as read from storage: the block hash and the object version to swap from.
#[derive(Debug, Clone)]
pub struct HeadRef {
    pub hash: Multihash,
    pub(crate) version: UpdateVersion,
}

impl DatasetStore {
    fn new(object_store: Arc<dyn ObjectStore>, root: Path, head_swap: HeadSwap, url: Url) -> Self {
        let datafusion_store = match head_swap {
            HeadSwap::ConditionalPut => Some(object_store.clone()),
            HeadSwap::LocalFileLock { .. } => None,
        };
        Self {
            inner: Arc::new(StoreInner {
                object_store,
                root,
                head_swap,
                url,
                datafusion_store,
                lanes: Default::default(),
            }),
        }
    }

    /// The object store to register with DataFusion under `url()`, if DataFusion lacks it.
    pub fn datafusion_object_store(&self) -> Option<Arc<dyn ObjectStore>> {
        self.inner.datafusion_store.clone()
    }

    pub fn in_memory() -> Self {
        let url = Url::parse("memory://weir/").expect("static url parses");
        Self::new(
            Arc::new(InMemory::new()),
            Path::default(),
            HeadSwap::ConditionalPut,
            url,
        )
    }

    pub fn local_fs(dir: impl Into<PathBuf>) -> Result<Self, StorageError> {
        let dir: PathBuf = dir.into();
        std::fs::create_dir_all(&dir)?;
        let dir = dir.canonicalize()?;
        let object_store = LocalFileSystem::new_with_prefix(&dir)?;
        let url = Url::from_directory_path(&dir).map_err(|()| {
            StorageError::Io(std::io::Error::other(format!(
                "cannot express {} as a url",
                dir.display()
            )))
        })?;
        Ok(Self::new(
            Arc::new(object_store),
            Path::default(),
            HeadSwap::LocalFileLock { root_dir: dir },
            url,
        ))
    }

    pub fn s3(settings: &S3Settings) -> Result<Self, StorageError> {
        let object_store = s3_builder(
            &settings.region,
            settings.endpoint.as_deref(),
            settings
                .access_key_id
                .as_deref()
                .zip(settings.secret_access_key.as_deref()),
            settings.allow_http,
        )
        .with_bucket_name(&settings.bucket)
        .with_conditional_put(object_store::aws::S3ConditionalPut::ETagMatch)
        .build()?;
        let url = Url::parse(&format!("s3://{}/", settings.bucket)).map_err(|error| {
            StorageError::Io(std::io::Error::other(format!(
                "invalid bucket name: {error}"
            )))
        })?;
        let root = Path::from(settings.prefix.as_str());
        Ok(Self::new(
            Arc::new(object_store),
            root,
            HeadSwap::ConditionalPut,
            url,
        ))
    }

    pub fn object_store(&self) -> Arc<dyn ObjectStore> {
        self.inner.object_store.clone()
    }

    /// Base URL under which DataFusion should register `object_store()`.
    pub fn url(&self) -> &Url {
        &self.inner.url
    }

    pub fn root(&self) -> &Path {
        &self.inner.root
    }

    /// The URL of the object at `key`, under `url()`: how DataFusion and engines name it.
    pub fn object_url(&self, key: &Path) -> Result<Url, url::ParseError> {
        self.inner.url.join(&format!("./{}", key.as_ref()))
    }

    pub fn dataset(&self, dataset_id: &DatasetId) -> Dataset {
        Dataset::new(self.inner.clone(), *dataset_id)
    }

    /// Datasets that have a head reference (created and committed at least once).
    pub async fn list_datasets(&self) -> Result<Vec<DatasetId>, StorageError> {
        let listing = self
            .inner
            .object_store
            .list_with_delimiter(Some(&self.inner.root))
            .await?;
        let mut ids = Vec::new();
        for prefix in listing.common_prefixes {
            let Some(name) = prefix.filename() else {
                continue;
            };
            let Ok(id) = name.parse::<DatasetId>() else {
                continue;
            };
            if self.dataset(&id).head().await?.is_some() {
                ids.push(id);
            }
        }
        Ok(ids)
    }
}

impl StoreInner {
    pub async fn get_bytes(&self, key: &Path) -> Result<Bytes, StorageError> {
        match self.object_store.get(key).await {
            Ok(result) => Ok(result.bytes().await?),
            Err(object_store::Error::NotFound { .. }) => Err(StorageError::NotFound {
                key: key.to_string(),
            }),
            Err(error) => Err(error.into()),
        }
    }

    /// Writes a content-addressed object. Rewriting the same key writes the same bytes, so a
    /// plain overwrite is safe and idempotent.
    pub async fn put_content_addressed(
        &self,
        key: &Path,
        bytes: Bytes,
    ) -> Result<(), StorageError> {
        self.object_store.put(key, PutPayload::from(bytes)).await?;
        Ok(())
    }

    pub async fn read_head(&self, key: &Path) -> Result<Option<HeadRef>, StorageError> {
        let result = match self.object_store.get(key).await {
            Ok(result) => result,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(error) => return Err(error.into()),
        };
        let version = UpdateVersion {
            e_tag: result.meta.e_tag.clone(),
            version: result.meta.version.clone(),
        };
        let bytes = result.bytes().await?;
        let content = String::from_utf8_lossy(&bytes).trim().to_string();
        let hash = content
            .parse()
            .map_err(|_| StorageError::InvalidHead { content })?;
        Ok(Some(HeadRef { hash, version }))
    }

    /// Swaps the head from `expected` to `new`. Returns the new head with the version a
    /// following swap must match, or `None` when another writer got there first.
    pub async fn swap_head(
        &self,
        key: &Path,
        expected: Option<&HeadRef>,
        new: &Multihash,
    ) -> Result<Option<HeadRef>, StorageError> {
        let payload = PutPayload::from(Bytes::from(new.to_multibase()));
        match &self.head_swap {
            HeadSwap::ConditionalPut => {
                let mode = match expected {
                    None => PutMode::Create,
                    Some(head) => PutMode::Update(head.version.clone()),
                };
                let options = PutOptions {
                    mode,
                    ..Default::default()
                };
                match self.object_store.put_opts(key, payload, options).await {
                    Ok(result) => Ok(Some(HeadRef {
                        hash: *new,
                        version: UpdateVersion {
                            e_tag: result.e_tag,
                            version: result.version,
                        },
                    })),
                    Err(object_store::Error::AlreadyExists { .. })
                    | Err(object_store::Error::Precondition { .. }) => Ok(None),
                    Err(error) => Err(error.into()),
                }
            }
            HeadSwap::LocalFileLock { root_dir } => {
                let file = root_dir.join(key.as_ref());
                let expected = expected.map(|head| head.hash);
                let new = *new;
                let swapped =
                    tokio::task::spawn_blocking(move || swap_local_head(&file, expected, &new))
                        .await
                        .map_err(|error| StorageError::Io(std::io::Error::other(error)))??;
                // The local swap compares hashes under a lock; it needs no object version.
                Ok(swapped.then_some(HeadRef {
                    hash: new,
                    version: UpdateVersion {
                        e_tag: None,
                        version: None,
                    },
                }))
            }
        }
    }
}

/// Read-compare-replace of a head file under an exclusive lock on a sibling lock file. The new
/// content is written to a temporary file and renamed over the head, so readers never see a
/// partially written head.
fn swap_local_head(
    file: &std::path::Path,
    expected: Option<Multihash>,
    new: &Multihash,
) -> Result<bool, StorageError> {
    let dir = file
        .parent()
        .ok_or_else(|| std::io::Error::other("head file has no parent"))?;
    std::fs::create_dir_all(dir)?;
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(".head.lock"))?;
    lock.lock()?;
    let current = match std::fs::read_to_string(file) {
        Ok(content) => Some(
            content
                .trim()
                .parse::<Multihash>()
                .map_err(|_| StorageError::InvalidHead { content })?,
        ),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => None,
        Err(error) => return Err(error.into()),
    };
    if current != expected {
        return Ok(false);
    }
    let temporary = dir.join(format!(".head.{}.tmp", std::process::id()));
    std::fs::write(&temporary, new.to_multibase())?;
    std::fs::File::open(&temporary)?.sync_all()?;
    std::fs::rename(&temporary, file)?;
    Ok(true)
}
