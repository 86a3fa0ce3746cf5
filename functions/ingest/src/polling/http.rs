//! `FetchStep::Url`: a GET that asks only for what changed since the recorded state
//! (`If-None-Match` / `If-Modified-Since`) and records the answer's `ETag` or `Last-Modified`.
//!
//! Every address a request connects to is checked against the policy after DNS resolution
//! (and every redirect's URL before it is followed), so a name that resolves to a private
//! address, or a public URL that redirects to one, is refused like the address itself.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::{ETAG, IF_MODIFIED_SINCE, IF_NONE_MATCH, LAST_MODIFIED};
use reqwest::{StatusCode, redirect};
use weir_dataset::polling::{PollingPolicy, is_public};
use weir_odf::{EventTimeSource, FetchStepUrl, SourceState};

use super::{Fetched, PollError, SOURCE_NAME};
use crate::error::IngestError;

pub const ETAG_STATE: &str = "odf/etag";
pub const LAST_MODIFIED_STATE: &str = "odf/last-modified";
/// The state of a source that sends neither `ETag` nor `Last-Modified`: the SHA3-256 of what it
/// sent, so an unchanged answer adds nothing.
pub const CONTENT_HASH_STATE: &str = "weir.dev/sha3-256";
const MAX_REDIRECTS: usize = 5;

/// The client polling sources use: no proxy from the environment, bounded connect and read
/// times, and the policy applied to resolved addresses and redirects.
pub fn client(policy: &PollingPolicy) -> Result<reqwest::Client, PollError> {
    let redirect_policy = policy.clone();
    reqwest::Client::builder()
        .no_proxy()
        .connect_timeout(Duration::from_secs(10))
        .read_timeout(Duration::from_secs(60))
        .user_agent(concat!("weir-ingest/", env!("CARGO_PKG_VERSION")))
        .dns_resolver(Arc::new(GuardedResolver {
            allow_private: policy.allow_private_networks,
        }))
        .redirect(redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() >= MAX_REDIRECTS {
                attempt.error(format!("more than {MAX_REDIRECTS} redirects"))
            } else if let Err(violation) = redirect_policy.check_url(attempt.url()) {
                attempt.error(format!("redirect refused: {}", violation.message))
            } else {
                attempt.follow()
            }
        }))
        .build()
        .map_err(|error| PollError::Fetch {
            location: "the HTTP client".to_string(),
            source: Box::new(error),
        })
}

/// Resolves names, keeping only the addresses the policy allows.
struct GuardedResolver {
    allow_private: bool,
}

#[derive(Debug, thiserror::Error)]
#[error(
    "`{0}` resolves only to loopback or private addresses, which this node does not fetch from"
)]
struct PrivateAddress(String);

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let host = name.as_str().to_string();
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|address| allow_private || is_public(address.ip()))
                .collect();
            if found.is_empty() {
                return Err(Box::new(PrivateAddress(host)) as Box<_>);
            }
            Ok(Box::new(found.into_iter()) as Addrs)
        })
    }
}

/// A refused redirect or address is permanent; anything else about reaching the source may pass.
fn send_error(location: &str, error: reqwest::Error) -> PollError {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(&error);
    while let Some(current) = cause {
        if let Some(refused) = current.downcast_ref::<PrivateAddress>() {
            return PollError::RefusedAddress {
                location: location.to_string(),
                reason: refused.to_string(),
            };
        }
        cause = current.source();
    }
    if error.is_redirect() {
        let mut reason = error.to_string();
        let mut cause = std::error::Error::source(&error);
        while let Some(current) = cause {
            reason = format!("{reason}: {current}");
            cause = current.source();
        }
        return PollError::RefusedAddress {
            location: location.to_string(),
            reason,
        };
    }
    PollError::Fetch {
        location: location.to_string(),
        source: Box::new(error),
    }
}

