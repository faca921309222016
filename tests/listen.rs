//! Listen and `sluice serve` against the real broker (tansu): a listener bridges documents to a
//! Produce step and commits them; a failing document is retried, then dead-lettered with its
//! context; without a dead-letter topic it stops the listener at its offset; SIGTERM drains
//! and a restart resumes without loss or repeats; after SIGKILL nothing is lost.

mod harness;

use std::collections::BTreeSet;
use std::time::Duration;

use harness::{
    components, routing_listener, unique, wait_for, with_connection_properties, Broker, Workspace,
};

/// How long a listener may take to work through a test's documents.
const WORK: Duration = Duration::from_secs(60);

/// Waits until `group` has committed `expected` on every partition of `topic`.
fn wait_for_commits(broker: &Broker, group: &str, topic: &str, expected: &[i64]) {
    let want: Vec<Option<i64>> = expected.iter().copied().map(Some).collect();
    let mut seen = Vec::new();
    wait_for(&format!("commits {expected:?} on {topic}"), WORK, || {
        seen = broker.committed(group, topic, expected.len() as i32);
        (seen == want).then_some(())
    });
}

/// `count` documents `doc-N` keyed `kN` on partition 0 of `source`, routed to `target` but for
/// the one at `failing`, routed to a topic that does not exist (returned).
fn one_failing(broker: &Broker, source: &str, target: &str, count: i32, failing: i32) -> String {
    let missing = unique("nowhere");
    for i in 0..count {
        let route = if i == failing { &missing } else { target };
        let (key, payload) = (format!("k{i}"), format!("doc-{i}"));
        broker.produce_one(
            source,
            0,
            Some(&key),
            payload.as_bytes(),
            &[("route", route)],
        );
    }
    missing
}

/// `total` documents over the 2 partitions of `source`, each routed to `target`.
fn fill(broker: &Broker, source: &str, target: &str, total: i32) {
    for i in 0..total {
        let payload = format!("doc-{i:03}");
        broker.produce_one(
            source,
            i % 2,
            None,
            payload.as_bytes(),
            &[("route", target)],
        );
    }
}

/// Waits until the listener has committed something: work is under way.
fn wait_for_a_first_commit(broker: &Broker, group: &str, source: &str) {
    wait_for("a first commit", WORK, || {
        broker
            .committed(group, source, 2)
            .iter()
            .any(|c| c.is_some_and(|c| c > 0))
            .then_some(())
    });
}

#[test]
fn a_listener_bridges_documents_in_partition_order_and_commits_them() {
    let broker = Broker::start();
    let source = broker.create_topic("listen-in", 2);
    let target = broker.create_topic("listen-out", 1);
    for i in 0..20 {
        let payload = format!("p{}-{i:02}", i % 2);
        broker.produce_one(
            &source,
            i % 2,
            Some(&format!("k{i:02}")),
            payload.as_bytes(),
            &[("route", &target)],
        );
    }
    let group = unique("g");
    let ws = Workspace::new();
    ws.write(
        "components/c.xml",
        &routing_listener(&broker, &group, &source, "<max-messages>3</max-messages>"),
    );
    let mut serving = ws.sluice_spawn(&["serve", "--api", "off"]);
    wait_for_commits(&broker, &group, &source, &[10, 10]);
    let records = broker.read_all(&target, 20);
    serving.signal("TERM");
    assert_eq!(serving.wait(WORK), Some(0), "{}", serving.stderr());
    let err = serving.stderr();
    assert!(
        err.contains("sluice serve: 1 listener started (route)")
            && err.contains("sluice serve: stopped"),
        "{err}"
    );
    // Every document once; within each source partition, in offset order.
    for partition in ["p0", "p1"] {
        let payloads: Vec<&str> = records
            .iter()
            .map(|r| r.payload.as_str())
            .filter(|p| p.starts_with(partition))
            .collect();
        let mut sorted = payloads.clone();
        sorted.sort();
        assert_eq!(payloads, sorted, "order of {partition}");
        assert_eq!(payloads.len(), 10, "{records:#?}");
    }
    // Keys travel with the documents.
    for record in &records {
        assert_eq!(record.key, Some(format!("k{}", &record.payload[3..])));
    }
}

