//! Which queue messages a dataset already holds, recorded in its own chain: every block that
//! queue ingest commits names its messages in `AddData.newSourceState`, so a redelivery (after a
//! crash between the commit and the ack, or a lost ack) is recognised without any database.
//!
//! - JetStream: stream sequences as ranges, kind `weir.dev/queue-sequences`, value `1-500,502`.
//! - SQS and CloudEvents: a 64-bit SHA3 digest of each message id, in hex, kind
//!   `weir.dev/queue-message-ids`, value `9f86d081884c7d65,2c26b46b68ffc68f`.
//!
//! The source name is `weir.dev/queue/<origin>`: `jetstream/<stream>`, `sqs/<queue>`,
//! `cloudevents`.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use weir_dataset::ChainSnapshot;
use weir_function_runtime::messages::QueueMessage;
use weir_odf::{MetadataEvent, Multihash, SourceState};

use super::message::MESSAGE_ID_ATTRIBUTE;

pub const SEQUENCES_KIND: &str = "weir.dev/queue-sequences";
pub const MESSAGE_IDS_KIND: &str = "weir.dev/queue-message-ids";

/// A message's identity within its origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MessageKey {
    Sequence(u64),
    Digest(u64),
}

pub fn source_name(origin: &str) -> String {
    format!("weir.dev/queue/{origin}")
}

pub fn key_of(message: &QueueMessage) -> MessageKey {
    if let Some(sequence) = message.sequence {
        return MessageKey::Sequence(sequence);
    }
    let id = message
        .attributes
        .iter()
        .find(|(name, _)| {
            name.eq_ignore_ascii_case(MESSAGE_ID_ATTRIBUTE)
                || name.eq_ignore_ascii_case("odfmessageid")
        })
        .map(|(_, value)| value.as_str())
        .unwrap_or(&message.message_id);
    digest_key(id)
}

/// The key of a message known by a string id (SQS, CloudEvents, S3 objects).
pub fn digest_key(id: &str) -> MessageKey {
    let digest = Multihash::sha3_256(id.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest.digest()[..8]);
    MessageKey::Digest(u64::from_be_bytes(first))
}

/// The state a block records for the messages `keys` (all of one kind).
pub fn state_for(origin: &str, keys: &[MessageKey]) -> SourceState {
    let mut sequences: Vec<u64> = Vec::new();
    let mut digests: Vec<String> = Vec::new();
    for key in keys {
        match key {
            MessageKey::Sequence(sequence) => sequences.push(*sequence),
            MessageKey::Digest(digest) => digests.push(format!("{digest:016x}")),
        }
    }
    if !sequences.is_empty() {
        sequences.sort_unstable();
        sequences.dedup();
        let mut ranges: Vec<String> = Vec::new();
        let mut start = sequences[0];
        let mut end = start;
        for &next in &sequences[1..] {
            if next == end + 1 {
                end = next;
                continue;
            }
            ranges.push(range(start, end));
            (start, end) = (next, next);
        }
        ranges.push(range(start, end));
        return SourceState {
            source_name: source_name(origin),
            kind: SEQUENCES_KIND.to_string(),
            value: ranges.join(","),
        };
    }
    SourceState {
        source_name: source_name(origin),
        kind: MESSAGE_IDS_KIND.to_string(),
        value: digests.join(","),
    }
}

fn range(start: u64, end: u64) -> String {
    if start == end {
        start.to_string()
    } else {
        format!("{start}-{end}")
    }
}

fn recorded_contains(state: &SourceState, key: MessageKey) -> bool {
    match (state.kind.as_str(), key) {
        (SEQUENCES_KIND, MessageKey::Sequence(sequence)) => {
            state
                .value
                .split(',')
                .any(|part| match part.split_once('-') {
                    Some((start, end)) => match (start.parse::<u64>(), end.parse::<u64>()) {
                        (Ok(start), Ok(end)) => (start..=end).contains(&sequence),
                        _ => false,
                    },
                    None => part.parse::<u64>() == Ok(sequence),
                })
        }
        (MESSAGE_IDS_KIND, MessageKey::Digest(digest)) => {
            let wanted = format!("{digest:016x}");
            state.value.split(',').any(|part| part == wanted)
        }
        _ => false,
    }
}

/// The keys among `wanted` that blocks of `chain` committed at or after `since` recorded for
/// `origin`. Blocks are read from the head back, and the search stops at the first block older
/// than `since`.
pub fn already_committed(
    chain: &ChainSnapshot,
    origin: &str,
    wanted: &[MessageKey],
    since: DateTime<Utc>,
) -> HashSet<MessageKey> {
    let mut found = HashSet::new();
    if wanted.is_empty() {
        return found;
    }
    let name = source_name(origin);
    let wanted_set: HashSet<MessageKey> = wanted.iter().copied().collect();
    for (_, block) in &chain.blocks {
        if block.system_time < since {
            break;
        }
        let MetadataEvent::AddData(add_data) = &block.event else {
            continue;
        };
        let Some(state) = add_data
            .new_source_state
            .as_ref()
            .filter(|state| state.source_name == name)
        else {
            continue;
        };
        if state.kind == MESSAGE_IDS_KIND {
            // One pass over the block's ids, each looked up among the wanted ones.
            for part in state.value.split(',') {
                if let Ok(digest) = u64::from_str_radix(part, 16)
                    && wanted_set.contains(&MessageKey::Digest(digest))
                {
                    found.insert(MessageKey::Digest(digest));
                }
            }
        } else {
            for key in wanted {
                if !found.contains(key) && recorded_contains(state, *key) {
                    found.insert(*key);
                }
            }
        }
        if found.len() == wanted_set.len() {
            break;
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequences_are_recorded_as_ranges_and_found_again() {
        let keys: Vec<MessageKey> = [7, 3, 4, 5, 9, 10]
            .into_iter()
            .map(MessageKey::Sequence)
            .collect();
        let state = state_for("jetstream/S", &keys);
        assert_eq!(state.value, "3-5,7,9-10");
        assert_eq!(state.source_name, "weir.dev/queue/jetstream/S");
        for sequence in [3, 4, 5, 7, 9, 10] {
            assert!(recorded_contains(&state, MessageKey::Sequence(sequence)));
        }
        for sequence in [2, 6, 8, 11] {
            assert!(!recorded_contains(&state, MessageKey::Sequence(sequence)));
        }
    }

    #[test]
    fn message_ids_are_digests_and_an_odf_message_id_wins() {
        let plain = QueueMessage {
            message_id: "m-1".into(),
            ..QueueMessage::default()
        };
        let mut named = plain.clone();
        named
            .attributes
            .insert("odf-message-id".into(), "order-17".into());
        let other = QueueMessage {
            message_id: "m-2".into(),
            ..named.clone()
        };
        assert_ne!(key_of(&plain), key_of(&named));
        assert_eq!(key_of(&named), key_of(&other));
        let state = state_for("sqs/q", &[key_of(&plain)]);
        assert_eq!(state.kind, MESSAGE_IDS_KIND);
        assert!(recorded_contains(&state, key_of(&plain)));
        assert!(!recorded_contains(&state, key_of(&named)));
    }
}
