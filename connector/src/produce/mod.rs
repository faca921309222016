//! The Produce operation: send a batch of records, one result per record.

mod deliveries;
mod events;
mod flusher;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::client::OAuthToken;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header as RdHeader, Message as _, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer as _, ProducerContext};
use rdkafka::ClientContext;

use crate::context::Observer;
use crate::record::TopicNames;
use crate::{
    classify, Connection, ConnectorError, Delivered, ErrorKind, Limits, PartitionNotFound,
    ProduceRecord,
};
use deliveries::Ledger;
use events::Events;
use flusher::Flusher;

/// How many replicas must acknowledge a record before it counts as delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Acks {
    /// Fire and forget (`acks=0`): no delivery guarantee, no offsets reported.
    None,
    /// The partition leader only (`acks=1`).
    Leader,
    /// Every in-sync replica (`acks=all`), with the idempotent producer. Our default: the platform
    /// we replace defaults to `acks=0`, which loses data silently when a broker fails.
    #[default]
    All,
}

/// Compression codec for produced batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    /// No compression (the platform's default).
    #[default]
    None,
    /// gzip.
    Gzip,
    /// Snappy.
    Snappy,
    /// LZ4.
    Lz4,
    /// Zstandard.
    Zstd,
}

impl Compression {
    fn librdkafka_name(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Gzip => "gzip",
            Self::Snappy => "snappy",
            Self::Lz4 => "lz4",
            Self::Zstd => "zstd",
        }
    }
}

/// A Produce operation's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProduceSettings {
    /// Topic records go to unless a record names its own; `None`: every record must.
    pub topic: Option<String>,
    /// Acknowledgement level.
    pub acks: Acks,
    /// Batch compression.
    pub compression: Compression,
    /// How long librdkafka keeps retrying one record before it reports the record as failed.
    pub delivery_timeout: Duration,
}

impl ProduceSettings {
    /// librdkafka's `message.timeout.ms` default is 5 minutes; a process step that hangs that
    /// long on a dead broker looks broken, so ours is shorter. Operations can raise it.
    pub const DEFAULT_DELIVERY_TIMEOUT: Duration = Duration::from_secs(30);
}

/// Why one record was not delivered. The other records of the batch are unaffected.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProduceError {
    /// Larger than the host's max.request.size.
    #[error(
        "message is {size} bytes; max.request.size is {max} bytes: send smaller records, or \
         raise the host's max.request.size limit"
    )]
    TooLarge {
        /// Key plus payload plus headers, in bytes.
        size: u64,
        /// The limit.
        max: u64,
        /// The managed service whose own limit `max` is, when it is the service's rather
        /// than the host's.
        service: Option<&'static str>,
    },
    /// Neither the record nor the operation names a topic.
    #[error("no topic: neither the record nor the producer's settings name one")]
    NoTopic,
    /// The target topic does not exist.
    #[error("topic \"{0}\" does not exist")]
    UnknownTopic(String),
    /// The record names a partition the topic does not have.
    #[error(transparent)]
    UnknownPartition(#[from] PartitionNotFound),
    /// The broker or librdkafka did not deliver the record.
    #[error("delivery to topic \"{topic}\" failed: {failure}")]
    Delivery {
        /// Target topic.
        topic: String,
        /// What went wrong.
        failure: DeliveryFailure,
    },
}

impl ProduceError {
    /// Whose fault this is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::TooLarge { .. }
            | Self::NoTopic
            | Self::UnknownTopic(_)
            | Self::UnknownPartition(_) => ErrorKind::User,
            Self::Delivery { failure, .. } => failure.kind(),
        }
    }

    /// Whether sending the record again later may succeed.
    pub fn is_retriable(&self) -> bool {
        match self {
            Self::Delivery { failure, .. } => failure.is_retriable(),
            // The record itself is wrong: it would fail the same way.
            Self::TooLarge { .. }
            | Self::NoTopic
            | Self::UnknownTopic(_)
            | Self::UnknownPartition(_) => false,
        }
    }
}

/// Why a record that was sent was not delivered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DeliveryFailure {
    /// The broker or librdkafka refused the record, or gave up on it.
    #[error("{}", crate::explain(.0))]
    Refused(KafkaError),
    /// The producer was shut down before the broker answered.
    #[error("the producer was shut down before the broker answered")]
    ProducerShutDown,
}

