//! The platform's exact operation semantics (seed 003), black-box against tansu: document
//! properties, dynamic topics, partitions and headers, oversized messages with and without
//! autocommit, manual assignment, set-properties and Commit Offset. What lands in Kafka and
//! what a consumer group has committed is checked with an independent client.

mod harness;

use harness::components::commit_offset;
use harness::{assert_exit, components, stderr, stdout, Broker, Stream, Workspace};

/// Runs `sluice args` in `ws`, asserting its exit `code` and each of `expected` in its summary
/// (standard output); returns the summary.
#[track_caller]
fn summary(ws: &Workspace, args: &[&str], code: i32, expected: &[&str]) -> String {
    stdout(&ws.sluice_expect(args, code, Stream::Stdout, expected))
}

#[test]
fn produce_takes_topic_partition_and_headers_from_the_operation_and_the_document() {
    let broker = Broker::start();
    let main = broker.create_topic("main", 3);
    let other = broker.create_topic("other", 2);
    let ws = Workspace::with_components(&components(
        &broker,
        "unused",
        &format!(
            r#"
  <operation id="dynamic" type="produce" connection="tansu">
    <topic>{main}</topic>
    <dynamic-topic>true</dynamic-topic>
    <headers><header name="source">sluice</header><header name="env">test</header></headers>
  </operation>
  <operation id="static" type="produce" connection="tansu">
    <topic>{main}</topic>
    <partition>1</partition>
  </operation>
  <process id="send-dynamic"><steps><connector operation="dynamic"/></steps></process>
  <process id="send-static"><steps><connector operation="static"/></steps></process>"#
        ),
    ));
    ws.write(
        "dynamic.jsonl",
        &format!(
            r#"{{"data": "plain"}}
{{"data": "elsewhere", "properties": {{"topic-name": "{other}", "partition": 1, "headers": {{"env": "prod", "trace": "abc"}}}}}}
{{"data": "pinned", "properties": {{"message-key": "k", "partition": 2, "timestamp": 1700000000123}}}}
{{"data": "nowhere", "properties": {{"partition": 7}}}}
"#
        ),
    );
    summary(
        &ws,
        &["run", "send-dynamic", "--input", "dynamic.jsonl"],
        3,
        &[
            "documents: 4 in, 3 out, 1 error",
            &format!(
                "  document 4, step 1 (dynamic): partition 7 does not exist in topic \"{main}\" (it has 3 partitions: 0 to 2)"
            ),
        ],
    );

    let in_main = broker.read_all(&main, 2);
    let plain = in_main
        .iter()
        .find(|r| r.payload == "plain")
        .expect("plain");
    assert_eq!(
        (plain.header("source"), plain.header("env")),
        (Some("sluice"), Some("test"))
    );
    let pinned = in_main
        .iter()
        .find(|r| r.payload == "pinned")
        .expect("pinned");
    assert_eq!((pinned.partition, pinned.key.as_deref()), (2, Some("k")));
    assert_eq!(
        pinned.timestamp,
        Some(1_700_000_000_123),
        "the document's timestamp"
    );
    let in_other = broker.read_all(&other, 1);
    assert_eq!(
        (in_other[0].payload.as_str(), in_other[0].partition),
        ("elsewhere", 1)
    );
    assert_eq!(
        in_other[0].headers,
        [
            ("source".to_string(), Some("sluice".to_string())),
            ("env".to_string(), Some("prod".to_string())),
            ("trace".to_string(), Some("abc".to_string()))
        ],
        "operation headers first; the document's env wins over the operation's"
    );

    // Without dynamic-topic, a document's topic-name does not redirect it; the operation's
    // partition applies.
    ws.write(
        "static.jsonl",
        &format!(r#"{{"data": "stays", "properties": {{"topic-name": "{other}"}}}}"#),
    );
    let output = ws.sluice(&["run", "send-static", "--input", "static.jsonl"]);
    assert_exit(&output, 0);
    let in_main = broker.read_all(&main, 3);
    let stays = in_main
        .iter()
        .find(|r| r.payload == "stays")
        .expect("stays");
    assert_eq!(stays.partition, 1);
    broker.read_all(&other, 1);
}

#[test]
fn every_compression_codec_and_acks_level_delivers() {
    let broker = Broker::start();
    let topic = broker.create_topic("codecs", 1);
    let variants = [
        ("gzip", "all"),
        ("snappy", "all"),
        ("lz4", "1"),
        ("zstd", "all"),
        ("none", "0"),
    ];
    let mut body = String::new();
    for (codec, acks) in variants {
        body.push_str(&format!(
            r#"<operation id="send-{codec}" type="produce" connection="tansu"><topic>{topic}</topic><compression>{codec}</compression><acks>{acks}</acks></operation>
<process id="p-{codec}"><steps><connector operation="send-{codec}"/></steps></process>
"#
        ));
    }
    let ws = Workspace::with_components(&components(&broker, "unused", &body));
    for (codec, _) in variants {
        ws.write("in.txt", &format!("{codec}-1\n{codec}-2\n"));
        let output = ws.sluice(&["run", &format!("p-{codec}"), "--input", "in.txt"]);
        assert_exit(&output, 0);
    }
    let payloads = broker.read_payloads(&topic, 10);
    let expected: Vec<String> = variants
        .iter()
        .flat_map(|(c, _)| [format!("{c}-1"), format!("{c}-2")])
        .collect();
    assert_eq!(payloads, expected);
}

/// A broker with a one-partition topic holding "a", a 200-byte message, "b", "c"; a consumer
/// group named after `group`; and a workspace with a max.request.size of 100 bytes (and 10
/// records a poll) whose components are consume operation "receive" of at least 4 messages
/// of the topic, with `fields`, and then `more`.
struct Oversized {
    broker: Broker,
    topic: String,
    group: String,
    ws: Workspace,
}

impl Oversized {
    fn new(group: &str, fields: &str, more: &str) -> Self {
        let broker = Broker::start();
        let topic = broker.create_topic("big", 1);
        broker.produce(&topic, &[(None, "a")]);
        broker.produce(&topic, &[(Some("big"), &"x".repeat(200))]);
        broker.produce(&topic, &[(None, "b"), (None, "c")]);
        let group = harness::unique(group);
        let ws = Workspace::with_components(&components(
            &broker,
            &group,
            &format!(
                r#"<operation id="receive" type="consume" connection="tansu">
  <topic>{topic}</topic><minimum-messages>4</minimum-messages>{fields}
</operation>
{more}"#
            ),
        ));
        ws.write(
            "container.properties",
            "kafka.max.request.size=100\nkafka.max.poll.records=10\n",
        );
        Self {
            broker,
            topic,
            group,
            ws,
        }
    }

    /// What the group has committed on the topic.
    fn committed(&self) -> Vec<Option<i64>> {
        self.broker.committed(&self.group, &self.topic, 1)
    }
}

#[test]
fn an_oversized_message_with_autocommit_is_an_application_error_and_consuming_goes_on() {
    let oversized = Oversized::new(
        "big-readers",
        "<offset-reset>earliest</offset-reset><autocommit>true</autocommit>",
        r#"<process id="receive-all"><start operation="receive"/></process>"#,
    );
    let (topic, ws) = (&oversized.topic, &oversized.ws);
    summary(
        ws,
        &["run", "receive-all", "--documents-out", "out.jsonl"],
        3,
        &[
            "completed with document errors",
            "documents: 4 in, 4 out, 1 error",
            &format!(
                "  document 2, start (receive): message is 203 bytes; max.request.size is 100 bytes \
                 [topic {topic}, partition 0, offset 1]"
            ),
        ],
    );
    let docs = ws.documents_out("out.jsonl");
    let data: Vec<_> = docs
        .iter()
        .map(|d| d["data"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(data, ["a", "", "b", "c"]);
    assert_eq!(docs[1]["tracked"]["offset"], 1);
    assert!(docs[1]["application-error"].is_string());
    assert_eq!(oversized.committed(), [Some(4)], "committed past it");
}

#[test]
fn an_oversized_message_without_autocommit_stops_retrieving_and_commit_offset_commits_it() {
    let oversized = Oversized::new(
        "careful-readers",
        "<maximum-wait>3s</maximum-wait><offset-reset>earliest</offset-reset>",
        r#"<operation id="commit" type="commit-offset" connection="tansu"/>
<process id="receive-and-commit"><start operation="receive"/><steps><connector operation="commit"/></steps></process>"#,
    );
    let ws = &oversized.ws;
    summary(
        ws,
        &[
            "run",
            "receive-and-commit",
            "--documents-out",
            "first.jsonl",
        ],
        3,
        &["documents: 2 in, 2 out, 1 error"],
    );
    let offsets: Vec<_> = ws
        .documents_out("first.jsonl")
        .iter()
        .map(|d| d["tracked"]["offset"].clone())
        .collect();
    assert_eq!(offsets, [0, 1], "it stops at the oversized message");
    assert_eq!(
        oversized.committed(),
        [Some(2)],
        "the error document is committed"
    );

    let second = ws.sluice(&[
        "run",
        "receive-and-commit",
        "--documents-out",
        "second.jsonl",
    ]);
    assert_exit(&second, 0);
    assert_eq!(ws.documents_data("second.jsonl"), ["b", "c"]);
    assert_eq!(oversized.committed(), [Some(4)]);
}

#[test]
fn commit_offset_of_consumed_documents_resumes_the_group_where_they_end() {
    // Consume 10 per partition without autocommit, commit the first 6 of each: a new member
    // of the group starts at offset 6 of every partition.
    let broker = Broker::start();
    let topic = broker.create_topic("resume", 2);
    for partition in 0..2 {
        for i in 0..10 {
            broker.produce_to(&topic, partition, &format!("p{partition}-{i}"));
        }
    }
    let group = harness::unique("resumers");
    let ws = Workspace::with_components(&components(
        &broker,
        &group,
        &format!(
            r#"<operation id="receive" type="consume" connection="tansu">
  <topic>{topic}</topic><minimum-messages>20</minimum-messages><offset-reset>earliest</offset-reset>
</operation>
<operation id="commit" type="commit-offset" connection="tansu"/>
<process id="receive"><start operation="receive"/></process>
<process id="commit"><steps><connector operation="commit"/></steps></process>"#
        ),
    ));
    ws.write("container.properties", "kafka.max.poll.records=500\n");
    let output = ws.sluice(&["run", "receive", "--documents-out", "all.jsonl"]);
    assert_exit(&output, 0);
    assert_eq!(
        broker.committed(&group, &topic, 2),
        [None, None],
        "nothing committed yet"
    );

    // The documents as Consume wrote them, tracked properties and all: the first 6 of each
    // partition.
    let all = std::fs::read_to_string(ws.path().join("all.jsonl")).expect("all.jsonl");
    let first_six: Vec<&str> = all
        .lines()
        .filter(|line| {
            let doc: serde_json::Value = serde_json::from_str(line).expect("JSON");
            doc["tracked"]["offset"].as_i64().expect("offset") < 6
        })
        .collect();
    assert_eq!(first_six.len(), 12);
    ws.write("first-six.jsonl", &(first_six.join("\n") + "\n"));
    summary(
        &ws,
        &["run", "commit", "--input", "first-six.jsonl"],
        0,
        &["documents: 12 in, 12 out, 0 errors"],
    );

    assert_eq!(broker.committed(&group, &topic, 2), [Some(6), Some(6)]);
    assert_eq!(broker.group_starts_at(&group, &topic, 2), [6, 6]);
}

#[test]
fn commit_offset_takes_the_platform_json_layout_and_fails_only_bad_documents() {
    let broker = Broker::start();
    let topic = broker.create_topic("commits", 2);
    let group = harness::unique("committers");
    let ws = Workspace::with_components(&components(
        &broker,
        "unused",
        &format!(
            r#"<operation id="commit" type="commit-offset" connection="tansu"><consumer-group>{group}</consumer-group></operation>
<process id="commit"><steps><connector operation="commit"/></steps></process>"#
        ),
    ));
    ws.write(
        "commits.txt",
        &format!(
            r#"{{"topic": "{topic}", "partition": 0, "offset": 4, "metadata": "batch-7"}}
{{"topic": "{topic}", "partition": 0, "offset": 2}}
{{"topic": "{topic}", "partition": 5, "offset": 1}}
not json
{{"topic": "no-such-topic", "partition": 0, "offset": 1}}
{{"topic": "{topic}", "partition": 1, "offset": -3}}
"#
        ),
    );
    summary(
        &ws,
        &["run", "commit", "--input", "commits.txt"],
        3,
        &[
            "documents: 6 in, 2 out, 4 errors",
            &format!("  document 3, step 1 (commit): partition 5 does not exist in topic \"{topic}\" (it has 2 partitions: 0 to 1)"),
            "  document 4, step 1 (commit): not a commit document (expected ident at line 1 column 2)",
            "  document 5, step 1 (commit): topic \"no-such-topic\" does not exist",
            "  document 6, step 1 (commit): offset -3 is not valid: offsets start at 0",
        ],
    );
    // The highest offset of the partition wins. (Its metadata is checked in the next test:
    // tansu 0.6.0 answers OffsetFetch without the stored metadata.)
    assert_eq!(broker.committed(&group, &topic, 2), [Some(5), None]);
}

/// librdkafka's in-process mock cluster with a topic of `partitions`, and a workspace whose
/// process "commit" commits offsets on it for a fresh group (returned).
fn mock_commit(
    prefix: &str,
    partitions: i32,
) -> (
    rdkafka::mocking::MockCluster<'static, rdkafka::producer::DefaultProducerContext>,
    String,
    String,
    Workspace,
) {
    let cluster = rdkafka::mocking::MockCluster::new(1).expect("mock cluster");
    let topic = harness::unique(prefix);
    cluster
        .create_topic(&topic, partitions, 1)
        .expect("topic on the mock cluster");
    let group = harness::unique(&format!("{prefix}-group"));
    let ws =
        Workspace::with_components(&commit_offset("mock", &cluster.bootstrap_servers(), &group));
    (cluster, topic, group, ws)
}

#[test]
fn commit_metadata_reaches_a_broker_that_stores_it() {
    // Beside the tansu test above, not instead of it: tansu 0.6.0 drops commit metadata
    // (its OffsetFetch always answers null), librdkafka's mock cluster keeps it.
    let (cluster, topic, group, ws) = mock_commit("meta", 1);
    ws.write(
        "commits.txt",
        &format!(
            r#"{{"topic": "{topic}", "partition": 0, "offset": 1, "metadata": "older"}}
{{"topic": "{topic}", "partition": 0, "offset": 4, "metadata": "batch-7"}}
"#
        ),
    );
    let output = ws.sluice(&["run", "commit", "--input", "commits.txt"]);
    assert_exit(&output, 0);
    let reader = harness::Kafka::new(&cluster.bootstrap_servers());
    assert_eq!(reader.committed(&group, &topic, 1), [Some(5)]);
    assert_eq!(reader.committed_metadata(&group, &topic, 0), "batch-7");
}

#[test]
fn manual_partition_assignment_reads_only_those_partitions() {
    let broker = Broker::start();
    let topic = broker.create_topic("assigned", 3);
    for partition in 0..3 {
        broker.produce_to(&topic, partition, &format!("from-{partition}"));
    }
    let ws = Workspace::with_components(&components(
        &broker,
        &harness::unique("g"),
        &format!(
            r#"<operation id="receive" type="consume" connection="tansu">
  <topic>{topic}</topic><partitions>0, 2</partitions><minimum-messages>2</minimum-messages><offset-reset>earliest</offset-reset><client-id>assigned-reader</client-id>
</operation>
<operation id="receive-missing" type="consume" connection="tansu">
  <topic>{topic}</topic><partitions>9</partitions>
</operation>
<process id="receive"><start operation="receive"/></process>
<process id="receive-missing"><start operation="receive-missing"/></process>"#
        ),
    ));
    ws.write("container.properties", "kafka.max.poll.records=10\n");
    let output = ws.sluice(&["run", "receive", "--documents-out", "out.jsonl"]);
    assert_exit(&output, 0);
    let mut data: Vec<_> = ws
        .documents_out("out.jsonl")
        .iter()
        .map(|d| d["data"].as_str().expect("text").to_string())
        .collect();
    data.sort();
    assert_eq!(data, ["from-0", "from-2"]);

    summary(
        &ws,
        &["run", "receive-missing"],
        1,
        &[&format!(
            "\n  start operation \"receive-missing\": partition 9 does not exist in topic \"{topic}\" (it has 3 partitions: 0 to 2)"
        )],
    );
}

#[test]
fn set_properties_from_constants_headers_and_tracked_properties() {
    let broker = Broker::start();
    let source = broker.create_topic("in", 1);
    let target = broker.create_topic("out", 2);
    broker.produce_one(&source, 0, None, b"first", &[("customer", "alice")]);
    broker.produce_one(&source, 0, None, b"anonymous", &[]);
    broker.produce_one(&source, 0, None, b"second", &[("customer", "bob")]);
    let ws = Workspace::with_components(&components(
        &broker,
        &harness::unique("g"),
        &format!(
            r#"<operation id="receive" type="consume" connection="tansu">
  <topic>{source}</topic><minimum-messages>3</minimum-messages><offset-reset>earliest</offset-reset>
</operation>
<operation id="send" type="produce" connection="tansu"><dynamic-topic>true</dynamic-topic></operation>
<process id="route">
  <start operation="receive"/>
  <steps>
    <set-properties>
      <property name="message-key" from-header="customer"/>
      <property name="topic-name" value="{target}"/>
      <property name="header:source-offset" from-tracked="offset"/>
      <property name="header:copied-key" from-property="message-key"/>
    </set-properties>
    <connector operation="send"/>
  </steps>
</process>"#
        ),
    ));
    summary(
        &ws,
        &["run", "route"],
        3,
        &[
            "documents: 3 in, 2 out, 1 error",
            "  document 2, step 1 (set-properties): cannot set message-key: the document has no \
             property header:customer (mark the property optional=\"true\" to skip such documents' value)",
        ],
    );
    let routed = read_by_payload(&broker, &target, 2);
    assert_eq!(
        keys_and_headers(&routed, ["source-offset", "copied-key"]),
        [
            ("first", Some("alice"), Some("0"), Some("alice")),
            ("second", Some("bob"), Some("2"), Some("bob"))
        ]
    );
}

#[test]
fn a_key_is_taken_by_regex_and_built_by_template_and_a_document_without_a_match_gets_its_error() {
    let broker = Broker::start();
    let source = broker.create_topic("keyed-in", 1);
    let target = broker.create_topic("keyed-out", 3);
    broker.produce_one(
        &source,
        0,
        Some("order-17_data"),
        b"first",
        &[("tenant", "acme")],
    );
    broker.produce_one(
        &source,
        0,
        Some("order-18_data"),
        b"second",
        &[("tenant", "globex")],
    );
    broker.produce_one(&source, 0, Some("order-19_data"), b"no tenant", &[]);
    broker.produce_one(&source, 0, Some("misc"), b"no match", &[("tenant", "acme")]);
    broker.produce_one(
        &source,
        0,
        Some("order-17_data"),
        b"third",
        &[("tenant", "acme")],
    );
    let ws = Workspace::with_components(&components(
        &broker,
        &harness::unique("g"),
        &format!(
            r#"<operation id="receive" type="consume" connection="tansu">
  <topic>{source}</topic><minimum-messages>5</minimum-messages><offset-reset>earliest</offset-reset>
</operation>
<operation id="send" type="produce" connection="tansu"><topic>{target}</topic></operation>
<process id="rekey">
  <start operation="receive"/>
  <steps>
    <set-properties>
      <property name="message-key" from-tracked="key" regex="^(.*)_data$"/>
      <property name="header:route" template="{{header:tenant}}/{{property:message-key}}"/>
      <property name="header:region" from-header="tenant" regex="^glo" optional="true"/>
    </set-properties>
    <connector operation="send"/>
  </steps>
</process>"#
        ),
    ));
    summary(
        &ws,
        &["run", "rekey"],
        3,
        &[
            "documents: 5 in, 3 out, 2 errors",
            "  document 3, step 1 (set-properties): cannot set header:route: the document has no \
             property header:tenant (in template \"{header:tenant}/{property:message-key}\") (mark \
             the property optional=\"true\" to skip such documents' value)",
            "  document 4, step 1 (set-properties): cannot set message-key: \"misc\" (from tracked \
             property key) does not match regex \"^(.*)_data$\" (mark the property \
             optional=\"true\" to skip such documents' value)",
        ],
    );
    let routed = read_by_payload(&broker, &target, 3);
    assert_eq!(
        keys_and_headers(&routed, ["route", "region"]),
        [
            ("first", Some("order-17"), Some("acme/order-17"), None),
            (
                "second",
                Some("order-18"),
                Some("globex/order-18"),
                Some("glo")
            ),
            ("third", Some("order-17"), Some("acme/order-17"), None),
        ]
    );
    // The extracted key picks the partition: the same key, the same partition.
    assert_eq!(routed[0].partition, routed[2].partition);
}

/// The `count` records of `topic`, in the order of their payloads.
fn read_by_payload(broker: &Broker, topic: &str, count: usize) -> Vec<harness::Record> {
    let mut records = broker.read_all(topic, count);
    records.sort_by(|a, b| a.payload.cmp(&b.payload));
    records
}

/// A record as the set-properties tests look at it: payload, key and two headers' values.
type Routed<'r> = (&'r str, Option<&'r str>, Option<&'r str>, Option<&'r str>);

/// Each record's payload, key and the values of two headers.
fn keys_and_headers<'r>(
    records: &'r [harness::Record],
    [first, second]: [&str; 2],
) -> Vec<Routed<'r>> {
    records
        .iter()
        .map(|r| {
            (
                r.payload.as_str(),
                r.key.as_deref(),
                r.header(first),
                r.header(second),
            )
        })
        .collect()
}

/// A workspace whose process "send" produces in.txt's one document to a broker at 127.0.0.1:1,
/// where nothing listens.
fn unreachable_sender() -> Workspace {
    let ws = Workspace::with_components(
        r#"<components>
  <connection id="nowhere"><bootstrap-servers>127.0.0.1:1</bootstrap-servers></connection>
  <operation id="send" type="produce" connection="nowhere"><topic>t</topic></operation>
  <process id="send"><steps><connector operation="send"/></steps></process>
</components>"#,
    );
    ws.write("in.txt", "one\n");
    ws
}

#[test]
fn an_unreachable_broker_fails_the_execution_with_a_sentence_to_act_on() {
    let ws = unreachable_sender();
    summary(
        &ws,
        &["run", "send", "--input", "in.txt"],
        1,
        &[
            "\n  step 1 (operation \"send\"): could not reach the Kafka brokers at 127.0.0.1:1 within 15 s: ",
            "documents: 1 in, 0 out, 0 errors",
        ],
    );
}

#[test]
fn logs_are_json_lines_with_their_fields_and_librdkafka_repeats_nothing_at_the_default_level() {
    // At the default level, a failure is our one sentence: librdkafka's own lines about the
    // refused connections are detail, not shown unless asked for.
    let ws = unreachable_sender();
    ws.set_env("RUST_LOG", "warn");
    let failed = ws.sluice_expect(
        &["run", "send", "--input", "in.txt"],
        1,
        Stream::Stdout,
        &["could not reach the Kafka brokers at 127.0.0.1:1"],
    );
    let err = stderr(&failed);
    assert!(!err.contains("librdkafka"), "{err}");
    // Asked for, they come through the same subscriber: JSON like ours, with a facility.
    ws.set_env("RUST_LOG", "sluice=debug,librdkafka=info");
    ws.set_env("SLUICE_LOG_FORMAT", "json");
    let failed = ws.sluice(&["run", "send", "--input", "in.txt"]);
    assert_exit(&failed, 1);
    let lines: Vec<serde_json::Value> = stderr(&failed)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}")))
        .collect();
    let librdkafka = lines
        .iter()
        .find(|l| l["target"] == "librdkafka")
        .expect("a librdkafka line");
    assert!(librdkafka["fields"]["facility"].is_string(), "{librdkafka}");
    assert!(librdkafka["fields"]["message"].is_string(), "{librdkafka}");
    // Ours carry the execution's fields in their spans.
    let ended = lines
        .iter()
        .find(|l| l["fields"]["message"] == "execution ended")
        .expect("the execution's end");
    assert_eq!(ended["level"], "INFO", "{ended}");
    assert_eq!(ended["fields"]["status"], "failed", "{ended}");
    let execution = ended["spans"]
        .as_array()
        .and_then(|spans| spans.iter().find(|s| s["name"] == "execution"))
        .expect("the execution span");
    assert_eq!(execution["process"], "send", "{ended}");
    assert!(execution["execution_id"].is_string(), "{ended}");
}

