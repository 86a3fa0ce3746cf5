//! Queue ingest: messages from NATS JetStream, SQS (Lambda events or long polling) and
//! CloudEvents over HTTP, committed into root datasets exactly once
//! (`docs/protocols/ingest-messages.md`).
//!
//! A batch of messages is grouped per dataset (order kept within each), and each group becomes
//! as few blocks as its records allow: one, unless the dataset has no schema yet and the
//! messages' inferred schemas differ. A message that can never be ingested (unknown dataset,
//! forbidden, malformed) is rejected with the reason, alone: the rest of its batch is committed.
//! Every block names the messages it holds (`ids`), so a redelivered message adds nothing.

pub mod ids;
pub mod message;
pub mod objects;
mod prepare;

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Duration as ChronoDuration, Utc};
use serde::Deserialize;
use weir_function_runtime::Caller;
use weir_function_runtime::jetstream::JetStreamConsumerConfig;
use weir_function_runtime::messages::{Disposition, MessageHandler, QueueMessage};

use crate::error::IngestError;
use crate::service::{Committer, IngestContext, load_chain};
use crate::source::push_target;
use ids::MessageKey;
use message::{IngestMessage, Target};

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QueueIngestConfig {
    /// The token whose account queue ingest writes as: messages for datasets it may not write
    /// are dead-lettered as forbidden. Without one, the function's open access applies.
    pub token: Option<String>,
    /// NATS subjects are `<subject_prefix>.<account>.<dataset>[.<source>]`.
    pub subject_prefix: String,
    /// How far back a message id without a send time is looked for among committed blocks.
    pub dedup_window_seconds: u64,
    /// A JetStream consumer to run (in the binary's HTTP mode and under `weir up`).
    pub jetstream: Option<JetStreamConsumerConfig>,
    /// An SQS queue to long-poll (in the binary's HTTP mode and under `weir up`; a Lambda is
    /// fed by its event source mapping instead).
    pub sqs: Option<weir_function_runtime::sqs::SqsConsumerConfig>,
    /// Where objects announced by S3 notifications go, by bucket and key prefix.
    pub objects: Vec<objects::ObjectRule>,
    /// CloudEvents without an `Authorization` header are written as `token`'s identity (Knative
    /// Eventing in a cluster whose network policy admits only the broker); otherwise they are
    /// anonymous. Events with a bearer token are always written as their caller.
    pub trust_unauthenticated_events: bool,
    /// CloudEvents arriving together are committed together: up to this many ...
    pub max_batch_messages: usize,
    /// ... waiting at most this long for more.
    pub max_batch_wait_millis: u64,
}

impl Default for QueueIngestConfig {
    fn default() -> Self {
        Self {
            token: None,
            subject_prefix: "weir.ingest".to_string(),
            dedup_window_seconds: 7 * 24 * 3600,
            jetstream: None,
            sqs: None,
            objects: Vec::new(),
            trust_unauthenticated_events: false,
            max_batch_messages: 1000,
            max_batch_wait_millis: 20,
        }
    }
}

/// Margin for clocks: a block committed this long before a message was sent may still hold it.
const CLOCK_SKEW_MINUTES: i64 = 10;

/// The handler of ingest messages, whatever their transport.
pub struct QueueIngest {
    context: Arc<IngestContext>,
    caller: Caller,
    config: QueueIngestConfig,
}

impl QueueIngest {
    /// Authenticates the configured identity once.
    pub async fn new(
        context: Arc<IngestContext>,
        config: QueueIngestConfig,
    ) -> Result<Self, String> {
        let caller = match &config.token {
            Some(token) => context
                .access
                .authenticate(Some(&format!("Bearer {token}")))
                .await
                .map_err(|error| format!("queue ingest identity: {error}"))?,
            None => Caller::anonymous(),
        };
        Ok(Self::with_caller(context, config, caller))
    }

    pub fn with_caller(
        context: Arc<IngestContext>,
        config: QueueIngestConfig,
        caller: Caller,
    ) -> Self {
        Self {
            context,
            caller,
            config,
        }
    }

    pub fn config(&self) -> &QueueIngestConfig {
        &self.config
    }
}

/// `POST /events`: CloudEvents into queue ingest, batched as configured.
pub fn cloudevents_router(queue: Arc<QueueIngest>) -> axum::Router {
    let combiner = weir_function_runtime::cloudevents::Combiner::spawn(
        queue.clone(),
        queue.config.max_batch_messages,
        std::time::Duration::from_millis(queue.config.max_batch_wait_millis),
    );
    let unauthenticated = if queue.config.trust_unauthenticated_events {
        weir_function_runtime::cloudevents::Unauthenticated::AsConsumer
    } else {
        weir_function_runtime::cloudevents::Unauthenticated::Anonymous
    };
    weir_function_runtime::cloudevents::router(
        "/events",
        combiner,
        queue.context.access.clone(),
        unauthenticated,
    )
}

/// One Lambda subscribed to both the task announcements and an ingest queue: announcements
/// (they carry a `kind` attribute) go to the task worker, everything else is ingested.
pub struct SplitTasks {
    pub tasks: Arc<dyn MessageHandler>,
    pub ingest: Arc<dyn MessageHandler>,
}

