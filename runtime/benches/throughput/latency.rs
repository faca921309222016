//! The bridge's latency runs, from the benchmark's own process: a load producer that stamps
//! each input message with its send time, a reader of the output topic that notes each
//! message's age on arrival, and the percentiles of those ages.

use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord};
use rdkafka::{Message, Offset, TopicPartitionList};

use crate::harness;
use crate::kafka::{self, Deliveries};

/// How long the latency runs of a bridge cell send at their steady rate.
pub const LATENCY_SECONDS: f64 = 3.0;

/// Percentiles of one latency run, in milliseconds.
#[derive(Clone, Copy, Debug)]
pub struct Latency {
    pub p50: f64,
    pub p99: f64,
}

/// One latency run through a bridge that is starting: once a first message has come through
/// (the bridge is ready), sends [`LATENCY_SECONDS`] of load at `rate` a second into `input`
/// while `reader` notes each arrival.
pub fn measure(
    bootstrap: &str,
    reader: &mut OutputReader,
    input: &str,
    size: usize,
    rate: f64,
) -> Latency {
    let load = LoadProducer::new(bootstrap, input, size);
    load.send_one();
    reader.wait_for(1);
    // The reader notes each message as it arrives, while the load is sent.
    let total = (rate * LATENCY_SECONDS) as usize;
    let latencies = std::thread::scope(|scope| {
        let reading = scope.spawn(|| reader.wait_for(1 + total));
        load.send_at(rate, total);
        reading.join().expect("reader")
    });
    percentiles(latencies)
}

/// Reads a bridge's output topic from the start and notes each message's latency: now minus
/// the send time the load producer wrote into the payload's first 8 bytes.
pub struct OutputReader {
    consumer: BaseConsumer,
    received: usize,
}

impl OutputReader {
    pub fn new(bootstrap: &str, topic: &str, partitions: i32) -> Self {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .set("group.id", harness::unique("bench-reader"))
            .set("enable.auto.commit", "false")
            // Fetch answers as soon as there is data; a short wait bounds what a broker that
            // holds fetches adds to the measured latency.
            .set("fetch.wait.max.ms", "5")
            .create()
            .expect("reader");
        let mut assignment = TopicPartitionList::new();
        for partition in 0..partitions {
            assignment
                .add_partition_offset(topic, partition, Offset::Beginning)
                .expect("assignment");
        }
        consumer.assign(&assignment).expect("assign");
        Self {
            consumer,
            received: 0,
        }
    }

    /// Reads until `total` messages have arrived in all; returns the latencies (ms) of those
    /// read in this call that carry a send time.
    pub fn wait_for(&mut self, total: usize) -> Vec<f64> {
        let deadline = Instant::now() + Duration::from_secs(300);
        let mut latencies = Vec::new();
        while self.received < total {
            assert!(
                Instant::now() < deadline,
                "bridge output: {} of {total}",
                self.received
            );
            let Some(message) = self.consumer.poll(Duration::from_millis(100)) else {
                continue;
            };
            let message = message.expect("bridge output message");
            self.received += 1;
            let payload = message.payload().unwrap_or_default();
            if let Some(sent) = payload.get(..8).and_then(|b| <[u8; 8]>::try_from(b).ok()) {
                let sent = u64::from_le_bytes(sent);
                if sent > 0 {
                    latencies.push(micros_now().saturating_sub(sent) as f64 / 1000.0);
                }
            }
        }
        latencies
    }
}

/// Microseconds since the epoch: the stamp, comparable between the load producer and the
/// reader because both run in this process.
fn micros_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_micros() as u64
}

fn percentiles(mut latencies: Vec<f64>) -> Latency {
    assert!(!latencies.is_empty(), "no latencies measured");
    latencies.sort_by(f64::total_cmp);
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize];
    Latency {
        p50: at(0.50),
        p99: at(0.99),
    }
}

/// Sends timestamped payloads into a bridge's input topic at a steady rate.
struct LoadProducer {
    producer: BaseProducer<Deliveries>,
    topic: String,
    size: usize,
    sent: usize,
}

impl LoadProducer {
    fn new(bootstrap: &str, topic: &str, size: usize) -> Self {
        Self {
            producer: kafka::producer(bootstrap, size),
            topic: topic.to_string(),
            size,
            sent: 0,
        }
    }

    /// A message whose send time is 0: it is not counted as a latency.
    fn send_one(&self) {
        self.send(0);
        kafka::await_deliveries(&self.producer, 1);
    }

    fn send(&self, stamp: u64) {
        let mut payload = kafka::payload(self.size.max(8), self.sent);
        payload[..8].copy_from_slice(&stamp.to_le_bytes());
        let key = format!("k{}", self.sent);
        // A short nap when the queue is full: a late message would count as latency.
        let record = BaseRecord::to(&self.topic).payload(&payload).key(&key);
        kafka::send(&self.producer, record, Duration::from_millis(1));
    }

    /// Sends `total` messages at `rate` a second, each stamped as it is sent.
    fn send_at(mut self, rate: f64, total: usize) {
        let started = Instant::now();
        while self.sent < total {
            let due = ((started.elapsed().as_secs_f64() * rate) as usize).min(total);
            while self.sent < due {
                self.send(micros_now());
                self.sent += 1;
            }
            self.producer.poll(Duration::ZERO);
            // Pacing: the next message is due within the millisecond at the rates measured.
            std::thread::sleep(Duration::from_micros(500));
        }
        // The warm-up message first.
        kafka::await_deliveries(&self.producer, 1 + total);
    }
}
