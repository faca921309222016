//! Faults: request errors, leader moves, a slow network and coordinator loss injected with
//! librdkafka's mock cluster; broker outages, a killed `sluice` and a killed broker on the
//! real tansu. The promise: every document is delivered or gets its own error, never lost or
//! silently dropped. Each test adds its row to docs/RELIABILITY.md.

mod harness;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use harness::{components, reliability_row, unique, Kafka, Stream, Workspace};
use rdkafka::mocking::{MockCluster, MockCoordinator};
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
use sluice_runtime::components::Components;
use sluice_runtime::container::ContainerProperties;
use sluice_runtime::document::{Document, DocumentProperties};
use sluice_runtime::host::execution::{Host, NoProgress};
use sluice_runtime::record::{ExecutionRecord, ExecutionStatus};

/// A host on its own runtime: executions run to their end, one at a time, on the test thread
/// (the mock cluster must only be used from the thread that made it).
struct Sluice {
    host: Host,
    runtime: tokio::runtime::Runtime,
}

impl Sluice {
    fn new(components: &str) -> Self {
        let components =
            Components::from_sources(vec![(PathBuf::from("r.xml"), components.into())])
                .unwrap_or_else(|e| panic!("{e}"));
        Self {
            host: Host::new(components, ContainerProperties::default()),
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime"),
        }
    }

    fn run(&self, process: &str, documents: Option<Vec<Document>>) -> ExecutionRecord {
        self.runtime
            .block_on(self.host.execute(process, documents, &NoProgress))
            .expect("execution")
    }

    /// The processes of [`produce_components`].
    fn sending_to(bootstrap: &str, topic: &str, delivery_timeout: &str) -> Self {
        Self::new(&produce_components(bootstrap, topic, delivery_timeout))
    }

    /// [`Sluice::sending_to`], warmed up (see [`Sluice::warm_up`]).
    fn warm(bootstrap: &str, topic: &str, delivery_timeout: &str) -> Self {
        let sluice = Self::sending_to(bootstrap, topic, delivery_timeout);
        sluice.warm_up();
        sluice
    }

    /// Sends the document `warm-0`, so that the producer exists (connection, metadata,
    /// producer id) before the fault.
    fn warm_up(&self) {
        let warm = self.run("send", Some(documents("warm", 1)));
        assert_eq!(warm.status, ExecutionStatus::Succeeded);
    }
}

/// A mock cluster of `brokers` with a fresh topic.
fn mock_cluster(
    brokers: i32,
    prefix: &str,
    partitions: i32,
    replication: i32,
) -> (
    MockCluster<'static, rdkafka::producer::DefaultProducerContext>,
    String,
) {
    let cluster = MockCluster::new(brokers).expect("mock cluster");
    let topic = unique(prefix);
    cluster
        .create_topic(&topic, partitions, replication)
        .expect("topic");
    (cluster, topic)
}

/// A mock cluster of one broker with a fresh topic of `partitions`, and a warm Sluice sending
/// to it (delivery timeout 30 s).
fn warm_on_one_mock_broker(
    prefix: &str,
    partitions: i32,
) -> (
    MockCluster<'static, rdkafka::producer::DefaultProducerContext>,
    String,
    Sluice,
) {
    let (cluster, topic) = mock_cluster(1, prefix, partitions, 1);
    let sluice = Sluice::warm(&cluster.bootstrap_servers(), &topic, "30s");
    (cluster, topic, sluice)
}

/// A Produce process `send` (and a Consume process `receive` of the same topic).
fn produce_components(bootstrap: &str, topic: &str, delivery_timeout: &str) -> String {
    produce_components_with(bootstrap, topic, delivery_timeout, "")
}

