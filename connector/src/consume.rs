//! The Consume operation: poll a topic until a minimum number of records is held or the wait
//! ends, in polls of at most max.poll.records records each (the platform's semantics).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

use crate::context::Observer;
use crate::record::TopicNames;
use crate::{Connection, ConnectorError, ConsumedRecord, Header, Limits, PartitionNotFound};

/// Where a consumer group with no committed offset starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OffsetReset {
    /// The oldest record still in the partition.
    Earliest,
    /// Only records produced after the consumer joins (Kafka's default).
    #[default]
    Latest,
}

/// A Consume operation's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumeSettings {
    /// Topic to read (with a pattern: how messages name what is read).
    pub topic: String,
    /// Read every topic whose name matches instead, as found when the operation starts.
    pub pattern: Option<crate::topic_pattern::TopicPattern>,
    /// Consumer group whose committed offsets say where to start.
    pub consumer_group: String,
    /// Stop once at least this many records are held; 0 reads until `max_wait` ends.
    pub minimum_messages: u32,
    /// The longest the operation waits for records, including joining the group.
    pub max_wait: Duration,
    /// Where to start without a committed offset.
    pub offset_reset: OffsetReset,
    /// Commit the consumed records' offsets before returning them.
    pub autocommit: bool,
    /// Read only these partitions (manual assignment, no group rebalance); `None`: subscribe
    /// and let the group assign partitions.
    pub partitions: Option<Vec<i32>>,
    /// Overrides the connection's client id.
    pub client_id: Option<String>,
}

/// One message the Consume operation read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Consumed {
    /// A message within the limits.
    Record(ConsumedRecord),
    /// A message larger than max.request.size: only where it is, not its bytes (seed 003: an
    /// application error carrying offset, partition and topic).
    TooLarge {
        /// Topic.
        topic: Arc<str>,
        /// Partition.
        partition: i32,
        /// Offset.
        offset: i64,
        /// Key plus payload, in bytes.
        size: u64,
        /// The limit it exceeds.
        max: u64,
    },
}

impl Consumed {
    /// Where the message is: topic, partition, offset.
    pub fn position(&self) -> (&str, i32, i64) {
        match self {
            Self::Record(r) => (&r.topic, r.partition, r.offset),
            Self::TooLarge {
                topic,
                partition,
                offset,
                ..
            } => (topic, *partition, *offset),
        }
    }
}

/// What one Consume operation returned.
#[derive(Debug, Clone)]
pub struct ConsumeOutcome {
    /// The messages, in the order they were polled (per partition: offset order).
    pub records: Vec<Consumed>,
    /// How many polls it took (each hands over at most max.poll.records records).
    pub polls: u32,
}

/// Within one poll, how long to wait for the next record once the first has arrived. The
/// fetched batch is already in librdkafka's local queue by then, so this only bounds the wait
/// when fewer than max.poll.records records are available.
const POLL_LINGER: Duration = Duration::from_millis(20);

/// Runs a Consume operation on tokio's blocking pool.
///
/// Fails as a whole when the cluster is unreachable, the topic does not exist, or committing
/// fails. Dropping the future does not stop the blocking poll loop early; it ends by
/// `max_wait` at the latest.
pub async fn consume(
    connection: &Connection,
    settings: ConsumeSettings,
    limits: Limits,
) -> Result<ConsumeOutcome, ConnectorError> {
    let connection = connection.clone();
    let limits = connection.limits(limits);
    crate::blocking("consume", move || {
        consume_blocking(&connection, &settings, limits)
    })
    .await
}

