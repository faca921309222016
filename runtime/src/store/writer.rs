//! Execution records written by a thread of their own, so that an execution database that is
//! slow or locked by another process never holds a listener up: while the database can be
//! written, an execution waits for its record (it is in the database before the execution's
//! offsets are committed, as a reader of `sluice executions --message` expects); while it
//! cannot, records wait in memory, up to [`MAX_WAITING`], and are written once it can again.
//! Beyond that bound they are dropped, counted and reported, and the listeners go on.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use rusqlite::ErrorCode;
use tokio::sync::oneshot;

use super::executions::{open_writer, write_records, Bounds, ExecutionStore};
use crate::record::ExecutionRecord;

/// Most records kept in memory while the database cannot be written: about a minute of a busy
/// host's executions, a few tens of MB at most.
pub const MAX_WAITING: usize = 10_000;

/// Most records one transaction writes.
const BATCH: usize = 500;

/// How long the writer waits before it tries a locked database again.
const RETRY: Duration = Duration::from_millis(500);

/// Records on their way to the database.
#[derive(Default)]
pub(super) struct RecordQueue {
    state: Mutex<QueueState>,
    changed: Condvar,
}

#[derive(Default)]
struct QueueState {
    waiting: VecDeque<Waiting>,
    /// Taken by the writer and not written yet.
    in_hand: usize,
    /// Since when the database has refused writes (locked or busy), if it does.
    locked_since: Option<Instant>,
    /// Records never written: over the bound, or refused by the database for good.
    dropped: u64,
    started: bool,
    closed: bool,
}

struct Waiting {
    record: ExecutionRecord,
    documents_out: usize,
    written: Option<oneshot::Sender<()>>,
}

/// What became of a record handed to [`ExecutionStore::submit`].
#[derive(Debug)]
pub enum Submitted {
    /// The database can be written: the receiver hears when this record is in it.
    Writing(oneshot::Receiver<()>),
    /// The database cannot be written now: the record waits in memory.
    Waiting,
    /// Too many records wait already: this one is dropped (and counted).
    Dropped,
}

impl RecordQueue {
    fn state(&self) -> std::sync::MutexGuard<'_, QueueState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl ExecutionStore {
    /// Hands `record` to the writer thread. Never blocks on the database.
    pub fn submit(&self, record: ExecutionRecord, documents_out: usize) -> Submitted {
        let mut state = self.queue.state();
        if state.waiting.len() + state.in_hand >= MAX_WAITING {
            state.dropped += 1;
            // The first, then one line per thousand: the log must not become the next problem.
            if state.dropped % 1000 == 1 {
                tracing::error!(
                    dropped = state.dropped,
                    waiting = MAX_WAITING,
                    "execution records dropped: the execution database has not taken writes for \
                     a while and the records waiting for it fill their bound; the executions \
                     themselves go on"
                );
            }
            return Submitted::Dropped;
        }
        if !state.started {
            state.started = true;
            self.start_writer();
        }
        let (written, answer) = match state.locked_since {
            None => {
                let (tx, rx) = oneshot::channel();
                (Some(tx), Submitted::Writing(rx))
            }
            Some(_) => (None, Submitted::Waiting),
        };
        state.waiting.push_back(Waiting {
            record,
            documents_out,
            written,
        });
        drop(state);
        self.queue.changed.notify_all();
        answer
    }

    /// Waits up to `timeout` for every record handed over to be written; returns how many are
    /// still not written (the database stayed locked), plus those dropped before.
    pub fn flush(&self, timeout: Duration) -> u64 {
        let deadline = Instant::now() + timeout;
        let mut state = self.queue.state();
        while !state.waiting.is_empty() || state.in_hand > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            state = self
                .queue
                .changed
                .wait_timeout(state, left)
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .0;
        }
        (state.waiting.len() + state.in_hand) as u64 + state.dropped
    }

    /// Records waiting to be written, and records dropped since the host started.
    pub fn backlog(&self) -> (usize, u64) {
        let state = self.queue.state();
        (state.waiting.len() + state.in_hand, state.dropped)
    }

    fn start_writer(&self) {
        let (queue, bounds, path) = (self.queue.clone(), self.bounds.clone(), self.path.clone());
        let spawned = std::thread::Builder::new()
            .name("sluice-records".into())
            .spawn(move || write_until_closed(&path, &queue, &bounds));
        if let Err(error) = spawned {
            tracing::error!(%error, "the execution records' writer cannot start");
        }
    }
}

