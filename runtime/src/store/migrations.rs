//! Versioned, forward-only schema migrations of the execution database, applied when it is
//! opened. `PRAGMA user_version` holds how many have been applied; a database made before
//! versioning has version 0 and the first migration's tables already (it creates only what
//! is missing). Never change a migration that has shipped: add the next one.

use rusqlite::Connection;

/// Every migration, oldest first; the database's version is how many of them it has.
const MIGRATIONS: &[&str] = &[
    // 1: executions, their document errors, and paused listeners (the schema as first shipped,
    // unversioned).
    "
    CREATE TABLE IF NOT EXISTS executions (
        id TEXT PRIMARY KEY,
        process TEXT NOT NULL,
        started_ms INTEGER NOT NULL,
        duration_ms INTEGER NOT NULL,
        status TEXT NOT NULL,
        failure TEXT,
        documents_in INTEGER NOT NULL,
        documents_out INTEGER NOT NULL,
        document_errors INTEGER NOT NULL
    );
    CREATE INDEX IF NOT EXISTS executions_by_process ON executions (process, started_ms);
    CREATE INDEX IF NOT EXISTS executions_by_start ON executions (started_ms);
    CREATE TABLE IF NOT EXISTS document_errors (
        execution_id TEXT NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
        document INTEGER NOT NULL,
        step INTEGER NOT NULL,
        operation TEXT NOT NULL,
        message TEXT NOT NULL,
        topic TEXT,
        partition INTEGER,
        offset INTEGER
    );
    CREATE INDEX IF NOT EXISTS document_errors_by_execution ON document_errors (execution_id);
    CREATE TABLE IF NOT EXISTS listener_state (
        process TEXT PRIMARY KEY,
        paused INTEGER NOT NULL
    );
    ",
    // 2: whose fault a failure was (user, environment, internal); NULL for failures recorded
    // before it was kept.
    "ALTER TABLE executions ADD COLUMN failure_kind TEXT;",
    // 3: the Kafka messages each execution read and wrote, as offset ranges per
    // topic-partition, for "which execution handled this message?". Topic-partitions are
    // numbered so that an R*Tree can index (partition, offsets) boxes: finding the ranges that
    // contain an offset is then a lookup, where a B-tree on the first offset would scan every
    // earlier range of the partition. R*Tree bounds are 32-bit floats rounded outward, so a
    // match is confirmed against the exact row.
    "
    CREATE TABLE message_partitions (
        id INTEGER PRIMARY KEY,
        topic TEXT NOT NULL,
        partition INTEGER NOT NULL,
        UNIQUE (topic, partition)
    );
    CREATE TABLE execution_messages (
        id INTEGER PRIMARY KEY,
        execution_id TEXT NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
        role TEXT NOT NULL,
        partition_id INTEGER NOT NULL REFERENCES message_partitions (id),
        first_offset INTEGER NOT NULL,
        last_offset INTEGER NOT NULL
    );
    CREATE INDEX execution_messages_by_execution ON execution_messages (execution_id);
    CREATE VIRTUAL TABLE execution_messages_boxes USING rtree (
        id, partition_low, partition_high, first_offset, last_offset
    );
    CREATE TRIGGER execution_messages_unboxed AFTER DELETE ON execution_messages BEGIN
        DELETE FROM execution_messages_boxes WHERE id = old.id;
    END;
    ",
];

/// The schema version this build writes.
pub(super) const CURRENT: usize = MIGRATIONS.len();

/// Why the schema could not be brought up to date.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MigrationError {
    /// The database was written by a newer Sluice, whose schema this one does not know.
    #[error(
        "it has schema version {found}, newer than this sluice knows ({known}): use the newer \
         sluice, or another --executions-db"
    )]
    Newer {
        /// The database's version.
        found: usize,
        /// The newest this build knows.
        known: usize,
    },
    /// SQLite refused a migration.
    #[error("migrating its schema to version {version} failed: {source}")]
    Failed {
        /// The migration that failed.
        version: usize,
        /// SQLite's error.
        source: rusqlite::Error,
    },
}

/// Applies the migrations `connection` lacks, each in its own transaction with its version,
/// so that a failure leaves the database at the last version that applied whole.
pub(super) fn migrate(connection: &mut Connection) -> Result<usize, MigrationError> {
    let failed = |version| move |source| MigrationError::Failed { version, source };
    let found: i64 = connection
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(failed(0))?;
    let found = usize::try_from(found).unwrap_or(0);
    if found > CURRENT {
        return Err(MigrationError::Newer {
            found,
            known: CURRENT,
        });
    }
    for (index, migration) in MIGRATIONS.iter().enumerate().skip(found) {
        let version = index + 1;
        let transaction = connection.transaction().map_err(failed(version))?;
        transaction
            .execute_batch(migration)
            .and_then(|()| transaction.pragma_update(None, "user_version", version as i64))
            .and_then(|()| transaction.commit())
            .map_err(failed(version))?;
        if found > 0 || version > 1 {
            tracing::info!(version, "execution database schema migrated");
        }
    }
    Ok(CURRENT)
}