/// Fetches the URL unless the recorded state says it has not changed; `None` when it has not.
/// Bodies are bounded by `limit` bytes.
pub async fn fetch(
    client: &reqwest::Client,
    policy: &PollingPolicy,
    step: &FetchStepUrl,
    previous: Option<&SourceState>,
    limit: u64,
) -> Result<Option<Fetched>, PollError> {
    let url = url::Url::parse(&step.url).map_err(|error| PollError::Fetch {
        location: step.url.clone(),
        source: Box::new(error),
    })?;
    policy.check_url(&url)?;
    let mut request = client.get(url.clone());
    for header in step.headers.iter().flatten() {
        request = request.header(&header.name, &header.value);
    }
    match previous {
        Some(state) if state.kind == ETAG_STATE => {
            request = request.header(IF_NONE_MATCH, &state.value);
        }
        Some(state) if state.kind == LAST_MODIFIED_STATE => {
            if let Ok(time) = DateTime::parse_from_rfc3339(&state.value) {
                request = request.header(IF_MODIFIED_SINCE, time.to_utc().to_rfc2822());
            }
        }
        _ => {}
    }
    let location = url.to_string();
    let response = request
        .send()
        .await
        .map_err(|error| send_error(&location, error))?;
    let status = response.status();
    if status == StatusCode::NOT_MODIFIED {
        return Ok(None);
    }
    if !status.is_success() {
        return Err(PollError::Status {
            url: location,
            status: status.as_u16(),
        });
    }
    let header = |name| {
        response
            .headers()
            .get(name)
            .and_then(|value: &reqwest::header::HeaderValue| value.to_str().ok())
            .map(str::to_string)
    };
    let last_modified = header(LAST_MODIFIED)
        .and_then(|value| DateTime::parse_from_rfc2822(&value).ok())
        .map(|time| time.to_utc());
    let state = match (header(ETAG), last_modified) {
        (Some(etag), _) => Some(SourceState {
            source_name: SOURCE_NAME.to_string(),
            kind: ETAG_STATE.to_string(),
            value: etag,
        }),
        (None, Some(time)) => Some(SourceState {
            source_name: SOURCE_NAME.to_string(),
            kind: LAST_MODIFIED_STATE.to_string(),
            value: time.to_rfc3339(),
        }),
        (None, None) => None,
    };
    // A server that ignored the conditional request but answers with the recorded state has
    // nothing new either.
    if state.is_some() && state.as_ref() == previous {
        return Ok(None);
    }
    let event_time = match &step.event_time {
        Some(EventTimeSource::FromMetadata(_)) => last_modified.unwrap_or_else(Utc::now),
        _ => Utc::now(),
    };
    let body = response
        .bytes_stream()
        .map(|chunk| chunk.map_err(|error| IngestError::SourceUnavailable(Box::new(error))))
        .boxed();
    if state.is_some() {
        return Ok(Some(Fetched {
            body,
            state,
            event_time,
        }));
    }
    // No validator: the answer is kept in a temporary file while its hash is computed, and
    // read from there only when it differs from the last one taken.
    let (file, digest) = spool(super::bounded(body, limit)).await?;
    let state = SourceState {
        source_name: SOURCE_NAME.to_string(),
        kind: CONTENT_HASH_STATE.to_string(),
        value: digest,
    };
    if previous == Some(&state) {
        return Ok(None);
    }
    Ok(Some(Fetched {
        body: super::files::temp_file_stream(file).await?,
        state: Some(state),
        event_time,
    }))
}

/// Writes `body` to a temporary file (removed when dropped); returns it with the hex SHA3-256
/// of its bytes.
async fn spool(
    mut body: futures::stream::BoxStream<'static, Result<bytes::Bytes, IngestError>>,
) -> Result<(tempfile::NamedTempFile, String), PollError> {
    use tokio::io::AsyncWriteExt;
    let temp = tempfile::NamedTempFile::new().map_err(|error| PollError::Fetch {
        location: "a temporary file".to_string(),
        source: Box::new(error),
    })?;
    let mut file = tokio::fs::File::from_std(temp.reopen().map_err(|error| PollError::Fetch {
        location: "a temporary file".to_string(),
        source: Box::new(error),
    })?);
    let mut hasher = weir_dataset::Sha3_256::default();
    while let Some(chunk) = body.next().await {
        let chunk = chunk?;
        hasher.update(&chunk);
        file.write_all(&chunk)
            .await
            .map_err(|error| IngestError::Internal(format!("spooling a fetched body: {error}")))?;
    }
    file.flush()
        .await
        .map_err(|error| IngestError::Internal(format!("spooling a fetched body: {error}")))?;
    let digest: String = hasher
        .finish()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    Ok((temp, digest))
}
