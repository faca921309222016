//! The execution database's own tests: records, retention, migrations, message ranges.

use super::*;
use crate::document::TrackedProperties;
use crate::record::DocumentError;

pub(in crate::store) fn record(
    process: &str,
    status: ExecutionStatus,
    errors: usize,
) -> ExecutionRecord {
    ExecutionRecord {
        id: uuid::Uuid::now_v7(),
        process: process.into(),
        started: SystemTime::now(),
        duration: Duration::from_millis(12),
        status,
        documents_in: 3,
        documents_out: Vec::new(),
        documents_handed_on: 0,
        messages: Default::default(),
        document_errors: (0..errors)
            .map(|i| DocumentError {
                document: i + 1,
                step: 1,
                operation: "send".into(),
                message: "topic \"x\" does not exist".into(),
                tracked: TrackedProperties {
                    topic: Some("in".into()),
                    partition: Some(0),
                    offset: Some(41 + i as i64),
                    ..TrackedProperties::default()
                },
            })
            .collect(),
    }
}

#[test]
fn records_are_listed_newest_first_filtered_and_read_back() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store =
        ExecutionStore::open(&dir.path().join("e.db"), Duration::from_secs(3600)).expect("open");
    let first = record("a", ExecutionStatus::Succeeded, 0);
    let second = record("a", ExecutionStatus::CompletedWithErrors, 2);
    let third = record(
        "b",
        ExecutionStatus::Failed(Failure::environment("broker gone")),
        0,
    );
    for r in [&first, &second, &third] {
        store.record(r, 1).expect("record");
    }
    let all = store
        .list(&Filter {
            limit: 10,
            ..Filter::default()
        })
        .expect("list");
    assert_eq!(all.len(), 3);
    let of_a = store
        .list(&Filter {
            process: Some("a".into()),
            limit: 10,
            ..Filter::default()
        })
        .expect("list");
    assert_eq!(
        of_a.iter().map(|e| e.id.clone()).collect::<Vec<_>>(),
        [second.id.to_string(), first.id.to_string()]
    );
    let failed = store
        .list(&Filter {
            status: Some("failed".into()),
            limit: 10,
            ..Filter::default()
        })
        .expect("list");
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].failure.as_deref(), Some("broker gone"));
    assert_eq!(failed[0].failure_kind.as_deref(), Some("environment"));
    let (execution, errors) = store
        .get(&second.id.to_string())
        .expect("get")
        .expect("found");
    assert_eq!(execution.document_errors, 2);
    assert_eq!(execution.documents_out, 1);
    assert_eq!(errors[1].offset, Some(42));
    assert_eq!(errors[1].topic.as_deref(), Some("in"));
    assert!(store.get("nope").expect("get").is_none());
}

#[test]
fn records_past_retention_are_removed_and_pauses_persist() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("e.db");
    let store = ExecutionStore::open(&path, Duration::from_secs(60)).expect("open");
    let mut old = record("a", ExecutionStatus::Succeeded, 1);
    old.started = SystemTime::now() - Duration::from_secs(120);
    store.record(&old, 0).expect("record");
    store
        .record(&record("a", ExecutionStatus::Succeeded, 0), 3)
        .expect("record");
    let left = store
        .list(&Filter {
            limit: 10,
            ..Filter::default()
        })
        .expect("list");
    assert_eq!(left.len(), 1);
    assert!(store.get(&old.id.to_string()).expect("get").is_none());

    assert!(!store.paused("l").expect("paused"));
    store.set_paused("l", true).expect("pause");
    drop(store);
    let reopened = ExecutionStore::open(&path, Duration::from_secs(60)).expect("open");
    assert!(reopened.paused("l").expect("paused"));
}

