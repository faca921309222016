use std::borrow::Cow;
use std::sync::Arc;

/// A record header: a name and binary-safe value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Header name.
    pub name: String,
    /// Header value; `None` is Kafka's null header value.
    pub value: Option<Vec<u8>>,
}

/// One record to produce.
#[derive(Debug, Clone, Default)]
pub struct ProduceRecord<'a> {
    /// Message payload, borrowed where the caller keeps its own copy (a document goes on to
    /// the process's next steps): librdkafka copies it into its queue anyway.
    pub payload: Cow<'a, [u8]>,
    /// Message key; it decides the partition.
    pub key: Option<Cow<'a, [u8]>>,
    /// Overrides the operation's topic for this record.
    pub topic: Option<Cow<'a, str>>,
    /// Sends to this partition instead of the one the key (or the partitioner) picks.
    pub partition: Option<i32>,
    /// Record timestamp in milliseconds since the epoch; `None`: the time it is sent.
    pub timestamp_ms: Option<i64>,
    /// Record headers.
    pub headers: Vec<Header>,
}

/// Where a produced record landed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    /// Topic written to (shared by the records of an execution that went to it).
    pub topic: Arc<str>,
    /// Partition written to.
    pub partition: i32,
    /// Offset assigned by the broker.
    pub offset: i64,
}

/// One record read from Kafka.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumedRecord {
    /// Topic read from (shared by the records of a poll read from it).
    pub topic: Arc<str>,
    /// Partition read from.
    pub partition: i32,
    /// Offset of the record.
    pub offset: i64,
    /// Message key, if any (shared, as a document's key and its tracked key are the same).
    pub key: Option<Arc<[u8]>>,
    /// Payload (an absent payload, a tombstone, is empty).
    pub payload: Vec<u8>,
    /// Record timestamp in milliseconds since the epoch, if the broker gave one.
    pub timestamp_ms: Option<i64>,
    /// Record headers.
    pub headers: Vec<Header>,
}

/// Topic names shared by the records of one poll or one execution: each record names its
/// topic, and a batch comes from one or a few, so a name is allocated once per batch, not
/// once per record (a measurable share of a small document's cost).
#[derive(Debug, Default)]
pub(crate) struct TopicNames(Vec<Arc<str>>);

impl TopicNames {
    /// Past this many topics in one batch (a wide pattern), further names are not remembered:
    /// the search would cost more than the allocation it saves.
    const KEPT: usize = 32;

    /// The shared name of `topic`.
    pub(crate) fn get(&mut self, topic: &str) -> Arc<str> {
        if let Some(known) = self.0.iter().find(|known| ***known == *topic) {
            return known.clone();
        }
        let name: Arc<str> = Arc::from(topic);
        if self.0.len() < Self::KEPT {
            self.0.push(name.clone());
        }
        name
    }
}