/// [`produce_components`] whose connection also has the librdkafka `properties` given (XML
/// `<property>` elements).
fn produce_components_with(
    bootstrap: &str,
    topic: &str,
    delivery_timeout: &str,
    properties: &str,
) -> String {
    format!(
        r#"<components>
  <connection id="k"><bootstrap-servers>{bootstrap}</bootstrap-servers><consumer-group>{group}</consumer-group><properties>{properties}</properties></connection>
  <operation id="send" type="produce" connection="k"><topic>{topic}</topic><delivery-timeout>{delivery_timeout}</delivery-timeout></operation>
  <operation id="receive" type="consume" connection="k">
    <topic>{topic}</topic><minimum-messages>1</minimum-messages><offset-reset>earliest</offset-reset><maximum-wait>60s</maximum-wait>
  </operation>
  <operation id="commit" type="commit-offset" connection="k"/>
  <process id="send"><steps><connector operation="send"/></steps></process>
  <process id="receive"><start operation="receive"/></process>
  <process id="commit"><steps><connector operation="commit"/></steps></process>
</components>"#,
        group = unique("reliability")
    )
}

fn documents(prefix: &str, count: usize) -> Vec<Document> {
    (0..count)
        .map(|i| Document {
            data: format!("{prefix}-{i}").into_bytes(),
            properties: DocumentProperties {
                message_key: Some(format!("k{i}").as_bytes().into()),
                ..DocumentProperties::default()
            },
            ..Document::default()
        })
        .collect()
}

/// What the topic must hold after the warm-up and `records`: their delivered payloads, sorted.
fn warm_and(records: &[&ExecutionRecord]) -> Vec<String> {
    let mut payloads: Vec<String> = records.iter().flat_map(|r| delivered(r)).collect();
    payloads.push("warm-0".into());
    payloads.sort();
    payloads
}

/// The payloads of the documents an execution delivered, sorted.
fn delivered(record: &ExecutionRecord) -> Vec<String> {
    let mut payloads: Vec<String> = record
        .documents_out
        .iter()
        .map(|d| String::from_utf8_lossy(&d.data).into_owned())
        .collect();
    payloads.sort();
    payloads
}

/// What a topic holds, sorted (duplicates kept, so that a duplicate shows).
fn held(reader: &Kafka, topic: &str, expected: usize) -> Vec<String> {
    let mut payloads: Vec<String> = reader
        .read_all(topic, expected)
        .into_iter()
        .map(|r| r.payload)
        .collect();
    payloads.sort();
    payloads
}

/// Asserts that an execution succeeded, showing its document errors when not.
#[track_caller]
fn assert_succeeded(record: &ExecutionRecord) {
    assert_eq!(
        record.status,
        ExecutionStatus::Succeeded,
        "{:?}",
        record.document_errors
    );
}

/// Asserts that `topic` holds exactly the warm-up document and those `records` delivered
/// (duplicates would show): `what` says why.
#[track_caller]
fn assert_holds_warm_and(reader: &Kafka, topic: &str, records: &[&ExecutionRecord], what: &str) {
    let expected = warm_and(records);
    assert_eq!(held(reader, topic, expected.len()), expected, "{what}");
}

fn error_of(record: &ExecutionRecord, document: usize) -> Option<&str> {
    record
        .document_errors
        .iter()
        .find(|e| e.document == document)
        .map(|e| e.message.as_str())
}

#[test]
fn retriable_produce_errors_are_retried_and_each_document_arrives_once() {
    let (cluster, topic) = mock_cluster(1, "retriable", 2, 1);
    // One produce request in flight at a time. The mock cluster checks an idempotent producer's
    // sequence numbers only when it has a transactional id, which Sluice's producer has not. With
    // two requests of a partition in flight it can refuse the first (not appended) and append the
    // second, which no real broker does: Kafka answers the second OUT_OF_ORDER_SEQUENCE_NUMBER.
    // librdkafka rightly takes the second's success as proof that the first was written (the
    // first's documents are "implicitly acked"), so on the mock a refused document would be
    // reported delivered while absent from the log; with one request in flight the mock cannot
    // be inconsistent in that way.
    let sluice = Sluice::new(&produce_components_with(
        &cluster.bootstrap_servers(),
        &topic,
        "30s",
        r#"<property name="max.in.flight.requests.per.connection">1</property>"#,
    ));
    sluice.warm_up();
    // The next produce requests fail with errors a broker gives while it recovers.
    cluster.request_errors(
        RDKafkaApiKey::Produce,
        &[
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS,
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND,
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
        ],
    );
    let record = sluice.run("send", Some(documents("doc", 200)));
    assert_succeeded(&record);
    assert_eq!(record.documents_out.len(), 200);
    let reader = Kafka::new(&cluster.bootstrap_servers());
    assert_holds_warm_and(&reader, &topic, &[&record], "each document exactly once");
    reliability_row(
        "broker fault (mock cluster)",
        "retriable produce errors: not enough replicas (twice), not leader, request timed out",
        4,
        "retried by the idempotent producer: every document delivered exactly once",
        Some((200, 200)),
    );
}