impl Drop for ExecutionStore {
    fn drop(&mut self) {
        // The writer ends once what waits is written or found unwritable; nobody waits for it.
        self.queue.state().closed = true;
        self.queue.changed.notify_all();
    }
}

fn write_until_closed(path: &Path, queue: &RecordQueue, bounds: &Bounds) {
    let mut connection = None;
    loop {
        let batch: Vec<Waiting> = {
            let mut state = queue.state();
            while state.waiting.is_empty() && !state.closed {
                state = queue
                    .changed
                    .wait(state)
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
            }
            if state.waiting.is_empty() {
                return;
            }
            let n = state.waiting.len().min(BATCH);
            state.in_hand = n;
            state.waiting.drain(..n).collect()
        };
        if connection.is_none() {
            connection = open_writer(path)
                .inspect_err(|error| {
                    tracing::warn!(%error, "the execution database cannot be opened for writing; trying again");
                })
                .ok();
        }
        let outcome = match &mut connection {
            Some(connection) => {
                let records: Vec<(&ExecutionRecord, usize)> =
                    batch.iter().map(|w| (&w.record, w.documents_out)).collect();
                write_records(connection, bounds, &records)
            }
            None => Err(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CANTOPEN),
                None,
            )),
        };
        let mut state = queue.state();
        state.in_hand = 0;
        match outcome {
            Ok(_) => {
                if let Some(since) = state.locked_since.take() {
                    tracing::warn!(
                        locked_for_ms = since.elapsed().as_millis() as u64,
                        "the execution database takes writes again; the records that waited are written"
                    );
                }
                for waiting in batch {
                    if let Some(written) = waiting.written {
                        let _ = written.send(());
                    }
                }
            }
            Err(error) if is_locked(&error) && !state.closed => {
                if state.locked_since.is_none() {
                    state.locked_since = Some(Instant::now());
                    tracing::warn!(
                        %error,
                        bound = MAX_WAITING,
                        "the execution database is locked (by another process?): records wait in \
                         memory until it takes writes again; executions go on"
                    );
                }
                // Back at the front, in their order; whoever waits for one stops waiting (the
                // execution goes on), so the senders go.
                for mut waiting in batch.into_iter().rev() {
                    waiting.written = None;
                    state.waiting.push_front(waiting);
                }
                drop(state);
                queue.changed.notify_all();
                std::thread::sleep(RETRY);
                continue;
            }
            Err(error) => {
                state.dropped += batch.len() as u64;
                tracing::error!(%error, records = batch.len(), "execution records not written");
            }
        }
        drop(state);
        queue.changed.notify_all();
    }
}

