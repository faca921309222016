//! The delivery reports of a producer's batches in flight.
//!
//! librdkafka hands each record's report to whichever thread serves the producer's events (see
//! `events`), with the opaque value the record was sent with. That value here is a plain number
//! (the batch and the record's index in it), not a boxed pointer: a box per record is an
//! allocation on the sending thread that another thread may free, which glibc's allocator serves
//! from its shared arena under a lock instead of the thread's own cache. The reports land in
//! their batch's places, and the batch's waiter wakes once, when the last one is in; a report
//! served by another execution's thread wakes its own batch's waiter.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use rdkafka::error::KafkaError;
use tokio::sync::Notify;

/// A record's report: where it landed (partition, offset), or why it was not delivered.
pub(super) type Outcome = Result<(i32, i64), KafkaError>;

// A record's tag carries its batch number in the high 32 bits and its index in the low 32.
const _: () = assert!(usize::BITS >= 64, "a record's tag needs a 64-bit usize");

/// Every batch of one producer that still waits for reports.
#[derive(Default)]
pub(super) struct Ledger {
    batches: Mutex<Batches>,
}

#[derive(Default)]
struct Batches {
    /// The next batch's number. It wraps after 2³² batches; a report that comes after its
    /// batch has gone (the waiter was cancelled) finds no batch of that number and is dropped.
    next: u32,
    /// A producer has a batch open per execution that waits: a handful, so a list searched
    /// from the front costs less per report than hashing the number.
    open: Vec<Batch>,
}

impl Batches {
    fn position(&self, number: u32) -> Option<usize> {
        self.open.iter().position(|b| b.number == number)
    }

    fn get(&self, number: u32) -> Option<&Batch> {
        self.position(number).map(|at| &self.open[at])
    }

    fn get_mut(&mut self, number: u32) -> Option<&mut Batch> {
        self.position(number).map(|at| &mut self.open[at])
    }
}

struct Batch {
    number: u32,
    outcomes: Vec<Option<Outcome>>,
    /// Reports in so far. They can come before the sending loop has finished.
    delivered: usize,
    /// How many records went to librdkafka, once the sending loop has finished.
    sent: Option<usize>,
    all_in: Arc<Notify>,
}

impl Batch {
    fn all_in(&self) -> bool {
        self.sent == Some(self.delivered)
    }
}

impl Ledger {
    fn lock(&self) -> MutexGuard<'_, Batches> {
        self.batches.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Opens a batch of `records` records; it closes when the handle is dropped.
    pub(super) fn open(&self, records: usize) -> BatchHandle<'_> {
        assert!(
            u32::try_from(records).is_ok(),
            "a batch holds fewer than 2^32 records"
        );
        let all_in = Arc::new(Notify::new());
        let mut batches = self.lock();
        let mut number = batches.next;
        while batches.get(number).is_some() {
            number = number.wrapping_add(1);
        }
        batches.next = number.wrapping_add(1);
        batches.open.push(Batch {
            number,
            outcomes: vec![None; records],
            delivered: 0,
            sent: None,
            all_in: all_in.clone(),
        });
        BatchHandle {
            ledger: self,
            number,
            all_in,
        }
    }

    /// Files the report of the record sent with `tag` (on the thread serving the events).
    pub(super) fn report(&self, tag: usize, outcome: Outcome) {
        let (number, index) = ((tag >> 32) as u32, tag as u32 as usize);
        let mut batches = self.lock();
        let Some(batch) = batches.get_mut(number) else {
            return;
        };
        if let Some(slot) = batch.outcomes.get_mut(index) {
            *slot = Some(outcome);
        }
        batch.delivered += 1;
        if batch.all_in() {
            // A permit is kept if the waiter is not waiting yet.
            batch.all_in.notify_one();
        }
    }
}

/// One open batch, as its sender sees it.
pub(super) struct BatchHandle<'l> {
    ledger: &'l Ledger,
    number: u32,
    all_in: Arc<Notify>,
}

impl BatchHandle<'_> {
    /// The opaque value the record at `index` is sent with.
    pub(super) fn tag(&self, index: usize) -> usize {
        ((self.number as usize) << 32) | index
    }

    /// Every record is sent, `sent` of them to librdkafka: from now on the last report wakes
    /// the waiter.
    pub(super) fn sent_all(&self, sent: usize) {
        let mut batches = self.ledger.lock();
        if let Some(batch) = batches.get_mut(self.number) {
            batch.sent = Some(sent);
        }
    }

    /// How many reports are in, and whether that is all of them.
    pub(super) fn progress(&self) -> (usize, bool) {
        let batches = self.ledger.lock();
        batches
            .get(self.number)
            .map_or((0, true), |batch| (batch.delivered, batch.all_in()))
    }

    /// Waits until the last report is in (or a spurious wake-up: check [`Self::progress`]).
    pub(super) async fn notified(&self) {
        self.all_in.notified().await;
    }

    /// The reports, each in its record's place (`None`: the record was not sent).
    pub(super) fn outcomes(&self) -> Vec<Option<Outcome>> {
        let mut batches = self.ledger.lock();
        batches
            .get_mut(self.number)
            .map(|batch| std::mem::take(&mut batch.outcomes))
            .unwrap_or_default()
    }
}

impl Drop for BatchHandle<'_> {
    fn drop(&mut self) {
        let mut batches = self.ledger.lock();
        if let Some(at) = batches.position(self.number) {
            batches.open.swap_remove(at);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_land_in_their_places_and_the_last_one_completes_the_batch() {
        let ledger = Ledger::default();
        let first = ledger.open(3);
        let second = ledger.open(1);
        // A report may come before the sending loop has counted its record.
        ledger.report(first.tag(2), Ok((0, 7)));
        first.sent_all(2);
        assert_eq!(first.progress(), (1, false));
        ledger.report(second.tag(0), Ok((1, 1)));
        ledger.report(first.tag(0), Ok((0, 6)));
        assert_eq!(first.progress(), (2, true));
        let outcomes = first.outcomes();
        assert_eq!(outcomes[0], Some(Ok((0, 6))));
        assert_eq!(outcomes[1], None, "index 1 was not sent");
        assert_eq!(outcomes[2], Some(Ok((0, 7))));
        assert_eq!(second.outcomes(), vec![Some(Ok((1, 1)))]);
    }

    #[test]
    fn a_report_after_its_batch_is_gone_is_dropped() {
        let ledger = Ledger::default();
        let tag = {
            let gone = ledger.open(1);
            gone.tag(0)
        };
        let next = ledger.open(1);
        assert_ne!(
            next.tag(0),
            tag,
            "a closed batch's number is not reused at once"
        );
        ledger.report(tag, Ok((0, 1)));
        next.sent_all(1);
        assert_eq!(
            next.progress(),
            (0, false),
            "the stale report was not counted"
        );
    }
}
