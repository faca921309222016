//! Connection checks for Test Connection: one metadata request with the connection's full
//! security settings, so TLS and SASL are exercised exactly as the operations will; and, for
//! one topic, whether it exists and this identity may describe, read and write it.

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Headers as _, Message as _};
use rdkafka::{Offset, TopicPartitionList};

use crate::context::Observer;
use crate::{Connection, ConnectorError, Header, Limits, ProduceRecord};

/// What the cluster said about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterSummary {
    /// The brokers it advertises (`host:port`), which clients connect to after bootstrapping.
    pub brokers: Vec<String>,
    /// How many topics the connection may see.
    pub topics: usize,
}

/// Connects, authenticates and fetches cluster metadata. A TLS or SASL failure comes back as
/// [`ConnectorError::Unreachable`] with what librdkafka reported and the
/// [`crate::HandshakeProblem`] recognised in it. Runs on tokio's blocking pool; returns within
/// the metadata timeout.
pub async fn probe(connection: &Connection) -> Result<ClusterSummary, ConnectorError> {
    let connection = connection.clone();
    crate::blocking("probe", move || {
        let consumer: BaseConsumer<Observer> = connection
            .client_config()
            .create_with_context(Observer::for_connection(&connection))
            .map_err(ConnectorError::ClientConfig)?;
        Observer::serve_first_token(&consumer);
        let metadata = connection.metadata(consumer.client(), consumer.context(), None)?;
        Ok(ClusterSummary {
            brokers: metadata
                .brokers()
                .iter()
                .map(|b| format!("{}:{}", b.host(), b.port()))
                .collect(),
            topics: metadata.topics().len(),
        })
    })
    .await
}

/// A partition's offsets: the earliest still kept and the end (the next offset written).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionEnds {
    /// The partition.
    pub partition: i32,
    /// Earliest offset kept.
    pub earliest: i64,
    /// End offset.
    pub end: i64,
}

/// Where the probe message was written and read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeWritten {
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
}

/// What one topic looks like to a connection, and what it may do with it. Each `Err` is a
/// sentence in Kafka's terms ending with the error code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicProbe {
    /// The topic exists and may be described: its partitions with their offsets.
    pub described: Result<Vec<PartitionEnds>, String>,
    /// Every partition answered a fetch (read access); `None` when it could not be described.
    pub read: Option<Result<(), String>>,
    /// The probe message was produced and read back; `None` unless asked for and described.
    pub write: Option<Result<ProbeWritten, String>>,
}

/// The header that marks a probe message, so that consumers of the topic can tell it apart;
/// its value says who wrote it and when.
pub const PROBE_HEADER: &str = "sluice.probe";

/// How long a fetch (the read check, the read-back) may take to be answered.
const FETCH_WAIT: std::time::Duration = std::time::Duration::from_secs(15);

/// Checks `topic`: that it exists and may be described (partitions, earliest and end
/// offsets), that every partition answers a fetch (reading at most its first batch), and with
/// `write` that a probe message, marked with the [`PROBE_HEADER`] header, can be produced as a
/// Produce operation would (its acks and idempotence) and read back. Fails as a whole only
/// when the cluster cannot be reached.
pub async fn probe_topic(
    connection: &Connection,
    topic: &str,
    write: bool,
) -> Result<TopicProbe, ConnectorError> {
    let (checked, name) = (connection.clone(), topic.to_string());
    let (described, read) = crate::blocking("probe", move || {
        let consumer = reader(&checked)?;
        let described = describe(&checked, &consumer, &name)?;
        let read = described
            .as_ref()
            .ok()
            .map(|partitions| fetch_from_start(&consumer, &name, partitions));
        Ok((described, read))
    })
    .await?;
    let write = match (&described, write) {
        (Ok(_), true) => Some(write_probe(connection.clone(), topic).await?),
        _ => None,
    };
    Ok(TopicProbe {
        described,
        read,
        write,
    })
}

