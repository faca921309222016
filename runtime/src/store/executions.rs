//! Execution records in an embedded SQLite database: every execution `sluice run` and
//! `sluice serve` start, with its document errors and where those documents came from, kept
//! for the retention the container properties set.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{params, Connection, OptionalExtension};

use super::migrations::{self, MigrationError};
use super::writer::RecordQueue;
use crate::failure::Failure;
use crate::record::{ExecutionRecord, ExecutionStatus, MessageRole};

/// What went wrong with the execution database.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RecordsError {
    /// The database file cannot be opened or created.
    #[error("the execution database {path} cannot be opened: {source}; check that its folder exists and is writable, or set host.executions.database")]
    Open {
        /// The file.
        path: PathBuf,
        /// SQLite's error.
        source: rusqlite::Error,
    },
    /// Its schema could not be brought up to date.
    #[error("the execution database {path} cannot be used: {source}")]
    Schema {
        /// The file.
        path: PathBuf,
        /// What the migration found.
        source: MigrationError,
    },
    /// A query failed.
    #[error("the execution database failed: {0}")]
    Query(#[from] rusqlite::Error),
}

/// One execution as recorded.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StoredExecution {
    /// The execution id.
    pub id: String,
    /// The process.
    pub process: String,
    /// Start, milliseconds since the epoch.
    pub started_ms: i64,
    /// How long it ran, in milliseconds.
    pub duration_ms: i64,
    /// `succeeded`, `completed-with-errors` or `failed`.
    pub status: String,
    /// Why it failed, if it did.
    pub failure: Option<String>,
    /// Whose fault the failure was (`user`, `environment`, `internal`); absent for failures
    /// recorded before kinds were kept.
    pub failure_kind: Option<String>,
    /// Documents that entered.
    pub documents_in: i64,
    /// Documents that left the last step.
    pub documents_out: i64,
    /// Documents with errors.
    pub document_errors: i64,
}

/// One document error as recorded, with where its document came from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StoredDocumentError {
    /// 1-based position of the document in the execution.
    pub document: i64,
    /// 1-based step; 0 is the start.
    pub step: i64,
    /// The operation that failed it.
    pub operation: String,
    /// What happened.
    pub message: String,
    /// Tracked topic.
    pub topic: Option<String>,
    /// Tracked partition.
    pub partition: Option<i64>,
    /// Tracked offset.
    pub offset: Option<i64>,
}

/// Offsets of one topic-partition that an execution read or wrote, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StoredMessageRange {
    /// `read` or `written`.
    pub role: String,
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The first offset.
    pub first: i64,
    /// The last offset, inclusive.
    pub last: i64,
}

impl std::fmt::Display for StoredMessageRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{} ", self.topic, self.partition)?;
        if self.first == self.last {
            write!(f, "offset {}", self.first)
        } else {
            write!(f, "offsets {}-{}", self.first, self.last)
        }
    }
}

/// One execution that handled a message, and how.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MessageHandling {
    /// The execution.
    #[serde(flatten)]
    pub execution: StoredExecution,
    /// `read` or `written`.
    pub role: String,
    /// For a read: the how-manieth of its process's executions that read the message (a
    /// listener retries a failed document in a new execution); absent for a write.
    pub attempt: Option<i64>,
    /// The document's error in that execution, if it had one.
    pub error: Option<String>,
}

/// Which executions to list.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Only this process.
    pub process: Option<String>,
    /// Only this status (`succeeded`, `completed-with-errors`, `failed`).
    pub status: Option<String>,
    /// At most this many, newest first.
    pub limit: usize,
    /// Only those older than this one: the next page after a page that ended there.
    pub before: Option<Cursor>,
}

/// Where a page of executions ended: the last one's start and id (executions are listed by
/// start, then id). Written `STARTED_ID`, as the API and the console pass it on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    /// The last execution's start, milliseconds since the epoch.
    pub started_ms: i64,
    /// The last execution's id.
    pub id: String,
}

impl Cursor {
    /// The cursor after `execution`.
    pub fn after(execution: &StoredExecution) -> Self {
        Self {
            started_ms: execution.started_ms,
            id: execution.id.clone(),
        }
    }
}

impl std::fmt::Display for Cursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}_{}", self.started_ms, self.id)
    }
}

impl std::str::FromStr for Cursor {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (started, id) = text
            .split_once('_')
            .ok_or_else(|| format!("\"{text}\" is not a cursor from an earlier page"))?;
        let started_ms = started
            .parse()
            .map_err(|_| format!("\"{text}\" is not a cursor from an earlier page"))?;
        Ok(Self {
            started_ms,
            id: id.to_string(),
        })
    }
}

/// What one process's executions since some moment add up to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    /// Executions.
    pub executions: i64,
    /// Documents in.
    pub documents_in: i64,
    /// Documents out.
    pub documents_out: i64,
    /// Documents with errors.
    pub document_errors: i64,
}

