//! Topic patterns against the real broker (tansu): a listener reads every topic whose name
//! matches, says so while none does, picks up matching topics created later, carries each
//! document's real topic and lets a deleted topic go without stopping; a Consume operation
//! reads the topics its pattern matches when it starts; mistakes are load errors.

mod harness;

use std::time::Duration;

use harness::api::Api;
use harness::{assert_contains, components, unique, wait_for, Broker, Kafka, Stream, Workspace};

/// How long a listener may take to work through a test's documents.
const WORK: Duration = Duration::from_secs(60);

/// A listener on `<topic-pattern>{pattern}</topic-pattern>` (refreshed every second) that
/// sends each document to `target`, recording the topic it came from in header `source`.
fn pattern_listener(broker: &Broker, pattern: &str, target: &str, dead_letters: &str) -> Workspace {
    Workspace::with_components(&components(
        broker,
        &unique("g"),
        &format!(
            r#"<operation id="receive" type="listen" connection="tansu">
  <topic-pattern>{pattern}</topic-pattern><pattern-refresh>1s</pattern-refresh>
  <offset-reset>earliest</offset-reset><dead-letter-topic>{dead_letters}</dead-letter-topic>
</operation>
{}"#,
            copy_to("tansu", target, "route", "receive")
        ),
    ))
}

/// Process `process`: what operation `start` reads goes to `target`, with the topic it came
/// from in header `source`.
fn copy_to(connection: &str, target: &str, process: &str, start: &str) -> String {
    format!(
        r#"<operation id="send" type="produce" connection="{connection}"><topic>{target}</topic></operation>
<process id="{process}">
  <start operation="{start}"/>
  <steps>
    <set-properties><property name="header:source" from-tracked="topic"/></set-properties>
    <connector operation="send"/>
  </steps>
</process>"#
    )
}

/// The payloads that reached `target`, each with the topic it came from, sorted.
fn arrived(kafka: &Kafka, target: &str, count: usize) -> Vec<(String, String)> {
    let mut arrived: Vec<(String, String)> = kafka
        .read_all(target, count)
        .into_iter()
        .map(|r| {
            let source = r.header("source").unwrap_or_default().to_string();
            (r.payload, source)
        })
        .collect();
    arrived.sort();
    arrived
}

#[test]
fn a_pattern_listener_waits_visibly_and_picks_up_topics_created_later_while_it_reads() {
    let broker = Broker::start();
    let prefix = unique("pat");
    let pattern = format!("{prefix}-[a-z]");
    let target = broker.create_topic("pattern-out", 1);
    let dead_letters = broker.create_topic("pattern-dlq", 1);
    // Close to the pattern but not matching it: never read.
    let other = broker.create_topic_named(&format!("{prefix}-zz"), 1);
    broker.produce_one(&other, 0, None, b"not for us", &[]);
    let ws = pattern_listener(&broker, &pattern, &target, &dead_letters);
    let mut serving = ws.sluice_spawn(&["serve", "--api", "127.0.0.1:0"]);
    let api = Api::of(&serving, None);

    // Nothing matches yet: the status says so, rather than waiting silently.
    let status = wait_for(
        "the status to say the pattern matches nothing",
        WORK,
        || {
            let status = api.status("route");
            status["note"].is_string().then_some(status)
        },
    );
    assert_eq!(status["state"], "UNASSIGNED", "{status}");
    assert_eq!(status["topic_pattern"], pattern.as_str(), "{status}");
    assert_eq!(
        status["note"],
        format!(
            "topic pattern \"{pattern}\" matches no topic yet; the topics are looked at again \
             every 1 s"
        )
        .as_str()
    );

    // Two matching topics appear while the listener runs; each document keeps its topic.
    let (a, b) = (format!("{prefix}-a"), format!("{prefix}-b"));
    broker.create_topic_named(&a, 2);
    broker.create_topic_named(&b, 1);
    broker.produce_one(&a, 0, None, b"a0", &[]);
    broker.produce_one(&a, 1, None, b"a1", &[]);
    broker.produce_one(&b, 0, None, b"b0", &[]);
    assert_eq!(
        arrived(&broker, &target, 3),
        [
            ("a0".to_string(), a.clone()),
            ("a1".to_string(), a.clone()),
            ("b0".to_string(), b.clone())
        ]
    );
    let status = api.status("route");
    assert_eq!(status["topics"], serde_json::json!([a, b]), "{status}");
    assert!(status.get("note").is_none(), "{status}");

    // A third topic while the other two are read: the group gives up its partitions and
    // takes all three again; nothing is lost or repeated.
    let c = format!("{prefix}-c");
    broker.create_topic_named(&c, 1);
    wait_for("the third topic in the subscription", WORK, || {
        (api.status("route")["topics"] == serde_json::json!([a, b, c])).then_some(())
    });
    broker.produce_one(&c, 0, None, b"c0", &[]);
    broker.produce_one(&b, 0, None, b"b1", &[]);
    assert_eq!(
        arrived(&broker, &target, 5),
        [
            ("a0".to_string(), a.clone()),
            ("a1".to_string(), a.clone()),
            ("b0".to_string(), b.clone()),
            ("b1".to_string(), b.clone()),
            ("c0".to_string(), c.clone())
        ]
    );

    // A matching topic deleted while the listener reads it: the host keeps running (tansu
    // answers the fetch of a deleted topic with a leader update that has neither topic id nor
    // name, on which librdkafka 2.12.1 crashed: third_party/rdkafka-sys/PATCHED.md), the topic
    // leaves the subscription at the next look, and the others are still read, nothing lost
    // or repeated.
    broker.delete_topic(&a);
    wait_for("the deleted topic to leave the subscription", WORK, || {
        (api.status("route")["topics"] == serde_json::json!([b, c])).then_some(())
    });
    broker.produce_one(&b, 0, None, b"b2", &[]);
    broker.produce_one(&c, 0, None, b"c1", &[]);
    assert_eq!(
        arrived(&broker, &target, 7),
        [
            ("a0".to_string(), a.clone()),
            ("a1".to_string(), a.clone()),
            ("b0".to_string(), b.clone()),
            ("b1".to_string(), b.clone()),
            ("b2".to_string(), b.clone()),
            ("c0".to_string(), c.clone()),
            ("c1".to_string(), c.clone())
        ]
    );
    assert_eq!(api.status("route")["state"], "RUNNING");
    serving.stop("TERM", WORK);
    assert_contains(
        &serving.stderr(),
        &[
            "the topic pattern matches no topic yet",
            "the topic pattern's topics changed; the group rebalances",
        ],
    );
}

