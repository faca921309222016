//! The Listen operation's consumer: a long-lived member of a consumer group that hands over
//! batches of messages and commits only what its caller says is finished.
//!
//! At-least-once by construction: librdkafka stores and commits nothing by itself
//! (`enable.auto.commit` and `enable.auto.offset.store` are off); the caller commits the offsets
//! of the documents it has finished, before it asks for the next batch. A rebalance happens
//! inside a poll, so at that moment every finished document is already committed and the
//! partitions can move without losing or repeating finished work.

mod group;
mod seek;

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

pub use self::group::{GroupPosition, Holder};
pub use self::seek::{SeekMove, SeekTarget};
use crate::consume::{Consumed, OffsetReset};
use crate::context::{Observer, Progress};
use crate::record::TopicNames;
use crate::topic_pattern::TopicPattern;
use crate::{Connection, ConnectorError, Limits, PartitionNotFound};

/// A Listen operation's consumer settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenSettings {
    /// Topics to read; the group spreads their partitions over its members. Empty with a
    /// pattern.
    pub topics: Vec<String>,
    /// Read every topic whose name matches, found when the consumer opens and looked for
    /// again every `refresh` (see [`ListenConsumer::refresh_topics`]).
    pub pattern: Option<TopicPattern>,
    /// The consumer group, shared by every host that runs the same listener.
    pub consumer_group: String,
    /// Where to start without a committed offset.
    pub offset_reset: OffsetReset,
    /// Read only these partitions of the (single) topic instead of joining the group's
    /// assignment.
    pub partitions: Option<Vec<i32>>,
    /// Overrides the connection's client id.
    pub client_id: Option<String>,
    /// Most messages one batch holds.
    pub max_messages: NonZeroUsize,
}

/// Within one batch, how long to wait for more messages once the first has arrived: none.
/// What is already fetched is in librdkafka's queue; waiting for more would add its length to
/// every document's latency when traffic is light, and under load batches fill by themselves
/// (messages keep arriving while the previous batch runs).
const BATCH_LINGER: Duration = Duration::ZERO;

/// A connected Listen consumer. Cloning shares the one consumer.
#[derive(Clone)]
pub struct ListenConsumer {
    consumer: Arc<BaseConsumer<Observer>>,
    /// The connection it was opened on (for a look at the group from a client of its own).
    connection: Arc<Connection>,
    settings: Arc<ListenSettings>,
    limits: Limits,
    /// Finished, uncommitted offsets, shared with the rebalance callback.
    progress: Arc<std::sync::Mutex<Progress>>,
    /// The topics subscribed to now: the named ones, or those the pattern matched last.
    subscribed: Arc<std::sync::Mutex<Vec<String>>>,
    /// Set when a subscribed topic has gone: the pattern's topics are looked at again at
    /// once instead of at the next refresh.
    topic_gone: Arc<std::sync::atomic::AtomicBool>,
}

/// What a look at the cluster's topics changed in a pattern's subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicsChanged {
    /// Topics that match now and are read from now on.
    pub added: Vec<String>,
    /// Topics no longer there (deleted), no longer read.
    pub removed: Vec<String>,
    /// The subscription now.
    pub topics: Vec<String>,
}

/// The offset to commit for a partition: the next offset to read there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NextOffset {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// The first offset not yet finished.
    pub offset: i64,
}

/// Where a listener stands on one of its partitions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionPosition {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// The group's committed offset (the next to process), if any.
    pub committed: Option<i64>,
    /// The partition's end (high watermark), if the broker answered.
    pub end: Option<i64>,
    /// Messages not yet committed: end − committed (everything, without a commit).
    pub lag: Option<i64>,
}

impl ListenConsumer {
    /// Creates the consumer, checks that every topic (and named partition) exists, and
    /// subscribes (or assigns the named partitions). Runs on tokio's blocking pool.
    ///
    /// Fails when the brokers cannot be reached or a topic does not exist.
    pub async fn open(
        connection: &Connection,
        settings: ListenSettings,
        limits: Limits,
    ) -> Result<Self, ConnectorError> {
        let connection = connection.clone();
        let limits = connection.limits(limits);
        crate::blocking("listen", move || {
            Self::open_blocking(&connection, settings, limits)
        })
        .await
    }

