//! Black-box tests: the real `sluice` binary against a real Kafka-protocol broker (tansu),
//! with what landed in Kafka checked by an independent rdkafka client.

mod harness;

use harness::{assert_exit, stdout, Broker, Stream, Workspace};

/// A workspace whose components are a connection to `broker`, a produce and a consume
/// operation on `topic` (the consume one as `group`, with `consume_extra` fields), a process
/// for each.
fn workspace(broker: &Broker, topic: &str, group: &str, consume_extra: &str) -> Workspace {
    Workspace::with_components(&format!(
        r#"<components>
  <connection id="tansu">
    <bootstrap-servers>{bootstrap}</bootstrap-servers>
    <client-id>sluice-test</client-id>
  </connection>
  <operation id="send" type="produce" connection="tansu">
    <topic>{topic}</topic>
    <dynamic-topic>true</dynamic-topic>
  </operation>
  <operation id="receive" type="consume" connection="tansu">
    <topic>{topic}</topic>
    <consumer-group>{group}</consumer-group>
    <offset-reset>earliest</offset-reset>
    {consume_extra}
  </operation>
  <process id="send-documents">
    <steps><connector operation="send"/></steps>
  </process>
  <process id="receive-documents">
    <start operation="receive"/>
  </process>
</components>
"#,
        bootstrap = broker.bootstrap()
    ))
}

/// Runs process "receive-documents", writing its documents to `name`, and asserts that it
/// succeeds and prints each of `logged` to standard error; returns the documents' `data`.
#[track_caller]
fn receive(ws: &Workspace, name: &str, logged: &[&str]) -> Vec<serde_json::Value> {
    ws.sluice_expect(
        &["run", "receive-documents", "--documents-out", name],
        0,
        Stream::Stderr,
        logged,
    );
    ws.documents_data(name)
}

#[test]
fn produce_then_consume_round_trip_with_keys() {
    let broker = Broker::start();
    let topic = broker.create_topic("orders", 3);
    let group = harness::unique("readers");
    let ws = workspace(
        &broker,
        &topic,
        &group,
        "<minimum-messages>4</minimum-messages><maximum-wait>30s</maximum-wait><autocommit>true</autocommit>",
    );
    ws.write(
        "orders.jsonl",
        r#"{"data": "order-1", "properties": {"message-key": "alice"}}
{"data": "order-2", "properties": {"message-key": "bob"}}
{"data": "order-3", "properties": {"message-key": "alice"}}
{"data": "order-4"}
"#,
    );

    ws.sluice_expect(
        &["run", "send-documents", "--input", "orders.jsonl"],
        0,
        Stream::Stdout,
        &["documents: 4 in, 4 out, 0 errors"],
    );

    // What Kafka holds, seen by a client that is not Sluice.
    let records = broker.read_all(&topic, 4);
    let mut by_payload: Vec<_> = records
        .iter()
        .map(|r| (r.payload.as_str(), r.key.as_deref()))
        .collect();
    by_payload.sort();
    assert_eq!(
        by_payload,
        [
            ("order-1", Some("alice")),
            ("order-2", Some("bob")),
            ("order-3", Some("alice")),
            ("order-4", None)
        ]
    );
    let partition_of = |payload: &str| {
        records
            .iter()
            .find(|r| r.payload == payload)
            .map(|r| r.partition)
    };
    assert_eq!(
        partition_of("order-1"),
        partition_of("order-3"),
        "same key, same partition"
    );
    let alice: Vec<i64> = records
        .iter()
        .filter(|r| r.key.as_deref() == Some("alice"))
        .map(|r| r.offset)
        .collect();
    assert!(
        alice[0] < alice[1],
        "a key's documents keep their order: {alice:?}"
    );

    // Sluice reads them back, with keys and tracked properties, and commits.
    ws.sluice_expect(
        &["run", "receive-documents", "--documents-out", "out.jsonl"],
        0,
        Stream::Stdout,
        &["documents: 4 in, 4 out, 0 errors"],
    );
    let docs = ws.documents_out("out.jsonl");
    assert_eq!(docs.len(), 4);
    for doc in &docs {
        let record = records
            .iter()
            .find(|r| r.payload == doc["data"])
            .unwrap_or_else(|| panic!("a consumed document that was not produced: {doc}"));
        assert_eq!(
            doc["properties"]["message-key"].as_str(),
            record.key.as_deref()
        );
        assert_eq!(doc["tracked"]["topic"], topic.as_str());
        assert_eq!(doc["tracked"]["partition"], record.partition);
        assert_eq!(doc["tracked"]["offset"], record.offset);
    }

    // Autocommit committed offset + 1 of the last document of each partition.
    let mut expected = vec![None; 3];
    for r in &records {
        let next = expected[r.partition as usize]
            .unwrap_or(0)
            .max(r.offset + 1);
        expected[r.partition as usize] = Some(next);
    }
    assert_eq!(broker.committed(&group, &topic, 3), expected);
}