#[test]
fn minimum_zero_reads_until_the_wait_ends_and_latest_skips_what_is_there() {
    let broker = Broker::start();
    let topic = broker.create_topic("waits", 1);
    broker.produce(&topic, &[(None, "x"), (None, "y"), (None, "z")]);
    let ws = Workspace::with_components(&components(
        &broker,
        &harness::unique("g"),
        &format!(
            r#"<operation id="everything" type="consume" connection="tansu">
  <topic>{topic}</topic><minimum-messages>0</minimum-messages><maximum-wait>2s</maximum-wait><offset-reset>earliest</offset-reset>
</operation>
<operation id="only-new" type="consume" connection="tansu">
  <topic>{topic}</topic><consumer-group>{}</consumer-group><minimum-messages>0</minimum-messages><maximum-wait>2s</maximum-wait><offset-reset>latest</offset-reset>
</operation>
<process id="everything"><start operation="everything"/></process>
<process id="only-new"><start operation="only-new"/></process>"#,
            harness::unique("fresh")
        ),
    ));
    ws.write("container.properties", "kafka.max.poll.records=2\n");
    // Minimum 0: every message available within the wait, more than max.poll.records.
    summary(
        &ws,
        &["run", "everything"],
        0,
        &["documents: 3 in, 3 out, 0 errors"],
    );
    // A new group with offset-reset latest starts after what is already there.
    summary(
        &ws,
        &["run", "only-new"],
        0,
        &["documents: 0 in, 0 out, 0 errors"],
    );
}