#[test]
fn a_produce_error_that_will_not_heal_fails_its_documents_and_the_next_execution_works() {
    let (cluster, topic, sluice) = warm_on_one_mock_broker("refused", 1);
    cluster.request_errors(
        RDKafkaApiKey::Produce,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED],
    );
    let record = sluice.run("send", Some(documents("doc", 200)));
    let failed = record.document_errors.len();
    assert!(failed >= 1, "the refused request's documents get errors");
    assert_eq!(
        record.documents_out.len() + failed,
        200,
        "every document accounted for"
    );
    for error in &record.document_errors {
        assert!(
            error.message.ends_with(
                "failed: the principal is not allowed to use this topic: ask for an ACL on it \
                 (TopicAuthorizationFailed)"
            ),
            "{}",
            error.message
        );
    }
    // The warm producer is still good: the next execution delivers everything.
    let next = sluice.run("send", Some(documents("next", 20)));
    assert_succeeded(&next);
    let reader = Kafka::new(&cluster.bootstrap_servers());
    assert_holds_warm_and(
        &reader,
        &topic,
        &[&record, &next],
        "the topic holds exactly the documents reported delivered",
    );
    reliability_row(
        "broker fault (mock cluster)",
        "produce refused: topic authorization failed",
        1,
        &format!(
            "{failed} document(s) of the refused request get the error, the rest are \
             delivered; the next execution delivers all 20"
        ),
        Some((220, 220 - failed)),
    );
}

#[test]
fn a_leader_move_at_a_300_ms_round_trip_loses_nothing() {
    let (cluster, topic) = mock_cluster(3, "moving", 1, 3);
    cluster
        .partition_leader(&topic, 0, Some(1))
        .expect("leader 1");
    let sluice = Sluice::sending_to(&cluster.bootstrap_servers(), &topic, "60s");
    // The warm producer learns that broker 1 leads the partition …
    sluice.warm_up();
    // … which then moves to broker 2, on a slow network: the next execution's requests go to
    // the old leader, are refused (not leader), and must reach the new one.
    cluster
        .partition_leader(&topic, 0, Some(2))
        .expect("leader 2");
    for broker in 1..=3 {
        cluster
            .broker_round_trip_time(broker, Duration::from_millis(300))
            .expect("round-trip time");
    }
    let started = Instant::now();
    let record = sluice.run("send", Some(documents("doc", 300)));
    assert!(
        started.elapsed() >= Duration::from_millis(600),
        "the round trips were not slowed: the test checks nothing"
    );
    assert_succeeded(&record);
    assert_eq!(record.documents_out.len(), 300);
    // Consume through the same slow network gets them all back.
    let consumed = sluice.run("receive", None);
    assert_eq!(consumed.status, ExecutionStatus::Succeeded);
    let reader = Kafka::new(&cluster.bootstrap_servers());
    assert_holds_warm_and(&reader, &topic, &[&record], "each document once");
    reliability_row(
        "broker fault (mock cluster)",
        "partition leader moves between executions of a warm producer, 300 ms round trip to \
         every broker",
        1,
        "every document delivered exactly once; Consume reads them through the same network",
        Some((300, 300)),
    );
}