#[test]
fn consume_without_autocommit_reads_the_same_documents_again() {
    let broker = Broker::start();
    let topic = broker.create_topic("replay", 1);
    let group = harness::unique("replayers");
    broker.produce(&topic, &[(Some("k"), "one"), (None, "two")]);
    let ws = workspace(
        &broker,
        &topic,
        &group,
        "<minimum-messages>2</minimum-messages>",
    );
    for run in ["out-1.jsonl", "out-2.jsonl"] {
        assert_eq!(receive(&ws, run, &[]), ["one", "two"], "{run}");
    }
    assert_eq!(broker.committed(&group, &topic, 1), [None]);
}

#[test]
fn max_poll_records_three_and_minimum_five_return_six_documents() {
    // Seed 003: "setting the container property to 3 and the Minimum Number of Messages in
    // the operation to 5 causes the operation to poll the topic twice, resulting in 6".
    let broker = Broker::start();
    let topic = broker.create_topic("polls", 1);
    let records: Vec<(Option<&str>, String)> = (0..10).map(|i| (None, format!("m{i}"))).collect();
    let borrowed: Vec<(Option<&str>, &str)> =
        records.iter().map(|(k, p)| (*k, p.as_str())).collect();
    broker.produce(&topic, &borrowed);
    let ws = workspace(
        &broker,
        &topic,
        &harness::unique("g"),
        "<minimum-messages>5</minimum-messages>",
    );
    ws.write("container.properties", "kafka.max.poll.records=3\n");
    assert_eq!(
        receive(&ws, "out.jsonl", &["polls=2"]),
        ["m0", "m1", "m2", "m3", "m4", "m5"]
    );

    // A container property above the minimum: one poll, more documents than the minimum.
    ws.write("container.properties", "kafka.max.poll.records=8\n");
    assert_eq!(receive(&ws, "out.jsonl", &["polls=1"]).len(), 8);
}

/// The error of document 3 of the oversized-document test, as summaries and records show it.
const OVERSIZED: &str = "  document 3, step 1 (send): message is 101 bytes; max.request.size is \
                         100 bytes: send smaller documents, or raise kafka.max.request.size in \
                         the host's container.properties";