#[test]
fn a_failing_document_is_retried_then_dead_lettered_with_its_context() {
    let broker = Broker::start();
    let source = broker.create_topic("listen-in", 1);
    let target = broker.create_topic("listen-out", 1);
    let dead = broker.create_topic("listen-dlq", 1);
    let missing = one_failing(&broker, &source, &target, 5, 2);
    let group = unique("g");
    let ws = Workspace::new();
    ws.write(
        "components/c.xml",
        &routing_listener(
            &broker,
            &group,
            &source,
            &format!(
                "<retry-limit>2</retry-limit><retry-backoff>100ms</retry-backoff>\
                 <dead-letter-topic>{dead}</dead-letter-topic>"
            ),
        ),
    );
    let mut serving = ws.sluice_spawn(&["serve", "--api", "off"]);
    wait_for_commits(&broker, &group, &source, &[5]);
    let letters = broker.read_all(&dead, 1);
    let delivered = broker.read_all(&target, 4);
    serving.signal("TERM");
    assert_eq!(serving.wait(WORK), Some(0), "{}", serving.stderr());

    let letter = &letters[0];
    assert_eq!(letter.payload, "doc-2");
    assert_eq!(letter.key.as_deref(), Some("k2"));
    assert_eq!(letter.header("route"), Some(missing.as_str()));
    assert_eq!(letter.header("sluice.error.topic"), Some(source.as_str()));
    assert_eq!(letter.header("sluice.error.partition"), Some("0"));
    assert_eq!(letter.header("sluice.error.offset"), Some("2"));
    // One try and two retries.
    assert_eq!(letter.header("sluice.error.attempts"), Some("3"));
    assert_eq!(letter.header("sluice.error.process"), Some("route"));
    assert_eq!(
        letter.header("sluice.error.message"),
        Some(format!("topic \"{missing}\" does not exist").as_str())
    );
    let payloads: BTreeSet<&str> = delivered.iter().map(|r| r.payload.as_str()).collect();
    assert_eq!(
        payloads,
        BTreeSet::from(["doc-0", "doc-1", "doc-3", "doc-4"])
    );

    // Every attempt is an execution record: the first with all five documents, then the
    // retries of the failing one, each with its error and where the document came from.
    let listed = ws.sluice(&[
        "executions",
        "--process",
        "route",
        "--status",
        "completed-with-errors",
    ]);
    harness::assert_exit(&listed, 0);
    let out = harness::stdout(&listed);
    let rows: Vec<&str> = out.lines().skip(1).collect();
    assert_eq!(rows.len(), 3, "{out}");
    assert!(rows.iter().all(|r| r.contains(" route ")), "{out}");
    let id = rows[0].split_whitespace().next().expect("an id");
    let shown = ws.sluice(&["executions", id]);
    harness::assert_exit(&shown, 0);
    let out = harness::stdout(&shown);
    assert!(out.contains("status    completed-with-errors"), "{out}");
    assert!(out.contains("documents 1 in, 0 out, 1 error"), "{out}");
    assert!(
        out.contains(&format!(
            "  document 1, step 2 (send): topic \"{missing}\" does not exist [topic {source}, \
             partition 0, offset 2]"
        )),
        "{out}"
    );
    let first = ws.sluice(&["executions", "--process", "route", "--limit", "100"]);
    assert!(
        harness::stdout(&first).contains("       5       4       1  completed-with-errors"),
        "{}",
        harness::stdout(&first)
    );
}