#[test]
fn commit_offset_survives_the_loss_of_the_group_coordinator() {
    let (cluster, topic) = mock_cluster(3, "coordinated", 2, 3);
    let components = produce_components(&cluster.bootstrap_servers(), &topic, "30s");
    let group = components
        .split("<consumer-group>")
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .expect("group")
        .to_string();
    let sluice = Sluice::new(&components);
    let commit = |offsets: &[(i32, i64)]| -> Vec<Document> {
        offsets
            .iter()
            .map(|(partition, offset)| Document {
                data: format!(
                    r#"{{"topic": "{topic}", "partition": {partition}, "offset": {offset}}}"#
                )
                .into_bytes(),
                ..Document::default()
            })
            .collect()
    };
    // The coordinator moves to another broker, and the old one answers "not coordinator".
    cluster
        .coordinator(MockCoordinator::Group(group.clone()), 1)
        .expect("coordinator 1");
    let first = sluice.run("commit", Some(commit(&[(0, 4), (1, 6)])));
    assert_succeeded(&first);
    cluster
        .coordinator(MockCoordinator::Group(group.clone()), 2)
        .expect("coordinator 2");
    cluster.request_errors(
        RDKafkaApiKey::OffsetCommit,
        &[
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_COORDINATOR,
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE,
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS,
        ],
    );
    let second = sluice.run("commit", Some(commit(&[(0, 9), (1, 11)])));
    assert_succeeded(&second);
    assert_eq!(second.documents_out.len(), 2);
    let reader = Kafka::new(&cluster.bootstrap_servers());
    assert_eq!(reader.committed(&group, &topic, 2), [Some(10), Some(12)]);
    // A refusal that will not heal is each document's error, the others' results unchanged.
    cluster.request_errors(
        RDKafkaApiKey::OffsetCommit,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED],
    );
    let refused = sluice.run("commit", Some(commit(&[(0, 20)])));
    assert_eq!(refused.documents_out.len(), 0);
    assert!(
        error_of(&refused, 1).is_some_and(|e| e.contains("GroupAuthorizationFailed")),
        "{:?}",
        refused.document_errors
    );
    assert_eq!(reader.committed(&group, &topic, 2), [Some(10), Some(12)]);
    reliability_row(
        "broker fault (mock cluster)",
        "Commit Offset while the group coordinator moves: not coordinator, coordinator not \
         available, coordinator loading; then an authorization refusal",
        4,
        "the retriable ones are retried and the offsets committed; the refusal is the \
         document's error and commits nothing",
        Some((5, 4)),
    );
}

/// What librdkafka logs when a client finds nothing listening at `address` (host:port).
fn refused_connection(address: &str) -> String {
    format!("Connect to ipv4#{address} failed: Connection refused")
}

/// librdkafka's warnings and errors from the clients of this test process (they reach
/// `tracing` under the target `librdkafka`, at info: Sluice rates them one level below
/// librdkafka), for tests that wait until a fault was noticed.
fn librdkafka_log() -> String {
    use std::sync::{Arc, Mutex, OnceLock};
    #[derive(Clone)]
    struct Captured(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    static LOG: OnceLock<Captured> = OnceLock::new();
    let log = LOG.get_or_init(|| {
        let captured = Captured(Arc::default());
        let writer = captured.clone();
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("librdkafka=info"))
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .init();
        captured
    });
    let bytes = log.0.lock().unwrap_or_else(|e| e.into_inner());
    String::from_utf8_lossy(&bytes).into_owned()
}

/// A consumer group named after `prefix`, and a workspace whose components are connection
/// "tansu" to `broker` with that group, then `body`.
fn workspace(broker: &harness::Broker, prefix: &str, body: &str) -> (String, Workspace) {
    let group = unique(prefix);
    let ws = Workspace::with_components(&components(broker, &group, body));
    (group, ws)
}

fn persistent_broker() -> harness::Broker {
    harness::Broker::start_with(harness::BrokerOptions {
        persistent: true,
        ..harness::BrokerOptions::default()
    })
}