#[test]
fn a_missing_topic_or_an_oversized_document_fails_only_that_document() {
    let broker = Broker::start();
    let topic = broker.create_topic("mixed", 1);
    let ws = workspace(&broker, &topic, "unused", "");
    ws.write("container.properties", "kafka.max.request.size=100\n");
    let big = "x".repeat(101);
    ws.write(
        "in.jsonl",
        &format!(
            r#"{{"data": "first"}}
{{"data": "lost?", "properties": {{"topic-name": "no-such-topic"}}}}
{{"data": "{big}"}}
{{"data": "last"}}
"#
        ),
    );
    let started = std::time::Instant::now();
    let output = ws.sluice_expect(
        &["run", "send-documents", "--input", "in.jsonl"],
        3,
        Stream::Stdout,
        &[
            "completed with document errors",
            "documents: 4 in, 2 out, 2 errors",
            "  document 2, step 1 (send): topic \"no-such-topic\" does not exist",
            OVERSIZED,
        ],
    );
    // Prompt: a metadata check, not librdkafka's delivery timeout.
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    assert_eq!(broker.read_payloads(&topic, 2), ["first", "last"]);

    // The run is recorded with the same document errors.
    let summary = stdout(&output);
    let id = summary
        .split_whitespace()
        .nth(3)
        .expect("process P, execution ID: …")
        .trim_end_matches(':');
    let shown = ws.sluice(&["executions", id]);
    assert_exit(&shown, 0);
    let record = stdout(&shown);
    assert!(
        record.contains("status    completed-with-errors")
            && record.contains("documents 4 in, 2 out, 2 errors")
            && record
                .contains("  document 2, step 1 (send): topic \"no-such-topic\" does not exist")
            && record.contains(OVERSIZED),
        "{record}"
    );
    let listed = ws.sluice(&["executions", "--status", "failed"]);
    assert_exit(&listed, 0);
    assert_eq!(stdout(&listed), "no executions recorded that match\n");
}

#[test]
fn lines_from_standard_input_are_documents() {
    let broker = Broker::start();
    let topic = broker.create_topic("stdin", 2);
    let ws = workspace(&broker, &topic, "unused", "");
    let output = ws.sluice_with_stdin(
        &["run", "send-documents", "--input", "-"],
        "alpha\n\nbeta\r\ngamma",
    );
    assert_exit(&output, 0);
    let mut payloads = broker.read_payloads(&topic, 3);
    payloads.sort();
    assert_eq!(payloads, ["alpha", "beta", "gamma"]);
}

#[test]
fn consuming_a_topic_that_does_not_exist_fails_the_execution() {
    let broker = Broker::start();
    let ws = workspace(&broker, "never-created", "g", "");
    ws.sluice_expect(
        &["run", "receive-documents"],
        1,
        Stream::Stdout,
        &[
            "failed after",
            "\n  start operation \"receive\": topic \"never-created\" does not exist\n",
        ],
    );
}

#[test]
fn a_process_consumes_from_one_topic_and_produces_to_another() {
    let broker = Broker::start();
    let source = broker.create_topic("source", 2);
    let target = broker.create_topic("target", 2);
    broker.produce(
        &source,
        &[(Some("a"), "1"), (Some("b"), "2"), (Some("a"), "3")],
    );
    let ws = Workspace::new();
    ws.write(
        "components/bridge.xml",
        &format!(
            r#"<components>
  <connection id="tansu"><bootstrap-servers>{bootstrap}</bootstrap-servers><consumer-group>{group}</consumer-group></connection>
  <operation id="read" type="consume" connection="tansu">
    <topic>{source}</topic><minimum-messages>3</minimum-messages><offset-reset>earliest</offset-reset><autocommit>true</autocommit>
  </operation>
  <operation id="write" type="produce" connection="tansu"><topic>{target}</topic></operation>
  <process id="bridge"><start operation="read"/><steps><connector operation="write"/></steps></process>
</components>"#,
            bootstrap = broker.bootstrap(),
            group = harness::unique("bridge"),
        ),
    );
    ws.sluice_expect(
        &["run", "bridge"],
        0,
        Stream::Stdout,
        &["documents: 3 in, 3 out, 0 errors"],
    );
    let mut moved: Vec<_> = broker
        .read_all(&target, 3)
        .into_iter()
        .map(|r| (r.key, r.payload))
        .collect();
    moved.sort();
    let key = |k: &str| Some(k.to_string());
    assert_eq!(
        moved,
        [
            (key("a"), "1".into()),
            (key("a"), "3".into()),
            (key("b"), "2".into())
        ]
    );
}

