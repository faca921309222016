//! Listen and `sluice serve` against the real broker (tansu): a listener bridges documents to a
//! Produce step and commits them; a failing document is retried, then dead-lettered with its
//! context; without a dead-letter topic it stops the listener at its offset; SIGTERM drains
//! and a restart resumes without loss or repeats; after SIGKILL nothing is lost.

mod harness;

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{json, Value};

use harness::api::Api;
use harness::flows::{produce_routed, source_and_target, Listener};
use harness::{assert_contains, components, stdout, unique, wait_for, Broker, Record, Stream};
use harness::{Serving, Workspace};

/// How long a listener may take to work through a test's documents.
const WORK: Duration = Duration::from_secs(60);

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

/// The payloads of `records`, in their order.
fn payloads(records: &[Record]) -> Vec<&str> {
    records.iter().map(|r| r.payload.as_str()).collect()
}

/// Asserts that the dead letter `letter` carries each (header, value) of `headers`.
#[track_caller]
fn assert_headers(letter: &Record, headers: &[(&str, &str)]) {
    for (name, value) in headers {
        assert_eq!(letter.header(name), Some(*value), "header {name}");
    }
}

/// A broker with one-partition topics: a listener's source, its target and its dead-letter
/// topic.
struct WithDeadLetters {
    broker: Broker,
    source: String,
    target: String,
    dead: String,
}

impl WithDeadLetters {
    fn new() -> Self {
        let (broker, source, target) = source_and_target("listen", 1);
        let dead = broker.create_topic("listen-dlq", 1);
        Self {
            broker,
            source,
            target,
            dead,
        }
    }

    /// Fields of a listen operation: up to `retry_limit` retries (`retry_backoff` apart), then
    /// the document goes to the dead-letter topic.
    fn retries(&self, retry_limit: u32, retry_backoff: Option<&str>) -> String {
        let backoff = retry_backoff
            .map(|b| format!("<retry-backoff>{b}</retry-backoff>"))
            .unwrap_or_default();
        format!(
            "<retry-limit>{retry_limit}</retry-limit>{backoff}<dead-letter-topic>{}</dead-letter-topic>",
            self.dead
        )
    }

    /// Serves `listener` until its group has committed offset `end` of the source, then
    /// stops it cleanly; returns what it wrote to standard error, the one dead letter, and
    /// the `delivered` records of the target.
    fn serve(
        &self,
        listener: &Listener,
        end: i64,
        delivered: usize,
    ) -> (String, Record, Vec<Record>) {
        let mut serving = listener.serve();
        self.broker
            .wait_for_committed(&listener.group, &self.source, &[Some(end)]);
        let letter = self.broker.read_all(&self.dead, 1).remove(0);
        let delivered = self.broker.read_all(&self.target, delivered);
        serving.stop("TERM", WORK);
        (serving.stderr(), letter, delivered)
    }
}

/// Starts a second host of `listener` once the first, `first`, has been stopped by `signal`
/// after its first commit (`KILL`: killed, else stopped cleanly).
fn restart_after_a_first_commit(
    broker: &Broker,
    listener: &Listener,
    source: &str,
    signal: &str,
) -> Serving {
    let mut first = listener.serve();
    wait_for_a_first_commit(broker, &listener.group, source);
    if signal == "KILL" {
        first.signal("KILL");
        assert_eq!(first.wait(WORK), None);
    } else {
        first.stop(signal, WORK);
    }
    listener.serve()
}