/// A database written by the unversioned schema (made with `sluice run` before
/// migrations existed: one succeeded, one completed-with-errors and one failed execution)
/// is upgraded in place and keeps every record; new records carry the failure's kind.
#[test]
fn a_database_from_before_migrations_upgrades_in_place() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("old.db");
    std::fs::write(
        &path,
        include_bytes!("../fixtures/executions-unversioned.db"),
    )
    .expect("copy");
    let year = Duration::from_secs(3600 * 24 * 365 * 100);
    let store = ExecutionStore::open(&path, year).expect("open and migrate");
    let all = |store: &ExecutionStore| {
        store
            .list(&Filter {
                limit: 10,
                ..Filter::default()
            })
            .expect("list")
    };
    let before = all(&store);
    let statuses: Vec<&str> = before.iter().map(|e| e.status.as_str()).collect();
    assert_eq!(statuses, ["failed", "completed-with-errors", "succeeded"]);
    assert_eq!(before[0].process, "send-nowhere");
    assert!(before[0]
        .failure
        .as_deref()
        .is_some_and(|f| f.contains("could not reach the Kafka brokers at 127.0.0.1:9")));
    // Recorded before kinds were kept: unknown, not guessed from the message.
    assert_eq!(before[0].failure_kind, None);
    let (_, errors) = store.get(&before[1].id).expect("get").expect("found");
    assert_eq!(errors.len(), 2);
    assert_eq!(errors[0].operation, "set-properties");

    let failed = record("c", ExecutionStatus::Failed(Failure::user("no topic")), 0);
    store
        .record(&failed, 0)
        .expect("record after the migration");
    drop(store);
    let reopened = ExecutionStore::open(&path, year).expect("reopen: nothing left to migrate");
    let after = all(&reopened);
    assert_eq!(after.len(), 4);
    assert_eq!(after[0].failure_kind.as_deref(), Some("user"));
    let version: i64 = rusqlite::Connection::open(&path)
        .expect("open")
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .expect("version");
    assert_eq!(version as usize, migrations::CURRENT);
}

/// `record` with the messages it read and wrote noted.
fn handling(
    process: &str,
    started: SystemTime,
    read: &[(&str, i32, std::ops::RangeInclusive<i64>)],
    written: &[(&str, i32, std::ops::RangeInclusive<i64>)],
) -> ExecutionRecord {
    let mut handled = record(process, ExecutionStatus::Succeeded, 0);
    handled.started = started;
    for (role, ranges) in [(MessageRole::Read, read), (MessageRole::Written, written)] {
        for (topic, partition, offsets) in ranges {
            let topic: std::sync::Arc<str> = (*topic).into();
            for offset in offsets.clone() {
                handled.messages.note(role, &topic, *partition, offset);
            }
        }
    }
    handled
}

#[test]
fn a_message_is_traced_to_the_executions_that_read_and_wrote_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store =
        ExecutionStore::open(&dir.path().join("e.db"), Duration::from_secs(3600)).expect("open");
    let now = SystemTime::now();
    let at = |ms: u64| now - Duration::from_millis(1000 - ms);
    // A listener reads offsets 0..=99 of in/0 and writes them to out/3 at 500..=599; its
    // document at offset 41 fails, is retried in a second execution, and then passes. A
    // second process reads the same partition for itself; a third reads offsets near
    // 2^40, where the R*Tree's 32-bit floats cannot tell neighbours apart.
    let mut first = handling(
        "bridge",
        at(1),
        &[("in", 0, 0..=99)],
        &[("out", 3, 500..=598)],
    );
    first.status = ExecutionStatus::CompletedWithErrors;
    first.document_errors.push(DocumentError {
        document: 42,
        step: 1,
        operation: "send".into(),
        message: "topic \"out\" refused it".into(),
        tracked: TrackedProperties {
            topic: Some("in".into()),
            partition: Some(0),
            offset: Some(41),
            ..TrackedProperties::default()
        },
    });
    let retry = handling(
        "bridge",
        at(2),
        &[("in", 0, 41..=41)],
        &[("out", 3, 599..=599)],
    );
    let other = handling("audit", at(3), &[("in", 0, 40..=60), ("in", 1, 0..=9)], &[]);
    let far = 1_i64 << 40;
    let large = handling("far", at(4), &[("in", 0, far..=far + 9)], &[]);
    for r in [&first, &retry, &other, &large] {
        store.record(r, 0).expect("record");
    }
    let seen = |topic: &str, partition: i32, offset: i64| {
        store
            .handled(topic, partition, offset)
            .expect("handled")
            .into_iter()
            .map(|h| (h.execution.process, h.role, h.attempt, h.error))
            .collect::<Vec<_>>()
    };
    let read = |process: &str, attempt| (process.to_string(), "read".to_string(), Some(attempt));
    let plain = |(p, r, a): (String, String, Option<i64>)| (p, r, a, None::<String>);
    assert_eq!(
        seen("in", 0, 41),
        [
            (
                "bridge".into(),
                "read".into(),
                Some(1),
                Some("topic \"out\" refused it".into())
            ),
            plain(read("bridge", 2)),
            plain(read("audit", 1)),
        ]
    );
    assert_eq!(seen("in", 0, 99), [plain(read("bridge", 1))]);
    assert_eq!(seen("in", 0, 100), []);
    assert_eq!(seen("in", 1, 41), []);
    assert_eq!(seen("in", 1, 9), [plain(read("audit", 1))]);
    assert_eq!(
        seen("out", 3, 599),
        [("bridge".into(), "written".into(), None, None)]
    );
    assert_eq!(seen("nowhere", 0, 1), []);
    let ranges: Vec<String> = store
        .messages(&first.id.to_string())
        .expect("messages")
        .iter()
        .map(|r| format!("{} {r}", r.role))
        .collect();
    assert_eq!(
        ranges,
        ["read in/0 offsets 0-99", "written out/3 offsets 500-598"]
    );
    // Exact at the edges, however large the offsets.
    assert_eq!(seen("in", 0, far), [plain(read("far", 1))]);
    assert_eq!(seen("in", 0, far + 9), [plain(read("far", 1))]);
    assert_eq!(seen("in", 0, far - 1), []);
    assert_eq!(seen("in", 0, far + 10), []);
}

