//! `FetchStep::FilesGlob` over local files and S3 prefixes: list what matches, order it (by
//! name unless `order: ByEventTime`), and take the files after the last one recorded, each as
//! its own commit whose state is the file's name (`odf/etag`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt};
use object_store::aws::AmazonS3Builder;
use object_store::{ObjectStore, ObjectStoreExt};
use tokio::io::AsyncReadExt;
use weir_dataset::polling::{GlobTarget, PollingPolicy};
use weir_odf::{FetchStepFilesGlob, SourceOrdering, SourceState};

use super::event_time::EventTimeRule;
use super::http::ETAG_STATE;
use super::{Fetched, MAX_FILES_PER_POLL, Pending, PollError, SOURCE_NAME};
use crate::error::IngestError;

const READ_CHUNK: usize = 256 * 1024;

/// The files a poll takes, in order, and how many wait for the next poll.
pub struct Listing {
    pub pending: Vec<Pending>,
    pub remaining: usize,
}

struct Found {
    /// An absolute path, or `s3://bucket/key`.
    name: String,
    event_time: DateTime<Utc>,
    open: Opener,
}

#[derive(Clone)]
enum Opener {
    Local(PathBuf),
    S3(Arc<dyn ObjectStore>, object_store::path::Path),
}

fn fetch_error(location: &str, error: impl std::error::Error + Send + Sync + 'static) -> PollError {
    PollError::Fetch {
        location: location.to_string(),
        source: Box::new(error),
    }
}

pub async fn list_new(
    policy: &PollingPolicy,
    step: &FetchStepFilesGlob,
    previous: Option<&SourceState>,
) -> Result<Listing, PollError> {
    let rule = EventTimeRule::new(step.event_time.as_ref())?;
    let now = Utc::now();
    let listed = match policy.glob_target(&step.path)? {
        GlobTarget::Local { pattern } => list_local(policy, pattern).await?,
        GlobTarget::S3 {
            bucket,
            key_pattern,
        } => list_s3(policy, &bucket, &key_pattern).await?,
    };
    let mut found = Vec::with_capacity(listed.len());
    for (name, modified, open) in listed {
        let event_time = rule.of(&name, modified, now)?;
        found.push(Found {
            name,
            event_time,
            open,
        });
    }
    let by_time = step.order == Some(SourceOrdering::ByEventTime);
    if by_time {
        found.sort_by(|a, b| (a.event_time, &a.name).cmp(&(b.event_time, &b.name)));
    } else {
        found.sort_by(|a, b| a.name.cmp(&b.name));
    }
    let last = previous
        .filter(|state| state.kind == ETAG_STATE)
        .map(|state| state.value.as_str());
    let start = match last {
        None => 0,
        Some(last) => match found.iter().position(|file| file.name == last) {
            Some(index) => index + 1,
            // The last file is gone: continue after where it would sort.
            None => {
                let last_time = rule.of(last, None, now).ok().filter(|_| by_time);
                found
                    .iter()
                    .position(|file| match last_time {
                        Some(time) => (file.event_time, file.name.as_str()) > (time, last),
                        None => file.name.as_str() > last,
                    })
                    .unwrap_or(found.len())
            }
        },
    };
    let new: Vec<Found> = found.into_iter().skip(start).collect();
    let remaining = new.len().saturating_sub(MAX_FILES_PER_POLL);
    let pending = new
        .into_iter()
        .take(MAX_FILES_PER_POLL)
        .map(|file| Box::pin(open(file)) as Pending)
        .collect();
    Ok(Listing { pending, remaining })
}

type Listed = Vec<(String, Option<DateTime<Utc>>, Opener)>;

async fn list_local(policy: &PollingPolicy, pattern: String) -> Result<Listed, PollError> {
    let policy = policy.clone();
    tokio::task::spawn_blocking(move || {
        let options = glob::MatchOptions {
            require_literal_separator: true,
            ..glob::MatchOptions::new()
        };
        let roots = policy.real_file_roots();
        let paths = glob::glob_with(&pattern, options)
            .map_err(|error| PollError::Unsupported(format!("`fetch.path`: {error}")))?;
        let mut listed = Vec::new();
        for path in paths {
            let path = path.map_err(|error| fetch_error(&pattern, error))?;
            let real = std::fs::canonicalize(&path)
                .map_err(|error| fetch_error(&path.display().to_string(), error))?;
            if !weir_dataset::polling::under(&real, &roots) {
                return Err(PollError::Refused(weir_dataset::polling::PolicyViolation {
                    field: "fetch.path",
                    message: format!(
                        "`{}` leads outside the directories polling sources may read",
                        path.display()
                    ),
                }));
            }
            let metadata = std::fs::metadata(&real)
                .map_err(|error| fetch_error(&path.display().to_string(), error))?;
            if !metadata.is_file() {
                continue;
            }
            let modified = metadata.modified().ok().map(DateTime::<Utc>::from);
            listed.push((path.display().to_string(), modified, Opener::Local(real)));
        }
        Ok(listed)
    })
    .await
    .map_err(|error| fetch_error("listing files", error))?
}

