//! Where a slice writer puts the encoded Parquet bytes: in memory, or, once the file outgrows
//! one upload part, into a multipart upload to a staging object that runs while the rest of
//! the file is encoded. Either way the bytes are hashed (SHA3-256) as they are written.
//!
//! The staging object is moved under the file's physical hash when the slice is stored
//! (`Dataset::put_slice`); only then is the hash, and so the final key, known.

use std::io::Write;
use std::sync::Arc;

use bytes::Bytes;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, WriteMultipart};
use tokio::runtime::Handle;

use crate::error::StorageError;
use crate::sha3_asm::Sha3_256;

/// Bytes per upload part (S3 takes parts of 5 MiB and more).
pub const UPLOAD_PART_BYTES: usize = 8 * 1024 * 1024;

/// Parts uploading at once before the writer waits.
const UPLOAD_PARTS_IN_FLIGHT: usize = 2;

/// A staging object a slice writer may upload a large file to, on the given runtime.
#[derive(Clone)]
pub struct SliceUploadTarget {
    pub(crate) runtime: Handle,
    pub(crate) store: Arc<dyn ObjectStore>,
    pub(crate) key: Path,
}

/// Where the bytes of a written slice are.
#[derive(Debug, Clone)]
pub enum SliceData {
    /// In memory, to be written by `Dataset::put_slice`.
    Memory(Bytes),
    /// Uploaded to a staging object, to be moved under its hash by `Dataset::put_slice`.
    Staged(Path),
    /// Stored under its physical hash.
    Stored,
}

/// The encoded file, hashed as it is written.
pub(crate) struct HashingOutput {
    hasher: Sha3_256,
    size: u64,
    buffer: Vec<u8>,
    target: Option<SliceUploadTarget>,
    upload: Option<WriteMultipart>,
    /// The first upload failure; the writer reports it instead of the I/O error it caused.
    upload_error: Option<object_store::Error>,
}

impl HashingOutput {
    pub(crate) fn new(target: Option<SliceUploadTarget>) -> Self {
        Self {
            hasher: Sha3_256::default(),
            size: 0,
            buffer: part_buffer(target.is_some()),
            target,
            upload: None,
            upload_error: None,
        }
    }

    pub(crate) fn take_upload_error(&mut self) -> Option<StorageError> {
        self.upload_error.take().map(StorageError::from)
    }

    /// Sends the buffered bytes as one part, starting the upload with the first part.
    fn upload_buffer(&mut self) -> Result<(), object_store::Error> {
        let Some(target) = &self.target else {
            return Ok(());
        };
        let runtime = target.runtime.clone();
        let _context = runtime.enter();
        if self.upload.is_none() {
            let upload = runtime.block_on(target.store.put_multipart(&target.key))?;
            self.upload = Some(WriteMultipart::new_with_chunk_size(
                upload,
                UPLOAD_PART_BYTES,
            ));
        }
        let upload = self.upload.as_mut().expect("started above");
        runtime.block_on(upload.wait_for_capacity(UPLOAD_PARTS_IN_FLIGHT))?;
        let part = std::mem::replace(&mut self.buffer, part_buffer(true));
        upload.put(Bytes::from(part));
        Ok(())
    }

    /// The file's hash, size and bytes (in memory, or the staging object they were sent to).
    pub(crate) fn finish(mut self) -> Result<([u8; 32], u64, SliceData), StorageError> {
        if let Some(error) = self.take_upload_error() {
            return Err(error);
        }
        let hash = std::mem::take(&mut self.hasher).finish();
        let (Some(mut upload), Some(target)) = (self.upload.take(), self.target.take()) else {
            let bytes = Bytes::from(std::mem::take(&mut self.buffer));
            return Ok((hash, self.size, SliceData::Memory(bytes)));
        };
        let runtime = target.runtime.clone();
        let _context = runtime.enter();
        upload.put(Bytes::from(std::mem::take(&mut self.buffer)));
        runtime.block_on(upload.finish())?;
        Ok((hash, self.size, SliceData::Staged(target.key)))
    }
}

/// A buffer for one upload part and the write that fills it, so it never grows by copying.
fn part_buffer(uploading: bool) -> Vec<u8> {
    if !uploading {
        return Vec::new();
    }
    Vec::with_capacity(UPLOAD_PART_BYTES + 2 * 1024 * 1024)
}

impl Write for HashingOutput {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        digest::Update::update(&mut self.hasher, data);
        self.size += data.len() as u64;
        self.buffer.extend_from_slice(data);
        if self.target.is_some()
            && self.buffer.len() >= UPLOAD_PART_BYTES
            && let Err(error) = self.upload_buffer()
        {
            let message = error.to_string();
            self.upload_error.get_or_insert(error);
            return Err(std::io::Error::other(format!(
                "uploading the slice failed: {message}"
            )));
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for HashingOutput {
    /// A slice that is not finished (an error, a cancelled request) leaves no staging object.
    fn drop(&mut self) {
        let (Some(upload), Some(target)) = (self.upload.take(), self.target.take()) else {
            return;
        };
        target.runtime.spawn(async move {
            if let Err(error) = upload.abort().await {
                tracing::warn!(key = %target.key, %error, "aborting a slice upload failed");
            }
        });
    }
}