#[test]
fn message_ranges_are_found_through_the_rtree_and_leave_with_their_execution() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("e.db");
    let old = handling(
        "bridge",
        SystemTime::now() - Duration::from_secs(120),
        &[("in", 0, 0..=9)],
        &[],
    );
    let kept_longer = ExecutionStore::open(&path, Duration::from_secs(600)).expect("open");
    kept_longer.record(&old, 0).expect("record");
    assert_eq!(kept_longer.handled("in", 0, 5).expect("handled").len(), 1);
    drop(kept_longer);
    // Under a shorter retention, recording the next one removes the old one, and its ranges
    // with it.
    let store = ExecutionStore::open(&path, Duration::from_secs(60)).expect("open");
    let new = handling("bridge", SystemTime::now(), &[("in", 0, 10..=19)], &[]);
    store.record(&new, 0).expect("record");
    assert_eq!(store.handled("in", 0, 5).expect("handled"), []);
    let connection = store.connection();
    let count = |table: &str| -> i64 {
        connection
            .query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |row| {
                row.get(0)
            })
            .expect("count")
    };
    assert_eq!(count("execution_messages"), 1);
    assert_eq!(count("execution_messages_boxes"), 1);
    // The lookup starts from the R*Tree's index, then goes to each candidate by its key:
    // no scan of the partition's ranges, however many there are.
    let plan: Vec<String> = connection
        .prepare(
            "EXPLAIN QUERY PLAN SELECT m.id FROM execution_messages_boxes b \
             JOIN execution_messages m ON m.id = b.id \
             JOIN executions e ON e.id = m.execution_id \
             WHERE b.partition_low <= 1 AND b.partition_high >= 1 \
             AND b.first_offset <= 5 AND b.last_offset >= 5 \
             AND m.partition_id = 1 AND m.first_offset <= 5 AND m.last_offset >= 5",
        )
        .expect("plan")
        .query_map([], |row| row.get::<_, String>(3))
        .expect("plan")
        .collect::<Result<_, _>>()
        .expect("plan");
    assert!(
        plan[0].starts_with("SCAN b VIRTUAL TABLE INDEX"),
        "{plan:?}"
    );
    assert!(
        plan[1..].iter().all(|step| step.starts_with("SEARCH")),
        "{plan:?}"
    );
}

#[test]
fn a_database_from_a_newer_sluice_is_refused_untouched() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("newer.db");
    rusqlite::Connection::open(&path)
        .expect("create")
        .pragma_update(None, "user_version", 99)
        .expect("version");
    let error = match ExecutionStore::open(&path, Duration::from_secs(60)) {
        Ok(_) => panic!("a newer schema was opened"),
        Err(error) => error.to_string(),
    };
    assert!(
        error.ends_with(&format!(
            "cannot be used: it has schema version 99, newer than this sluice knows ({}): \
             use the newer sluice, or another --executions-db",
            migrations::CURRENT
        )),
        "{error}"
    );
}