#[test]
fn a_commit_the_coordinator_rejects_is_an_error_on_each_of_its_documents() {
    // Fault injection on librdkafka's mock cluster: tansu accepts any commit (even from
    // outside an active group), so a refusal can only be injected.
    use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
    let (cluster, topic, group, ws) = mock_commit("refused", 2);
    cluster.request_errors(
        RDKafkaApiKey::OffsetCommit,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED],
    );
    ws.write(
        "in.txt",
        &format!(
            "{{\"topic\": \"{topic}\", \"partition\": 0, \"offset\": 3}}\n\
             {{\"topic\": \"{topic}\", \"partition\": 1, \"offset\": 8}}\n"
        ),
    );
    let rejected = |document: usize| {
        format!(
            "  document {document}, step 1 (commit): the commit was rejected: the principal \
             is not allowed to use this consumer group: ask for an ACL on it \
             (GroupAuthorizationFailed)"
        )
    };
    summary(
        &ws,
        &["run", "commit", "--input", "in.txt"],
        3,
        &[
            "documents: 2 in, 0 out, 2 errors",
            &rejected(1),
            &rejected(2),
        ],
    );
    let reader = harness::Kafka::new(&cluster.bootstrap_servers());
    assert_eq!(reader.committed(&group, &topic, 2), [None, None]);
}