/// A consumer outside any group that reports the end of each partition it reaches.
fn reader(connection: &Connection) -> Result<BaseConsumer<Observer>, ConnectorError> {
    let mut config = connection.client_config();
    // librdkafka wants a group id even for assigned partitions; with explicit offsets and no
    // commits, the group is never joined, fetched or created on the brokers.
    // A fetch returns at least one record batch whatever these say (KIP-74): they keep the
    // check from reading more than the first batch of each partition.
    config
        .set("group.id", "sluice-test-connection")
        .set("message.max.bytes", "1000")
        .set("fetch.max.bytes", "1000")
        .set("max.partition.fetch.bytes", "1000")
        .set("enable.partition.eof", "true")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false");
    let consumer: BaseConsumer<Observer> = config
        .create_with_context(Observer::for_connection(connection))
        .map_err(ConnectorError::ClientConfig)?;
    Observer::serve_first_token(&consumer);
    Ok(consumer)
}

/// The topic's partitions and offsets, or why it cannot be described.
fn describe(
    connection: &Connection,
    consumer: &BaseConsumer<Observer>,
    topic: &str,
) -> Result<Result<Vec<PartitionEnds>, String>, ConnectorError> {
    let missing = || Ok(Err(format!("topic \"{topic}\" does not exist")));
    let metadata = connection.metadata(consumer.client(), consumer.context(), Some(topic))?;
    let Some(found) = metadata.topics().iter().find(|t| t.name() == topic) else {
        return missing();
    };
    match found.error().map(RDKafkaErrorCode::from) {
        None if !found.partitions().is_empty() => {}
        None | Some(RDKafkaErrorCode::UnknownTopicOrPartition | RDKafkaErrorCode::UnknownTopic) => {
            return missing()
        }
        Some(code) => return Ok(Err(crate::explain(&KafkaError::MetadataFetch(code)))),
    }
    let mut partitions = Vec::new();
    for partition in found.partitions() {
        let id = partition.id();
        match consumer.fetch_watermarks(topic, id, FETCH_WAIT) {
            Ok((earliest, end)) => partitions.push(PartitionEnds {
                partition: id,
                earliest,
                end,
            }),
            Err(error) => {
                return Ok(Err(format!(
                    "the offsets of partition {id} could not be listed: {}",
                    crate::explain(&error)
                )))
            }
        }
    }
    partitions.sort_by_key(|p| p.partition);
    Ok(Ok(partitions))
}

/// Fetches every partition from its earliest offset: each answers with its first record batch
/// (an empty one with its end), or the first refusal ends the check. Not from the end: a
/// refusal of a fetch at the end can come back as the end reached (librdkafka reports the end
/// when the answer's high watermark equals the position, before it looks at the error).
fn fetch_from_start(
    consumer: &BaseConsumer<Observer>,
    topic: &str,
    partitions: &[PartitionEnds],
) -> Result<(), String> {
    assign(
        consumer,
        topic,
        partitions.iter().map(|p| (p.partition, p.earliest)),
    )?;
    let mut waiting: std::collections::BTreeSet<i32> =
        partitions.iter().map(|p| p.partition).collect();
    let deadline = std::time::Instant::now() + FETCH_WAIT;
    while !waiting.is_empty() {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            let waiting: Vec<String> = waiting.iter().map(ToString::to_string).collect();
            return Err(format!(
                "partition(s) {} did not answer a fetch within {} s",
                waiting.join(", "),
                FETCH_WAIT.as_secs()
            ));
        }
        match consumer.poll(left.min(std::time::Duration::from_millis(200))) {
            None => {}
            // A message written since the offsets were listed: the partition answered.
            Some(Ok(message)) => {
                waiting.remove(&message.partition());
            }
            Some(Err(KafkaError::PartitionEOF(partition))) => {
                waiting.remove(&partition);
            }
            Some(Err(error)) if refused(&error) => return Err(crate::explain(&error)),
            // Anything else may pass (a leader moving): keep waiting until the deadline.
            Some(Err(_)) => {}
        }
    }
    Ok(())
}

