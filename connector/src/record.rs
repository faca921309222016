use std::borrow::Cow;

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
    pub topic: Option<String>,
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
    /// Topic written to.
    pub topic: String,
    /// Partition written to.
    pub partition: i32,
    /// Offset assigned by the broker.
    pub offset: i64,
}

/// One record read from Kafka.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumedRecord {
    /// Topic read from.
    pub topic: String,
    /// Partition read from.
    pub partition: i32,
    /// Offset of the record.
    pub offset: i64,
    /// Message key, if any.
    pub key: Option<Vec<u8>>,
    /// Payload (an absent payload, a tombstone, is empty).
    pub payload: Vec<u8>,
    /// Record timestamp in milliseconds since the epoch, if the broker gave one.
    pub timestamp_ms: Option<i64>,
    /// Record headers.
    pub headers: Vec<Header>,
}