/// The part of a key pattern before its first wildcard, cut at the last `/`.
fn list_prefix(key_pattern: &str) -> &str {
    let literal = key_pattern
        .find(['*', '?', '[', '{'])
        .map_or(key_pattern, |at| &key_pattern[..at]);
    literal.rfind('/').map_or("", |at| &literal[..at])
}

async fn list_s3(
    policy: &PollingPolicy,
    bucket: &str,
    key_pattern: &str,
) -> Result<Listed, PollError> {
    let location = format!("s3://{bucket}/{key_pattern}");
    let store =
        s3_store(policy.s3.as_ref(), bucket).map_err(|error| fetch_error(&location, error))?;
    let pattern = glob::Pattern::new(key_pattern)
        .map_err(|error| PollError::Unsupported(format!("`fetch.path`: {error}")))?;
    let options = glob::MatchOptions {
        require_literal_separator: true,
        ..glob::MatchOptions::new()
    };
    let prefix = object_store::path::Path::from(list_prefix(key_pattern));
    let objects: Vec<object_store::ObjectMeta> = store
        .list(Some(&prefix))
        .try_collect()
        .await
        .map_err(|error| fetch_error(&location, error))?;
    Ok(objects
        .into_iter()
        .filter(|object| pattern.matches_with(object.location.as_ref(), options))
        .map(|object| {
            (
                format!("s3://{bucket}/{}", object.location),
                Some(object.last_modified),
                Opener::S3(store.clone(), object.location),
            )
        })
        .collect())
}

/// The objects of `bucket`, reached as the policy's S3 access says (else the `AWS_*` environment).
pub(crate) fn s3_store(
    access: Option<&weir_dataset::polling::S3Access>,
    bucket: &str,
) -> Result<Arc<dyn ObjectStore>, object_store::Error> {
    let builder = match access {
        Some(access) => weir_dataset::store::s3_builder(
            access.region.as_deref().unwrap_or("us-east-1"),
            access.endpoint.as_deref(),
            access
                .access_key_id
                .as_deref()
                .zip(access.secret_access_key.as_deref()),
            access.allow_http,
        ),
        None => AmazonS3Builder::from_env(),
    };
    Ok(Arc::new(builder.with_bucket_name(bucket).build()?))
}

async fn open(file: Found) -> Result<Fetched, PollError> {
    let state = Some(SourceState {
        source_name: SOURCE_NAME.to_string(),
        kind: ETAG_STATE.to_string(),
        value: file.name.clone(),
    });
    let body = match file.open {
        Opener::Local(path) => local_stream(&path).await?,
        Opener::S3(store, key) => store
            .get(&key)
            .await
            .map_err(|error| fetch_error(&file.name, error))?
            .into_stream()
            .map_err(|error| IngestError::SourceUnavailable(Box::new(error)))
            .boxed(),
    };
    Ok(Fetched {
        body,
        state,
        event_time: file.event_time,
    })
}

async fn local_stream(
    path: &Path,
) -> Result<futures::stream::BoxStream<'static, Result<Bytes, IngestError>>, PollError> {
    let file = tokio::fs::File::open(path)
        .await
        .map_err(|error| fetch_error(&path.display().to_string(), error))?;
    Ok(read_stream(file, ()))
}

/// The bytes of a temporary file, which is removed once the stream is dropped.
pub(crate) async fn temp_file_stream(
    temp: tempfile::NamedTempFile,
) -> Result<futures::stream::BoxStream<'static, Result<Bytes, IngestError>>, PollError> {
    let file = tokio::fs::File::open(temp.path())
        .await
        .map_err(|error| fetch_error("a temporary file", error))?;
    Ok(read_stream(file, temp))
}

/// Reads `file` in chunks; `keep` lives as long as the stream (a temporary file's guard).
fn read_stream<K: Send + 'static>(
    file: tokio::fs::File,
    keep: K,
) -> futures::stream::BoxStream<'static, Result<Bytes, IngestError>> {
    futures::stream::try_unfold((file, keep), |(mut file, keep)| async move {
        let mut buffer = vec![0; READ_CHUNK];
        let read = file
            .read(&mut buffer)
            .await
            .map_err(|error| IngestError::SourceUnavailable(Box::new(error)))?;
        if read == 0 {
            return Ok(None);
        }
        buffer.truncate(read);
        Ok(Some((Bytes::from(buffer), (file, keep))))
    })
    .boxed()
}

#[cfg(test)]
mod tests {
    #[test]
    fn listing_starts_at_the_literal_directory_of_the_pattern() {
        assert_eq!(super::list_prefix("in/2024/*.csv"), "in/2024");
        assert_eq!(super::list_prefix("in/data-*.csv"), "in");
        assert_eq!(super::list_prefix("*.csv"), "");
        assert_eq!(super::list_prefix("in/exact.csv"), "in");
    }
}