/// Gives `consumer` these partitions of `topic`, each to be read from its offset.
fn assign(
    consumer: &BaseConsumer<Observer>,
    topic: &str,
    positions: impl IntoIterator<Item = (i32, i64)>,
) -> Result<(), String> {
    let mut assignment = TopicPartitionList::new();
    for (partition, offset) in positions {
        assignment
            .add_partition_offset(topic, partition, Offset::Offset(offset))
            .map_err(|e| crate::explain(&e))?;
    }
    let assigned = consumer.assign(&assignment);
    // The list goes before anything else happens to the consumer (see TESTING.md: a list
    // alive at the consumer's destruction hung librdkafka).
    drop(assignment);
    assigned.map_err(|e| crate::explain(&e))
}

/// A refusal that waiting will not change.
fn refused(error: &KafkaError) -> bool {
    matches!(
        error.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::TopicAuthorizationFailed
                | RDKafkaErrorCode::ClusterAuthorizationFailed
                | RDKafkaErrorCode::UnknownTopicOrPartition
                | RDKafkaErrorCode::Authentication
                | RDKafkaErrorCode::SaslAuthenticationFailed
        )
    )
}

/// Produces one probe message as a Produce operation would, then reads it back.
async fn write_probe(
    connection: Connection,
    topic: &str,
) -> Result<Result<ProbeWritten, String>, ConnectorError> {
    let settings = crate::produce::ProduceSettings {
        topic: Some(topic.to_string()),
        acks: crate::produce::Acks::All,
        compression: Default::default(),
        delivery_timeout: FETCH_WAIT,
    };
    let producer = crate::produce::Producer::new(&connection, settings, Limits::default())?;
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let marker = format!(
        "sluice test-connection, process {}, {}.{:09}",
        std::process::id(),
        stamp.as_secs(),
        stamp.subsec_nanos()
    );
    let record = ProduceRecord {
        payload: std::borrow::Cow::Borrowed(b"sluice test-connection probe"),
        key: None,
        topic: None,
        partition: None,
        timestamp_ms: None,
        headers: vec![Header {
            name: PROBE_HEADER.to_string(),
            value: Some(marker.clone().into_bytes()),
        }],
    };
    let mut results = producer.produce(vec![record], |_| {}).await?;
    let delivered = match results.pop() {
        Some(Ok(delivered)) => delivered,
        Some(Err(error)) => return Ok(Err(error.to_string())),
        None => return Err(ConnectorError::Internal("no result for the probe".into())),
    };
    let (topic, written) = (
        topic.to_string(),
        ProbeWritten {
            partition: delivered.partition,
            offset: delivered.offset,
        },
    );
    crate::blocking("probe", move || {
        Ok(read_back(&connection, &topic, written, &marker))
    })
    .await
}

/// Reads the probe at its partition and offset and checks its marker.
fn read_back(
    connection: &Connection,
    topic: &str,
    written: ProbeWritten,
    marker: &str,
) -> Result<ProbeWritten, String> {
    let consumer = reader(connection).map_err(|e| e.to_string())?;
    assign(&consumer, topic, [(written.partition, written.offset)])?;
    let deadline = std::time::Instant::now() + FETCH_WAIT;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return Err(format!(
                "the probe was written to partition {} at offset {} but could not be read \
                 back within {} s",
                written.partition,
                written.offset,
                FETCH_WAIT.as_secs()
            ));
        }
        match consumer.poll(left.min(std::time::Duration::from_millis(200))) {
            Some(Ok(message)) if message.offset() == written.offset => {
                let ours = message.headers().is_some_and(|headers| {
                    headers
                        .iter()
                        .any(|h| h.key == PROBE_HEADER && h.value == Some(marker.as_bytes()))
                });
                return if ours {
                    Ok(written)
                } else {
                    Err(format!(
                        "partition {} offset {} holds another message than the probe written \
                         there",
                        written.partition, written.offset
                    ))
                };
            }
            Some(Err(error)) if refused(&error) => return Err(crate::explain(&error)),
            _ => {}
        }
    }
}