#[test]
fn produce_through_a_broker_outage_shorter_than_the_delivery_timeout_delivers_each_document_once() {
    let mut broker = persistent_broker();
    let topic = broker.create_topic("outage", 2);
    let sluice = Sluice::warm(&broker.bootstrap(), &topic, "60s");
    // Capturing from here on: the outage below ends once a client has noticed it.
    librdkafka_log();
    broker.stop();
    let record = sluice.runtime.block_on(async {
        let send = sluice
            .host
            .execute("send", Some(documents("doc", 200)), &NoProgress);
        // The outage lasts until librdkafka has found the broker gone (restart blocks until
        // it accepts connections again).
        let outage = async {
            let refused = refused_connection(&broker.bootstrap());
            let deadline = Instant::now() + Duration::from_secs(60);
            while !librdkafka_log().contains(&refused) {
                assert!(
                    Instant::now() < deadline,
                    "no client noticed the broker was down"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            broker.restart();
        };
        let (record, ()) = tokio::join!(send, outage);
        record.expect("execution")
    });
    assert_succeeded(&record);
    assert_eq!(record.documents_out.len(), 200);
    assert_holds_warm_and(&broker, &topic, &[&record], "each document exactly once");
    reliability_row(
        "broker outage (tansu killed)",
        "Produce while the broker is down, back once the producer has found it gone (delivery \
         timeout 60 s)",
        1,
        "every document delivered exactly once when the broker is back",
        Some((200, 200)),
    );
}

#[test]
fn produce_through_an_outage_longer_than_the_delivery_timeout_fails_each_document_loudly() {
    let mut broker = persistent_broker();
    let topic = broker.create_topic("long-outage", 2);
    let sluice = Sluice::warm(&broker.bootstrap(), &topic, "4s");
    broker.stop();
    let record = sluice.run("send", Some(documents("doc", 50)));
    assert_eq!(record.documents_in, 50);
    assert!(record.documents_out.is_empty());
    assert_eq!(
        record.document_errors.len(),
        50,
        "every document has its own error"
    );
    for (index, error) in record.document_errors.iter().enumerate() {
        assert_eq!(error.document, index + 1);
        assert_eq!(
            error.message,
            format!(
                "delivery to topic \"{topic}\" failed: the broker did not acknowledge the message \
                 within the delivery timeout: check that the brokers are up and reachable, or \
                 raise delivery-timeout (MessageTimedOut)"
            )
        );
    }
    // None of them turns up later: the topic holds the warm-up document only.
    broker.restart();
    assert_eq!(held(&broker, &topic, 1), ["warm-0"]);
    // And the next execution, with the broker back, delivers.
    let next = sluice.run("send", Some(documents("next", 10)));
    assert_succeeded(&next);
    reliability_row(
        "broker outage (tansu killed)",
        "Produce while the broker is down longer than the delivery timeout (4 s)",
        1,
        "each document gets its own delivery error, none is delivered later; the next \
         execution after the restart delivers all 10",
        Some((60, 10)),
    );
}

#[test]
fn sluice_killed_between_consume_and_commit_offset_gets_the_same_documents_again() {
    let broker = harness::Broker::start();
    let topic = broker.create_topic("killed", 1);
    broker.produce(
        &topic,
        &[(None, "first"), (None, "second"), (None, "third")],
    );
    // The step after Consume sends to brokers that are gone: it waits for them (the metadata
    // timeout), which is where the run is killed.
    let mut gone = harness::Broker::start();
    gone.stop();
    let (group, ws) = workspace(
        &broker,
        "killed",
        &format!(
            r#"<connection id="elsewhere"><bootstrap-servers>{gone}</bootstrap-servers></connection>
<operation id="receive" type="consume" connection="tansu">
  <topic>{topic}</topic><minimum-messages>3</minimum-messages><offset-reset>earliest</offset-reset>
</operation>
<operation id="forward" type="produce" connection="elsewhere"><topic>forwarded</topic></operation>
<operation id="commit" type="commit-offset" connection="tansu"/>
<process id="move"><start operation="receive"/><steps><connector operation="forward"/><connector operation="commit"/></steps></process>
<process id="receive"><start operation="receive"/></process>"#,
            gone = gone.bootstrap()
        ),
    );
    let mut run = ws.sluice_spawn(&["run", "move"]);
    harness::wait_for("the documents consumed", Duration::from_secs(60), || {
        run.stderr().contains("consumed").then_some(())
    });
    run.signal("KILL");
    assert_eq!(
        run.wait(Duration::from_secs(10)),
        None,
        "killed by the signal"
    );
    assert_eq!(
        broker.committed(&group, &topic, 1),
        [None],
        "nothing committed"
    );

    let again = ws.sluice(&["run", "receive", "--documents-out", "again.jsonl"]);
    harness::assert_exit(&again, 0);
    assert_eq!(
        ws.documents_data("again.jsonl"),
        ["first", "second", "third"],
        "the same documents"
    );
    reliability_row(
        "crash",
        "sluice run killed (SIGKILL) after Consume, before Commit Offset",
        1,
        "nothing committed; the next run of the group gets the same documents (at-least-once)",
        Some((3, 3)),
    );
}

/// `doc-{from}` … `doc-{to - 1}`, keyed so that they spread over the partitions.
fn produce_numbered(broker: &Kafka, topic: &str, from: usize, to: usize) {
    let records: Vec<(String, String)> = (from..to)
        .map(|i| (format!("k{i}"), format!("doc-{i}")))
        .collect();
    let borrowed: Vec<(Option<&str>, &str)> = records
        .iter()
        .map(|(k, p)| (Some(k.as_str()), p.as_str()))
        .collect();
    broker.produce(topic, &borrowed);
}

#[test]
fn a_broker_killed_and_restarted_under_serve_loses_no_document() {
    let mut broker = persistent_broker();
    let source = broker.create_topic("serve-in", 2);
    let target = broker.create_topic("serve-out", 2);
    let (group, ws) = workspace(
        &broker,
        "serve",
        &format!(
            r#"<operation id="receive" type="listen" connection="tansu">
  <topic>{source}</topic><offset-reset>earliest</offset-reset><max-messages>20</max-messages>
</operation>
<operation id="send" type="produce" connection="tansu"><topic>{target}</topic></operation>
<process id="forward"><start operation="receive"/><steps><connector operation="send"/></steps></process>"#
        ),
    );
    ws.write("container.properties", "host.reconnect.backoff.ms=300\n");
    // librdkafka's own lines (at info: detail behind our sentences) say when it saw the outage.
    ws.set_env("RUST_LOG", "sluice=debug,librdkafka=info,warn");
    let mut serving = ws.sluice_spawn(&["serve", "--api", "off"]);
    produce_numbered(&broker, &source, 0, 300);
    // Killed while documents flow: once the first have come through.
    harness::wait_for("documents flowing", Duration::from_secs(60), || {
        (!broker.read_some(&target).is_empty()).then_some(())
    });
    broker.stop();
    // The outage lasts until the listener's clients have found the broker gone.
    let refused = refused_connection(&broker.bootstrap());
    harness::wait_for(
        "sluice to see the broker down",
        Duration::from_secs(60),
        || serving.stderr().contains(&refused).then_some(()),
    );
    broker.restart();
    produce_numbered(&broker, &source, 300, 400);
    let distinct = broker.wait_for_payloads(&target, 400);
    let expected: std::collections::BTreeSet<String> =
        (0..400).map(|i| format!("doc-{i}")).collect();
    assert_eq!(distinct, expected, "every document came through");
    // Every offset of the source committed in the end: the group resumes after the last.
    let ends: Vec<Option<i64>> = (0..2)
        .map(|p| {
            Some(
                broker
                    .read_some(&source)
                    .iter()
                    .filter(|r| r.partition == p)
                    .count() as i64,
            )
        })
        .collect();
    broker.wait_for_committed(&group, &source, &ends);
    serving.stop("TERM", Duration::from_secs(60));
    let total = broker.read_some(&target).len();
    assert!(total >= 400);
    reliability_row(
        "broker outage (tansu killed)",
        "tansu (sqlite storage) killed and restarted under a sluice serve listener",
        1,
        &format!(
            "the listener comes through the outage and goes on from the last commit: all 400 \
             documents out, {} duplicates, none lost",
            total - 400
        ),
        Some((400, total)),
    );
}

#[test]
fn edge_case_documents_round_trip_byte_for_byte_and_the_size_limit_is_exact() {
    let broker = harness::Broker::start();
    let topic = broker.create_topic("edges", 1);
    let (_group, ws) = workspace(
        &broker,
        "edges",
        &format!(
            r#"<operation id="send" type="produce" connection="tansu"><topic>{topic}</topic></operation>
<operation id="receive" type="consume" connection="tansu">
  <topic>{topic}</topic><minimum-messages>6</minimum-messages><offset-reset>earliest</offset-reset>
</operation>
<process id="send"><steps><connector operation="send"/></steps></process>
<process id="receive"><start operation="receive"/></process>"#
        ),
    );
    // A small limit, so that "exactly at" and "one byte over" are cheap to build. The size
    // counted is the payload plus the key plus header names and values.
    ws.write(
        "container.properties",
        "kafka.max.request.size=1000\nkafka.max.poll.records=100\n",
    );
    let at_limit = "a".repeat(1000);
    let key_at_limit = "b".repeat(997);
    let over = "c".repeat(1001);
    let key_over = "d".repeat(998);
    let input = [
        r#"{"data": ""}"#.to_string(),
        r#"{"data": "empty key", "properties": {"message-key": ""}}"#.to_string(),
        r#"{"data": "no key"}"#.to_string(),
        // Key and header values that are not UTF-8; headers named like document properties
        // stay headers.
        r#"{"data-base64": "/wD+", "properties": {"message-key": {"base64": "//79"}, "headers": {"bin": {"base64": "AP8="}, "topic-name": "elsewhere", "message-key": "not the key"}}}"#.to_string(),
        format!(r#"{{"data": "{at_limit}"}}"#),
        format!(r#"{{"data": "{key_at_limit}", "properties": {{"message-key": "key"}}}}"#),
        format!(r#"{{"data": "{over}"}}"#),
        format!(r#"{{"data": "{key_over}", "properties": {{"message-key": "key"}}}}"#),
    ];
    ws.write("in.jsonl", &(input.join("\n") + "\n"));
    let too_big = |document: usize| {
        format!(
            "  document {document}, step 1 (send): message is 1001 bytes; max.request.size \
             is 1000 bytes: send smaller documents, or raise kafka.max.request.size in the \
             host's container.properties"
        )
    };
    ws.sluice_expect(
        &["run", "send", "--input", "in.jsonl"],
        3,
        Stream::Stdout,
        &["documents: 8 in, 6 out, 2 errors", &too_big(7), &too_big(8)],
    );

    let received = ws.sluice(&["run", "receive", "--documents-out", "out.jsonl"]);
    harness::assert_exit(&received, 0);
    let out = ws.documents_out("out.jsonl");
    let shown: Vec<String> = out
        .iter()
        .map(|d| {
            format!(
                "{}{} key={} headers={}",
                d["data"],
                d.get("data-base64")
                    .map_or(String::new(), |b| format!(" base64 {b}")),
                d["properties"]["message-key"],
                d["properties"]["headers"]
            )
        })
        .collect();
    assert_eq!(
        shown,
        [
            r#""" key=null headers=null"#.to_string(),
            r#""empty key" key="" headers=null"#.to_string(),
            r#""no key" key=null headers=null"#.to_string(),
            r#"null base64 "/wD+" key={"base64":"//79"} headers={"bin":{"base64":"AP8="},"topic-name":"elsewhere","message-key":"not the key"}"#.to_string(),
            format!(r#""{at_limit}" key=null headers=null"#),
            format!(r#""{key_at_limit}" key="key" headers=null"#),
        ]
    );
    // The header named topic-name did not redirect the document.
    assert!(out
        .iter()
        .all(|d| d["properties"]["topic-name"] == serde_json::json!(topic)));
    reliability_row(
        "document edge cases",
        "empty payload; empty key vs no key; non-UTF-8 payload, key and header; headers named \
         topic-name and message-key; payload and key exactly at and one byte over \
         max.request.size",
        8,
        "the 6 within the limit round-trip byte for byte (empty key and no key stay apart, \
         headers stay headers); the 2 over it get their own error naming size and limit",
        Some((8, 6)),
    );
}