#[test]
fn without_a_dead_letter_topic_a_failing_document_stops_the_listener_at_its_offset() {
    let broker = Broker::start();
    let source = broker.create_topic("listen-in", 1);
    let target = broker.create_topic("listen-out", 1);
    let missing = one_failing(&broker, &source, &target, 4, 2);
    let group = unique("g");
    let ws = Workspace::new();
    ws.write(
        "components/c.xml",
        &routing_listener(
            &broker,
            &group,
            &source,
            "<retry-limit>1</retry-limit><retry-backoff>50ms</retry-backoff>",
        ),
    );
    let mut serving = ws.sluice_spawn(&["serve", "--api", "off"]);
    assert_eq!(serving.wait(WORK), Some(1), "{}", serving.stderr());
    let err = serving.stderr();
    assert!(
        err.contains(&format!(
            "sluice serve: listener \"route\" failed: the document at topic \"{source}\" \
             partition 0 offset 2 failed 2 time(s): topic \"{missing}\" does not exist\n  no \
             dead-letter-topic is set, so the listener stops rather than skip it"
        )),
        "{err}"
    );
    // Committed up to the failing document, not past it: a restart resumes there.
    assert_eq!(broker.committed(&group, &source, 1), [Some(2)]);
}

#[test]
fn sigterm_drains_and_a_restart_resumes_without_loss_or_repeats() {
    let broker = Broker::start();
    let source = broker.create_topic("listen-in", 2);
    let target = broker.create_topic("listen-out", 1);
    let total = 60;
    fill(&broker, &source, &target, total);
    let group = unique("g");
    let ws = Workspace::new();
    // One document per execution, so that the signal comes while work is under way.
    ws.write(
        "components/c.xml",
        &routing_listener(&broker, &group, &source, "<max-messages>1</max-messages>"),
    );
    let mut first = ws.sluice_spawn(&["serve", "--api", "off"]);
    wait_for_a_first_commit(&broker, &group, &source);
    first.signal("TERM");
    assert_eq!(first.wait(WORK), Some(0), "{}", first.stderr());

    let mut second = ws.sluice_spawn(&["serve", "--api", "off"]);
    wait_for_commits(&broker, &group, &source, &[30, 30]);
    second.signal("INT");
    assert_eq!(second.wait(WORK), Some(0), "{}", second.stderr());
    // Exactly once each: the drain committed everything the first host finished.
    let records = broker.read_all(&target, total as usize);
    let payloads: BTreeSet<String> = records.into_iter().map(|r| r.payload).collect();
    assert_eq!(payloads.len(), total as usize);
}

#[test]
fn after_sigkill_a_restart_delivers_every_document_at_least_once() {
    let broker = Broker::start();
    let source = broker.create_topic("listen-in", 2);
    let target = broker.create_topic("listen-out", 1);
    let total = 40;
    fill(&broker, &source, &target, total);
    let group = unique("g");
    let ws = Workspace::new();
    // A killed member keeps its partitions until the group's session timeout ends (45 s by
    // default): a short one lets the restarted host take them over sooner.
    let text = with_connection_properties(
        &routing_listener(&broker, &group, &source, "<max-messages>1</max-messages>"),
        &[("session.timeout.ms", "6000")],
    );
    ws.write("components/c.xml", &text);
    let mut first = ws.sluice_spawn(&["serve", "--api", "off"]);
    wait_for_a_first_commit(&broker, &group, &source);
    first.signal("KILL");
    assert_eq!(first.wait(WORK), None);

    let mut second = ws.sluice_spawn(&["serve", "--api", "off"]);
    wait_for_commits(&broker, &group, &source, &[20, 20]);
    second.signal("TERM");
    assert_eq!(second.wait(WORK), Some(0), "{}", second.stderr());
    // At least once: everything arrived; what the killed host had sent but not committed may
    // have arrived twice.
    broker.wait_for_payloads(&target, total as usize);
}

#[test]
fn run_refuses_a_listener_process_and_serve_needs_one() {
    let broker = Broker::start();
    let source = broker.create_topic("listen-in", 1);
    let ws = Workspace::new();
    ws.write(
        "components/c.xml",
        &routing_listener(&broker, &unique("g"), &source, ""),
    );
    let output = ws.sluice(&["run", "route"]);
    harness::assert_exit(&output, 1);
    assert!(
        harness::stderr(&output).contains(
            "process \"route\" starts with a listen operation, which runs for as long as the \
             host: start it with sluice serve"
        ),
        "{}",
        harness::stderr(&output)
    );
    let empty = Workspace::new();
    empty.write(
        "components/c.xml",
        &components(
            &broker,
            "g",
            r#"<operation id="send" type="produce" connection="tansu"><topic>t</topic></operation>
<process id="p"><steps><connector operation="send"/></steps></process>"#,
        ),
    );
    let output = empty.sluice(&["serve"]);
    harness::assert_exit(&output, 1);
    assert!(
        harness::stderr(&output)
            .contains("no process in the components starts with a listen operation"),
        "{}",
        harness::stderr(&output)
    );
}