#[async_trait::async_trait]
impl MessageHandler for SplitTasks {
    async fn handle(&self, messages: &[QueueMessage]) -> Vec<Disposition> {
        let is_task = |message: &QueueMessage| message.attributes.contains_key("kind");
        let (tasks, ingest): (Vec<_>, Vec<_>) =
            (0..messages.len()).partition(|&i| is_task(&messages[i]));
        let pick = |indices: &[usize]| {
            indices
                .iter()
                .map(|&i| messages[i].clone())
                .collect::<Vec<_>>()
        };
        let mut dispositions = vec![Disposition::Retry("not handled".into()); messages.len()];
        for (indices, handler) in [
            (&tasks, self.tasks.as_ref()),
            (&ingest, self.ingest.as_ref()),
        ] {
            if indices.is_empty() {
                continue;
            }
            let answers = handler.handle(&pick(indices)).await;
            for (&index, answer) in indices.iter().zip(answers) {
                dispositions[index] = answer;
            }
        }
        dispositions
    }
}

/// What becomes of messages after an error: retried when it is transient, else rejected.
fn disposition_for(error: &IngestError) -> Disposition {
    if error.is_retryable() {
        Disposition::Retry(error.to_string())
    } else {
        Disposition::Reject(error.to_string())
    }
}

/// A message of a group: its place in the batch and what it asks for.
#[derive(Clone)]
struct Member {
    index: usize,
    request: IngestMessage,
    key: MessageKey,
}

#[async_trait::async_trait]
impl MessageHandler for QueueIngest {
    async fn handle(&self, messages: &[QueueMessage]) -> Vec<Disposition> {
        let mut dispositions: Vec<Option<Disposition>> = vec![None; messages.len()];
        type Group = (String, Target, Option<String>);
        let mut groups: Vec<(Group, Vec<Member>)> = Vec::new();
        let mut group_of: HashMap<Group, usize> = HashMap::new();
        let mut callers: HashMap<Option<String>, Caller> = HashMap::new();
        // A message twice in one batch (a producer's quick resend, a redelivery racing the
        // first delivery) is committed once; the copies share the first one's fate. Stream
        // sequences (JetStream) cannot repeat within a batch: no lookup for them.
        let mut first_of: HashMap<(&str, MessageKey), usize> = HashMap::new();
        let mut copies: Vec<(usize, usize)> = Vec::new();
        for (index, message) in messages.iter().enumerate() {
            if !message::names_a_dataset(message)
                && let Some(objects) = objects::parse_notification(&message.body)
            {
                dispositions[index] = Some(self.ingest_objects(message, objects).await);
                continue;
            }
            let key = ids::key_of(message);
            if !message.fresh && message.sequence.is_none() {
                if let Some(&first) = first_of.get(&(message.origin.as_str(), key)) {
                    copies.push((index, first));
                    continue;
                }
                first_of.insert((message.origin.as_str(), key), index);
            }
            match message::parse(message, &self.config.subject_prefix) {
                Ok(request) => {
                    let who = match &message.caller {
                        Some(caller) => &caller.account_id,
                        None => &self.caller.account_id,
                    };
                    // Most messages go where the one before went: no key to build then.
                    let same_as_last = groups.last().is_some_and(|((origin, target, last), _)| {
                        last == who && *target == request.target && *origin == message.origin
                    });
                    let at = if same_as_last {
                        groups.len() - 1
                    } else {
                        let caller = message
                            .caller
                            .clone()
                            .unwrap_or_else(|| self.caller.clone());
                        callers.entry(who.clone()).or_insert(caller);
                        let group = (message.origin.clone(), request.target.clone(), who.clone());
                        *group_of.entry(group.clone()).or_insert_with(|| {
                            groups.push((group, Vec::new()));
                            groups.len() - 1
                        })
                    };
                    groups[at].1.push(Member {
                        index,
                        request,
                        key,
                    });
                }
                Err(error) => dispositions[index] = Some(Disposition::Reject(error.to_string())),
            }
        }
        let results = futures::future::join_all(groups.into_iter().map(
            |((origin, target, who), members)| {
                let caller = callers[&who].clone();
                async move {
                    self.ingest_group(&caller, (&origin, &target), members, messages)
                        .await
                }
            },
        ))
        .await;
        for (index, disposition) in results.into_iter().flatten() {
            dispositions[index] = Some(disposition);
        }
        for (copy, first) in copies {
            dispositions[copy] = dispositions[first].clone();
        }
        dispositions
            .into_iter()
            .map(|d| d.unwrap_or_else(|| Disposition::Retry("not handled".to_string())))
            .collect()
    }
}

