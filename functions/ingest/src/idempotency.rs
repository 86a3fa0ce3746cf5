//! `Idempotency-Key`: a retried push is answered with the first result instead of being stored
//! twice. Keys are scoped per account and dataset (the block that committed the request records
//! the key, the caller's account and the SHA3-256 of the request); the same key with a different
//! request is refused (422) rather than silently answered with the first result.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::{Stream, StreamExt};
use weir_dataset::Sha3_256;
use weir_function_runtime::Caller;
use weir_odf::{ExtraAttributes, OffsetInterval};

use crate::error::IngestError;
use crate::service::{IngestRequest, IngestResponse};
use crate::source::{
    IDEMPOTENCY_KEY_ATTRIBUTE, IDEMPOTENCY_SCOPE_ATTRIBUTE, PreviousIngest, REQUEST_HASH_ATTRIBUTE,
};

/// One keyed request: its key, its scope and the hash of everything that makes it this request
/// (format, source, event-time header and body bytes), taken as the body streams through.
pub struct Idempotency {
    pub key: String,
    pub scope: String,
    hasher: Arc<Mutex<Sha3_256>>,
}

impl Idempotency {
    pub fn of(request: &IngestRequest) -> Option<Self> {
        let key = request.idempotency_key.clone()?;
        let mut hasher = Sha3_256::default();
        let source = request.source_name.as_deref().unwrap_or("");
        let event_time = request
            .event_time
            .map(|t| t.to_rfc3339())
            .unwrap_or_default();
        for part in ["weir-push-v1", request.format.name(), source, &event_time] {
            hasher.update(part.as_bytes());
            hasher.update(&[0]);
        }
        Some(Self {
            key,
            scope: scope_of(&request.caller),
            hasher: Arc::new(Mutex::new(hasher)),
        })
    }

    /// The body, hashed as it is read.
    pub fn tap<S>(this: Option<&Self>, body: S) -> impl Stream<Item = S::Item> + Send
    where
        S: Stream<Item = Result<Bytes, IngestError>> + Send,
    {
        let hasher = this.map(|idempotency| idempotency.hasher.clone());
        body.inspect(move |chunk| {
            if let (Some(hasher), Ok(bytes)) = (&hasher, chunk) {
                hasher.lock().expect("request hasher lock").update(bytes);
            }
        })
    }

    /// The request's hash; call once the body has been read to its end.
    pub fn request_hash(&self) -> String {
        let hasher = self.hasher.lock().expect("request hasher lock").clone();
        hasher
            .finish()
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect()
    }

    /// What the AddData block records.
    pub fn extra(&self) -> ExtraAttributes {
        let mut attributes = ExtraAttributes::default();
        for (name, value) in [
            (IDEMPOTENCY_KEY_ATTRIBUTE, self.key.clone()),
            (IDEMPOTENCY_SCOPE_ATTRIBUTE, self.scope.clone()),
            (REQUEST_HASH_ATTRIBUTE, self.request_hash()),
        ] {
            attributes
                .0
                .insert(name.to_string(), serde_json::Value::String(value));
        }
        attributes
    }

    /// The first result again when this is the same request, else 422.
    pub fn replay(&self, previous: PreviousIngest) -> Result<IngestResponse, IngestError> {
        if let Some(recorded) = &previous.request_hash
            && *recorded != self.request_hash()
        {
            return Err(IngestError::IdempotencyKeyReused {
                key: self.key.clone(),
            });
        }
        Ok(IngestResponse {
            old_head: previous.old_head,
            new_head: Some(previous.new_head),
            num_records: previous
                .offset_interval
                .as_ref()
                .map_or(0, OffsetInterval::len),
            offset_interval: previous.offset_interval,
        })
    }
}

/// Reads the rest of a body (for its hash and its size limit) without decoding it.
pub async fn drain<S>(body: S) -> Result<(), IngestError>
where
    S: Stream<Item = Result<Bytes, IngestError>> + Send,
{
    let mut body = std::pin::pin!(body);
    while let Some(chunk) = body.next().await {
        chunk?;
    }
    Ok(())
}

fn scope_of(caller: &Caller) -> String {
    caller
        .account_id
        .clone()
        .unwrap_or_else(|| "anonymous".to_string())
}