impl DeliveryFailure {
    /// Whose fault this is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Refused(error) => error
                .rdkafka_error_code()
                .map_or(ErrorKind::Environment, |code| classify(code).kind),
            Self::ProducerShutDown => ErrorKind::Environment,
        }
    }

    /// Whether sending the record again later may succeed.
    pub fn is_retriable(&self) -> bool {
        match self {
            Self::Refused(error) => error
                .rdkafka_error_code()
                .is_some_and(|code| classify(code).retriable),
            // Nothing was wrong with the record: another producer may deliver it.
            Self::ProducerShutDown => true,
        }
    }
}

/// The producer's context: the connection's observer (librdkafka's logs and errors, OAUTHBEARER
/// tokens), each delivery report filed with its batch by whoever serves the producer's events,
/// and who that is.
struct ProduceContext {
    observer: Observer,
    ledger: Ledger,
    events: Events,
}

impl ClientContext for ProduceContext {
    const ENABLE_REFRESH_OAUTH_TOKEN: bool =
        <Observer as ClientContext>::ENABLE_REFRESH_OAUTH_TOKEN;

    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        self.observer.log(level, facility, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.observer.error(error, reason);
    }

    fn generate_oauth_token(
        &self,
        config: Option<&str>,
    ) -> Result<OAuthToken, Box<dyn std::error::Error>> {
        self.observer.generate_oauth_token(config)
    }
}

impl ProducerContext for ProduceContext {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, tag: usize) {
        let outcome = match result {
            Ok(message) => Ok((message.partition(), message.offset())),
            Err((error, _)) => Err(error.clone()),
        };
        self.ledger.report(tag, outcome);
    }
}

/// How often a waiting batch reports progress while its deliveries come in.
const PROGRESS_EVERY: Duration = Duration::from_millis(100);

/// How many records an execution sends between two looks at the producer's events.
const SERVE_EVERY: usize = 1024;

/// A producer bound to one Produce operation.
pub struct Producer {
    inner: Arc<BaseProducer<ProduceContext>>,
    /// Sends what lingers once an execution has handed over its last record, and serves the
    /// producer's events while no execution does.
    flusher: Flusher,
    observer: Observer,
    connection: Connection,
    settings: ProduceSettings,
    limits: Limits,
    /// Partition counts of topics known to exist, with when they were read: a warm producer
    /// serves many executions, and asking the cluster before each one costs a round trip.
    partition_counts: Mutex<HashMap<String, (usize, Instant)>>,
}

/// How long a partition count read from the cluster is trusted. A topic deleted meanwhile
/// costs its records the delivery timeout instead of an immediate error; a record for a
/// partition beyond the count asks the cluster again before it fails.
const PARTITION_COUNT_TTL: Duration = Duration::from_secs(30);

/// Back-off while librdkafka's local queue is full. This is flow control against a
/// librdkafka-owned queue, not a wait for an event we could subscribe to.
const QUEUE_FULL_BACKOFF: Duration = Duration::from_millis(5);

impl Producer {
    /// Creates the librdkafka producer. Nothing is sent until [`Producer::produce`].
    pub fn new(
        connection: &Connection,
        settings: ProduceSettings,
        limits: Limits,
    ) -> Result<Self, ConnectorError> {
        let limits = connection.limits(limits);
        let mut config = connection.client_config();
        let idempotent = settings.acks == Acks::All && connection.config().idempotence;
        let acks = match settings.acks {
            Acks::None => "0",
            Acks::Leader => "1",
            Acks::All => "all",
        };
        let max_bytes = limits.request_bytes();
        config
            .set("acks", acks)
            .set("enable.idempotence", idempotent.to_string())
            .set("compression.codec", settings.compression.librdkafka_name())
            .set(
                "message.timeout.ms",
                settings.delivery_timeout.as_millis().to_string(),
            )
            .set("message.max.bytes", max_bytes.to_string())
            // Bounded explicitly: librdkafka's default queue is 1 GiB per producer.
            .set(
                "queue.buffering.max.kbytes",
                limits.producer_queue_kbytes().to_string(),
            );
        // linger.ms stays librdkafka's (5 ms) unless the connection sets it: records enqueued
        // together share requests, and the flusher sends an execution's last ones at once.
        let observer = Observer::for_connection(connection);
        let context = ProduceContext {
            observer: observer.clone(),
            ledger: Ledger::default(),
            events: Events::default(),
        };
        let inner = config
            .create_with_context(context)
            .map_err(ConnectorError::ClientConfig)?;
        let inner = Arc::new(inner);
        let flusher = Flusher::start(Arc::downgrade(&inner)).map_err(|e| {
            ConnectorError::Internal(format!("could not start the producer's flush thread: {e}"))
        })?;
        Events::start(&inner, flusher.thread());
        Ok(Self {
            inner,
            flusher,
            observer,
            connection: connection.clone(),
            settings,
            limits,
            partition_counts: Mutex::default(),
        })
    }

