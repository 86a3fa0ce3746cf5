//! Paths of the engine protocol: URLs of objects in the node's storage, and the scratch prefix
//! that is the only place an engine may write.

use object_store::path::Path;
use weir_dataset::DatasetStore;
use weir_odf::{DatasetId, Multihash};

#[derive(Debug, thiserror::Error)]
pub enum PathError {
    #[error("`{path}` is not in this engine's storage ({base})")]
    OutsideStore { path: String, base: String },
    #[error("`{path}` is not a valid object path: {message}")]
    Invalid { path: String, message: String },
    #[error("`{path}` is not a data file of input {dataset_id}")]
    NotInputData { path: String, dataset_id: DatasetId },
    #[error("`{path}` is not a checkpoint of dataset {dataset_id}")]
    NotCheckpoint { path: String, dataset_id: DatasetId },
    #[error("`{path}` is outside the scratch prefix `{scratch}`, where engines write")]
    NotScratch { path: String, scratch: String },
}

pub fn url_of(store: &DatasetStore, key: &Path) -> String {
    match store.object_url(key) {
        Ok(url) => url.to_string(),
        // Keys are made of dataset ids, multibase hashes and fixed names, all valid in a URL.
        Err(_) => format!("{}{}", store.url(), key.as_ref()),
    }
}

pub fn key_of(store: &DatasetStore, path: &str) -> Result<Path, PathError> {
    let base = store.url().as_str();
    let rest = path
        .strip_prefix(base)
        .ok_or_else(|| PathError::OutsideStore {
            path: path.to_string(),
            base: base.to_string(),
        })?;
    Path::parse(rest).map_err(|error| PathError::Invalid {
        path: path.to_string(),
        message: error.to_string(),
    })
}

/// Objects under `<root>/.engine/` are a step's exchange files, never dataset content (the
/// store's sweep removes those of steps that never ended).
pub fn scratch_root(store: &DatasetStore) -> Path {
    weir_dataset::layout::engine_scratch(store.root())
}

/// The hash of a data file of `dataset_id`, which `path` must name exactly.
pub fn data_file(
    store: &DatasetStore,
    dataset_id: &DatasetId,
    path: &str,
) -> Result<Multihash, PathError> {
    let key = key_of(store, path)?;
    let not_data = || PathError::NotInputData {
        path: path.to_string(),
        dataset_id: *dataset_id,
    };
    let hash: Multihash = key
        .filename()
        .ok_or_else(not_data)?
        .parse()
        .map_err(|_| not_data())?;
    if store.dataset(dataset_id).layout().data(&hash) != key {
        return Err(not_data());
    }
    Ok(hash)
}

/// The hash of a checkpoint of `dataset_id`, which `path` must name exactly.
pub fn checkpoint_file(
    store: &DatasetStore,
    dataset_id: &DatasetId,
    path: &str,
) -> Result<Multihash, PathError> {
    let key = key_of(store, path)?;
    let not_checkpoint = || PathError::NotCheckpoint {
        path: path.to_string(),
        dataset_id: *dataset_id,
    };
    let hash: Multihash = key
        .filename()
        .ok_or_else(not_checkpoint)?
        .parse()
        .map_err(|_| not_checkpoint())?;
    if store.dataset(dataset_id).layout().checkpoint(&hash) != key {
        return Err(not_checkpoint());
    }
    Ok(hash)
}

/// A scratch object `path` names: readable and writable by engines.
pub fn scratch_file(store: &DatasetStore, path: &str) -> Result<Path, PathError> {
    let key = key_of(store, path)?;
    let scratch = scratch_root(store);
    if !key.prefix_matches(&scratch) || key == scratch {
        return Err(PathError::NotScratch {
            path: path.to_string(),
            scratch: url_of(store, &scratch),
        });
    }
    Ok(key)
}