/// The execution database. Calls block briefly (one small transaction); async callers run
/// them on the blocking pool.
pub struct ExecutionStore {
    pub(super) path: PathBuf,
    connection: Mutex<Connection>,
    pub(super) bounds: Arc<Bounds>,
    /// Records on their way to the database, written by a thread of their own (started at
    /// the first [`ExecutionStore::submit`]).
    pub(super) queue: Arc<RecordQueue>,
}

/// How much the database keeps: records younger than `retention`, and at most `max_records`
/// of them (the first written go first).
pub(super) struct Bounds {
    retention: Duration,
    max_records: Option<u64>,
}

pub(crate) fn millis(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl ExecutionStore {
    /// Opens (or creates) the database at `path`; records older than `retention` are removed
    /// as new ones are written.
    pub fn open(path: &Path, retention: Duration) -> Result<Self, RecordsError> {
        let open = || -> rusqlite::Result<Connection> {
            let connection = Connection::open(path)?;
            // Several hosts or commands may share the file: wait for a lock rather than fail.
            connection.busy_timeout(Duration::from_secs(5))?;
            connection.pragma_update(None, "journal_mode", "WAL")?;
            connection.pragma_update(None, "foreign_keys", "ON")?;
            Ok(connection)
        };
        let mut connection = open().map_err(|source| RecordsError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        migrations::migrate(&mut connection).map_err(|source| RecordsError::Schema {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(Self {
            path: path.to_path_buf(),
            connection: Mutex::new(connection),
            bounds: Arc::new(Bounds {
                retention,
                max_records: None,
            }),
            queue: Arc::default(),
        })
    }

    /// Keeps at most `max` execution records: each write removes the first written beyond it
    /// (whichever host wrote them, when several share the file). A gap left by records
    /// removed by hand moves up with the others, so for a while the table keeps fewer.
    pub fn keeping_at_most(mut self, max: u64) -> Self {
        Arc::get_mut(&mut self.bounds)
            .expect("bounds are set before the store is shared")
            .max_records = Some(max);
        self
    }

    fn connection(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves SQLite consistent (transactions roll back).
        self.connection
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records one execution with its document errors at once, and removes records past the
    /// bounds. `documents_out` is how many documents left it (the record may hold none of them).
    pub fn record(
        &self,
        record: &ExecutionRecord,
        documents_out: usize,
    ) -> Result<(), RecordsError> {
        write_records(
            &mut self.connection(),
            &self.bounds,
            &[(record, documents_out)],
        )?;
        Ok(())
    }

    /// Executions matching `filter`, newest first.
    pub fn list(&self, filter: &Filter) -> Result<Vec<StoredExecution>, RecordsError> {
        let connection = self.connection();
        let mut query = connection.prepare(
            "SELECT id, process, started_ms, duration_ms, status, failure, failure_kind, \
             documents_in, documents_out, document_errors FROM executions \
             WHERE (?1 IS NULL OR process = ?1) AND (?2 IS NULL OR status = ?2) \
             AND (?4 IS NULL OR (started_ms, id) < (?4, ?5)) \
             ORDER BY started_ms DESC, id DESC LIMIT ?3",
        )?;
        let rows = query.query_map(
            params![
                filter.process,
                filter.status,
                i64::try_from(filter.limit).unwrap_or(i64::MAX),
                filter.before.as_ref().map(|c| c.started_ms),
                filter.before.as_ref().map(|c| c.id.as_str()),
            ],
            execution_row,
        )?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Per process, what its executions that started at or after `since_ms` add up to.
    pub fn totals_since(
        &self,
        since_ms: i64,
    ) -> Result<std::collections::BTreeMap<String, Totals>, RecordsError> {
        let connection = self.connection();
        let mut query = connection.prepare(
            "SELECT process, COUNT(*), SUM(documents_in), SUM(documents_out), \
             SUM(document_errors) FROM executions WHERE started_ms >= ?1 GROUP BY process",
        )?;
        let rows = query.query_map([since_ms], |row| {
            Ok((
                row.get::<_, String>(0)?,
                Totals {
                    executions: row.get(1)?,
                    documents_in: row.get(2)?,
                    documents_out: row.get(3)?,
                    document_errors: row.get(4)?,
                },
            ))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// One execution and its document errors.
    #[allow(clippy::type_complexity)]
    pub fn get(
        &self,
        id: &str,
    ) -> Result<Option<(StoredExecution, Vec<StoredDocumentError>)>, RecordsError> {
        let connection = self.connection();
        let execution = connection
            .query_row(
                "SELECT id, process, started_ms, duration_ms, status, failure, failure_kind, \
                 documents_in, documents_out, document_errors FROM executions WHERE id = ?1",
                [id],
                execution_row,
            )
            .optional()?;
        let Some(execution) = execution else {
            return Ok(None);
        };
        let mut query = connection.prepare(
            "SELECT document, step, operation, message, topic, partition, offset \
             FROM document_errors WHERE execution_id = ?1 ORDER BY rowid",
        )?;
        let errors = query
            .query_map([id], |row| {
                Ok(StoredDocumentError {
                    document: row.get(0)?,
                    step: row.get(1)?,
                    operation: row.get(2)?,
                    message: row.get(3)?,
                    topic: row.get(4)?,
                    partition: row.get(5)?,
                    offset: row.get(6)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        Ok(Some((execution, errors)))
    }

    /// The offsets execution `id` read and wrote, per topic-partition; empty for an
    /// execution that handled no Kafka message (or recorded before they were kept).
    pub fn messages(&self, id: &str) -> Result<Vec<StoredMessageRange>, RecordsError> {
        let connection = self.connection();
        let mut query = connection.prepare_cached(
            "SELECT m.role, p.topic, p.partition, m.first_offset, m.last_offset \
             FROM execution_messages m JOIN message_partitions p ON p.id = m.partition_id \
             WHERE m.execution_id = ?1 ORDER BY m.role, p.topic, p.partition, m.first_offset",
        )?;
        let ranges = query
            .query_map([id], |row| {
                Ok(StoredMessageRange {
                    role: row.get(0)?,
                    topic: row.get(1)?,
                    partition: row.get(2)?,
                    first: row.get(3)?,
                    last: row.get(4)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        Ok(ranges)
    }

    /// The executions that read or wrote the message at `offset` of `topic`/`partition`,
    /// oldest first, each with how (read or written), which attempt of its process it was,
    /// and the document's error there if it had one.
    pub fn handled(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
    ) -> Result<Vec<MessageHandling>, RecordsError> {
        let connection = self.connection();
        let partition_id: Option<i64> = connection
            .query_row(
                "SELECT id FROM message_partitions WHERE topic = ?1 AND partition = ?2",
                params![topic, partition],
                |row| row.get(0),
            )
            .optional()?;
        let Some(partition_id) = partition_id else {
            return Ok(Vec::new());
        };
        // The boxes find the candidates; the exact row confirms them (see migration 3).
        let mut query = connection.prepare_cached(
            "SELECT e.id, e.process, e.started_ms, e.duration_ms, e.status, e.failure, \
             e.failure_kind, e.documents_in, e.documents_out, e.document_errors, m.role, \
             (SELECT d.message FROM document_errors d WHERE d.execution_id = e.id \
              AND d.topic = ?3 AND d.partition = ?4 AND d.offset = ?2 ORDER BY d.rowid LIMIT 1) \
             FROM execution_messages_boxes b \
             JOIN execution_messages m ON m.id = b.id \
             JOIN executions e ON e.id = m.execution_id \
             WHERE b.partition_low <= ?1 AND b.partition_high >= ?1 \
             AND b.first_offset <= ?2 AND b.last_offset >= ?2 \
             AND m.partition_id = ?1 AND m.first_offset <= ?2 AND m.last_offset >= ?2 \
             ORDER BY e.started_ms, e.id, m.role",
        )?;
        let rows = query.query_map(params![partition_id, offset, topic, partition], |row| {
            Ok((
                execution_row(row)?,
                row.get::<_, String>(10)?,
                row.get::<_, Option<String>>(11)?,
            ))
        })?;
        let mut reads_by_process = std::collections::HashMap::<String, i64>::new();
        let mut handled = Vec::new();
        for row in rows {
            let (execution, role, error) = row?;
            // Each time a process's execution reads the message is an attempt at it: a
            // listener retries a failed document in a new execution.
            let attempt = if role == MessageRole::Read.name() {
                let reads = reads_by_process
                    .entry(execution.process.clone())
                    .or_default();
                *reads += 1;
                Some(*reads)
            } else {
                None
            };
            handled.push(MessageHandling {
                execution,
                role,
                attempt,
                error,
            });
        }
        Ok(handled)
    }

    /// Whether the listener of `process` was paused (it stays paused across restarts).
    pub fn paused(&self, process: &str) -> Result<bool, RecordsError> {
        Ok(self
            .connection()
            .query_row(
                "SELECT paused FROM listener_state WHERE process = ?1",
                [process],
                |row| row.get::<_, bool>(0),
            )
            .optional()?
            .unwrap_or(false))
    }

    /// Records that the listener of `process` is paused or not.
    pub fn set_paused(&self, process: &str, paused: bool) -> Result<(), RecordsError> {
        self.connection().execute(
            "INSERT INTO listener_state (process, paused) VALUES (?1, ?2) \
             ON CONFLICT (process) DO UPDATE SET paused = excluded.paused",
            params![process, paused],
        )?;
        Ok(())
    }
}

/// The connection the writer thread uses: its own, so that reads never wait behind a write
/// that waits for a lock. Busy for only a moment before it gives up, since it tries again by
/// itself.
pub(super) fn open_writer(path: &Path) -> rusqlite::Result<Connection> {
    let connection = Connection::open(path)?;
    connection.busy_timeout(Duration::from_millis(250))?;
    connection.pragma_update(None, "foreign_keys", "ON")?;
    Ok(connection)
}

/// Writes `records` in one transaction, then removes what the bounds no longer keep: records
/// past retention, and the oldest beyond the row bound. Returns how many were removed.
pub(super) fn write_records(
    connection: &mut Connection,
    bounds: &Bounds,
    records: &[(&ExecutionRecord, usize)],
) -> rusqlite::Result<usize> {
    let transaction = connection.transaction()?;
    for (record, documents_out) in records {
        insert(&transaction, record, *documents_out)?;
    }
    let cutoff = millis(SystemTime::now())
        .saturating_sub(i64::try_from(bounds.retention.as_millis()).unwrap_or(i64::MAX));
    let mut removed =
        transaction.execute("DELETE FROM executions WHERE started_ms < ?1", [cutoff])?;
    if let Some(max) = bounds.max_records {
        // The newest `max` rowids are the last `max` records written, by this host or any
        // other sharing the file: a count kept here would miss the others' rows (and so let
        // the table grow past the bound), and count(*) reads the whole table on every write.
        // Rowids are unique integers, so at most `max` of them fit above the cut.
        removed += transaction.execute(
            "DELETE FROM executions WHERE rowid <= (SELECT max(rowid) FROM executions) - ?1",
            [i64::try_from(max).unwrap_or(i64::MAX)],
        )?;
    }
    transaction.commit()?;
    Ok(removed)
}

fn insert(
    transaction: &rusqlite::Transaction<'_>,
    record: &ExecutionRecord,
    documents_out: usize,
) -> rusqlite::Result<()> {
    let failure: Option<&Failure> = match &record.status {
        ExecutionStatus::Failed(failure) => Some(failure),
        _ => None,
    };
    transaction.execute(
        "INSERT INTO executions (id, process, started_ms, duration_ms, status, failure, \
         failure_kind, documents_in, documents_out, document_errors) VALUES (?1, ?2, ?3, ?4, \
         ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            record.id.to_string(),
            record.process,
            millis(record.started),
            i64::try_from(record.duration.as_millis()).unwrap_or(i64::MAX),
            record.status.name(),
            failure.map(|f| f.message.as_str()),
            failure.map(Failure::kind_name),
            record.documents_in as i64,
            documents_out as i64,
            record.document_errors.len() as i64,
        ],
    )?;
    {
        let mut insert = transaction.prepare(
            "INSERT INTO document_errors (execution_id, document, step, operation, message, \
             topic, partition, offset) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?;
        for error in &record.document_errors {
            insert.execute(params![
                record.id.to_string(),
                error.document as i64,
                error.step as i64,
                error.operation,
                error.message,
                error.tracked.topic,
                error.tracked.partition,
                error.tracked.offset,
            ])?;
        }
    }
    if !record.messages.is_empty() {
        let mut partition = transaction.prepare_cached(
            "INSERT INTO message_partitions (topic, partition) VALUES (?1, ?2) \
             ON CONFLICT (topic, partition) DO UPDATE SET topic = excluded.topic RETURNING id",
        )?;
        let mut range = transaction.prepare_cached(
            "INSERT INTO execution_messages (execution_id, role, partition_id, first_offset, \
             last_offset) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        let mut boxed = transaction.prepare_cached(
            "INSERT INTO execution_messages_boxes (id, partition_low, partition_high, \
             first_offset, last_offset) VALUES (last_insert_rowid(), ?1, ?1, ?2, ?3)",
        )?;
        for handled in record.messages.ranges() {
            let partition_id: i64 = partition
                .query_row(params![&*handled.topic, handled.partition], |row| {
                    row.get(0)
                })?;
            range.execute(params![
                record.id.to_string(),
                handled.role.name(),
                partition_id,
                handled.first,
                handled.last,
            ])?;
            boxed.execute(params![partition_id, handled.first, handled.last])?;
        }
    }
    Ok(())
}

fn execution_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<StoredExecution> {
    Ok(StoredExecution {
        id: row.get(0)?,
        process: row.get(1)?,
        started_ms: row.get(2)?,
        duration_ms: row.get(3)?,
        status: row.get(4)?,
        failure: row.get(5)?,
        failure_kind: row.get(6)?,
        documents_in: row.get(7)?,
        documents_out: row.get(8)?,
        document_errors: row.get(9)?,
    })
}

#[cfg(test)]
pub(super) mod tests;
