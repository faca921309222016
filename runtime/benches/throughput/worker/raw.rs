//! The raw librdkafka side of each workload, as a worker runs it: a `BaseProducer` loop, a
//! `BaseConsumer` loop, and a consume → produce → wait for deliveries → commit bridge, each
//! with the client settings Sluice would use ([`crate::kafka`]).

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Message, Offset, TopicPartitionList};

use super::{stop_on_stdin_close, Job};
use crate::kafka::{self, await_deliveries, Deliveries};
use crate::matrix::BRIDGE_BATCH;
use crate::resources::{timed, Usage};

/// How long a raw loop serves delivery reports when the producer's queue is full before it
/// tries again.
const QUEUE_FULL_NAP: Duration = Duration::from_millis(5);

/// A raw producer loop; it waits for every delivery after each `wait_every` messages.
pub fn produce(job: &Job, payloads: Vec<Vec<u8>>, wait_every: usize) -> Usage {
    let producer = kafka::producer(job.bootstrap, job.size);
    // Warm-up, as for Sluice: one message sent and acknowledged.
    producer
        .send(BaseRecord::<(), _>::to(job.topic).payload("warm-up"))
        .map_err(|(e, _)| e)
        .expect("warm-up");
    producer
        .flush(Duration::from_secs(30))
        .expect("warm-up flush");
    timed(|| {
        for (chunk, payloads) in payloads.chunks(wait_every).enumerate() {
            produce_chunk(&producer, job.topic, payloads, chunk * wait_every);
        }
    })
}

/// Sends `payloads` (keys numbered from `first`) and waits for every delivery.
fn produce_chunk(
    producer: &BaseProducer<Deliveries>,
    topic: &str,
    payloads: &[Vec<u8>],
    first: usize,
) {
    for (i, payload) in (first..).zip(payloads) {
        let key = format!("k{i}");
        let record = BaseRecord::to(topic).payload(payload).key(&key);
        kafka::send(producer, record, QUEUE_FULL_NAP);
        // Delivery reports are served now and then, not after every send.
        if i % 1000 == 999 {
            producer.poll(Duration::ZERO);
        }
    }
    // The warm-up message was the first.
    await_deliveries(producer, 1 + first + payloads.len());
}

/// Polls until the cell's messages have all arrived, in a fresh group.
pub fn consume(job: &Job) {
    let consumer = kafka::consumer(job.bootstrap, job.size, job.group, job.topic);
    let deadline = Instant::now() + Duration::from_secs(300);
    let count = job.count;
    let mut received = 0;
    while received < count {
        assert!(
            Instant::now() < deadline,
            "raw consume: {received} of {count}"
        );
        if let Some(message) = consumer.poll(Duration::from_millis(100)) {
            message.expect("message");
            received += 1;
        }
    }
}

/// The raw counterpart of a listener with the same guarantee (at-least-once): poll a batch,
/// produce it, wait for every delivery, commit, until standard input closes.
pub fn bridge(job: &Job) {
    let (input, output) = job.topic.split_once(',').expect("INPUT,OUTPUT");
    let consumer = kafka::consumer(job.bootstrap, job.size, job.group, input);
    let producer = kafka::producer(job.bootstrap, job.size);
    let stop = stop_on_stdin_close();
    let mut next = TopicPartitionList::new();
    let mut sent = 0;
    while !stop.load(Ordering::Relaxed) {
        let batch = forward_batch(&consumer, &producer, output, &mut next);
        if batch == 0 {
            continue;
        }
        sent += batch;
        await_deliveries(&producer, sent);
        consumer.commit(&next, CommitMode::Sync).expect("commit");
        next = TopicPartitionList::new();
    }
}

/// Polls up to a listener's batch and sends each message on to `output`, adding the offset to
/// commit for it to `next`; returns how many it forwarded.
fn forward_batch(
    consumer: &BaseConsumer,
    producer: &BaseProducer<Deliveries>,
    output: &str,
    next: &mut TopicPartitionList,
) -> usize {
    let mut batch = 0;
    let mut wait = Duration::from_millis(100);
    while batch < BRIDGE_BATCH {
        let Some(message) = consumer.poll(wait) else {
            break;
        };
        let message = message.expect("message");
        let mut record = BaseRecord::to(output).payload(message.payload().unwrap_or_default());
        if let Some(key) = message.key() {
            record = record.key(key);
        }
        kafka::send(producer, record, QUEUE_FULL_NAP);
        next.add_partition_offset(
            message.topic(),
            message.partition(),
            Offset::Offset(message.offset() + 1),
        )
        .expect("offset");
        batch += 1;
        // The rest of the batch is what is already fetched, as a listener takes it.
        wait = Duration::ZERO;
    }
    batch
}