    fn open_blocking(
        connection: &Connection,
        settings: ListenSettings,
        limits: Limits,
    ) -> Result<Self, ConnectorError> {
        let mut config = crate::consume::group_consumer_config(
            connection,
            &settings.consumer_group,
            settings.offset_reset,
            settings.client_id.as_deref(),
            limits,
        );
        config.set("enable.partition.eof", "false");
        let progress = Arc::new(std::sync::Mutex::new(Progress::default()));
        let context = Observer::for_connection(connection).with_progress(progress.clone());
        let consumer: BaseConsumer<Observer> = config
            .create_with_context(context)
            .map_err(ConnectorError::ClientConfig)?;
        Observer::serve_first_token(&consumer);
        if let Some(pattern) = &settings.pattern {
            let topics = pattern.topics_on(connection, &consumer)?;
            subscribe(&consumer, &topics).map_err(|source| consume_error(&settings, source))?;
            return Ok(Self::new(
                consumer, connection, settings, limits, progress, topics,
            ));
        }
        for topic in &settings.topics {
            let count = connection.partition_count(consumer.client(), consumer.context(), topic)?;
            let Some(count) = count else {
                return Err(ConnectorError::UnknownTopic(topic.clone()));
            };
            if let Some(partitions) = &settings.partitions {
                for &partition in partitions {
                    PartitionNotFound::check(topic, partition, count)?;
                }
            }
        }
        match &settings.partitions {
            Some(partitions) => {
                let mut assignment = TopicPartitionList::new();
                for topic in &settings.topics {
                    for &partition in partitions {
                        assignment
                            .add_partition_offset(topic, partition, Offset::Stored)
                            .map_err(|source| consume_error(&settings, source))?;
                    }
                }
                let assigned = consumer.assign(&assignment);
                drop(assignment);
                assigned.map_err(|source| consume_error(&settings, source))?;
            }
            None => {
                let topics: Vec<&str> = settings.topics.iter().map(String::as_str).collect();
                consumer
                    .subscribe(&topics)
                    .map_err(|source| consume_error(&settings, source))?;
            }
        }
        let topics = settings.topics.clone();
        Ok(Self::new(
            consumer, connection, settings, limits, progress, topics,
        ))
    }

    fn new(
        consumer: BaseConsumer<Observer>,
        connection: &Connection,
        settings: ListenSettings,
        limits: Limits,
        progress: Arc<std::sync::Mutex<Progress>>,
        subscribed: Vec<String>,
    ) -> Self {
        Self {
            consumer: Arc::new(consumer),
            connection: Arc::new(connection.clone()),
            settings: Arc::new(settings),
            limits,
            progress,
            subscribed: Arc::new(std::sync::Mutex::new(subscribed)),
            topic_gone: Arc::default(),
        }
    }