    /// Sends every record and returns one result per record, in input order.
    ///
    /// All records are enqueued before any delivery report is awaited, so a batch costs one
    /// round of broker requests, not one per record. `on_delivered` is called with the running
    /// count of records that have their result, for progress reporting.
    ///
    /// Fails as a whole only when the cluster cannot be reached. Cancel-safe in the sense that
    /// dropping the future stops waiting; records already enqueued may still be delivered.
    pub async fn produce(
        &self,
        records: Vec<ProduceRecord<'_>>,
        on_delivered: impl Fn(usize),
    ) -> Result<Vec<Result<Delivered, ProduceError>>, ConnectorError> {
        let partition_counts = self.partition_counts(&records).await?;
        let mut results: Vec<Option<Result<Delivered, ProduceError>>> = vec![None; records.len()];
        let context = self.inner.context();
        let batch = context.ledger.open(records.len());
        // From here until its last report this execution serves the producer's events.
        let _active = context.events.activate();
        let mut sent = 0;

        for (index, record) in records.iter().enumerate() {
            let Some(topic) = self.topic_of(record) else {
                results[index] = Some(Err(ProduceError::NoTopic));
                continue;
            };
            let size = record_size(record);
            if size > self.limits.max_request_size {
                results[index] = Some(Err(ProduceError::TooLarge {
                    size,
                    max: self.limits.max_request_size,
                    service: self.limits.lowered_by,
                }));
                continue;
            }
            let Some(count) = partition_counts.get(topic).copied().flatten() else {
                results[index] = Some(Err(ProduceError::UnknownTopic(topic.to_string())));
                continue;
            };
            if let Some(partition) = record.partition {
                if let Err(missing) = PartitionNotFound::check(topic, partition, count) {
                    results[index] = Some(Err(missing.into()));
                    continue;
                }
            }
            let mut base_record =
                BaseRecord::with_opaque_to(topic, batch.tag(index)).payload(&record.payload[..]);
            if let Some(key) = &record.key {
                base_record = base_record.key(&key[..]);
            }
            if let Some(partition) = record.partition {
                base_record = base_record.partition(partition);
            }
            if let Some(timestamp) = record.timestamp_ms {
                base_record = base_record.timestamp(timestamp);
            }
            if !record.headers.is_empty() {
                let headers = record
                    .headers
                    .iter()
                    .fold(OwnedHeaders::new(), |h, header| {
                        h.insert(RdHeader {
                            key: &header.name,
                            value: header.value.as_deref(),
                        })
                    });
                base_record = base_record.headers(headers);
            }
            let sent_one = loop {
                match self.inner.send(base_record) {
                    Ok(()) => break Ok(()),
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                        base_record = r;
                        // Records leave librdkafka's queue when their reports are served.
                        events::serve(&self.inner);
                        tokio::time::sleep(QUEUE_FULL_BACKOFF).await;
                    }
                    Err((error, _)) => break Err(error),
                }
            };
            match sent_one {
                Ok(()) => sent += 1,
                Err(error) => results[index] = Some(Err(delivery_error(topic, error))),
            }
            // Reports of the records sent so far are served now and then, not after every send,
            // so that a large execution does not hold them all until its end.
            if index % SERVE_EVERY == SERVE_EVERY - 1 {
                events::serve(&self.inner);
            }
        }
        let refused = results.iter().flatten().count();
        if refused > 0 {
            on_delivered(refused);
        }
        batch.sent_all(sent);
        if sent > 0 {
            self.flusher.wake();
        }
        loop {
            events::serve(&self.inner);
            let (delivered, all_in) = batch.progress();
            on_delivered(refused + delivered);
            if all_in {
                break;
            }
            // Another execution serving the queue may file this batch's last report.
            tokio::select! {
                () = context.events.ready() => {}
                () = batch.notified() => {}
                () = tokio::time::sleep(PROGRESS_EVERY) => {}
            }
        }