#[test]
fn a_consume_step_reads_the_topic_each_document_names() {
    let broker = Broker::start();
    let north = broker.create_topic("north", 1);
    let south = broker.create_topic("south", 1);
    broker.produce(&north, &[(Some("n"), "n1"), (Some("n"), "n2")]);
    broker.produce(&south, &[(Some("s"), "s1")]);
    let ws = Workspace::with_components(&components(
        &broker,
        &harness::unique("g"),
        r#"<operation id="read-named" type="consume" connection="tansu">
  <dynamic-topic>true</dynamic-topic><minimum-messages>0</minimum-messages><maximum-wait>2s</maximum-wait><offset-reset>earliest</offset-reset>
</operation>
<process id="read-named"><steps><connector operation="read-named"/></steps></process>"#,
    ));
    ws.write("container.properties", "kafka.max.poll.records=10\n");
    ws.write(
        "topics.jsonl",
        &format!(
            r#"{{"properties": {{"topic-name": "{north}"}}}}
{{"properties": {{"topic-name": "no-such-topic"}}}}
{{"properties": {{"topic-name": "{south}"}}}}
{{"data": "no topic at all"}}
"#
        ),
    );
    summary(
        &ws,
        &[
            "run",
            "read-named",
            "--input",
            "topics.jsonl",
            "--documents-out",
            "out.jsonl",
        ],
        3,
        &[
            "documents: 4 in, 3 out, 2 errors",
            "  document 2, step 1 (read-named): topic \"no-such-topic\" does not exist",
            "  document 4, step 1 (read-named): no topic: the document has no topic-name property and the operation no topic",
        ],
    );
    let read: Vec<_> = ws
        .documents_out("out.jsonl")
        .iter()
        .map(|d| {
            (
                d["tracked"]["topic"].as_str().unwrap_or("").to_string(),
                d["data"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert_eq!(
        read,
        [
            (north.clone(), "n1".to_string()),
            (north.clone(), "n2".to_string()),
            (south.clone(), "s1".to_string())
        ]
    );
}

#[test]
fn many_documents_with_one_error_are_grouped_in_the_summary_and_kept_each_in_the_record() {
    let broker = Broker::start();
    let missing = harness::unique("nowhere");
    let ws = Workspace::with_components(&components(
        &broker,
        &harness::unique("g"),
        &format!(
            r#"<operation id="send" type="produce" connection="tansu"><topic>{missing}</topic></operation>
<process id="send"><steps><connector operation="send"/></steps></process>"#
        ),
    ));
    let lines: String = (1..=40).map(|i| format!("doc-{i}\n")).collect();
    ws.write("in.txt", &lines);
    let error = format!("topic \"{missing}\" does not exist");
    let summary = summary(
        &ws,
        &["run", "send", "--input", "in.txt"],
        3,
        &[
            "documents: 40 in, 0 out, 40 errors",
            &format!("  document 1, step 1 (send): {error}"),
            &format!("  document 3, step 1 (send): {error}"),
            "  … and 37 more documents with this error (sluice executions ",
        ],
    );
    assert!(!summary.contains("document 4,"), "{summary}");
    // The execution record keeps every document's error.
    let id = summary
        .split("execution ")
        .nth(1)
        .and_then(|rest| rest.split(':').next())
        .expect("the execution id");
    let shown = ws.sluice(&["executions", id]);
    assert_exit(&shown, 0);
    let each = stdout(&shown).matches(&error).count();
    assert_eq!(each, 40, "{}", stdout(&shown));
}

/// An input larger than a chunk (16,384 documents) runs a chunk at a time, and reads as one
/// execution: positions count through the whole input, each document gets its own result,
/// `--documents-out` holds every document out in input order, and a bad line anywhere refuses
/// the run before anything is sent.
#[test]
fn a_large_input_runs_a_chunk_at_a_time_as_one_execution() {
    const DOCUMENTS: usize = 40_000;
    const FAILING: usize = 35_000;
    let broker = Broker::start();
    let topic = broker.create_topic("chunked", 2);
    let ws = Workspace::with_components(&components(
        &broker,
        "unused",
        &format!(
            r#"
  <operation id="send" type="produce" connection="tansu">
    <topic>{topic}</topic><dynamic-topic>true</dynamic-topic>
  </operation>
  <process id="send"><steps><connector operation="send"/></steps></process>"#
        ),
    ));
    let line = |i: usize| {
        if i == FAILING {
            format!(r#"{{"data": "d{i}", "properties": {{"partition": 7}}}}"#)
        } else {
            format!(
                r#"{{"data": "d{i}", "properties": {{"message-key": "k{}"}}}}"#,
                i % 10
            )
        }
    };
    let mut text: String = (1..=DOCUMENTS).map(|i| line(i) + "\n").collect();

    // A bad line at the very end: refused whole, nothing sent.
    ws.write("bad.jsonl", &(text.clone() + "{\"data\": \n"));
    ws.sluice_expect(
        &["run", "send", "--input", "bad.jsonl"],
        1,
        Stream::Stderr,
        &[&format!("error: bad.jsonl:{}:", DOCUMENTS + 1)],
    );
    assert!(
        broker.read_some(&topic).is_empty(),
        "a refused input sent nothing"
    );

    text.push('\n'); // an empty line is skipped, not a document
    ws.write("in.jsonl", &text);
    summary(
        &ws,
        &["run", "send", "--input", "in.jsonl", "--documents-out", "out.jsonl"],
        3,
        &[
            &format!("documents: {DOCUMENTS} in, {} out, 1 error", DOCUMENTS - 1),
            &format!(
                "  document {FAILING}, step 1 (send): partition 7 does not exist in topic \"{topic}\""
            ),
        ],
    );
    let expected: Vec<String> = (1..=DOCUMENTS)
        .filter(|&i| i != FAILING)
        .map(|i| format!("d{i}"))
        .collect();
    let out: Vec<String> = ws
        .documents_data("out.jsonl")
        .iter()
        .map(|d| d.as_str().expect("text data").to_string())
        .collect();
    assert_eq!(out, expected, "documents out, in input order");
    let mut delivered = broker.read_payloads(&topic, DOCUMENTS - 1);
    delivered.sort_by_key(|p| p[1..].parse::<usize>().expect("d<n>"));
    assert_eq!(delivered, expected, "each document delivered once");
}
