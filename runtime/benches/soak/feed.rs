//! The soak's traffic, from outside the hosts: an independent producer that sends numbered
//! messages at a steady rate (one message per batch, no compression: what tansu's sqlite
//! storage reads back reliably), and independent readers of the output topics that note every
//! number they see and how long it took to arrive.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::{ClientContext, Message, Offset, TopicPartitionList};

/// Every `FAILING_EVERY`th message is routed to a topic that does not exist: the failing
/// listener dead-letters it.
pub const FAILING_EVERY: u64 = 50;

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// What the producer's delivery reports said.
#[derive(Default)]
pub struct Sent {
    /// Numbers the broker took.
    pub delivered: Mutex<Vec<u64>>,
    /// Numbers it never took (the broker was away longer than the message timeout).
    pub failed: AtomicU64,
    /// Messages handed to the producer.
    pub handed: AtomicU64,
}

impl Sent {
    /// How many messages were handed to the producer so far.
    pub fn sent(&self) -> u64 {
        self.handed.load(Ordering::Relaxed)
    }
}

struct Reports(Arc<Sent>);

impl ClientContext for Reports {}

impl ProducerContext for Reports {
    type DeliveryOpaque = Box<u64>;

    fn delivery(&self, result: &DeliveryResult<'_>, seq: Box<u64>) {
        match result {
            Ok(_) => self.0.delivered.lock().expect("delivered").push(*seq),
            Err(_) => {
                self.0.failed.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// The independent producer of the soak's input topic.
pub struct Feed {
    producer: BaseProducer<Reports>,
    topic: String,
    partitions: i32,
    good_route: String,
    next: u64,
    pub sent: Arc<Sent>,
}

impl Feed {
    pub fn new(bootstrap: &str, topic: &str, partitions: i32, good_route: &str) -> Self {
        let sent = Arc::new(Sent::default());
        let producer = ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .set("linger.ms", "0")
            .set("batch.num.messages", "1")
            .set("compression.type", "none")
            // Not idempotent: tansu started again after a SIGKILL does not know the producer
            // ids it handed out, and librdkafka's idempotent producer takes the answer as fatal
            // (the first soak's feed died at the first kill). A resend may repeat a message in
            // the input; the accounting counts what the input topic holds.
            .set("enable.idempotence", "false")
            .set("acks", "all")
            // Several requests in flight: one at a time, each a sqlite transaction in tansu,
            // the feed itself fell behind at 80 messages/s (the second soak).
            .set("max.in.flight.requests.per.connection", "5")
            // A broker killed and started again is back well within it.
            .set("message.timeout.ms", "300000")
            .create_with_context(Reports(sent.clone()))
            .expect("the feed's producer");
        Self {
            producer,
            topic: topic.to_string(),
            partitions,
            good_route: good_route.to_string(),
            next: 0,
            sent,
        }
    }

    /// Sends the next message: `seq:send_ms`, to partition seq % partitions, with header
    /// `route` naming the failing listener's target (or, every FAILING_EVERY th, a topic that
    /// does not exist).
    pub fn send_one(&mut self) {
        let seq = self.next;
        self.next += 1;
        self.sent.handed.fetch_add(1, Ordering::Relaxed);
        let payload = format!("{seq}:{}", now_ms());
        let route = if seq % FAILING_EVERY == FAILING_EVERY - 1 {
            "soak-nowhere"
        } else {
            self.good_route.as_str()
        };
        let headers = OwnedHeaders::new().insert(Header {
            key: "route",
            value: Some(route),
        });
        let mut record: BaseRecord<'_, str, str, Box<u64>> =
            BaseRecord::with_opaque_to(&self.topic, Box::new(seq))
                .payload(payload.as_str())
                .partition((seq % self.partitions as u64) as i32)
                .headers(headers);
        loop {
            match self.producer.send(record) {
                Ok(()) => break,
                Err((_, unsent)) => {
                    record = unsent;
                    self.producer.poll(Duration::from_millis(10));
                }
            }
        }
        self.producer.poll(Duration::ZERO);
    }

    /// Sends at `rate` a second until `stop` is set, or `limit` messages have gone.
    pub fn run(&mut self, rate: f64, stop: &AtomicBool, limit: Option<u64>) {
        let started = Instant::now();
        let first = self.next;
        while !stop.load(Ordering::Relaxed) && limit.is_none_or(|l| self.next - first < l) {
            let due =
                ((started.elapsed().as_secs_f64() * rate) as u64).saturating_sub(self.next - first);
            for _ in 0..due.min(1000) {
                self.send_one();
            }
            self.producer.poll(Duration::from_millis(2));
        }
    }

    /// Waits (up to `timeout`) for every message's delivery report.
    pub fn finish(&self, timeout: Duration) {
        let _ = self.producer.flush(timeout);
    }
}

/// What a reader of one output topic has seen.
#[derive(Default)]
pub struct Seen {
    /// How often each number arrived.
    pub counts: BTreeMap<u64, u32>,
    /// Of each arrival: when it was sent (ms since the epoch) and how long it took (ms).
    pub arrivals: Vec<(i64, f64)>,
}

impl Seen {
    pub fn total(&self) -> u64 {
        self.counts.values().map(|&c| u64::from(c)).sum()
    }
}

/// Reads an output topic from its beginning, for the whole soak, on a thread of its own.
pub struct Reader {
    pub seen: Arc<Mutex<Seen>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Reader {
    pub fn start(bootstrap: &str, topic: &str, partitions: i32) -> Self {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .set("group.id", format!("soak-reader-{topic}"))
            .set("enable.auto.commit", "false")
            .set("enable.partition.eof", "false")
            // The broker answers a fetch as soon as there is something, or after this.
            .set("fetch.wait.max.ms", "100")
            .create()
            .expect("a reader");
        let mut list = TopicPartitionList::new();
        for p in 0..partitions {
            list.add_partition_offset(topic, p, Offset::Beginning)
                .expect("partition");
        }
        consumer.assign(&list).expect("assign");
        let seen = Arc::new(Mutex::new(Seen::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (shared, stopping) = (seen.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !stopping.load(Ordering::Relaxed) {
                let Some(Ok(message)) = consumer.poll(Duration::from_millis(200)) else {
                    continue;
                };
                let Some(text) = message.payload().and_then(|p| std::str::from_utf8(p).ok()) else {
                    continue;
                };
                let Some((seq, sent_ms)) = text.split_once(':') else {
                    continue;
                };
                let (Ok(seq), Ok(sent_ms)) = (seq.parse::<u64>(), sent_ms.parse::<i64>()) else {
                    continue;
                };
                // Seen here: the output's own timestamp is the input's (Sluice passes a
                // message's timestamp on), so the reader's clock tells the arrival.
                let arrived = now_ms();
                let mut seen = shared.lock().expect("seen");
                *seen.counts.entry(seq).or_default() += 1;
                seen.arrivals
                    .push((sent_ms, (arrived - sent_ms).max(0) as f64));
            }
        });
        Self {
            seen,
            stop,
            thread: Some(thread),
        }
    }

    /// How many distinct numbers arrived.
    pub fn distinct(&self) -> usize {
        self.seen.lock().expect("seen").counts.len()
    }

    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
