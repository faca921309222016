//! Who serves a producer's events: delivery reports, librdkafka's logs and errors, OAUTHBEARER
//! token refreshes.
//!
//! rust-rdkafka's `ThreadedProducer` serves them on a polling thread of its own, so every report
//! of a small document crosses threads: librdkafka's broker thread wakes the polling thread, which
//! frees messages the execution's thread allocated (glibc then takes its shared arena's lock) and
//! wakes the execution in turn. A quarter of a small document's cost was spent there. Here the
//! execution that waits for its reports serves the producer's queue itself, as a raw librdkafka
//! loop does, woken by librdkafka when the queue stops being empty. While no execution is active
//! the producer's own thread (the flusher) serves the queue instead, so logs, errors, token
//! refreshes and the reports of cancelled executions are never left waiting.
//!
//! Whoever serves the queue files every report it finds in the ledger, whichever batch it belongs
//! to: which thread serves is a question of cost, never of correctness.

#![allow(unsafe_code)] // librdkafka's queue wake-up callback and queue length have no safe wrapper.

use std::ffi::c_void;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::thread::Thread;
use std::time::Duration;

use rdkafka::bindings as rdsys;
use rdkafka::producer::{BaseProducer, Producer as _};
use tokio::sync::Notify;

use super::ProduceContext;

/// Most events one [`serve`] call takes, so that a producer flooded with events cannot keep one
/// execution serving other executions' reports forever.
const SERVE_AT_MOST: usize = 100_000;

/// The producer's event queue and who is to be woken when it gets something.
#[derive(Default)]
pub(super) struct Events {
    /// Executions between their first record and their last report: while there is one, it
    /// serves the queue.
    active: AtomicUsize,
    /// Woken (one waiter, or a permit kept for the next) when the queue gets an event after
    /// being empty.
    ready: Notify,
    /// The flusher thread, woken instead when no execution is active.
    idle: OnceLock<Thread>,
    /// librdkafka's main queue of the producer, where its events arrive.
    queue: OnceLock<Queue>,
}

/// A reference to a librdkafka queue, released when dropped.
struct Queue(*mut rdsys::rd_kafka_queue_t);

// SAFETY: librdkafka's queue handles may be used from any thread; every operation on the queue
// takes the queue's own lock.
unsafe impl Send for Queue {}
// SAFETY: as above.
unsafe impl Sync for Queue {}

impl Drop for Queue {
    fn drop(&mut self) {
        // SAFETY: the pointer came from rd_kafka_queue_get_main and is released once. The handle
        // holds its own reference to the queue, so this is valid even after the client is gone.
        unsafe { rdsys::rd_kafka_queue_destroy(self.0) }
    }
}

impl Events {
    /// Starts the wake-ups: from now on librdkafka calls back when the queue of `producer`
    /// (whose context holds `self`) stops being empty, and `idle` is woken when no execution
    /// is active.
    pub(super) fn start(producer: &BaseProducer<ProduceContext>, idle: Thread) {
        let events = &producer.context().events;
        let _ = events.idle.get_or_init(|| idle);
        let queue = events.queue.get_or_init(|| {
            // SAFETY: the client is valid while `producer` is borrowed; the queue reference is
            // released by `Queue::drop`.
            Queue(unsafe { rdsys::rd_kafka_queue_get_main(producer.client().native_ptr()) })
        });
        // SAFETY: `events` lives in the client's context, which rust-rdkafka drops only after
        // rd_kafka_destroy has returned, and librdkafka calls back only until then.
        unsafe {
            rdsys::rd_kafka_queue_cb_event_enable(
                queue.0,
                Some(queue_not_empty),
                std::ptr::from_ref(events).cast_mut().cast::<c_void>(),
            );
        }
        // What came before the callback was in place (a connection's first OAUTHBEARER token
        // request comes as the client is created) is served now, not at the thread's next look.
        events.wake_idle();
    }

    /// Wakes the flusher thread to serve the queue.
    fn wake_idle(&self) {
        if let Some(idle) = self.idle.get() {
            idle.unpark();
        }
    }

    /// How many events wait in the queue.
    fn pending(&self) -> usize {
        self.queue.get().map_or(0, |queue| {
            // SAFETY: the handle is valid until `Queue::drop`.
            unsafe { rdsys::rd_kafka_queue_length(queue.0) }
        })
    }

    /// Whether an execution is between its first record and its last report.
    pub(super) fn any_active(&self) -> bool {
        self.active.load(Ordering::SeqCst) > 0
    }

    /// Counts an execution as active until the guard is dropped (also when its future is
    /// cancelled).
    pub(super) fn activate(&self) -> Active<'_> {
        self.active.fetch_add(1, Ordering::SeqCst);
        Active { events: self }
    }

    /// Waits until the queue gets an event (or a spurious wake-up: serve and look again). An
    /// event that came since the last [`serve`] completes it at once.
    pub(super) async fn ready(&self) {
        self.ready.notified().await;
    }
}

/// An execution that serves the producer's queue while it lasts.
pub(super) struct Active<'e> {
    events: &'e Events,
}

impl Drop for Active<'_> {
    fn drop(&mut self) {
        // The last execution to leave hands the queue to the flusher thread if something came
        // after its last look. Either the callback already saw no execution active and woke the
        // thread, or the event is in the queue by now and counted here.
        if self.events.active.fetch_sub(1, Ordering::SeqCst) == 1 && self.events.pending() > 0 {
            self.events.wake_idle();
        }
    }
}

/// Serves what is in the producer's queue now, without waiting: each delivery report is filed
/// in the ledger, each log line and error goes to the observer.
pub(super) fn serve(producer: &BaseProducer<ProduceContext>) {
    let events = &producer.context().events;
    // rust-rdkafka's poll with a zero timeout serves one event (a delivery report event holds
    // a whole request's reports); its poll with a timeout always lasts the whole timeout.
    for _ in 0..SERVE_AT_MOST {
        if events.pending() == 0 {
            return;
        }
        producer.poll(Duration::ZERO);
    }
}

/// librdkafka's call when an event is enqueued on the empty queue, on one of its own threads and
/// under the queue's lock: it must only wake someone.
unsafe extern "C" fn queue_not_empty(_client: *mut rdsys::rd_kafka_t, opaque: *mut c_void) {
    // SAFETY: `opaque` is the `Events` given to rd_kafka_queue_cb_event_enable, alive until
    // the client is destroyed (see `Events::start`).
    let events = unsafe { &*opaque.cast::<Events>() };
    events.ready.notify_one();
    if !events.any_active() {
        events.wake_idle();
    }
}