        let mut topics = TopicNames::default();
        for (index, outcome) in batch.outcomes().into_iter().enumerate() {
            let Some(outcome) = outcome else {
                continue;
            };
            // Only records with a topic were sent.
            let topic = topics.get(self.topic_of(&records[index]).unwrap_or_default());
            results[index] = Some(match outcome {
                Ok((partition, offset)) => Ok(Delivered {
                    topic,
                    partition,
                    offset,
                }),
                Err(error) => Err(delivery_error(&topic, error)),
            });
        }
        Ok(results
            .into_iter()
            .map(|r| r.expect("every record has a result once all deliveries are in"))
            .collect())
    }

    /// The topic a record goes to: its own, else the operation's.
    fn topic_of<'r>(&'r self, record: &'r ProduceRecord<'_>) -> Option<&'r str> {
        record.topic.as_deref().or(self.settings.topic.as_deref())
    }

    /// How many partitions each of the batch's topics has (`None`: the topic does not
    /// exist), so that records for a missing topic or partition fail at once instead of after
    /// the delivery timeout (brokers that do not auto-create topics leave such a record queued
    /// until it times out). Counts younger than [`PARTITION_COUNT_TTL`] come from the cache,
    /// unless a record names a partition beyond them; the cluster is asked for the rest.
    async fn partition_counts(
        &self,
        records: &[ProduceRecord<'_>],
    ) -> Result<BTreeMap<String, Option<usize>>, ConnectorError> {
        let mut wanted: BTreeMap<&str, i32> = BTreeMap::new();
        for record in records {
            if let Some(topic) = self.topic_of(record) {
                let highest = wanted.entry(topic).or_insert(-1);
                *highest = (*highest).max(record.partition.unwrap_or(-1));
            }
        }
        let mut counts = BTreeMap::new();
        let mut unknown = Vec::new();
        {
            let cache = self.partition_counts.lock().expect("partition count cache");
            for (topic, highest) in wanted {
                match cache.get(topic) {
                    // `highest` is -1 when no record names a partition.
                    Some(&(count, read))
                        if read.elapsed() < PARTITION_COUNT_TTL
                            && (highest as i64) < count as i64 =>
                    {
                        counts.insert(topic.to_string(), Some(count));
                    }
                    _ => unknown.push(topic.to_string()),
                }
            }
        }
        if unknown.is_empty() {
            return Ok(counts);
        }
        let producer = self.inner.clone();
        let observer = self.observer.clone();
        let connection = self.connection.clone();
        let read = tokio::task::spawn_blocking(move || {
            unknown
                .into_iter()
                .map(|topic| {
                    let count = connection.partition_count(producer.client(), &observer, &topic)?;
                    Ok((topic, count))
                })
                .collect::<Result<Vec<_>, ConnectorError>>()
        })
        .await
        .map_err(|e| ConnectorError::Internal(format!("topic metadata task failed: {e}")))??;
        let mut cache = self.partition_counts.lock().expect("partition count cache");
        let now = Instant::now();
        for (topic, count) in read {
            // Only topics that exist are remembered: one created a moment from now must work.
            match count {
                Some(count) => cache.insert(topic.clone(), (count, now)),
                None => cache.remove(&topic),
            };
            counts.insert(topic, count);
        }
        Ok(counts)
    }
}

/// The bytes a record occupies in a request, as Kafka's max.request.size counts them.
fn record_size(record: &ProduceRecord<'_>) -> u64 {
    let headers: usize = record
        .headers
        .iter()
        .map(|h| h.name.len() + h.value.as_ref().map_or(0, Vec::len))
        .sum();
    (record.payload.len() + record.key.as_ref().map_or(0, |k| k.len()) + headers) as u64
}

fn delivery_error(topic: &str, error: KafkaError) -> ProduceError {
    ProduceError::Delivery {
        topic: topic.to_string(),
        failure: DeliveryFailure::Refused(error),
    }
}