/// Whether the database refused a write only for now: another connection holds its lock.
fn is_locked(error: &rusqlite::Error) -> bool {
    matches!(
        error.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked | ErrorCode::CannotOpen)
    )
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::{Submitted, MAX_WAITING};
    use crate::record::ExecutionStatus;
    use crate::store::executions::tests::record;
    use crate::store::{ExecutionStore, Filter};

    fn all(store: &ExecutionStore) -> Vec<String> {
        store
            .list(&Filter {
                limit: 100,
                ..Filter::default()
            })
            .expect("list")
            .into_iter()
            .map(|e| e.id)
            .collect()
    }

    #[test]
    fn the_row_bound_keeps_the_newest_records() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = ExecutionStore::open(&dir.path().join("e.db"), Duration::from_secs(3600))
            .expect("open")
            .keeping_at_most(5);
        let now = SystemTime::now();
        let mut ids = Vec::new();
        let mut next = || {
            let mut r = record("a", ExecutionStatus::Succeeded, 1);
            r.started = now - Duration::from_secs(100 - ids.len() as u64);
            ids.push(r.id.to_string());
            r
        };
        // Six one at a time, as `sluice run` writes them...
        for _ in 0..6 {
            store.record(&next(), 0).expect("record");
        }
        assert_eq!(all(&store).len(), 5, "one at a time");
        // ... and six through the writer, as `serve` does, in batches as they queue up.
        for _ in 0..6 {
            assert!(matches!(store.submit(next(), 0), Submitted::Writing(_)));
        }
        assert_eq!(store.flush(Duration::from_secs(10)), 0);
        let newest: Vec<String> = ids.iter().rev().take(5).cloned().collect();
        assert_eq!(all(&store), newest, "the five newest, newest first");
    }

    #[test]
    fn the_row_bound_holds_with_two_hosts_writing_to_one_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("e.db");
        let open = || {
            ExecutionStore::open(&path, Duration::from_secs(3600))
                .expect("open")
                .keeping_at_most(5)
        };
        let (host1, host2) = (open(), open());
        let now = SystemTime::now();
        let mut ids = Vec::new();
        // Each host's first writes find the table below the bound; then both go past it.
        for (turn, store) in [&host1, &host2, &host1, &host2].into_iter().enumerate() {
            for _ in 0..3 {
                let mut r = record("a", ExecutionStatus::Succeeded, 1);
                // A second apart, so that "newest first" has one answer.
                r.started = now - Duration::from_secs(100 - ids.len() as u64);
                ids.push(r.id.to_string());
                store.record(&r, 0).expect("record");
            }
            let held = all(&host1).len();
            assert!(held <= 5, "{held} records after turn {turn}, bound 5");
        }
        let newest: Vec<String> = ids.iter().rev().take(5).cloned().collect();
        assert_eq!(all(&host2), newest, "the five written last, newest first");
    }

    #[test]
    fn records_wait_while_the_database_is_locked_and_are_written_after() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("e.db");
        let store = ExecutionStore::open(&path, Duration::from_secs(3600)).expect("open");
        // Another connection (as another process would) holds the write lock.
        let locker = rusqlite::Connection::open(&path).expect("open");
        locker.execute_batch("BEGIN EXCLUSIVE").expect("lock");
        let first = record("a", ExecutionStatus::Succeeded, 0);
        let Submitted::Writing(written) = store.submit(first.clone(), 0) else {
            panic!("the database looked writable")
        };
        // The writer finds the lock; the record waits and its waiter is let go.
        assert!(written.blocking_recv().is_err(), "written through a lock");
        let mut later = Vec::new();
        for _ in 0..20 {
            let r = record("a", ExecutionStatus::Succeeded, 0);
            later.push(r.id.to_string());
            assert!(matches!(store.submit(r, 0), Submitted::Waiting));
        }
        assert_eq!(store.backlog(), (21, 0));
        assert_eq!(
            store.flush(Duration::from_millis(300)),
            21,
            "written through a lock"
        );

        locker.execute_batch("COMMIT").expect("unlock");
        assert_eq!(store.flush(Duration::from_secs(10)), 0);
        let written = all(&store);
        assert_eq!(written.len(), 21);
        assert!(written.contains(&first.id.to_string()));
        assert!(later.iter().all(|id| written.contains(id)));
        assert_eq!(store.backlog(), (0, 0));
    }

    #[test]
    fn beyond_the_bound_records_are_dropped_and_counted() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("e.db");
        let store = ExecutionStore::open(&path, Duration::from_secs(3600)).expect("open");
        let locker = rusqlite::Connection::open(&path).expect("open");
        locker.execute_batch("BEGIN EXCLUSIVE").expect("lock");
        for _ in 0..MAX_WAITING {
            assert!(!matches!(
                store.submit(record("a", ExecutionStatus::Succeeded, 0), 0),
                Submitted::Dropped
            ));
        }
        assert!(matches!(
            store.submit(record("a", ExecutionStatus::Succeeded, 0), 0),
            Submitted::Dropped
        ));
        assert_eq!(store.backlog(), (MAX_WAITING, 1));
        locker.execute_batch("COMMIT").expect("unlock");
        assert_eq!(store.flush(Duration::from_secs(60)), 1, "the dropped one");
        assert_eq!(
            store
                .list(&Filter {
                    limit: MAX_WAITING + 10,
                    ..Filter::default()
                })
                .expect("list")
                .len(),
            MAX_WAITING
        );
    }
}
