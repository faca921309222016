//! What one process execution did: the execution record and its parts. A leaf that the host
//! (which writes records), the store and the metrics (which read them) all use.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::document::{Document, TrackedProperties};
use crate::failure::Failure;

/// How an execution ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecutionStatus {
    /// Every document went through every step.
    Succeeded,
    /// It ran to the end, but some documents have errors (application errors).
    CompletedWithErrors,
    /// It stopped: the failure says why (a failure, not a document's error).
    Failed(Failure),
}

impl ExecutionStatus {
    /// The status names the records and their filters use.
    pub const NAMES: &'static [&'static str] = &["succeeded", "completed-with-errors", "failed"];

    /// This status's name in records, filters and API answers.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Succeeded => "succeeded",
            Self::CompletedWithErrors => "completed-with-errors",
            Self::Failed(_) => "failed",
        }
    }
}

impl std::fmt::Display for ExecutionStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Succeeded => f.write_str("succeeded"),
            Self::CompletedWithErrors => f.write_str("completed with document errors"),
            Self::Failed(failure) => write!(f, "failed: {failure}"),
        }
    }
}

/// An error that belongs to one document; the other documents go on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentError {
    /// 1-based position of the document among the execution's documents in.
    pub document: usize,
    /// 1-based step where it failed; 0: the process's start operation.
    pub step: usize,
    /// The operation that failed it (`set-properties` for that step).
    pub operation: String,
    /// What happened.
    pub message: String,
    /// Where the document came from or was going.
    pub tracked: TrackedProperties,
}

/// What one process execution did.
#[derive(Debug, Clone)]
pub struct ExecutionRecord {
    /// Unique, time-ordered id.
    pub id: uuid::Uuid,
    /// The process.
    pub process: String,
    /// When it started.
    pub started: SystemTime,
    /// How long it ran.
    pub duration: Duration,
    /// How it ended.
    pub status: ExecutionStatus,
    /// Documents that entered the process.
    pub documents_in: usize,
    /// Documents that left the last step, when they are kept (see `documents_handed_on`).
    pub documents_out: Vec<Document>,
    /// Documents that left the last step and were handed on as they left instead of being
    /// kept in `documents_out`: a run over a large input, a chunk at a time.
    pub documents_handed_on: usize,
    /// One entry per document that failed.
    pub document_errors: Vec<DocumentError>,
    /// The Kafka messages it read and wrote, as offset ranges: what answers "which execution
    /// handled this message?".
    pub messages: HandledMessages,
}

impl ExecutionRecord {
    /// How many documents left the last step, kept or handed on.
    pub fn documents_out_count(&self) -> usize {
        self.documents_out.len() + self.documents_handed_on
    }

    /// Notes the dead letters at `replayed` (the execution's documents, one each, in order)
    /// as replayed, but for those whose document has an error.
    pub(crate) fn note_replayed(&mut self, replayed: &[(Arc<str>, i32, i64)]) {
        for (index, (topic, partition, offset)) in replayed.iter().enumerate() {
            if !self.document_errors.iter().any(|e| e.document == index + 1) {
                self.messages
                    .note(MessageRole::Replayed, topic, *partition, *offset);
            }
        }
    }

    /// Records one document's error; the document leaves the flow unless the caller keeps it.
    pub(crate) fn document_error(
        &mut self,
        document: usize,
        step: usize,
        operation: &str,
        message: String,
        tracked: TrackedProperties,
    ) {
        self.document_errors.push(DocumentError {
            document,
            step,
            operation: operation.to_string(),
            message,
            tracked,
        });
    }
}

/// Whether an execution read a message (its start, a Listen batch, a Consume step), wrote it
/// (a Produce step), or replayed it (a dead letter it sent back to where it came from, or
/// through its listener's process, with success).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MessageRole {
    /// Read from Kafka.
    Read,
    /// Written to Kafka.
    Written,
    /// A dead letter replayed.
    Replayed,
}

impl MessageRole {
    /// The names records, filters and API answers use.
    pub const NAMES: &'static [&'static str] = &["read", "written", "replayed"];

    /// This role's name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Written => "written",
            Self::Replayed => "replayed",
        }
    }
}

/// One Kafka message by where it is: `TOPIC/PARTITION/OFFSET` on the command line and in the
/// API (a topic name has no `/`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageAddress {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The offset.
    pub offset: i64,
}

impl std::str::FromStr for MessageAddress {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = |why: &str| {
            format!("\"{text}\" is not TOPIC/PARTITION/OFFSET ({why}), e.g. orders/0/41")
        };
        let mut parts = text.rsplitn(3, '/');
        let (Some(offset), Some(partition), Some(topic)) =
            (parts.next(), parts.next(), parts.next())
        else {
            return Err(invalid("three parts separated by /"));
        };
        if topic.is_empty() {
            return Err(invalid("no topic"));
        }
        let partition = partition
            .parse::<i32>()
            .ok()
            .filter(|p| *p >= 0)
            .ok_or_else(|| invalid("the partition is a number from 0"))?;
        let offset = offset
            .parse::<i64>()
            .ok()
            .filter(|o| *o >= 0)
            .ok_or_else(|| invalid("the offset is a number from 0"))?;
        Ok(Self {
            topic: topic.to_string(),
            partition,
            offset,
        })
    }
}

