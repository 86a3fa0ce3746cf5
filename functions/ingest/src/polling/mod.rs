//! Polling ingest: a root dataset's `SetPollingSource` fetched by the ingest function when its
//! flow says so, through the same read, merge and commit steps as a push.
//!
//! The source's progress lives in the chain (`AddData.newSourceState`, source `default`), so a
//! poll after a crash, on another replica or on another ODF node resumes where the last commit
//! left off: an unchanged URL (same ETag or Last-Modified, or a 304) adds nothing, and each file
//! of a glob is committed once, in order, with its name as the state.

mod event_time;
pub(crate) mod files;
mod http;
pub mod task;

use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use futures::stream::BoxStream;
use serde::Serialize;
use weir_dataset::polling::{PolicyViolation, PollingPolicy};
use weir_dataset::{ChainSnapshot, Dataset};
use weir_function_runtime::Caller;
use weir_odf::{
    DatasetId, FetchStep, MetadataEvent, Multihash, ReadStep, SetPollingSource, SourceState,
};

use crate::error::IngestError;
use crate::read::MediaFormat;
use crate::service::{Committer, IngestContext, SourceSteps};

/// The `sourceName` of a polling source's state (a dataset has at most one polling source).
pub const SOURCE_NAME: &str = "default";
/// Files of a glob taken by one poll at most; the rest wait for the next.
pub const MAX_FILES_PER_POLL: usize = 1000;

#[derive(Debug, thiserror::Error)]
pub enum PollError {
    #[error("dataset {0} not found")]
    DatasetNotFound(String),
    #[error("dataset has no active polling source")]
    NoPollingSource,
    #[error("the polling source is refused: {0}")]
    Refused(#[from] PolicyViolation),
    /// A redirect or a resolved address the policy does not allow.
    #[error("fetching {location} was refused: {reason}")]
    RefusedAddress { location: String, reason: String },
    #[error("not supported: {0}")]
    Unsupported(String),
    /// The source answered, but not with data (4xx, or a 5xx / 429 that may pass).
    #[error("{url} answered HTTP {status}")]
    Status { url: String, status: u16 },
    /// The source could not be reached or read.
    #[error("fetching {location} failed: {source}")]
    Fetch {
        location: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error(transparent)]
    Ingest(#[from] IngestError),
}

impl PollError {
    /// Whether polling again later, unchanged, may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Status { status, .. } => matches!(status, 408 | 429 | 500..),
            Self::Fetch { .. } => true,
            Self::Ingest(error) => error.is_retryable(),
            Self::DatasetNotFound(_)
            | Self::NoPollingSource
            | Self::Refused(_)
            | Self::RefusedAddress { .. }
            | Self::Unsupported(_) => false,
        }
    }

    /// A short name for the task outcome.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::DatasetNotFound(_) | Self::NoPollingSource => "definition",
            Self::Refused(_) | Self::RefusedAddress { .. } => "refused",
            Self::Unsupported(_) => "unsupported",
            Self::Status { .. } | Self::Fetch { .. } => "source",
            Self::Ingest(error) if error.is_retryable() => "commit",
            Self::Ingest(_) => "data",
        }
    }
}

/// What one poll did.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct PollOutcome {
    pub old_head: Option<Multihash>,
    pub new_head: Option<Multihash>,
    /// Records added by this poll.
    pub num_records: u64,
    /// Blocks with data committed (one per file of a glob).
    pub commits: u32,
    /// The source had nothing new (304, same ETag, no new file).
    pub up_to_date: bool,
    /// Files of a glob left for the next poll.
    pub files_remaining: usize,
    pub source_state: Option<SourceState>,
}

/// One thing fetched: its bytes as they arrive, the state to record once they are committed,
/// and the event time of records that carry none.
pub(crate) struct Fetched {
    pub body: BoxStream<'static, Result<Bytes, IngestError>>,
    pub state: Option<SourceState>,
    pub event_time: DateTime<Utc>,
}

/// A fetch that starts when awaited (files are opened one after the other's commit).
pub(crate) type Pending =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<Fetched, PollError>> + Send>>;

/// Polls root datasets' sources. Built once per cold start of the ingest function.
pub struct Poller {
    context: Arc<IngestContext>,
    policy: PollingPolicy,
    http: reqwest::Client,
    /// Who the commits are reported as (a deployed executor's service token).
    caller: Caller,
}

