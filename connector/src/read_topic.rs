//! Reading a whole topic as it stands: every partition from its oldest record to its end at
//! the moment of the call, without a consumer group (nothing joined, nothing committed). For
//! topics Sluice itself writes and reads back whole, such as a listener's dead-letter topic.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

use rdkafka::error::KafkaError;

use crate::consume::{consumed, group_consumer_config, Consumed, OffsetReset};
use crate::context::Observer;
use crate::record::TopicNames;
use crate::{Connection, ConnectorError, ConsumedRecord, Limits};

/// How long asking a partition for its ends may take.
const WATERMARKS_TIMEOUT: Duration = Duration::from_secs(10);

/// Every record of `topic`, per partition in offset order, as far as each partition reached
/// when the call began; `limits` bounds the consumer's memory, not what it reads (a record
/// larger than max.request.size is read whole). Fails when the topic does not exist or the
/// records are not all read within `max_wait`.
pub async fn read_topic(
    connection: &Connection,
    topic: &str,
    limits: Limits,
    max_wait: Duration,
) -> Result<Vec<ConsumedRecord>, ConnectorError> {
    let connection = connection.clone();
    let limits = connection.limits(limits);
    let topic = topic.to_string();
    crate::blocking("read topic", move || {
        read_blocking(&connection, &topic, limits, max_wait)
    })
    .await
}

fn read_blocking(
    connection: &Connection,
    topic: &str,
    limits: Limits,
    max_wait: Duration,
) -> Result<Vec<ConsumedRecord>, ConnectorError> {
    let deadline = Instant::now() + max_wait;
    // The group id is librdkafka's requirement for a consumer; an assigned consumer that
    // commits nothing never joins it.
    let mut config = group_consumer_config(
        connection,
        "sluice-topic-reader",
        OffsetReset::Earliest,
        None,
        limits,
    );
    // The end of a partition whose last offset holds no record (a transaction marker, a
    // compacted record) is only seen as the end.
    config.set("enable.partition.eof", "true");
    let consumer: BaseConsumer<Observer> = config
        .create_with_context(Observer::for_connection(connection))
        .map_err(ConnectorError::ClientConfig)?;
    Observer::serve_first_token(&consumer);
    let Some(partitions) =
        connection.partition_count(consumer.client(), consumer.context(), topic)?
    else {
        return Err(ConnectorError::UnknownTopic(topic.to_string()));
    };
    let consume_error = |source| ConnectorError::Consume {
        topic: topic.to_string(),
        source,
    };
    // Where each non-empty partition ends now: the last offset to read.
    let mut last = BTreeMap::new();
    let mut assignment = TopicPartitionList::new();
    for partition in 0..partitions as i32 {
        let (low, high) = consumer
            .fetch_watermarks(topic, partition, WATERMARKS_TIMEOUT)
            .map_err(consume_error)?;
        if high > low {
            last.insert(partition, high - 1);
            assignment
                .add_partition_offset(topic, partition, Offset::Offset(low))
                .map_err(consume_error)?;
        }
    }
    if last.is_empty() {
        return Ok(Vec::new());
    }
    let assigned = consumer.assign(&assignment);
    drop(assignment);
    assigned.map_err(consume_error)?;
    let everything = Limits {
        max_request_size: u64::MAX,
        ..limits
    };
    let mut topics = TopicNames::default();
    let mut records = Vec::new();
    while !last.is_empty() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(ConnectorError::Consume {
                topic: topic.to_string(),
                source: KafkaError::MessageConsumption(RDKafkaErrorCode::OperationTimedOut),
            });
        }
        match consumer.poll(left.min(Duration::from_millis(500))) {
            None => {}
            Some(Ok(message)) => {
                let Consumed::Record(record) = consumed(&message, everything, &mut topics) else {
                    unreachable!("no record is over a limit of u64::MAX bytes");
                };
                // Records past the end noted at the start (written meanwhile) are not ours;
                // a partition is done once its last offset (or a later one) was seen.
                let partition = record.partition;
                if let Some(&end) = last.get(&partition) {
                    if record.offset >= end {
                        last.remove(&partition);
                    }
                    if record.offset <= end {
                        records.push(record);
                    }
                }
            }
            Some(Err(KafkaError::PartitionEOF(partition))) => {
                last.remove(&partition);
            }
            Some(Err(error)) => {
                tracing::warn!(topic, error = %crate::explain(&error), "transient read error");
            }
        }
    }
    Ok(records)
}