#[test]
fn a_batch_longer_than_max_poll_interval_keeps_its_group_membership() {
    let broker = Broker::start();
    let source = broker.create_topic("listen-in", 1);
    let target = broker.create_topic("listen-out", 1);
    let dead = broker.create_topic("listen-dlq", 1);
    one_failing(&broker, &source, &target, 4, 1);
    let group = unique("g");
    let ws = Workspace::new();
    // The retry's back-off keeps the batch running for 8 s, past librdkafka's 7 s
    // max.poll.interval.ms: without polling meanwhile, the member would leave the group and
    // the batch's documents would be delivered again.
    let text = with_connection_properties(
        &routing_listener(
            &broker,
            &group,
            &source,
            &format!(
                "<retry-limit>1</retry-limit><retry-backoff>8s</retry-backoff>\
             <dead-letter-topic>{dead}</dead-letter-topic>"
            ),
        ),
        &[
            ("session.timeout.ms", "6000"),
            ("max.poll.interval.ms", "7000"),
        ],
    );
    ws.write("components/c.xml", &text);
    let mut serving = ws.sluice_spawn(&["serve", "--api", "off"]);
    wait_for_commits(&broker, &group, &source, &[4]);
    broker.read_all(&dead, 1);
    let delivered = broker.read_all(&target, 3);
    serving.signal("TERM");
    assert_eq!(serving.wait(WORK), Some(0), "{}", serving.stderr());
    let err = serving.stderr();
    assert!(
        err.contains("a long batch: polling with paused partitions to stay in the group"),
        "{err}"
    );
    assert!(!err.contains("maximum poll interval"), "{err}");
    let payloads: BTreeSet<&str> = delivered.iter().map(|r| r.payload.as_str()).collect();
    assert_eq!(payloads, BTreeSet::from(["doc-0", "doc-2", "doc-3"]));
}

#[test]
fn a_message_over_max_request_size_goes_to_the_dead_letter_topic_at_once() {
    let broker = Broker::start();
    let source = broker.create_topic("listen-in", 1);
    let target = broker.create_topic("listen-out", 1);
    let dead = broker.create_topic("listen-dlq", 1);
    let big = "x".repeat(200);
    for payload in ["small-0", big.as_str(), "small-2"] {
        broker.produce_one(
            &source,
            0,
            Some("k"),
            payload.as_bytes(),
            &[("route", &target)],
        );
    }
    let group = unique("g");
    let ws = Workspace::new();
    ws.write("container.properties", "kafka.max.request.size=100\n");
    ws.write(
        "components/c.xml",
        &routing_listener(
            &broker,
            &group,
            &source,
            &format!("<retry-limit>3</retry-limit><dead-letter-topic>{dead}</dead-letter-topic>"),
        ),
    );
    let mut serving = ws.sluice_spawn(&["serve", "--api", "off"]);
    wait_for_commits(&broker, &group, &source, &[3]);
    let letters = broker.read_all(&dead, 1);
    let delivered = broker.read_all(&target, 2);
    serving.signal("TERM");
    assert_eq!(serving.wait(WORK), Some(0), "{}", serving.stderr());
    // Not retried: it will not fit next time either. Its bytes were not read.
    let letter = &letters[0];
    assert_eq!(letter.header("sluice.error.offset"), Some("1"));
    assert_eq!(letter.header("sluice.error.attempts"), Some("1"));
    assert_eq!(
        letter.header("sluice.error.message"),
        Some("message is 201 bytes; max.request.size is 100 bytes")
    );
    assert_eq!(letter.payload, "");
    let payloads: Vec<&str> = delivered.iter().map(|r| r.payload.as_str()).collect();
    assert_eq!(payloads, ["small-0", "small-2"]);
}