impl Poller {
    pub fn new(context: Arc<IngestContext>, policy: PollingPolicy) -> Result<Self, PollError> {
        let http = http::client(&policy)?;
        Ok(Self {
            context,
            policy,
            http,
            caller: Caller::anonymous(),
        })
    }

    /// Reports commits to the control plane as `caller`.
    pub fn with_caller(mut self, caller: Caller) -> Self {
        self.caller = caller;
        self
    }

    pub fn caller(&self) -> &Caller {
        &self.caller
    }

    /// Fetches what is new at the dataset's polling source and commits it.
    pub async fn poll(&self, id: &DatasetId) -> Result<PollOutcome, PollError> {
        let dataset = self.context.store.dataset(id);
        let chain = dataset.load_chain(None).await.map_err(IngestError::from)?;
        if chain.head.is_none() {
            return Err(PollError::DatasetNotFound(id.to_did_string()));
        }
        let source = polling_source(&chain)?.clone();
        self.policy.check_fetch(&source.fetch)?;
        if let Some(prepare) = &source.prepare
            && !prepare.is_empty()
        {
            return Err(PollError::Unsupported(
                "`prepare` steps (decompress, pipe) of polling sources".to_string(),
            ));
        }
        let format = format_of(&source.read)?;
        let steps = SourceSteps {
            read: source.read.clone(),
            preprocess: source.preprocess.clone(),
            merge: source.merge.clone(),
        };
        let mut outcome = PollOutcome {
            old_head: chain.head.as_ref().map(|head| head.hash),
            new_head: chain.head.as_ref().map(|head| head.hash),
            ..PollOutcome::default()
        };
        let previous = progress(&chain.blocks).cloned();
        let fetches = match &source.fetch {
            FetchStep::Url(step) => {
                if step.cache.is_some() && previous.is_some() {
                    // Cached forever: fetched once, never again.
                    outcome.up_to_date = true;
                    return Ok(outcome);
                }
                let limit = self.context.config.max_body_bytes;
                match http::fetch(&self.http, &self.policy, step, previous.as_ref(), limit).await? {
                    Some(fetched) => vec![Box::pin(async move { Ok(fetched) }) as Pending],
                    None => Vec::new(),
                }
            }
            FetchStep::FilesGlob(step) => {
                let listing = files::list_new(&self.policy, step, previous.as_ref()).await?;
                outcome.files_remaining = listing.remaining;
                listing.pending
            }
            other => {
                return Err(PollError::Unsupported(format!(
                    "{} polling sources",
                    fetch_kind(other)
                )));
            }
        };
        if fetches.is_empty() {
            outcome.up_to_date = true;
            return Ok(outcome);
        }
        let caller = &self.caller;
        let mut chain = chain;
        let limit = self.context.config.max_body_bytes;
        for pending in fetches {
            let fetched = pending.await?;
            let body = bounded(fetched.body, limit);
            let schema = crate::source::push_target(&chain)?.schema;
            let committer = Committer {
                caller,
                idempotency: None,
                source_state: fetched.state.clone(),
            };
            let response = self
                .context
                .ingest_records(
                    &dataset,
                    (chain, schema),
                    &steps,
                    (format, fetched.event_time),
                    body,
                    committer,
                )
                .await?;
            if response.new_head != outcome.new_head {
                outcome.commits += 1;
            }
            outcome.num_records += response.num_records;
            outcome.new_head = response.new_head;
            outcome.source_state = fetched.state;
            chain = reload(&dataset).await?;
        }
        outcome.up_to_date = outcome.commits == 0;
        Ok(outcome)
    }
}

/// Fails a body once it passes `limit` bytes (the function's `max_body_bytes`, as for
/// pushes): a source does not fill storage or memory by itself.
pub(super) fn bounded(
    body: BoxStream<'static, Result<Bytes, IngestError>>,
    limit: u64,
) -> BoxStream<'static, Result<Bytes, IngestError>> {
    let mut received = 0u64;
    body.map(move |chunk| {
        let chunk = chunk?;
        received += chunk.len() as u64;
        if received > limit {
            return Err(IngestError::TooLarge { limit });
        }
        Ok(chunk)
    })
    .boxed()
}

async fn reload(dataset: &Dataset) -> Result<ChainSnapshot, PollError> {
    Ok(dataset.load_chain(None).await.map_err(IngestError::from)?)
}