impl QueueIngest {
    /// Commits a dataset's messages in order, as few blocks as possible.
    async fn ingest_group(
        &self,
        caller: &Caller,
        (origin, target): (&str, &Target),
        mut pending: Vec<Member>,
        messages: &[QueueMessage],
    ) -> Vec<(usize, Disposition)> {
        let mut out = Vec::with_capacity(pending.len());
        let every = |members: &[Member], disposition: Disposition| {
            members
                .iter()
                .map(|member| (member.index, disposition.clone()))
                .collect::<Vec<_>>()
        };
        let dataset = match self
            .context
            .resolve_for_writing(caller, &target.account, &target.dataset)
            .await
        {
            Ok(dataset) => dataset,
            Err(error) => return every(&pending, disposition_for(&error)),
        };
        // After a commit that failed for one of its messages, each goes alone.
        let mut alone = false;
        let mut rounds = pending.len() + 2;
        while !pending.is_empty() && rounds > 0 {
            rounds -= 1;
            let chain = match load_chain(&dataset).await {
                Ok(chain) => chain,
                Err(error) => {
                    out.extend(every(&pending, disposition_for(&error)));
                    return out;
                }
            };
            let source = push_target(&chain).and_then(|push| {
                let source = push
                    .select(&target.dataset, target.source.as_deref())?
                    .clone();
                Ok((push.schema, source))
            });
            let (schema, source) = match source {
                Ok(found) => found,
                Err(error) => {
                    out.extend(every(&pending, disposition_for(&error)));
                    return out;
                }
            };
            let committed = self.committed_already(&chain, origin, &pending, messages);
            pending.retain(|member| {
                let done = committed.contains(&member.key);
                if done {
                    out.push((member.index, Disposition::Done));
                }
                !done
            });
            let steps = prepare::Steps {
                read: &source.read,
                preprocess: source.preprocess.as_ref(),
                merge: &source.merge,
                schema: schema.as_ref(),
                now: Utc::now(),
            };
            let candidates: &[Member] = if alone {
                &pending[..pending.len().min(1)]
            } else {
                &pending
            };
            let (parts, rejected) = prepare::parts(&steps, candidates, messages).await;
            let failed_for_now = rejected
                .iter()
                .any(|(_, d)| matches!(d, Disposition::Retry(_)));
            for (index, disposition) in rejected {
                out.push((index, disposition));
                pending.retain(|member| member.index != index);
            }
            if failed_for_now {
                // Order is kept: what follows a message that must come back comes back too.
                out.extend(every(
                    &pending,
                    Disposition::Retry("an earlier message of the dataset must be retried".into()),
                ));
                return out;
            }
            let Some(first) = parts.first() else {
                continue;
            };
            let schema_of_block = first.schema.clone();
            let taken = parts
                .iter()
                .take_while(|part| part.schema == schema_of_block)
                .count();
            let mut included = std::collections::HashSet::new();
            let mut batches = Vec::new();
            for part in parts.into_iter().take(taken) {
                included.extend(part.members);
                batches.extend(part.batches);
            }
            let keys: Vec<MessageKey> = pending
                .iter()
                .filter(|member| included.contains(&member.index))
                .map(|member| member.key)
                .collect();
            let committer = Committer {
                caller,
                idempotency: None,
                source_state: Some(ids::state_for(origin, &keys)),
            };
            let result = self
                .context
                .commit_records(
                    &dataset,
                    chain,
                    &source.merge,
                    (schema_of_block, batches),
                    committer,
                )
                .await;
            match result {
                Ok(_) => {
                    for index in &included {
                        out.push((*index, Disposition::Done));
                    }
                    pending.retain(|member| !included.contains(&member.index));
                }
                Err(error) if error.is_retryable() => {
                    out.extend(every(&pending, disposition_for(&error)));
                    return out;
                }
                Err(error) if included.len() == 1 => {
                    let index = *included.iter().next().expect("one message");
                    out.push((index, disposition_for(&error)));
                    pending.retain(|member| member.index != index);
                }
                Err(_) => alone = true,
            }
        }
        out.extend(every(
            &pending,
            Disposition::Retry("not committed yet".into()),
        ));
        out
    }

    /// Which of `members` the chain holds already. A first delivery from JetStream needs no
    /// look (the stream removed the publisher's duplicates), nor a message the transport calls
    /// fresh; SQS and CloudEvents ids always do.
    fn committed_already(
        &self,
        chain: &weir_dataset::ChainSnapshot,
        origin: &str,
        members: &[Member],
        messages: &[QueueMessage],
    ) -> std::collections::HashSet<MessageKey> {
        let mut wanted = Vec::new();
        let mut since: Option<DateTime<Utc>> = None;
        let window = Utc::now() - ChronoDuration::seconds(self.config.dedup_window_seconds as i64);
        for member in members {
            let message = &messages[member.index];
            if message.fresh || message.sequence.is_some() && message.delivery_count <= 1 {
                continue;
            }
            wanted.push(member.key);
            let sent = message
                .sent_at
                .map(DateTime::<Utc>::from)
                .map(|sent| (sent - ChronoDuration::minutes(CLOCK_SKEW_MINUTES)).max(window))
                .unwrap_or(window);
            since = Some(since.map_or(sent, |earliest| earliest.min(sent)));
        }
        match since {
            Some(since) => ids::already_committed(chain, origin, &wanted, since),
            None => Default::default(),
        }
    }
}