#[test]
fn manual_partitions_and_one_execution_per_document() {
    let broker = Broker::start();
    let source = broker.create_topic("listen-in", 2);
    let target = broker.create_topic("listen-out", 1);
    fill(&broker, &source, &target, 8);
    let group = unique("g");
    let ws = Workspace::new();
    ws.write(
        "components/c.xml",
        &routing_listener(
            &broker,
            &group,
            &source,
            "<partitions>1</partitions><execution-per>document</execution-per>",
        ),
    );
    let mut serving = ws.sluice_spawn(&["serve", "--api", "off"]);
    // Partition 1 only (odd documents); partition 0 is left alone.
    wait_for("partition 1 committed", WORK, || {
        (broker.committed(&group, &source, 2) == [None, Some(4)]).then_some(())
    });
    let delivered = broker.read_all(&target, 4);
    serving.signal("TERM");
    assert_eq!(serving.wait(WORK), Some(0), "{}", serving.stderr());
    let payloads: Vec<&str> = delivered.iter().map(|r| r.payload.as_str()).collect();
    assert_eq!(payloads, ["doc-001", "doc-003", "doc-005", "doc-007"]);
    // One execution per document, each with one document in.
    let listed = ws.sluice(&["executions", "--process", "route"]);
    let out = harness::stdout(&listed);
    let rows: Vec<&str> = out.lines().skip(1).collect();
    assert_eq!(rows.len(), 4, "{out}");
    assert!(
        rows.iter()
            .all(|r| r.contains("       1       1       0  succeeded")),
        "{out}"
    );
}

#[test]
fn a_listener_whose_target_brokers_are_down_starts_again_and_loses_nothing() {
    let source_broker = Broker::start();
    let mut target_broker = Broker::start_with(harness::BrokerOptions {
        persistent: true,
        ..harness::BrokerOptions::default()
    });
    let source = source_broker.create_topic("listen-in", 1);
    let target = target_broker.create_topic("listen-out", 1);
    target_broker.stop();
    for i in 0..3 {
        let payload = format!("doc-{i}");
        source_broker.produce_one(&source, 0, None, payload.as_bytes(), &[]);
    }
    let group = unique("g");
    let ws = Workspace::new();
    ws.write("container.properties", "host.reconnect.backoff.ms=300\n");
    ws.write(
        "components/c.xml",
        &format!(
            r#"<components>
  <connection id="in"><bootstrap-servers>{}</bootstrap-servers><consumer-group>{group}</consumer-group></connection>
  <connection id="out"><bootstrap-servers>{}</bootstrap-servers></connection>
  <operation id="receive" type="listen" connection="in">
    <topic>{source}</topic><offset-reset>earliest</offset-reset><retry-limit>0</retry-limit>
  </operation>
  <operation id="send" type="produce" connection="out"><topic>{target}</topic></operation>
  <process id="forward"><start operation="receive"/><steps><connector operation="send"/></steps></process>
</components>"#,
            source_broker.bootstrap(),
            target_broker.bootstrap()
        ),
    );
    let mut serving = ws.sluice_spawn(&["serve", "--api", "off"]);
    // The execution fails as a whole (no broker for the target): not the documents' fault, so
    // the listener starts again on the reconnect schedule instead of stopping for good.
    wait_for("an automatic restart", WORK, || {
        serving
            .stderr()
            .contains("sluice serve: listener \"forward\" starts again in 300 ms")
            .then_some(())
    });
    assert_eq!(source_broker.committed(&group, &source, 1), [None]);
    target_broker.restart();
    wait_for_commits(&source_broker, &group, &source, &[3]);
    let delivered = target_broker.read_all(&target, 3);
    serving.signal("TERM");
    assert_eq!(serving.wait(WORK), Some(0), "{}", serving.stderr());
    let payloads: Vec<&str> = delivered.iter().map(|r| r.payload.as_str()).collect();
    assert_eq!(payloads, ["doc-0", "doc-1", "doc-2"]);
}