#[test]
fn a_listener_bridges_documents_in_partition_order_and_commits_them() {
    let (broker, source, target) = source_and_target("listen", 2);
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
    let listener = Listener::new(&broker, &source, "<max-messages>3</max-messages>");
    let mut serving = listener.serve();
    broker.wait_for_committed(&listener.group, &source, &[Some(10), Some(10)]);
    let records = broker.read_all(&target, 20);
    serving.stop("TERM", WORK);
    assert_contains(
        &serving.stderr(),
        &[
            "sluice serve: 1 listener started (route)",
            "sluice serve: stopped",
        ],
    );
    // Every document once; within each source partition, in offset order.
    for partition in ["p0", "p1"] {
        let payloads: Vec<&str> = payloads(&records)
            .into_iter()
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
    let topics = WithDeadLetters::new();
    let (broker, source) = (&topics.broker, &topics.source);
    let missing = one_failing(broker, source, &topics.target, 5, 2);
    let listener = Listener::new(broker, source, &topics.retries(2, Some("100ms")));
    let (_, letter, delivered) = topics.serve(&listener, 5, 4);

    assert_eq!(letter.payload, "doc-2");
    assert_eq!(letter.key.as_deref(), Some("k2"));
    assert_headers(
        &letter,
        &[
            ("route", &missing),
            ("sluice.error.topic", source),
            ("sluice.error.partition", "0"),
            ("sluice.error.offset", "2"),
            // One try and two retries.
            ("sluice.error.attempts", "3"),
            ("sluice.error.process", "route"),
            (
                "sluice.error.message",
                &format!("topic \"{missing}\" does not exist"),
            ),
        ],
    );
    let payloads: BTreeSet<&str> = payloads(&delivered).into_iter().collect();
    assert_eq!(
        payloads,
        BTreeSet::from(["doc-0", "doc-1", "doc-3", "doc-4"])
    );

    // Every attempt is an execution record: the first with all five documents, then the
    // retries of the failing one, each with its error and where the document came from.
    let ws = &listener.ws;
    let listed = ws.sluice_expect(
        &[
            "executions",
            "--process",
            "route",
            "--status",
            "completed-with-errors",
        ],
        0,
        Stream::Stdout,
        &[],
    );
    let out = stdout(&listed);
    let rows: Vec<&str> = out.lines().skip(1).collect();
    assert_eq!(rows.len(), 3, "{out}");
    assert!(rows.iter().all(|r| r.contains(" route ")), "{out}");
    let id = rows[0].split_whitespace().next().expect("an id");
    ws.sluice_expect(
        &["executions", id],
        0,
        Stream::Stdout,
        &[
            "status    completed-with-errors",
            "documents 1 in, 0 out, 1 error",
            &format!("read      {source}/0 offset 2"),
            &format!(
                "  document 1, step 2 (send): topic \"{missing}\" does not exist [topic {source}, \
                 partition 0, offset 2]"
            ),
        ],
    );
    let first = ws.sluice(&["executions", "--process", "route", "--limit", "100"]);
    assert_contains(
        &stdout(&first),
        &["       5       4       1  completed-with-errors"],
    );
}

/// "Which execution handled this message?": a source offset leads to every attempt at its
/// document (with the document's error in each), a target offset to the execution that wrote
/// it, which is the one that read its source; through the API while the host serves, and the
/// CLI after it stopped.
#[test]
fn each_message_is_traced_to_the_executions_that_read_and_wrote_it() {
    const TOKEN: &str = "audit-token-41c2";
    let topics = WithDeadLetters::new();
    let (broker, source, target) = (&topics.broker, &topics.source, &topics.target);
    let missing = one_failing(broker, source, target, 5, 2);
    let listener = Listener::new(broker, source, &topics.retries(1, Some("100ms")));
    listener.ws.set_env("SLUICE_API_TOKEN", TOKEN);
    let mut serving = listener.serve_with_api();
    let api = Api::of(&serving, Some(TOKEN));
    broker.wait_for_committed(&listener.group, source, &[Some(5)]);
    let delivered = broker.read_all(target, 4);

    let handled = |address: &str| -> Vec<Value> {
        match api.json(&format!("/executions?message={address}")) {
            Value::Array(handled) => handled,
            other => panic!("{address}: {other}"),
        }
    };
    let failure = format!("topic \"{missing}\" does not exist");
    let failing = handled(&format!("{source}/0/2"));
    assert_eq!(failing.len(), 2, "a try and a retry: {failing:?}");
    for (attempt, execution) in (1..).zip(&failing) {
        assert_eq!(execution["process"], "route");
        assert_eq!(execution["role"], "read");
        assert_eq!(execution["attempt"], attempt);
        assert_eq!(execution["status"], "completed-with-errors");
        assert_eq!(execution["error"], failure.as_str());
    }
    assert_ne!(failing[0]["id"], failing[1]["id"]);
    // The retry read that one document and wrote nothing.
    let retry = failing[1]["id"].as_str().expect("id");
    assert_eq!(
        api.json(&format!("/executions/{retry}"))["messages"],
        json!([{"role": "read", "topic": source, "partition": 0, "first": 2, "last": 2}])
    );
    for record in &delivered {
        let number = record.payload.strip_prefix("doc-").expect("doc-N");
        let read = handled(&format!("{source}/0/{number}"));
        let written = handled(&format!("{target}/0/{}", record.offset));
        assert_eq!(read.len(), 1, "{}: {read:?}", record.payload);
        assert_eq!(written.len(), 1, "{}: {written:?}", record.payload);
        assert_eq!(
            (&read[0]["role"], &read[0]["attempt"], &read[0]["error"]),
            (&json!("read"), &json!(1), &Value::Null)
        );
        assert_eq!(
            (&written[0]["role"], &written[0]["attempt"]),
            (&json!("written"), &Value::Null)
        );
        assert_eq!(read[0]["id"], written[0]["id"], "{}", record.payload);
    }
    assert_eq!(handled(&format!("{source}/0/5")), Vec::<Value>::new());
    let (status, body) = api.get(&format!("/executions?message={source}/x/2"));
    assert_eq!(status, 400);
    assert!(
        body.contains(&format!(
            "message: \\\"{source}/x/2\\\" is not TOPIC/PARTITION/OFFSET (the partition is a \
             number from 0), e.g. orders/0/41"
        )),
        "{body}"
    );
    serving.stop("TERM", WORK);

    let traced = listener.ws.sluice_expect(
        &["executions", "--message", &format!("{source}/0/2")],
        0,
        Stream::Stdout,
        &[],
    );
    let out = stdout(&traced);
    let rows: Vec<&str> = out.lines().skip(1).collect();
    assert_eq!(rows.len(), 2, "{out}");
    for (attempt, row) in (1..).zip(&rows) {
        assert!(
            row.starts_with(failing[attempt - 1]["id"].as_str().expect("id")),
            "{out}"
        );
        assert!(
            row.ends_with(&format!(
                "  read     {attempt:>7}  completed-with-errors  {failure}"
            )),
            "{out}"
        );
    }
    listener.ws.sluice_expect(
        &["executions", "--message", &format!("{source}/0/5")],
        0,
        Stream::Stdout,
        &[&format!(
            "no recorded execution read or wrote {source}/0/5 (records older than \
             host.executions.retention.days are removed)"
        )],
    );
}

#[test]
fn without_a_dead_letter_topic_a_failing_document_stops_the_listener_at_its_offset() {
    let (broker, source, target) = source_and_target("listen", 1);
    let missing = one_failing(&broker, &source, &target, 4, 2);
    let listener = Listener::new(
        &broker,
        &source,
        "<retry-limit>1</retry-limit><retry-backoff>50ms</retry-backoff>",
    );
    let mut serving = listener.serve();
    assert_eq!(serving.wait(WORK), Some(1), "{}", serving.stderr());
    assert_contains(
        &serving.stderr(),
        &[&format!(
            "sluice serve: listener \"route\" failed: the document at topic \"{source}\" \
             partition 0 offset 2 failed 2 time(s): topic \"{missing}\" does not exist\n  no \
             dead-letter-topic is set, so the listener stops rather than skip it"
        )],
    );
    // Committed up to the failing document, not past it: a restart resumes there.
    assert_eq!(broker.committed(&listener.group, &source, 1), [Some(2)]);
}

#[test]
fn sigterm_drains_and_a_restart_resumes_without_loss_or_repeats() {
    let (broker, source, target) = source_and_target("listen", 2);
    let total = 60;
    produce_routed(&broker, &source, 2, 0..total, &target);
    // One document per execution, so that the signal comes while work is under way.
    let listener = Listener::new(&broker, &source, "<max-messages>1</max-messages>");
    let mut second = restart_after_a_first_commit(&broker, &listener, &source, "TERM");
    broker.wait_for_committed(&listener.group, &source, &[Some(30), Some(30)]);
    second.stop("INT", WORK);
    // Exactly once each: the drain committed everything the first host finished.
    let records = broker.read_all(&target, total as usize);
    let payloads: BTreeSet<String> = records.into_iter().map(|r| r.payload).collect();
    assert_eq!(payloads.len(), total as usize);
}

#[test]
fn after_sigkill_a_restart_delivers_every_document_at_least_once() {
    let (broker, source, target) = source_and_target("listen", 2);
    let total = 40;
    produce_routed(&broker, &source, 2, 0..total, &target);
    // A killed member keeps its partitions until the group's session timeout ends (45 s by
    // default): a short one lets the restarted host take them over sooner.
    let listener = Listener::quick_to_take_over(&broker, &source);
    let mut second = restart_after_a_first_commit(&broker, &listener, &source, "KILL");
    broker.wait_for_committed(&listener.group, &source, &[Some(20), Some(20)]);
    second.stop("TERM", WORK);
    // At least once: everything arrived; what the killed host had sent but not committed may
    // have arrived twice.
    broker.wait_for_payloads(&target, total as usize);
}

#[test]
fn run_refuses_a_listener_process_and_serve_needs_one() {
    let broker = Broker::start();
    let source = broker.create_topic("listen-in", 1);
    let listener = Listener::new(&broker, &source, "");
    listener.ws.sluice_expect(
        &["run", "route"],
        1,
        Stream::Stderr,
        &[
            "process \"route\" starts with a listen operation, which runs for as long as the \
           host: start it with sluice serve",
        ],
    );
    let empty = Workspace::with_components(&components(
        &broker,
        "g",
        r#"<operation id="send" type="produce" connection="tansu"><topic>t</topic></operation>
<process id="p"><steps><connector operation="send"/></steps></process>"#,
    ));
    empty.sluice_expect(
        &["serve"],
        1,
        Stream::Stderr,
        &["no process in the components starts with a listen operation"],
    );
}

#[test]
fn a_batch_longer_than_max_poll_interval_keeps_its_group_membership() {
    let topics = WithDeadLetters::new();
    one_failing(&topics.broker, &topics.source, &topics.target, 4, 1);
    // The retry's back-off keeps the batch running for 8 s, past librdkafka's 7 s
    // max.poll.interval.ms: without polling meanwhile, the member would leave the group and
    // the batch's documents would be delivered again.
    let listener = Listener::with_properties(
        &topics.broker,
        &topics.source,
        &topics.retries(1, Some("8s")),
        &[
            ("session.timeout.ms", "6000"),
            ("max.poll.interval.ms", "7000"),
        ],
    );
    let (err, _, delivered) = topics.serve(&listener, 4, 3);
    assert_contains(
        &err,
        &["a long batch: polling with paused partitions to stay in the group"],
    );
    assert!(!err.contains("maximum poll interval"), "{err}");
    let payloads: BTreeSet<&str> = payloads(&delivered).into_iter().collect();
    assert_eq!(payloads, BTreeSet::from(["doc-0", "doc-2", "doc-3"]));
}

#[test]
fn a_message_over_max_request_size_goes_to_the_dead_letter_topic_at_once() {
    let topics = WithDeadLetters::new();
    let big = "x".repeat(200);
    for payload in ["small-0", big.as_str(), "small-2"] {
        topics.broker.produce_one(
            &topics.source,
            0,
            Some("k"),
            payload.as_bytes(),
            &[("route", &topics.target)],
        );
    }
    let listener = Listener::new(&topics.broker, &topics.source, &topics.retries(3, None));
    listener
        .ws
        .write("container.properties", "kafka.max.request.size=100\n");
    let (_, letter, delivered) = topics.serve(&listener, 3, 2);
    // Not retried: it will not fit next time either. Its bytes were not read.
    assert_headers(
        &letter,
        &[
            ("sluice.error.offset", "1"),
            ("sluice.error.attempts", "1"),
            (
                "sluice.error.message",
                "message is 201 bytes; max.request.size is 100 bytes",
            ),
        ],
    );
    assert_eq!(letter.payload, "");
    assert_eq!(payloads(&delivered), ["small-0", "small-2"]);
}

#[test]
fn manual_partitions_and_one_execution_per_document() {
    let (broker, source, target) = source_and_target("listen", 2);
    produce_routed(&broker, &source, 2, 0..8, &target);
    let listener = Listener::new(
        &broker,
        &source,
        "<partitions>1</partitions><execution-per>document</execution-per>",
    );
    let mut serving = listener.serve();
    // Partition 1 only (odd documents); partition 0 is left alone.
    broker.wait_for_committed(&listener.group, &source, &[None, Some(4)]);
    let delivered = broker.read_all(&target, 4);
    serving.stop("TERM", WORK);
    assert_eq!(
        payloads(&delivered),
        ["doc-001", "doc-003", "doc-005", "doc-007"]
    );
    // One execution per document, each with one document in.
    let listed = listener.ws.sluice(&["executions", "--process", "route"]);
    let out = stdout(&listed);
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
        source_broker.produce_to(&source, 0, &format!("doc-{i}"));
    }
    let group = unique("g");
    let ws = Workspace::with_components(&format!(
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
    ));
    ws.write("container.properties", "host.reconnect.backoff.ms=300\n");
    let mut serving = ws.sluice_spawn(&["serve", "--api", "off"]);
    // The execution fails as a whole (no broker for the target): not the documents' fault, so
    // the listener starts again on the reconnect schedule instead of stopping for good.
    // The schedule's 300 ms, give or take the fifth of jitter that keeps hosts out of step.
    let wait_ms: u64 = wait_for("an automatic restart", WORK, || {
        let stderr = serving.stderr();
        let (_, rest) = stderr.split_once("sluice serve: listener \"forward\" starts again in ")?;
        rest.split_once(" ms")?.0.parse().ok()
    });
    assert!((240..=360).contains(&wait_ms), "waited {wait_ms} ms");
    assert_eq!(source_broker.committed(&group, &source, 1), [None]);
    target_broker.restart();
    source_broker.wait_for_committed(&group, &source, &[Some(3)]);
    let delivered = target_broker.read_all(&target, 3);
    serving.stop("TERM", WORK);
    assert_eq!(payloads(&delivered), ["doc-0", "doc-1", "doc-2"]);
}