impl std::fmt::Display for MessageAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}/{}", self.topic, self.partition, self.offset)
    }
}

/// Consecutive offsets of one topic-partition that an execution read, or wrote.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct MessageRange {
    /// Read or written.
    pub role: MessageRole,
    /// The topic.
    pub topic: Arc<str>,
    /// The partition.
    pub partition: i32,
    /// The first offset.
    pub first: i64,
    /// The last offset, inclusive.
    pub last: i64,
}

/// The messages an execution handled, kept as offset ranges per topic-partition: a batch of
/// thousands of documents is a handful of ranges, so recording them costs the hot path one
/// comparison per document and the database a few rows per execution.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HandledMessages {
    /// In the order first noted; [`HandledMessages::ranges`] sorts and merges them.
    ranges: Vec<MessageRange>,
}

impl HandledMessages {
    /// Notes the message at `offset` of `topic`/`partition`.
    pub fn note(&mut self, role: MessageRole, topic: &Arc<str>, partition: i32, offset: i64) {
        // A partition's documents come in offset order: the range to extend is the last one
        // of that partition, found from the end among the few an execution has.
        let last = self.ranges.iter_mut().rev().find(|range| {
            range.role == role
                && range.partition == partition
                && (Arc::ptr_eq(&range.topic, topic) || range.topic == *topic)
        });
        if let Some(range) = last {
            if offset == range.last + 1 {
                range.last = offset;
                return;
            }
            if (range.first..=range.last).contains(&offset) {
                return;
            }
        }
        self.ranges.push(MessageRange {
            role,
            topic: topic.clone(),
            partition,
            first: offset,
            last: offset,
        });
    }

    /// Notes each document that came from Kafka (its tracked topic, partition and offset) as
    /// read.
    pub fn note_read<'a>(&mut self, documents: impl IntoIterator<Item = &'a Document>) {
        for document in documents {
            let tracked = &document.tracked;
            if let (Some(topic), Some(partition), Some(offset)) =
                (&tracked.topic, tracked.partition, tracked.offset)
            {
                self.note(MessageRole::Read, topic, partition, offset);
            }
        }
    }

    /// Whether nothing was noted.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// The ranges, sorted by role, topic, partition and offset, with overlapping and adjacent
    /// ones merged.
    pub fn ranges(&self) -> Vec<MessageRange> {
        let mut sorted = self.ranges.clone();
        sorted.sort();
        let mut merged: Vec<MessageRange> = Vec::with_capacity(sorted.len());
        for range in sorted {
            match merged.last_mut() {
                Some(previous)
                    if previous.role == range.role
                        && previous.topic == range.topic
                        && previous.partition == range.partition
                        && range.first <= previous.last.saturating_add(1) =>
                {
                    previous.last = previous.last.max(range.last);
                }
                _ => merged.push(range),
            }
        }
        merged
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_address_is_topic_partition_offset() {
        let address: MessageAddress = "orders.eu/3/41".parse().expect("valid");
        assert_eq!(
            (address.topic.as_str(), address.partition, address.offset),
            ("orders.eu", 3, 41)
        );
        assert_eq!(address.to_string(), "orders.eu/3/41");
        for (text, why) in [
            ("orders/41", "three parts separated by /"),
            ("/0/41", "no topic"),
            ("orders/-1/41", "the partition is a number from 0"),
            ("orders/0/x", "the offset is a number from 0"),
        ] {
            assert_eq!(
                text.parse::<MessageAddress>().unwrap_err(),
                format!("\"{text}\" is not TOPIC/PARTITION/OFFSET ({why}), e.g. orders/0/41")
            );
        }
    }

    #[test]
    fn consecutive_offsets_make_one_range_and_gaps_start_another() {
        let a: Arc<str> = Arc::from("a");
        let b: Arc<str> = Arc::from("b");
        let mut messages = HandledMessages::default();
        // Two partitions interleaved, a gap (a compacted or transactional topic), a repeat,
        // and a record the execution also wrote.
        for offset in [5, 6, 7, 10, 11, 6] {
            messages.note(MessageRole::Read, &a, 0, offset);
            messages.note(MessageRole::Read, &a, 1, offset + 100);
        }
        messages.note(MessageRole::Written, &b, 0, 3);
        messages.note(MessageRole::Read, &Arc::from("a"), 0, 12);
        // Out of order: merged when listed.
        messages.note(MessageRole::Read, &a, 0, 8);
        messages.note(MessageRole::Read, &a, 0, 9);
        let ranges: Vec<_> = messages
            .ranges()
            .into_iter()
            .map(|r| (r.role, r.topic.to_string(), r.partition, r.first, r.last))
            .collect();
        assert_eq!(
            ranges,
            [
                (MessageRole::Read, "a".into(), 0, 5, 12),
                (MessageRole::Read, "a".into(), 1, 105, 107),
                (MessageRole::Read, "a".into(), 1, 110, 111),
                (MessageRole::Written, "b".into(), 0, 3, 3),
            ]
        );
    }
}
