//! The producer's own thread: it sends an execution's last records at once instead of after
//! `linger.ms`, and serves the producer's events while no execution is active.
//!
//! librdkafka holds records for up to `linger.ms` so that more can join a request. An execution
//! that has handed over all its records gains nothing from that wait and ends later by it. Not
//! lingering at all (`linger.ms=0`) is worse: the broker thread then wakes for every record and,
//! while its requests are in flight, polls without sleeping, several times the CPU per message
//! for no gain in rate. librdkafka's own "send now" is `rd_kafka_flush`: while a call is inside
//! it, the broker threads take `linger.ms` as zero. rust-rdkafka's `flush` calls it with a zero
//! timeout in a loop (so the flag drops again at once), hence a thread of the producer's own that
//! sits in it while records are outstanding, woken when an execution has sent its last record.
//! One thread per producer, not one per execution: starting a thread costs more than a small
//! execution's whole send.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::thread::Thread;
use std::time::Duration;

use rdkafka::producer::{BaseProducer, Producer as _};

use super::{events, ProduceContext};

/// How long one `rd_kafka_flush` call waits before the flusher looks again whether its producer
/// still exists and whether an execution still serves its events.
const FLUSH_SLICE: Duration = Duration::from_millis(100);

/// How long an idle flusher sleeps before it looks whether its producer is gone (it ends at
/// most this long after) and serves what came unannounced.
const IDLE_CHECK: Duration = Duration::from_secs(1);

/// The flusher thread of one producer.
pub(super) struct Flusher {
    thread: Thread,
    /// An execution has handed over its last record since the thread last flushed.
    wanted: Arc<AtomicBool>,
}

impl Flusher {
    /// Starts the thread. It holds the producer only while it works (so the producer may be
    /// dropped on it), and ends once the producer is gone.
    pub(super) fn start(producer: Weak<BaseProducer<ProduceContext>>) -> std::io::Result<Self> {
        let wanted = Arc::new(AtomicBool::new(false));
        let flush_wanted = wanted.clone();
        let handle = std::thread::Builder::new()
            .name("sluice-flush".into())
            .spawn(move || loop {
                std::thread::park_timeout(IDLE_CHECK);
                let Some(held) = producer.upgrade() else {
                    return;
                };
                serve_if_idle(&held);
                if !flush_wanted.swap(false, Ordering::SeqCst) {
                    continue;
                }
                drop(held);
                loop {
                    let Some(held) = producer.upgrade() else {
                        return;
                    };
                    if flush(&held, FLUSH_SLICE) {
                        break;
                    }
                    // The execution that waits may have been cancelled meanwhile: its reports
                    // must still be served, or the flush never ends.
                    serve_if_idle(&held);
                }
            })?;
        Ok(Self {
            thread: handle.thread().clone(),
            wanted,
        })
    }

    /// The thread, to be woken when the producer's events need serving.
    pub(super) fn thread(&self) -> Thread {
        self.thread.clone()
    }

    /// Every record of an execution is with librdkafka: send what lingers now. A wake while
    /// the thread is flushing is kept, so records handed over meanwhile are not left behind.
    pub(super) fn wake(&self) {
        self.wanted.store(true, Ordering::SeqCst);
        self.thread.unpark();
    }
}

/// Serves the producer's events unless an execution does.
fn serve_if_idle(producer: &BaseProducer<ProduceContext>) {
    if !producer.context().events.any_active() {
        events::serve(producer);
    }
}

/// One `rd_kafka_flush` call of up to `timeout`: while it lasts, the producer's broker threads
/// send what they hold without lingering. True when no record is left outstanding (at once if
/// none was). What became of each record its own delivery report says.
fn flush(producer: &BaseProducer<ProduceContext>, timeout: Duration) -> bool {
    let timeout_ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
    // SAFETY: the handle is valid while `producer` is borrowed, and librdkafka allows
    // rd_kafka_flush from any thread, beside the thread that serves the producer's events.
    #[allow(unsafe_code)]
    let outcome =
        unsafe { rdkafka::bindings::rd_kafka_flush(producer.client().native_ptr(), timeout_ms) };
    // With delivery reports as events (rust-rdkafka's way) it waits for the producer's count of
    // records to reach zero, which happens as their reports are served, and answers TIMED_OUT if
    // the time ran out first.
    outcome != rdkafka::types::RDKafkaRespErr::RD_KAFKA_RESP_ERR__TIMED_OUT
}