#[test]
fn test_connection_checks_a_topic_and_writes_a_probe_it_reads_back() {
    let broker = Broker::start();
    let topic = broker.create_topic("checked", 2);
    broker.produce_one(&topic, 0, None, b"one", &[]);
    broker.produce_one(&topic, 0, None, b"two", &[]);
    broker.produce_one(&topic, 1, None, b"three", &[]);
    let ws = workspace(&broker, "t", "g", "");
    let output = ws.sluice(&["test-connection", "tansu", "--topic", &topic]);
    assert_exit(&output, 0);
    let out = stdout(&output);
    for line in [
        format!("  ✓ topic \"{topic}\": 2 partitions, end offsets 0:2 1:1, 3 messages kept"),
        format!("  ✓ reading topic \"{topic}\": every partition answered a fetch"),
        "all checks passed".to_string(),
    ] {
        assert!(out.lines().any(|l| l == line), "missing {line:?} in\n{out}");
    }
    assert!(
        !out.contains("writing"),
        "nothing written without --write:\n{out}"
    );

    let output = ws.sluice(&["test-connection", "tansu", "--topic", &topic, "--write"]);
    assert_exit(&output, 0);
    let out = stdout(&output);
    let written = out
        .lines()
        .find_map(|l| l.strip_prefix(&format!("  ✓ writing topic \"{topic}\": a probe message (header sluice.probe) was produced to partition ")))
        .unwrap_or_else(|| panic!("no write check in\n{out}"));
    let (partition, offset) = written
        .strip_suffix(" and read back")
        .and_then(|w| w.split_once(" at offset "))
        .unwrap_or_else(|| panic!("where the probe went: {written}"));
    // An independent reader finds the probe there, marked as one.
    let records = broker.read_all(&topic, 4);
    let probe = records
        .iter()
        .find(|r| r.partition.to_string() == partition && r.offset.to_string() == offset)
        .unwrap_or_else(|| panic!("no record at {partition}/{offset}: {records:?}"));
    assert_eq!(probe.payload, "sluice test-connection probe");
    assert!(
        probe
            .header("sluice.probe")
            .is_some_and(|v| v.starts_with("sluice test-connection")),
        "{probe:?}"
    );

    let output = ws.sluice(&["test-connection", "tansu", "--topic", "no-such-topic"]);
    assert_exit(&output, 1);
    let out = stdout(&output);
    for line in [
        "  ✗ topic \"no-such-topic\" cannot be described",
        "      topic \"no-such-topic\" does not exist: check the name (sluice validate lists what \
         the components use), or create it",
        "1 check failed",
    ] {
        assert!(out.lines().any(|l| l == line), "missing {line:?} in\n{out}");
    }
}

#[test]
fn test_connection_passes_every_check_against_a_broker() {
    let broker = Broker::start();
    broker.create_topic("visible", 1);
    let ws = workspace(&broker, "t", "g", "");
    let output = ws.sluice(&["test-connection", "tansu"]);
    assert_exit(&output, 0);
    let out = stdout(&output);
    let bootstrap = broker.bootstrap();
    for line in [
        format!("Testing connection \"tansu\" ({bootstrap}, PLAINTEXT)"),
        format!("  ✓ {bootstrap} resolves to 127.0.0.1"),
        format!("  ✓ {bootstrap} accepts TCP connections"),
        "  ✓ Kafka handshake (PLAINTEXT) and metadata: 1 broker(s), 1 topic(s) visible".to_string(),
        format!("  ✓ advertised broker {bootstrap} is reachable"),
        "all checks passed".to_string(),
    ] {
        assert!(out.lines().any(|l| l == line), "missing {line:?} in\n{out}");
    }
}

/// `count` records `{name}-{i}` for the operation's topic.
fn named_records(name: &str, count: usize) -> Vec<sluice_connector::ProduceRecord<'static>> {
    (0..count)
        .map(|i| sluice_connector::ProduceRecord {
            payload: format!("{name}-{i}").into_bytes().into(),
            key: None,
            topic: None,
            partition: None,
            timestamp_ms: None,
            headers: Vec::new(),
        })
        .collect()
}

