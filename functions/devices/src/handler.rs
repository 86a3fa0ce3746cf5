//! One batch of data collection requests, whatever their transport: each is checked (payload,
//! token, quota), turned into an ingest message of NDJSON records and committed through queue
//! ingest's micro-batching path (one block per dataset and batch). A redelivered request adds
//! nothing: every block names its requests in its source state.
//!
//! Metering counts what was answered: a resent request answered from the chain counts again,
//! though the dataset holds it once.
//!
//! A request's identity: with a request id, the endpoint, the id and the payload's digest (a
//! device resending an unanswered request gets its answer, not a second copy); without one,
//! the endpoint and the payload's digest, looked up only when the broker marks it redelivered
//! (a device may send the same reading twice on purpose).

use std::sync::Arc;

use sha3::Digest;
use weir_function_runtime::messages::{Disposition, MessageHandler, QueueMessage};
use weir_ingest::queue::QueueIngest;

use crate::directory::{Binding, Directory, Resolution};
use crate::meter::Meter;
use crate::protocol::{DeviceRequest, Failure, Outcome, parse_samples, records};

/// Queue ingest's source name for device requests (`weir.dev/queue/kp1`).
pub const ORIGIN: &str = "kp1";

pub struct DeviceIngest {
    pub queue: Arc<QueueIngest>,
    pub directory: Arc<dyn Directory>,
    pub meter: Arc<Meter>,
    pub max_payload_bytes: usize,
}

fn digest_hex(parts: &[&[u8]]) -> String {
    let mut hasher = sha3::Sha3_256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part);
    }
    hasher.finalize()[..16]
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// What a request became before the commit.
enum Prepared {
    Done(Outcome),
    Ready(Box<Ready>),
}

struct Ready {
    binding: Binding,
    samples: i64,
    message: QueueMessage,
}

impl DeviceIngest {
    async fn prepare(&self, request: &DeviceRequest) -> Prepared {
        let binding = match self
            .directory
            .resolve(&request.version, &request.token)
            .await
        {
            Ok(Resolution::Ok(binding)) => *binding,
            Ok(Resolution::UnknownVersion) => {
                return self.fail(
                    None,
                    Failure::new(
                        404,
                        format!("application version `{}` is unknown", request.version),
                    ),
                );
            }
            Ok(Resolution::UnknownToken) => {
                return self.fail(None, Failure::new(401, "the endpoint token is unknown"));
            }
            Ok(Resolution::Revoked) => {
                return self.fail(None, Failure::new(401, "the endpoint token is revoked"));
            }
            Ok(Resolution::OtherApplication) => {
                return self.fail(
                    None,
                    Failure::new(
                        403,
                        format!(
                            "the endpoint token belongs to another application than version `{}`",
                            request.version
                        ),
                    ),
                );
            }
            Err(error) => return Prepared::Done(Outcome::Retry(error.to_string())),
        };
        if let Some(failure) = self.meter.over_quota(&binding) {
            return self.fail(Some(&binding), failure);
        }
        let samples = match parse_samples(&request.payload, self.max_payload_bytes) {
            Ok(samples) => samples,
            Err(failure) => return self.fail(Some(&binding), failure),
        };
        let count = samples.len() as i64;
        let body = match records(
            samples,
            &binding.endpoint_id,
            binding.event_time_pointer.as_deref(),
            &chrono::Utc::now().to_rfc3339(),
        ) {
            Ok(body) => body,
            Err(failure) => return self.fail(Some(&binding), failure),
        };
        let endpoint = binding.endpoint_id.as_bytes();
        let (message_id, fresh) = match request.request_id {
            Some(id) => (
                digest_hex(&[endpoint, &id.to_be_bytes(), &request.payload]),
                false,
            ),
            None => (
                digest_hex(&[endpoint, &request.payload]),
                !request.redelivered,
            ),
        };
        let message = QueueMessage {
            message_id,
            body: body.into(),
            attributes: [
                (
                    weir_ingest::queue::message::DATASET_ATTRIBUTE.to_string(),
                    binding.dataset.clone(),
                ),
                (
                    weir_ingest::queue::message::CONTENT_TYPE_ATTRIBUTE.to_string(),
                    "application/x-ndjson".to_string(),
                ),
            ]
            .into_iter()
            .collect(),
            origin: ORIGIN.to_string(),
            fresh,
            ..QueueMessage::default()
        };
        Prepared::Ready(Box::new(Ready {
            binding,
            samples: count,
            message,
        }))
    }

    fn fail(&self, binding: Option<&Binding>, failure: Failure) -> Prepared {
        self.meter.rejected(binding, &failure);
        Prepared::Done(Outcome::Failed(failure))
    }

    /// The outcome of each request, in order.
    pub async fn handle(&self, requests: &[DeviceRequest]) -> Vec<Outcome> {
        let prepared =
            futures::future::join_all(requests.iter().map(|request| self.prepare(request))).await;
        let messages: Vec<QueueMessage> = prepared
            .iter()
            .filter_map(|prepared| match prepared {
                Prepared::Ready(ready) => Some(ready.message.clone()),
                Prepared::Done(_) => None,
            })
            .collect();
        let mut dispositions = if messages.is_empty() {
            Vec::new()
        } else {
            self.queue.handle(&messages).await
        }
        .into_iter();
        prepared
            .into_iter()
            .zip(requests)
            .map(|(prepared, request)| match prepared {
                Prepared::Done(outcome) => outcome,
                Prepared::Ready(ready) => match dispositions.next() {
                    Some(Disposition::Done) => {
                        self.meter.accepted(
                            &ready.binding,
                            ready.samples,
                            request.payload.len() as i64,
                        );
                        Outcome::Committed
                    }
                    Some(Disposition::Retry(reason)) => Outcome::Retry(reason),
                    Some(Disposition::Reject(reason)) => {
                        let failure = Failure::new(400, reason);
                        self.meter.rejected(Some(&ready.binding), &failure);
                        Outcome::Failed(failure)
                    }
                    None => Outcome::Retry("not handled".to_string()),
                },
            })
            .collect()
    }
}