#[test]
fn a_dead_letter_topic_the_pattern_matches_and_a_bad_pattern_are_load_errors() {
    let broker = Broker::start();
    let ws = Workspace::with_components(&components(
        &broker,
        "g",
        r#"<operation id="receive" type="listen" connection="tansu">
  <topic-pattern>orders-.*</topic-pattern><dead-letter-topic>orders-dead</dead-letter-topic>
</operation>
<operation id="scan" type="consume" connection="tansu"><topic-pattern>orders-(eu</topic-pattern></operation>
<operation id="both" type="consume" connection="tansu"><topic>t</topic><topic-pattern>t.*</topic-pattern></operation>
<operation id="send" type="produce" connection="tansu"><topic>out</topic></operation>
<process id="route"><start operation="receive"/><steps><connector operation="send"/></steps></process>"#,
    ));
    ws.sluice_expect(
        &["validate"],
        1,
        Stream::Stdout,
        &[
            "operation \"receive\": dead-letter-topic \"orders-dead\" matches the operation's \
             topic-pattern \"orders-.*\": failed documents would come back forever; name a topic \
             the pattern does not match",
            "operation \"scan\": topic-pattern \"orders-(eu\" is not a valid regular expression: \
             unclosed group (at character 8; the syntax is that of the Rust regex crate)",
            "operation \"both\": topic-pattern and <topic> exclude each other",
        ],
    );
}

#[test]
fn a_pattern_consume_reads_every_matching_topic_with_each_documents_topic() {
    let broker = Broker::start();
    let prefix = unique("scan");
    let (eu, us) = (format!("{prefix}.eu"), format!("{prefix}.us"));
    broker.create_topic_named(&eu, 1);
    broker.create_topic_named(&us, 1);
    let target = broker.create_topic("scan-out", 1);
    broker.produce_one(&eu, 0, None, b"eu-1", &[]);
    broker.produce_one(&us, 0, None, b"us-1", &[]);
    broker.produce_one(&us, 0, None, b"us-2", &[]);
    let pattern = format!("{}\\.(eu|us)", prefix);
    let ws = Workspace::with_components(&components(
        &broker,
        &unique("g"),
        &format!(
            r#"<operation id="scan" type="consume" connection="tansu">
  <topic-pattern>{pattern}</topic-pattern><minimum-messages>3</minimum-messages>
  <offset-reset>earliest</offset-reset>
</operation>
{}
<operation id="nothing" type="consume" connection="tansu"><topic-pattern>{prefix}-none-.*</topic-pattern></operation>
<process id="empty"><start operation="nothing"/></process>"#,
            copy_to("tansu", &target, "copy", "scan")
        ),
    ));
    ws.sluice_expect(
        &["run", "copy"],
        0,
        Stream::Stdout,
        &["documents: 3 in, 3 out, 0 errors"],
    );
    assert_eq!(
        arrived(&broker, &target, 3),
        [
            ("eu-1".to_string(), eu.clone()),
            ("us-1".to_string(), us.clone()),
            ("us-2".to_string(), us.clone())
        ]
    );
    ws.sluice_expect(
        &["run", "empty"],
        1,
        Stream::Stdout,
        &[&format!("no topic matches pattern \"{prefix}-none-.*\"")],
    );
}