/// What the active polling source took last: the newest state recorded after the latest
/// `SetPollingSource` (a changed source starts from its beginning, not from where the old one
/// stopped). `blocks` are newest first.
fn progress(blocks: &[(Multihash, weir_odf::MetadataBlock)]) -> Option<&SourceState> {
    for (_, block) in blocks {
        match &block.event {
            MetadataEvent::SetPollingSource(_) => return None,
            MetadataEvent::AddData(add) => {
                if let Some(state) = add
                    .new_source_state
                    .as_ref()
                    .filter(|state| state.source_name == SOURCE_NAME)
                {
                    return Some(state);
                }
            }
            _ => {}
        }
    }
    None
}

/// The active polling source: the latest `SetPollingSource`, unless disabled after it.
fn polling_source(chain: &ChainSnapshot) -> Result<&SetPollingSource, PollError> {
    for (_, block) in &chain.blocks {
        match &block.event {
            MetadataEvent::SetPollingSource(source) => return Ok(source),
            MetadataEvent::DisablePollingSource(_) => break,
            _ => {}
        }
    }
    Err(PollError::NoPollingSource)
}

fn format_of(read: &ReadStep) -> Result<MediaFormat, PollError> {
    match read {
        ReadStep::Csv(_) => Ok(MediaFormat::Csv),
        ReadStep::Json(step) if step.sub_path.is_none() => Ok(MediaFormat::Json),
        ReadStep::NdJson(_) => Ok(MediaFormat::NdJson),
        ReadStep::GeoJson(_) => Ok(MediaFormat::GeoJson),
        ReadStep::Parquet(_) => Ok(MediaFormat::Parquet),
        ReadStep::Json(_) => Err(PollError::Unsupported(
            "`read.subPath` of a Json read step".to_string(),
        )),
        ReadStep::NdGeoJson(_) | ReadStep::EsriShapefile(_) => Err(PollError::Unsupported(
            "NdGeoJson and EsriShapefile read steps".to_string(),
        )),
    }
}

fn fetch_kind(fetch: &FetchStep) -> &'static str {
    match fetch {
        FetchStep::Url(_) => "Url",
        FetchStep::FilesGlob(_) => "FilesGlob",
        FetchStep::Container(_) => "Container",
        FetchStep::Mqtt(_) => "Mqtt",
        FetchStep::EthereumLogs(_) => "EthereumLogs",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use weir_odf::{AddData, FetchStepUrl, MergeStrategyAppend, MetadataBlock, ReadStepNdJson};

    fn block(event: MetadataEvent) -> (Multihash, MetadataBlock) {
        (
            Multihash::new(weir_odf::HashAlgorithm::Sha3_256, [0; 32]),
            MetadataBlock {
                system_time: chrono::Utc::now(),
                prev_block_hash: None,
                sequence_number: 0,
                event,
            },
        )
    }

    fn state(value: &str) -> MetadataEvent {
        MetadataEvent::AddData(AddData {
            prev_checkpoint: None,
            prev_offset: None,
            new_data: None,
            new_checkpoint: None,
            new_watermark: None,
            new_source_state: Some(SourceState {
                source_name: SOURCE_NAME.to_string(),
                kind: "odf/etag".to_string(),
                value: value.to_string(),
            }),
            extra: None,
        })
    }

    fn source(url: &str) -> MetadataEvent {
        MetadataEvent::SetPollingSource(SetPollingSource {
            fetch: FetchStep::Url(FetchStepUrl {
                url: url.to_string(),
                event_time: None,
                cache: None,
                headers: None,
            }),
            prepare: None,
            read: ReadStep::NdJson(ReadStepNdJson {
                ddl_schema: None,
                date_format: None,
                encoding: None,
                timestamp_format: None,
                schema: None,
            }),
            preprocess: None,
            merge: weir_odf::MergeStrategy::Append(MergeStrategyAppend {}),
        })
    }

    #[test]
    fn a_changed_source_starts_from_its_beginning() {
        // Newest first: the source changed after "v2" was taken.
        let changed = [
            block(source("https://b.example/")),
            block(state("v2")),
            block(source("https://a.example/")),
        ];
        assert!(progress(&changed).is_none());
        let taken = [
            block(state("w1")),
            block(source("https://b.example/")),
            block(state("v2")),
        ];
        assert_eq!(progress(&taken).map(|s| s.value.as_str()), Some("w1"));
    }
}