/// One warm producer serves several executions at once (a listener's batches and concurrent API
/// runs share it), each waiting on its own thread for its own reports while serving the
/// others': every execution is told where each of its documents landed, an execution cancelled
/// while it waits still has its records delivered, and the producer goes on working after it.
#[test]
fn executions_sharing_a_producer_each_get_their_own_documents_offsets() {
    use std::collections::BTreeMap;
    use std::sync::Arc;
    use std::time::Duration;

    use sluice_connector::produce::{Acks, Compression, ProduceSettings, Producer};
    use sluice_connector::{Bootstrap, Connection, ConnectionConfig, Limits};

    let broker = Broker::start();
    let topic = broker.create_topic("shared", 3);
    let connection = Connection::open(ConnectionConfig {
        bootstrap: Bootstrap::parse(&broker.bootstrap()).expect("bootstrap"),
        client_id: "sluice-test".into(),
        default_consumer_group: None,
        security_protocol: sluice_connector::SecurityProtocol::Plaintext,
        sasl: None,
        tls: sluice_connector::Tls::default(),
        properties: Vec::new(),
        idempotence: true,
        service_limit: None,
    })
    .expect("connection");
    let producer = Arc::new(
        Producer::new(
            &connection,
            ProduceSettings {
                topic: Some(topic.clone()),
                acks: Acks::All,
                compression: Compression::None,
                delivery_timeout: Duration::from_secs(30),
            },
            Limits::default(),
        )
        .expect("producer"),
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("runtime");
    let (executions, after) = runtime.block_on(async {
        // Warm: the topic's partition count is known, so each execution below hands all its
        // records to librdkafka at its first poll.
        let warm = producer.produce(named_records("warm", 1), |_| {}).await;
        assert!(warm.expect("warm")[0].is_ok());
        let running: Vec<_> = (0..6)
            .map(|e| {
                let producer = producer.clone();
                tokio::spawn(async move {
                    let records = named_records(&format!("e{e}"), 400);
                    (e, producer.produce(records, |_| {}).await)
                })
            })
            .collect();
        // Stopped after its first poll, while it waits for its reports (or, if they were all
        // in at once, finished: its records must arrive either way).
        let _ = tokio::time::timeout(
            Duration::ZERO,
            producer.produce(named_records("cancelled", 400), |_| {}),
        )
        .await;
        let mut executions = Vec::new();
        for execution in running {
            executions.push(execution.await.expect("execution task"));
        }
        let after = producer.produce(named_records("after", 10), |_| {}).await;
        (executions, after)
    });

    let held: BTreeMap<(i32, i64), String> = broker
        .read_all(&topic, 1 + 6 * 400 + 400 + 10)
        .into_iter()
        .map(|r| ((r.partition, r.offset), r.payload))
        .collect();
    assert_eq!(held.len(), 1 + 6 * 400 + 400 + 10, "one record per offset");
    for (e, results) in executions.into_iter().chain([(6, after)]) {
        let name = if e == 6 {
            "after".to_string()
        } else {
            format!("e{e}")
        };
        let results = results.expect("execution");
        for (i, result) in results.iter().enumerate() {
            let delivered = result
                .as_ref()
                .unwrap_or_else(|error| panic!("{name}-{i}: {error}"));
            assert_eq!(&*delivered.topic, topic.as_str());
            assert_eq!(
                held.get(&(delivered.partition, delivered.offset)),
                Some(&format!("{name}-{i}")),
                "{name}-{i} is where its execution was told it landed"
            );
        }
    }
    for i in 0..400 {
        let payload = format!("cancelled-{i}");
        assert_eq!(
            held.values().filter(|p| **p == payload).count(),
            1,
            "{payload}: a cancelled execution's records are still delivered, once"
        );
    }
}
