//! What the benchmark's own librdkafka clients share: generated payloads, the client settings
//! Sluice's operations would use for a cell (so that a raw loop is compared like with like),
//! and a producer that counts its delivery reports, with its send and wait loops.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::ToBytes;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::ClientContext;

use crate::worker::sluice::container;

/// `size` bytes that do not compress to nothing (the benchmark sends no compression anyway).
pub fn payload(size: usize, seed: usize) -> Vec<u8> {
    let mut state = (seed as u64)
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1);
    (0..size)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            b'a' + (state >> 59) as u8 % 26
        })
        .collect()
}

/// Counts delivery reports, and those that failed.
#[derive(Default)]
pub struct Deliveries {
    done: AtomicUsize,
    failed: AtomicUsize,
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if result.is_err() {
            self.failed.fetch_add(1, Ordering::Relaxed);
        }
        self.done.fetch_add(1, Ordering::Relaxed);
    }
}

/// A producer with the settings Sluice's Produce operation would use for messages of `size`.
pub fn producer(bootstrap: &str, size: usize) -> BaseProducer<Deliveries> {
    producer_config(bootstrap, size)
        .create_with_context(Deliveries::default())
        .expect("producer")
}

/// A consumer of `topic` in `group`, with the settings Sluice's Consume and Listen operations
/// would use for messages of `size`.
pub fn consumer(bootstrap: &str, size: usize, group: &str, topic: &str) -> BaseConsumer {
    let consumer: BaseConsumer = consumer_config(bootstrap, size, group)
        .create()
        .expect("consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    consumer
}

/// Sends `record`; while the producer's queue is full, serves delivery reports for `nap`
/// (which the poll takes in full, see [`await_deliveries`]) and tries again.
pub fn send<K, P>(
    producer: &BaseProducer<Deliveries>,
    mut record: BaseRecord<'_, K, P>,
    nap: Duration,
) where
    K: ToBytes + ?Sized,
    P: ToBytes + ?Sized,
{
    loop {
        match producer.send(record) {
            Ok(()) => return,
            Err((_, unsent)) => {
                record = unsent;
                producer.poll(nap);
            }
        }
    }
}

/// Serves delivery reports until `sent` messages (counted since the producer was created)
/// have theirs, and checks none failed. Without a blocking poll: rust-rdkafka 0.39's
/// `BaseProducer::poll` (and so `flush`, which polls in 100 ms slices) returns only when its
/// timeout has passed, even when reports came earlier, which would add the timeout to every
/// wait of a raw loop; so it serves what is there and naps 50 µs between looks.
pub fn await_deliveries(producer: &BaseProducer<Deliveries>, sent: usize) {
    let deadline = Instant::now() + Duration::from_secs(120);
    let context = producer.context();
    loop {
        producer.poll(Duration::ZERO);
        if context.done.load(Ordering::Relaxed) >= sent {
            break;
        }
        assert!(Instant::now() < deadline, "raw deliveries did not arrive");
        std::thread::sleep(Duration::from_micros(50));
    }
    assert_eq!(
        context.failed.load(Ordering::Relaxed),
        0,
        "raw deliveries failed"
    );
}

/// The settings Sluice's Produce operation gives librdkafka for this cell, except `linger.ms`:
/// 0 here, the raw loops' best (they send in one tight burst and then wait), where Sluice keeps
/// librdkafka's default and flushes when an execution has sent its last record.
fn producer_config(bootstrap: &str, size: usize) -> ClientConfig {
    let limits = container(size).kafka;
    let mut config = sluice_client(bootstrap);
    config
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("compression.codec", "none")
        .set("linger.ms", "0")
        .set("message.timeout.ms", "30000")
        .set("message.max.bytes", message_max_bytes(size).to_string())
        .set(
            "queue.buffering.max.kbytes",
            u64::from(limits.producer_queue_kbytes)
                .max(limits.max_request_size.div_ceil(1024) * 2)
                .to_string(),
        );
    config
}

/// The settings Sluice's Consume and Listen operations give librdkafka for this cell.
fn consumer_config(bootstrap: &str, size: usize, group: &str) -> ClientConfig {
    let limits = container(size).kafka;
    let fetch_max = message_max_bytes(size);
    let mut config = sluice_client(bootstrap);
    config
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("fetch.max.bytes", fetch_max.to_string())
        .set("message.max.bytes", fetch_max.to_string())
        .set(
            "queued.max.messages.kbytes",
            u64::from(limits.consumer_prefetch_kbytes)
                .max(fetch_max.div_ceil(1024))
                .to_string(),
        );
    config
}

/// What every Sluice client sets, whatever its role.
fn sluice_client(bootstrap: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("client.id", "sluice");
    config
}

/// The largest message (and fetch) Sluice lets librdkafka handle for this cell: a request of
/// `kafka.max.request.size` plus room for the protocol's framing, within librdkafka's own
/// ceiling of 1 000 000 000 bytes.
fn message_max_bytes(size: usize) -> u64 {
    (container(size).kafka.max_request_size + 64 * 1024).min(1_000_000_000)
}
