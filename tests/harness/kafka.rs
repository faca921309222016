//! An independent Kafka client (rdkafka, not Sluice) that creates topics, produces test input
//! and reads back what landed and what consumer groups committed.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};

use super::{unique, wait_for};

/// An independent client (rdkafka, not Sluice) of a cluster, to set up and check tests.
pub struct Kafka {
    bootstrap: String,
    settings: Vec<(String, String)>,
}

impl Kafka {
    pub fn new(bootstrap: &str) -> Self {
        Self::with_settings(bootstrap, Vec::new())
    }

    /// A client with extra librdkafka settings (TLS, SASL).
    pub fn with_settings(bootstrap: &str, settings: Vec<(String, String)>) -> Self {
        Self {
            bootstrap: bootstrap.to_string(),
            settings,
        }
    }

    fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.bootstrap);
        for (name, value) in &self.settings {
            config.set(name, value);
        }
        config
    }

    fn admin(&self) -> AdminClient<DefaultClientContext> {
        self.client_config().create().expect("admin client")
    }

    fn admin_options() -> AdminOptions {
        AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)))
    }

    /// Creates a topic with a unique name and waits until its metadata is visible.
    pub fn create_topic(&self, prefix: &str, partitions: i32) -> String {
        self.create_topic_named(&unique(prefix), partitions)
    }

    /// Creates topic `name` (as shipped examples name it) and waits until its metadata is
    /// visible.
    pub fn create_topic_named(&self, name: &str, partitions: i32) -> String {
        let name = name.to_string();
        let results = futures::executor::block_on(self.admin().create_topics(
            &[NewTopic::new(&name, partitions, TopicReplication::Fixed(1))],
            &Self::admin_options(),
        ))
        .expect("create_topics");
        for result in results {
            result.unwrap_or_else(|(topic, e)| panic!("creating topic {topic}: {e}"));
        }
        let consumer: BaseConsumer = self.client_config().create().expect("consumer");
        wait_for("the new topic's metadata", Duration::from_secs(10), || {
            let metadata = consumer
                .fetch_metadata(Some(&name), Duration::from_secs(5))
                .ok()?;
            let topic = metadata.topics().iter().find(|t| t.name() == name)?;
            (topic.error().is_none() && topic.partitions().len() == partitions as usize)
                .then_some(())
        });
        name
    }

    /// Deletes a topic (its data goes with it).
    pub fn delete_topic(&self, name: &str) {
        let results = futures::executor::block_on(
            self.admin().delete_topics(&[name], &Self::admin_options()),
        )
        .expect("delete_topics");
        for result in results {
            result.unwrap_or_else(|(topic, e)| panic!("deleting topic {topic}: {e}"));
        }
    }

    /// Produces records with an independent client (not Sluice's), waiting for each delivery.
    pub fn produce(&self, topic: &str, records: &[(Option<&str>, &str)]) {
        let producer: FutureProducer = self.client_config().create().expect("producer");
        futures::executor::block_on(async {
            for (key, payload) in records {
                let mut record = FutureRecord::to(topic).payload(*payload);
                if let Some(key) = key {
                    record = record.key(*key);
                }
                producer
                    .send(record, Duration::from_secs(10))
                    .await
                    .unwrap_or_else(|(e, _)| panic!("producing to {topic}: {e}"));
            }
        });
    }

    /// Produces one record to an explicit partition, with headers, with an independent client.
    pub fn produce_one(
        &self,
        topic: &str,
        partition: i32,
        key: Option<&str>,
        payload: &[u8],
        headers: &[(&str, &str)],
    ) {
        let producer: FutureProducer = self.client_config().create().expect("producer");
        let mut owned = rdkafka::message::OwnedHeaders::new();
        for (name, value) in headers {
            owned = owned.insert(rdkafka::message::Header {
                key: name,
                value: Some(*value),
            });
        }
        let mut record = FutureRecord::to(topic)
            .payload(payload)
            .partition(partition)
            .headers(owned);
        if let Some(key) = key {
            record = record.key(key);
        }
        futures::executor::block_on(producer.send(record, Duration::from_secs(10)))
            .unwrap_or_else(|(e, _)| panic!("producing to {topic}: {e}"));
    }

    /// A producer that sends each record in a batch of its own when each send is awaited:
    /// tansu returns nothing to a fetch that starts inside a batch, so a consumer that resumes
    /// mid-stream (after a restart) must find each offset at a batch start.
    fn one_per_batch(&self) -> FutureProducer {
        self.client_config()
            .set("batch.num.messages", "1")
            .set("linger.ms", "0")
            .create()
            .expect("producer")
    }

    /// Produces `doc-NNNNN` to partition N % `partitions` of `topic` for N = 0, 1, … until
    /// `stop` is set, each in a batch of its own and `pace` after the previous one (a steady
    /// load, not a flood that only measures the broker); returns how many it produced.
    pub fn produce_until(
        &self,
        topic: &str,
        partitions: i32,
        pace: Duration,
        stop: &AtomicBool,
    ) -> usize {
        let producer = self.one_per_batch();
        let mut sent = 0;
        futures::executor::block_on(async {
            while !stop.load(Ordering::Relaxed) {
                let payload = format!("doc-{sent:05}");
                let record = FutureRecord::<(), _>::to(topic)
                    .payload(&payload)
                    .partition(sent as i32 % partitions);
                producer
                    .send(record, Duration::from_secs(10))
                    .await
                    .unwrap_or_else(|(e, _)| panic!("producing to {topic}: {e}"));
                sent += 1;
                std::thread::sleep(pace);
            }
        });
        sent
    }

    /// Produces one record without key or headers to `partition` of `topic`.
    pub fn produce_to(&self, topic: &str, partition: i32, payload: &str) {
        self.produce_one(topic, partition, None, payload.as_bytes(), &[]);
    }

    /// Where a new member of `group` starts reading each partition of `topic`: subscribes
    /// like any consumer of the group and records the first offset it gets per partition,
    /// until it has one for each of `partitions`.
    pub fn group_starts_at(&self, group: &str, topic: &str, partitions: i32) -> Vec<i64> {
        let consumer: BaseConsumer = self
            .client_config()
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .create()
            .expect("consumer");
        consumer.subscribe(&[topic]).expect("subscribe");
        let mut first = vec![None; partitions as usize];
        wait_for(
            "a record from every partition",
            Duration::from_secs(30),
            || {
                if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
                    first[m.partition() as usize].get_or_insert(m.offset());
                }
                first.iter().all(Option::is_some).then_some(())
            },
        );
        first.into_iter().map(|o| o.expect("checked")).collect()
    }

    /// Whatever a topic holds now (read from the beginning until nothing more comes for a
    /// moment), for checks that allow duplicates.
    pub fn read_some(&self, topic: &str) -> Vec<Record> {
        self.read(topic, None)
    }

    /// Reads a topic from the beginning with an independent consumer until `expected` records
    /// are in (or panics after a deadline), then checks nothing more arrives.
    pub fn read_all(&self, topic: &str, expected: usize) -> Vec<Record> {
        self.read(topic, Some(expected))
    }

    /// The payloads of [`Kafka::read_all`], in the order read.
    pub fn read_payloads(&self, topic: &str, expected: usize) -> Vec<String> {
        self.read_all(topic, expected)
            .into_iter()
            .map(|r| r.payload)
            .collect()
    }

    /// Waits until a topic holds `count` distinct payloads (duplicates allowed: at-least-once)
    /// and returns them.
    pub fn wait_for_payloads(&self, topic: &str, count: usize) -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        wait_for(
            &format!("{count} distinct documents in {topic}"),
            Duration::from_secs(60),
            || {
                seen = self
                    .read_some(topic)
                    .into_iter()
                    .map(|r| r.payload)
                    .collect();
                (seen.len() == count).then_some(())
            },
        );
        seen
    }

    fn read(&self, topic: &str, expected: Option<usize>) -> Vec<Record> {
        let consumer = self.reader_from_the_beginning(topic);
        let mut records = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        // Without an expected count: until a quiet moment after the first record (or none).
        let mut quiet_since = Instant::now();
        while Instant::now() < deadline
            && match expected {
                Some(expected) => records.len() < expected,
                None => quiet_since.elapsed() < Duration::from_millis(1500),
            }
        {
            if let Some(message) = consumer.poll(Duration::from_millis(100)) {
                quiet_since = Instant::now();
                records.push(Record::of(&message.expect("consume")));
            }
        }
        let Some(expected) = expected else {
            return records;
        };
        assert_eq!(
            records.len(),
            expected,
            "records in topic {topic}: {records:#?}"
        );
        // Nothing beyond what was expected: a short drain of what is already fetched.
        if let Some(Ok(extra)) = consumer.poll(Duration::from_millis(500)) {
            panic!(
                "an unexpected extra record at offset {} in {topic}",
                extra.offset()
            );
        }
        records
    }

    /// How many records `topic` holds: the sum of its partitions' high watermarks. Cheap
    /// enough to poll while the topic grows (reading it would never see a quiet moment).
    pub fn records_in(&self, topic: &str) -> i64 {
        let consumer = self.reader_from_the_beginning(topic);
        let assignment = consumer.assignment().expect("assignment");
        let partitions: Vec<i32> = assignment
            .elements()
            .iter()
            .map(|e| e.partition())
            .collect();
        drop(assignment);
        partitions
            .into_iter()
            .map(|p| {
                let (_, high) = consumer
                    .fetch_watermarks(topic, p, Duration::from_secs(10))
                    .expect("watermarks");
                high
            })
            .sum()
    }

    /// A consumer of its own group, assigned every partition of `topic` from the beginning.
    fn reader_from_the_beginning(&self, topic: &str) -> BaseConsumer {
        let consumer: BaseConsumer = self
            .client_config()
            .set("group.id", unique("harness-reader"))
            .set("enable.auto.commit", "false")
            .create()
            .expect("consumer");
        let metadata = consumer
            .fetch_metadata(Some(topic), Duration::from_secs(10))
            .expect("metadata");
        let partitions = metadata.topics()[0].partitions().len() as i32;
        let mut assignment = TopicPartitionList::new();
        for p in 0..partitions {
            assignment
                .add_partition_offset(topic, p, Offset::Beginning)
                .expect("assignment");
        }
        consumer.assign(&assignment).expect("assign");
        drop(assignment);
        consumer
    }

    /// The offsets a consumer group has committed on a topic, per partition (`None`: none).
    pub fn committed(&self, group: &str, topic: &str, partitions: i32) -> Vec<Option<i64>> {
        self.committed_entries(group, topic, partitions)
            .into_iter()
            .map(|(offset, _)| offset)
            .collect()
    }

    /// Waits (up to a minute) until `group` has committed `expected` on partitions 0.. of
    /// `topic`.
    pub fn wait_for_committed(&self, group: &str, topic: &str, expected: &[Option<i64>]) {
        wait_for(
            &format!("commits {expected:?} on {topic}"),
            Duration::from_secs(60),
            || (self.committed(group, topic, expected.len() as i32) == expected).then_some(()),
        );
    }

    /// The metadata stored with a group's committed offset of one partition.
    pub fn committed_metadata(&self, group: &str, topic: &str, partition: i32) -> String {
        self.committed_entries(group, topic, partition + 1)
            .swap_remove(partition as usize)
            .1
    }

    /// Committed offset and metadata of partitions 0..`partitions` of `topic` for `group`.
    fn committed_entries(
        &self,
        group: &str,
        topic: &str,
        partitions: i32,
    ) -> Vec<(Option<i64>, String)> {
        let consumer: BaseConsumer = self
            .client_config()
            .set("group.id", group)
            .create()
            .expect("consumer");
        let mut list = TopicPartitionList::new();
        for p in 0..partitions {
            list.add_partition(topic, p);
        }
        let committed = consumer
            .committed_offsets(list, Duration::from_secs(10))
            .expect("committed offsets");
        let entries = (0..partitions)
            .map(|p| match committed.find_partition(topic, p) {
                Some(e) => {
                    let offset = match e.offset() {
                        Offset::Offset(o) => Some(o),
                        _ => None,
                    };
                    (offset, e.metadata().to_string())
                }
                None => (None, String::new()),
            })
            .collect();
        // Lists from committed() must be gone before the consumer is destroyed.
        drop(committed);
        entries
    }
}

/// One record as the independent consumer saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Where it is: partition and offset.
    pub partition: i32,
    pub offset: i64,
    /// Its headers in order (name, value).
    pub headers: Vec<(String, Option<String>)>,
    /// Its timestamp in milliseconds, if it has one.
    pub timestamp: Option<i64>,
    /// Key and payload as (lossy) UTF-8.
    pub key: Option<String>,
    pub payload: String,
}

impl Record {
    /// The record of a consumed message; bytes that are not UTF-8 read lossily.
    fn of(m: &BorrowedMessage<'_>) -> Self {
        let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
        Self {
            partition: m.partition(),
            offset: m.offset(),
            timestamp: m.timestamp().to_millis(),
            key: m.key().map(text),
            payload: text(m.payload().unwrap_or_default()),
            headers: m
                .headers()
                .map(|h| {
                    h.iter()
                        .map(|h| (h.key.to_string(), h.value.map(text)))
                        .collect()
                })
                .unwrap_or_default(),
        }
    }

    /// The value of header `name` (the last one if repeated).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| v.as_deref())
    }
}