fn consume_blocking(
    connection: &Connection,
    settings: &ConsumeSettings,
    limits: Limits,
) -> Result<ConsumeOutcome, ConnectorError> {
    let deadline = Instant::now() + settings.max_wait;
    let config = group_consumer_config(
        connection,
        &settings.consumer_group,
        settings.offset_reset,
        settings.client_id.as_deref(),
        limits,
    );
    let consumer: BaseConsumer<Observer> = config
        .create_with_context(Observer::for_connection(connection))
        .map_err(ConnectorError::ClientConfig)?;
    Observer::serve_first_token(&consumer);

    if let Some(pattern) = &settings.pattern {
        let topics = pattern.topics_on(connection, &consumer)?;
        if topics.is_empty() {
            return Err(ConnectorError::NoTopicMatches(pattern.as_str().to_string()));
        }
        tracing::debug!(pattern = pattern.as_str(), topics = %topics.join(","), "pattern matched");
        let topics: Vec<&str> = topics.iter().map(String::as_str).collect();
        consumer
            .subscribe(&topics)
            .map_err(|source| consume_error(settings, source))?;
        return poll_until_done(&consumer, settings, limits, deadline);
    }
    let Some(partition_count) =
        connection.partition_count(consumer.client(), consumer.context(), &settings.topic)?
    else {
        return Err(ConnectorError::UnknownTopic(settings.topic.clone()));
    };
    match &settings.partitions {
        Some(partitions) => {
            let mut assignment = TopicPartitionList::new();
            for &partition in partitions {
                PartitionNotFound::check(&settings.topic, partition, partition_count)?;
                // Stored: start at the group's committed offset, else at offset-reset.
                assignment
                    .add_partition_offset(&settings.topic, partition, Offset::Stored)
                    .map_err(|source| consume_error(settings, source))?;
            }
            let assigned = consumer.assign(&assignment);
            drop(assignment);
            assigned.map_err(|source| consume_error(settings, source))?;
        }
        None => consumer
            .subscribe(&[&settings.topic])
            .map_err(|source| consume_error(settings, source))?,
    }
    poll_until_done(&consumer, settings, limits, deadline)
}

/// Polls until the operation holds its minimum, a message ends it, or the deadline passes;
/// then commits (with autocommit) and hands over what it holds.
fn poll_until_done(
    consumer: &BaseConsumer<Observer>,
    settings: &ConsumeSettings,
    limits: Limits,
    deadline: Instant,
) -> Result<ConsumeOutcome, ConnectorError> {
    let minimum = settings.minimum_messages as usize;
    let mut records = Vec::new();
    let mut polls = 0;
    loop {
        let before = records.len();
        let stop = poll_once(consumer, settings, limits, deadline, &mut records)?;
        if records.len() > before {
            polls += 1;
            tracing::debug!(
                topic = %settings.topic,
                poll = polls,
                records = records.len() - before,
                "poll returned records"
            );
        }
        let enough = minimum > 0 && records.len() >= minimum;
        if enough || stop || Instant::now() >= deadline {
            break;
        }
    }

    if settings.autocommit && !records.is_empty() {
        commit(consumer, settings, &records)?;
    }
    Ok(ConsumeOutcome { records, polls })
}

/// The settings of a consumer in `group` that stores and commits nothing by itself (offsets
/// follow documents, committed by the operation once they are done), with its memory bounded
/// by the host's limits.
pub(crate) fn group_consumer_config(
    connection: &Connection,
    group: &str,
    offset_reset: OffsetReset,
    client_id: Option<&str>,
    limits: Limits,
) -> rdkafka::ClientConfig {
    let mut config = connection.client_config();
    // max.request.size bounds what one fetch returns (seed 003); librdkafka wants
    // message.max.bytes no larger than fetch.max.bytes, and a pre-fetch queue that holds one
    // fetch. The pre-fetch is bounded explicitly: librdkafka's default is 64 MiB per consumer.
    let fetch_max = limits.request_bytes();
    config
        .set("fetch.max.bytes", fetch_max.to_string())
        .set("message.max.bytes", fetch_max.to_string())
        .set(
            "queued.max.messages.kbytes",
            limits.consumer_prefetch_kbytes(fetch_max).to_string(),
        )
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set(
            "auto.offset.reset",
            match offset_reset {
                OffsetReset::Earliest => "earliest",
                OffsetReset::Latest => "latest",
            },
        )
        .set_log_level(RDKafkaLogLevel::Warning);
    if let Some(client_id) = client_id {
        config.set("client.id", client_id);
    }
    config
}