    /// The topics subscribed to now.
    pub fn topics(&self) -> Vec<String> {
        self.subscribed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Whether the pattern's topics should be looked at again now: `refresh` has passed
    /// since `last`, or a subscribed topic has gone. Always false without a pattern.
    pub fn refresh_due(&self, last: Instant) -> bool {
        let Some(pattern) = &self.settings.pattern else {
            return false;
        };
        last.elapsed() >= pattern.refresh
            || self.topic_gone.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Looks at the cluster's topics again and subscribes to those the pattern matches now,
    /// if they changed (the group then rebalances). `None`: nothing changed, or there is no
    /// pattern. Fails when the brokers do not answer; the subscription stays as it was.
    pub async fn refresh_topics(&self) -> Result<Option<TopicsChanged>, ConnectorError> {
        let this = self.clone();
        crate::blocking("listen refresh", move || this.refresh_blocking()).await
    }

    fn refresh_blocking(&self) -> Result<Option<TopicsChanged>, ConnectorError> {
        let Some(pattern) = &self.settings.pattern else {
            return Ok(None);
        };
        self.topic_gone
            .store(false, std::sync::atomic::Ordering::Relaxed);
        let metadata = self
            .consumer
            .fetch_metadata(None, REFRESH_TIMEOUT)
            .map_err(|source| consume_error(&self.settings, source))?;
        let topics = pattern.matching(&metadata);
        drop(metadata);
        let mut subscribed = self
            .subscribed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if *subscribed == topics {
            return Ok(None);
        }
        subscribe(&self.consumer, &topics)
            .map_err(|source| consume_error(&self.settings, source))?;
        let change = TopicsChanged {
            added: topics
                .iter()
                .filter(|t| !subscribed.contains(t))
                .cloned()
                .collect(),
            removed: subscribed
                .iter()
                .filter(|t| !topics.contains(t))
                .cloned()
                .collect(),
            topics: topics.clone(),
        };
        *subscribed = topics;
        Ok(Some(change))
    }

    /// The topics as messages name them: the pattern, or the topics.
    fn shown(&self) -> String {
        shown(&self.settings)
    }

    /// The settings it was opened with.
    pub fn settings(&self) -> &ListenSettings {
        &self.settings
    }

    /// Waits up to `wait` for a first message, then takes what is already fetched, up to
    /// `max_messages`. An empty batch means nothing arrived. Transient broker errors are
    /// logged and retried by librdkafka; a topic deleted under the listener is an error.
    ///
    /// Cancellation: dropping the future does not stop the blocking poll, which ends by
    /// `wait` (plus a short linger) at the latest.
    pub async fn poll_batch(&self, wait: Duration) -> Result<Vec<Consumed>, ConnectorError> {
        let this = self.clone();
        crate::blocking("listen poll", move || this.poll_blocking(wait)).await
    }

    fn poll_blocking(&self, wait: Duration) -> Result<Vec<Consumed>, ConnectorError> {
        let deadline = Instant::now() + wait;
        let max = self.settings.max_messages.get();
        let mut batch = Vec::new();
        let mut topics = TopicNames::default();
        while batch.len() < max {
            let now = Instant::now();
            let timeout = if batch.is_empty() {
                deadline.saturating_duration_since(now)
            } else {
                BATCH_LINGER
            };
            match self.consumer.poll(timeout) {
                None => break,
                Some(Ok(message)) => {
                    batch.push(crate::consume::consumed(&message, self.limits, &mut topics));
                }
                Some(Err(KafkaError::MessageConsumption(
                    RDKafkaErrorCode::UnknownTopicOrPartition | RDKafkaErrorCode::UnknownTopic,
                ))) if self.settings.pattern.is_some() => {
                    // A matching topic was deleted: it leaves the subscription at the next
                    // look, which this makes immediate. The other topics go on.
                    tracing::info!(
                        pattern = %self.shown(),
                        "a subscribed topic is gone; looking at the pattern's topics again"
                    );
                    self.topic_gone
                        .store(true, std::sync::atomic::Ordering::Relaxed);
                    break;
                }
                Some(Err(KafkaError::MessageConsumption(
                    RDKafkaErrorCode::UnknownTopicOrPartition | RDKafkaErrorCode::UnknownTopic,
                ))) => {
                    return Err(ConnectorError::UnknownTopic(self.shown()));
                }
                Some(Err(error)) => {
                    tracing::warn!(
                        topics = %self.shown(),
                        error = %crate::explain(&error),
                        "transient listen error"
                    );
                    if batch.is_empty() && Instant::now() >= deadline {
                        break;
                    }
                }
            }
            if batch.is_empty() && Instant::now() >= deadline {
                break;
            }
        }
        Ok(batch)
    }

    /// While a listener is paused: stops fetching every assigned partition and polls only to
    /// stay in the group (and so take part in rebalances). A partition the group assigns
    /// meanwhile may deliver a message before it is paused; that message is not handed over:
    /// the partition is paused and rewound to it, so it is delivered after the resume.
    pub async fn poll_paused(&self, wait: Duration) -> Result<(), ConnectorError> {
        let this = self.clone();
        crate::blocking("listen poll", move || this.poll_paused_blocking(wait)).await
    }

    fn poll_paused_blocking(&self, wait: Duration) -> Result<(), ConnectorError> {
        self.pause_assignment()?;
        let Some(Ok(message)) = self.consumer.poll(wait) else {
            return Ok(());
        };
        let (topic, partition, offset) = (
            message.topic().to_string(),
            message.partition(),
            message.offset(),
        );
        drop(message);
        self.pause_assignment()?;
        self.consumer
            .seek(
                &topic,
                partition,
                Offset::Offset(offset),
                Duration::from_secs(5),
            )
            .map_err(|source| consume_error(&self.settings, source))
    }

    fn pause_assignment(&self) -> Result<(), ConnectorError> {
        self.set_assignment_paused(true)
    }

    /// Pauses or resumes fetching for every assigned partition.
    fn set_assignment_paused(&self, paused: bool) -> Result<(), ConnectorError> {
        let assignment = self
            .consumer
            .assignment()
            .map_err(|source| consume_error(&self.settings, source))?;
        let done = if paused {
            self.consumer.pause(&assignment)
        } else {
            self.consumer.resume(&assignment)
        };
        // The list goes before the result is looked at: a list kept alive past the client's
        // calls has hung librdkafka's destroy (TESTING.md).
        drop(assignment);
        done.map_err(|source| consume_error(&self.settings, source))
    }

    /// Fetches the assigned partitions again after [`ListenConsumer::poll_paused`].
    pub async fn resume(&self) -> Result<(), ConnectorError> {
        let this = self.clone();
        crate::blocking("listen resume", move || this.set_assignment_paused(false)).await
    }

    /// The partitions this member holds now, with the group's committed offset, the end of
    /// each partition and the lag between them. Asks the brokers (blocking pool).
    pub async fn positions(&self) -> Result<Vec<PartitionPosition>, ConnectorError> {
        let this = self.clone();
        crate::blocking("listen status", move || this.positions_blocking()).await
    }

    fn positions_blocking(&self) -> Result<Vec<PartitionPosition>, ConnectorError> {
        const TIMEOUT: Duration = Duration::from_secs(5);
        let assignment = self
            .consumer
            .assignment()
            .map_err(|source| consume_error(&self.settings, source))?;
        let committed = self
            .consumer
            .committed_offsets(assignment.clone(), TIMEOUT)
            .map_err(|source| self.commit_error(source));
        drop(assignment);
        let committed = committed?;
        let mut positions = self.positions_of(&committed, TIMEOUT);
        drop(committed);
        positions.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
        Ok(positions)
    }

    /// Where the group stands on each partition of `committed` (an answer to
    /// committed_offsets): its committed offset, the partition's end and the lag between
    /// them. The ends are asked of every leader at once, one ListOffsets request each, in
    /// parallel. A watermark query per partition is two requests one after the other, and each
    /// waits on the broker behind this consumer's own fetch on that connection (up to
    /// fetch.wait.max.ms): 200 partitions took 100 s a look, where the watchdog gives up after
    /// 15 s. A partition whose end is not known (its leader did not answer) has no lag.
    fn positions_of(
        &self,
        committed: &TopicPartitionList,
        timeout: Duration,
    ) -> Vec<PartitionPosition> {
        let mut ends = TopicPartitionList::new();
        for element in committed.elements() {
            // In a list for offsets_for_times the offset field holds a time; "the end" is the
            // same value, -1, in both, and the answer puts the end's offset there.
            let _ = ends.add_partition_offset(element.topic(), element.partition(), Offset::End);
        }
        let mut known = HashMap::new();
        if ends.count() > 0 {
            match self.consumer.offsets_for_times(ends, timeout) {
                Ok(answer) => {
                    for element in answer.elements() {
                        if let (Offset::Offset(end), Ok(())) = (element.offset(), element.error()) {
                            known.insert((element.topic().to_string(), element.partition()), end);
                        }
                    }
                    // Dropped before the next call on the client (TESTING.md: lists kept alive
                    // have hung librdkafka's destroy).
                    drop(answer);
                }
                Err(error) => {
                    tracing::debug!(%error, "the partitions' ends could not be listed");
                }
            }
        }
        committed
            .elements()
            .iter()
            .map(|element| {
                let (topic, partition) = (element.topic().to_string(), element.partition());
                let committed = match element.offset() {
                    Offset::Offset(n) => Some(n),
                    _ => None,
                };
                let end = known.get(&(topic.clone(), partition)).copied();
                let lag = match (committed, end) {
                    (Some(c), Some(e)) => Some((e - c).max(0)),
                    (None, Some(e)) => Some(e),
                    _ => None,
                };
                PartitionPosition {
                    topic,
                    partition,
                    committed,
                    end,
                    lag,
                }
            })
            .collect()
    }

    /// How many of this consumer's commits of finished offsets have succeeded: it is making
    /// progress while this grows.
    pub fn commits(&self) -> u64 {
        self.progress().commits
    }

    /// How often the group has taken partitions from this consumer (rebalances that revoked
    /// at least one partition, including the one of [`ListenConsumer::close`]).
    pub fn revocations(&self) -> u64 {
        self.progress().revocations
    }

    fn progress(&self) -> std::sync::MutexGuard<'_, Progress> {
        self.progress
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records that every document before `next.offset` on its partition has finished. It is
    /// committed by [`ListenConsumer::commit_finished`], or when the group revokes the
    /// partition. Returns `false` when the partition was revoked meanwhile: its new owner reads
    /// it again from the last commit, so this member must not commit it.
    pub fn mark_finished(&self, next: NextOffset) -> bool {
        let mut progress = self.progress();
        let key = (next.topic, next.partition);
        if progress.revoked.contains(&key) {
            return false;
        }
        let entry = progress.finished.entry(key).or_insert(next.offset);
        *entry = (*entry).max(next.offset);
        true
    }

    /// Commits every finished offset not committed yet. What fails to commit stays recorded
    /// for the next attempt.
    pub async fn commit_finished(&self) -> Result<(), ConnectorError> {
        let finished: Vec<NextOffset> = std::mem::take(&mut self.progress().finished)
            .into_iter()
            .map(|((topic, partition), offset)| NextOffset {
                topic,
                partition,
                offset,
            })
            .collect();
        let moved = !finished.is_empty();
        let result = self.commit(finished.clone()).await;
        if result.is_ok() && moved {
            self.progress().commits += 1;
        }
        if result.is_err() {
            for next in finished {
                self.mark_finished(next);
            }
        }
        result
    }

    /// Commits these next offsets for the group, synchronously.
    pub async fn commit(&self, offsets: Vec<NextOffset>) -> Result<(), ConnectorError> {
        if offsets.is_empty() {
            return Ok(());
        }
        let this = self.clone();
        crate::blocking("listen commit", move || this.commit_blocking(&offsets)).await
    }

    fn commit_blocking(&self, offsets: &[NextOffset]) -> Result<(), ConnectorError> {
        let mut list = TopicPartitionList::new();
        for next in offsets {
            list.add_partition_offset(&next.topic, next.partition, Offset::Offset(next.offset))
                .map_err(|source| self.commit_error(source))?;
        }
        let result = self
            .consumer
            .commit(&list, CommitMode::Sync)
            .map_err(|source| self.commit_error(source));
        // A list passed to commit() must be gone before the consumer is destroyed (librdkafka's
        // destroy can hang otherwise).
        drop(list);
        result?;
        for next in offsets {
            tracing::debug!(
                topic = %next.topic,
                partition = next.partition,
                offset = next.offset,
                "committed"
            );
        }
        Ok(())
    }

    /// Leaves the consumer group cleanly (its partitions go to the other members at once, not
    /// after the session timeout). Runs on the blocking pool.
    pub async fn close(self) {
        let consumer = self.consumer;
        let _ = tokio::task::spawn_blocking(move || {
            consumer.unsubscribe();
            // The last clone: dropping it closes the consumer, which leaves the group.
            drop(consumer);
        })
        .await;
    }

    fn commit_error(&self, source: KafkaError) -> ConnectorError {
        ConnectorError::Commit {
            group: self.settings.consumer_group.clone(),
            source,
        }
    }
}

fn consume_error(settings: &ListenSettings, source: KafkaError) -> ConnectorError {
    ConnectorError::Consume {
        topic: shown(settings),
        source,
    }
}

/// The topics of `settings` as messages name them.
fn shown(settings: &ListenSettings) -> String {
    match &settings.pattern {
        Some(pattern) => format!("pattern {}", pattern.as_str()),
        None => settings.topics.join(", "),
    }
}

/// Subscribes to the topics a pattern matched; to none, by leaving the subscription
/// (librdkafka refuses an empty list).
fn subscribe(consumer: &BaseConsumer<Observer>, topics: &[String]) -> Result<(), KafkaError> {
    if topics.is_empty() {
        consumer.unsubscribe();
        return Ok(());
    }
    let topics: Vec<&str> = topics.iter().map(String::as_str).collect();
    consumer.subscribe(&topics)
}

/// How long a look at the cluster's topics may take.
const REFRESH_TIMEOUT: Duration = Duration::from_secs(10);
