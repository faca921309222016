//! Execution records when the execution database is held under an exclusive lock by another
//! process (this test, through SQLite itself), black-box on tansu: the listener goes on
//! delivering, its records wait in memory (the metrics say how many), and once the lock is
//! gone they are written, none lost.

mod harness;

use std::time::Duration;

use harness::api::Api;
use harness::flows::{produce_routed, Listener};
use harness::{assert_contains, wait_for, Broker};

const WORK: Duration = Duration::from_secs(60);

#[test]
fn a_locked_execution_database_holds_no_listener_up_and_its_records_are_written_after() {
    let broker = Broker::start();
    let source = broker.create_topic("locked-in", 1);
    let target = broker.create_topic("locked-out", 1);
    let listener = Listener::new(&broker, &source, "<max-messages>1</max-messages>");
    let mut serving = listener.serve_with_api();
    let api = Api::of(&serving, None);
    api.wait_until_running("route", 1);
    produce_routed(&broker, &source, 1, 0..1, &target);
    broker.wait_for_committed(&listener.group, &source, &[Some(1)]);

    // Another process takes the database's write lock and keeps it.
    let database = listener.ws.path().join("sluice-executions.db");
    let locker = rusqlite::Connection::open(&database).expect("open the execution database");
    locker.execute_batch("BEGIN EXCLUSIVE").expect("lock it");
    produce_routed(&broker, &source, 1, 1..6, &target);
    // Delivered and committed all the same: nothing waits for the database.
    broker.wait_for_committed(&listener.group, &source, &[Some(6)]);
    assert_eq!(broker.wait_for_payloads(&target, 6).len(), 6);
    assert_eq!(api.metric("sluice_execution_records_waiting"), 5.0);
    assert_contains(
        &serving.stderr(),
        &["the execution database is locked (by another process?): records wait in memory"],
    );

    // The lock goes: the waiting records are written, none dropped.
    locker.execute_batch("COMMIT").expect("unlock");
    wait_for("the waiting records to be written", WORK, || {
        (api.metric("sluice_execution_records_waiting") == 0.0).then_some(())
    });
    assert_eq!(api.metric("sluice_execution_records_dropped_total"), 0.0);
    let recorded = api.json("/executions?process=route");
    assert_eq!(recorded.as_array().map(Vec::len), Some(6), "{recorded}");
    for n in 0..6 {
        let handled = api.json(&format!("/executions?message={source}/0/{n}"));
        assert_eq!(handled[0]["role"], "read", "offset {n}: {handled}");
    }
    serving.stop("TERM", WORK);
}