/// One poll in the platform's sense: waits for a first message until the deadline, then takes
/// what is already fetched, up to max.poll.records messages. Returns whether to stop
/// retrieving: without autocommit, a message over max.request.size ends the operation there
/// (seed 003), so that the documents handed over end with it.
fn poll_once(
    consumer: &BaseConsumer<Observer>,
    settings: &ConsumeSettings,
    limits: Limits,
    deadline: Instant,
    records: &mut Vec<Consumed>,
) -> Result<bool, ConnectorError> {
    let max = limits.max_poll_records.get() as usize;
    let mut taken = 0;
    let mut topics = TopicNames::default();
    while taken < max {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        let wait = if taken == 0 {
            deadline - now
        } else {
            POLL_LINGER.min(deadline - now)
        };
        match consumer.poll(wait) {
            None if taken == 0 => continue,
            None => break,
            Some(Ok(message)) => {
                taken += 1;
                let consumed = consumed(&message, limits, &mut topics);
                let too_large = matches!(consumed, Consumed::TooLarge { .. });
                records.push(consumed);
                if too_large && !settings.autocommit {
                    return Ok(true);
                }
            }
            // One of a pattern's topics was deleted since it was matched: the others go on.
            Some(Err(KafkaError::MessageConsumption(
                RDKafkaErrorCode::UnknownTopicOrPartition | RDKafkaErrorCode::UnknownTopic,
            ))) if settings.pattern.is_some() => {
                tracing::info!(pattern = %settings.topic, "a matched topic is gone");
            }
            Some(Err(KafkaError::MessageConsumption(
                RDKafkaErrorCode::UnknownTopicOrPartition | RDKafkaErrorCode::UnknownTopic,
            ))) => return Err(ConnectorError::UnknownTopic(settings.topic.clone())),
            // Broker hiccups (transport errors, leader moves) are retried by librdkafka; they
            // only end the operation through the deadline.
            Some(Err(error)) => {
                tracing::warn!(topic = %settings.topic, error = %crate::explain(&error), "transient consume error");
            }
        }
    }
    Ok(false)
}

fn commit(
    consumer: &BaseConsumer<Observer>,
    settings: &ConsumeSettings,
    records: &[Consumed],
) -> Result<(), ConnectorError> {
    let mut next: BTreeMap<(&str, i32), i64> = BTreeMap::new();
    for record in records {
        let (topic, partition, offset) = record.position();
        let entry = next.entry((topic, partition)).or_insert(offset + 1);
        *entry = (*entry).max(offset + 1);
    }
    let mut list = TopicPartitionList::new();
    for ((topic, partition), offset) in &next {
        list.add_partition_offset(topic, *partition, Offset::Offset(*offset))
            .map_err(|source| commit_error(settings, source))?;
    }
    let result = consumer
        .commit(&list, CommitMode::Sync)
        .map_err(|source| commit_error(settings, source));
    // A list passed to commit() must be gone before the consumer is destroyed, or librdkafka's
    // destroy can hang (seen with its mock cluster).
    drop(list);
    result?;
    for ((topic, partition), offset) in next {
        tracing::debug!(topic, partition, offset, "committed");
    }
    Ok(())
}

/// A polled message as Consume and Listen hand it over: a record, or, when key plus payload
/// exceed max.request.size, only where it is (seed 003: an application error carrying offset,
/// partition and topic).
pub(crate) fn consumed(
    message: &BorrowedMessage<'_>,
    limits: Limits,
    topics: &mut TopicNames,
) -> Consumed {
    let size = (message.payload_len() + message.key().map_or(0, <[u8]>::len)) as u64;
    if size <= limits.max_request_size {
        return Consumed::Record(to_record(message, topics));
    }
    tracing::warn!(
        topic = message.topic(),
        partition = message.partition(),
        offset = message.offset(),
        size,
        "message larger than max.request.size"
    );
    Consumed::TooLarge {
        topic: topics.get(message.topic()),
        partition: message.partition(),
        offset: message.offset(),
        size,
        max: limits.max_request_size,
    }
}

fn to_record(message: &BorrowedMessage<'_>, topics: &mut TopicNames) -> ConsumedRecord {
    let headers = message
        .headers()
        .map(|headers| {
            headers
                .iter()
                .map(|h| Header {
                    name: h.key.to_string(),
                    value: h.value.map(<[u8]>::to_vec),
                })
                .collect()
        })
        .unwrap_or_default();
    ConsumedRecord {
        topic: topics.get(message.topic()),
        partition: message.partition(),
        offset: message.offset(),
        key: message.key().map(Arc::from),
        payload: message.payload().map(<[u8]>::to_vec).unwrap_or_default(),
        timestamp_ms: message.timestamp().to_millis(),
        headers,
    }
}

fn consume_error(settings: &ConsumeSettings, source: KafkaError) -> ConnectorError {
    ConnectorError::Consume {
        topic: settings.topic.clone(),
        source,
    }
}

fn commit_error(settings: &ConsumeSettings, source: KafkaError) -> ConnectorError {
    ConnectorError::Commit {
        group: settings.consumer_group.clone(),
        source,
    }
}
