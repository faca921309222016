//! Black-box tests of the `sluice` binary that need no broker: validation with exact error
//! text, container properties, usage errors, and the zero-setup demo on the embedded broker.

mod harness;

use std::time::Duration;

use harness::{assert_contains, assert_exit, stderr, stdout, Stream, Workspace};

/// Runs `sluice validate` on `files` of `ws`, asserts that it finds errors (exit 1), and
/// returns its report.
#[track_caller]
fn invalid(ws: &Workspace, files: &[&str]) -> String {
    let args = [&["validate"][..], files].concat();
    stdout(&ws.sluice_expect(&args, 1, Stream::Stdout, &[]))
}

/// A workspace holding conn.xml with `xml`.
fn conn(xml: &str) -> Workspace {
    let ws = Workspace::new();
    ws.write("conn.xml", xml);
    ws
}

/// A workspace whose components are the demo profile's.
fn demo() -> Workspace {
    let ws = Workspace::new();
    ws.write(
        "components/demo.xml",
        include_str!("../profiles/demo/demo.xml"),
    );
    ws
}

/// The lines of `text`.
fn lines(text: &str) -> Vec<&str> {
    text.lines().collect()
}

const BAD: &str = r#"<components>
  <connection id="local">
    <bootstrap-servers>localhost</bootstrap-servers>
  </connection>
  <operation id="consume-orders" type="consume" connection="local">
    <topic>orders</topic>
    <minimum-messages>ten</minimum-messages>
  </operation>
  <operation id="send" type="produce" connection="kafka">
    <topik>orders</topik>
  </operation>
  <operation id="send" type="produce" connection="kafka"><topic>a</topic></operation>
  <operation id="read" type="consume" connection="kafka" mode="fast">
    <topic>orders</topic>
  </operation>
  <operation id="odd" type="produce" connection="kafka">
    <topic>bad topic</topic>
    <autocommit>true</autocommit>
  </operation>
</components>
"#;

const REFERENCES: &str = r#"<components>
  <connection id="kafka"><bootstrap-servers>broker-1:9092</bootstrap-servers></connection>
  <operation id="send-orders" type="produce" connection="kafka"><topic>orders</topic></operation>
  <operation id="get-orders" type="consume" connection="kafka"><topic>orders</topic></operation>
  <operation id="lost" type="produce" connection="kafak"><topic>orders</topic></operation>
  <process id="p1">
    <start operation="send-orders"/>
  </process>
  <process id="p2">
    <steps>
      <connector operation="send-order"/>
      <connector operation="get-orders"/>
      <route/>
    </steps>
  </process>
  <process id="p3"><steps><connector operation="send-order"/></steps></process>
  <process id="p4"/>
</components>
"#;

#[test]
fn validate_names_file_line_column_component_field_and_valid_values() {
    let ws = Workspace::new();
    ws.write("bad.xml", BAD);
    let output = ws.sluice(&["validate", "bad.xml"]);
    assert_exit(&output, 1);
    assert_eq!(
        lines(&stdout(&output)),
        [
            "bad.xml:3:5: connection \"local\": bootstrap-servers \"localhost\" is not host:port \
             (a host name or IP address, a colon, a port 1-65535), e.g. \"broker-1.example.com:9092\"",
            "bad.xml:7:5: operation \"consume-orders\": minimum-messages must be a whole number \
             ≥ 0 (at most 4294967295), got \"ten\"",
            "bad.xml:10:5: operation \"send\": unknown element <topik>; did you mean <topic>? \
             (valid elements here: <description>, <topic>, <acks>, <compression>, <delivery-timeout>, \
             <dynamic-topic>, <partition>, <headers>)",
            "bad.xml:12:14: operation \"send\": the id is already used by the operation defined \
             at bad.xml:9:3",
            "bad.xml:13:58: operation \"read\": unknown attribute mode; valid attributes here: id, \
             type, connection",
            "bad.xml:17:5: operation \"odd\": topic must be a Kafka topic name (1-249 letters, \
             digits, '.', '_' or '-'), got \"bad topic\"",
            "bad.xml:18:5: operation \"odd\": autocommit does not apply to a produce operation \
             (its fields: topic, dynamic-topic, partition, headers, acks, compression, delivery-timeout)",
        ]
    );
    assert_eq!(stderr(&output).trim(), "7 errors");
}

#[test]
fn validate_checks_references_between_components() {
    let ws = Workspace::new();
    ws.write("refs.xml", REFERENCES);
    assert_eq!(
        lines(&invalid(&ws, &["."])),
        [
            "./refs.xml:4:3: operation \"get-orders\": consumer-group is missing: name it in the \
             operation or give connection \"kafka\" a default <consumer-group>",
            "./refs.xml:5:39: operation \"lost\": connection \"kafak\" is not defined (did you \
             mean \"kafka\"?)",
            "./refs.xml:7:12: process \"p1\": start operation \"send-orders\" is a produce \
             operation; a process starts with a consume or listen operation (or with no \
             operation, taking documents from sluice run --input)",
            "./refs.xml:13:7: process \"p2\": unknown step <route>; steps available: <connector>, \
             <set-properties>",
            "./refs.xml:16:38: process \"p3\": step 1: operation \"send-order\" is not defined \
             (did you mean \"send-orders\"?)",
            "./refs.xml:17:3: process \"p4\": does nothing: give it a <start operation=\"…\"/> \
             (a consume or listen operation) or <steps> to run on the documents given with \
             sluice run --input",
        ]
    );
}

#[test]
fn validate_reports_malformed_xml_and_unknown_components_with_position() {
    let ws = Workspace::new();
    ws.write(
        "a-broken.xml",
        "<components>\n  <connection id=\"x\">\n</components>\n",
    );
    ws.write(
        "b-widget.xml",
        "<components>\n  <widget id=\"w\"/>\n</components>\n",
    );
    ws.write("c-root.xml", "<pipeline/>\n");
    let out = invalid(&ws, &["a-broken.xml", "b-widget.xml", "c-root.xml"]);
    let report = lines(&out);
    assert_eq!(report.len(), 3, "{out}");
    assert!(
        report[0].starts_with("a-broken.xml:3:1: not well-formed XML: "),
        "{out}"
    );
    assert_eq!(
        report[1],
        "b-widget.xml:2:3: unknown component <widget>: expected <connection>, <operation> or <process>"
    );
    assert_eq!(
        report[2],
        "c-root.xml:1:1: unexpected root element <pipeline>: a component file holds <components> \
         with <connection>, <operation> and <process> elements inside, or a single one of those \
         as its root"
    );
}

#[test]
fn secrets_and_values_come_from_the_environment_or_files() {
    let ws = conn(
        r#"<connection id="env"><bootstrap-servers>${env:SLUICE_TEST_BOOTSTRAP_UNSET}</bootstrap-servers><client-id>${file:client-id.txt}</client-id></connection>"#,
    );
    ws.sluice_expect(
        &["validate", "conn.xml"],
        1,
        Stream::Stdout,
        &[
            "conn.xml:1:22: connection \"env\": bootstrap-servers refers to environment variable \
         SLUICE_TEST_BOOTSTRAP_UNSET, which is not set: set it, or write the value in the file",
            "conn.xml:1:95: connection \"env\": client-id refers to file ",
        ],
    );

    ws.write("client-id.txt", "from-a-file\n");
    assert_eq!(
        invalid(&ws, &["conn.xml"]).lines().count(),
        1,
        "only the unset variable is left"
    );
}

#[test]
fn the_shipped_profiles_are_valid() {
    // Everything but the templates is valid as shipped (tests/examples.rs runs them); the
    // templates are once the user has added what they need.
    let shipped = [
        "profiles/connections",
        "profiles/examples",
        "profiles/demo",
        "profiles/demo-feed",
    ];
    let repository = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
    let output = harness::sluice_in(
        repository,
        &[&["validate"][..], &shipped[..]].concat(),
        None,
    );
    assert_exit(&output, 0);
    // A copy of profiles/ with what a user adds: the mTLS profile's certificates and the
    // SCRAM profile's password in the environment.
    let ws = Workspace::new();
    let profiles = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../profiles"));
    copy_tree(profiles, ws.path());
    let certificates = harness::tls::Certificates::generate();
    for (from, to) in [
        ("ca.pem", "ca.pem"),
        ("client.pem", "client.pem"),
        ("client.key", "client.key"),
    ] {
        std::fs::copy(certificates.path(from), ws.path().join("tls").join(to)).expect("copy");
    }
    std::env::set_var("KAFKA_PASSWORD", "from-the-environment");
    std::env::set_var("MSK_PASSWORD", "from-the-environment");
    std::env::set_var(
        "EVENTHUBS_CONNECTION_STRING",
        "Endpoint=sb://contoso-orders.servicebus.windows.net/;SharedAccessKeyName=k;SharedAccessKey=v",
    );
    let output = ws.sluice(&["validate", "."]);
    assert_exit(&output, 0);
    assert!(
        stdout(&output).starts_with("valid: 11 connections, 11 operations, 9 processes"),
        "{}",
        stdout(&output)
    );
}

fn copy_tree(from: &std::path::Path, to: &std::path::Path) {
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            std::fs::create_dir_all(&target).expect("mkdir");
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

#[test]
fn container_properties_errors_stop_the_run_and_unknown_keys_warn() {
    let ws = demo();
    ws.write("container.properties", "kafka.max.poll.records=none\n");
    let output = ws.sluice(&["run", "demo-receive-orders"]);
    assert_exit(&output, 1);
    assert_eq!(
        stderr(&output).trim(),
        "error: container.properties:1: kafka.max.poll.records must be a whole number ≥ 1, got \
         \"none\" (default 1)"
    );

    ws.write("other.properties", "kafka.max.pol.records=3\n");
    ws.sluice_expect(
        &[
            "--container-properties",
            "other.properties",
            "run",
            "no-such-process",
        ],
        1,
        Stream::Stderr,
        &[
            "warning: other.properties:1: unknown container property \"kafka.max.pol.records\" is \
         ignored (did you mean kafka.max.poll.records?)",
            "error: process \"no-such-process\" is not defined; defined processes: \
         demo-receive-orders, demo-send-orders",
        ],
    );
}

#[test]
fn run_says_when_input_is_missing_or_not_wanted() {
    let ws = demo();
    let refused = |args: &[&str], expected: &str| {
        ws.sluice_expect(args, 1, Stream::Stderr, &[expected]);
    };
    refused(
        &["run", "demo-send-orders"],
        "error: process \"demo-send-orders\" takes its documents from --input (a file, a folder, \
         or - for standard input)",
    );
    ws.write("in.txt", "x\n");
    refused(
        &["run", "demo-receive-orders", "--input", "in.txt"],
        "takes no --input",
    );
    refused(
        &["run", "demo-send-orders", "--input", "missing.jsonl"],
        "error: missing.jsonl:0: cannot be read",
    );
}

#[test]
fn every_command_has_help_with_examples() {
    for command in [
        &["--help"][..],
        &["validate", "--help"],
        &["run", "--help"],
        &["demo", "--help"],
    ] {
        let output = harness::sluice_in(std::path::Path::new("."), command, None);
        assert_exit(&output, 0);
        assert!(
            stdout(&output).contains("Example"),
            "{command:?}: {}",
            stdout(&output)
        );
    }
}

#[test]
fn demo_produces_and_consumes_on_the_embedded_broker() {
    let ws = Workspace::new();
    let output = ws.sluice(&["demo"]);
    assert_exit(&output, 0);
    let out = stdout(&output);
    assert!(
        out.contains("1. Process \"demo-send-orders\" sends 5 documents"),
        "{out}"
    );
    assert_eq!(
        out.matches("succeeded: 5 documents in, 5 out, 0 errors")
            .count(),
        2,
        "{out}"
    );
    // Every order that was sent was received, with its key.
    for (key, order) in [
        ("alice", 1001),
        ("bob", 1002),
        ("alice", 1003),
        ("carol", 1004),
        ("bob", 1005),
    ] {
        let received = out
            .lines()
            .filter(|l| {
                l.contains(&format!("\"order\":{order}")) && l.contains(&format!("key {key}"))
            })
            .count();
        assert_eq!(
            received, 2,
            "order {order} sent and received with key {key}:\n{out}"
        );
    }
    // The listener shipped them all: the committed offsets add up to the five orders.
    let shipped: i64 = out
        .lines()
        .filter_map(|l| l.split("committed up to offset ").nth(1))
        .map(|n| n.trim().parse::<i64>().expect("an offset"))
        .sum();
    assert_eq!(shipped, 5, "{out}");
}

/// The documents out of `process`'s recorded executions in `ws`, added up.
fn documents_out(ws: &Workspace, process: &str) -> usize {
    let listed = stdout(&ws.sluice(&["executions", "--process", process]));
    // The columns: execution, process, started (two words), took (two), in, out, …
    listed
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().nth(7)?.parse::<usize>().ok())
        .sum()
}

#[test]
fn serve_on_the_embedded_broker_is_fed_by_another_process_at_its_port() {
    let ws = demo();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
        .to_string();
    let mut serving = ws.sluice_spawn(&["serve", "--api", "off", "--embedded-port", &port]);
    let said = harness::wait_for("the embedded broker", Duration::from_secs(60), || {
        let err = serving.stderr();
        err.contains("listener started").then_some(err)
    });
    assert_contains(
        &said,
        &[&format!(
            "sluice serve: embedded broker on 127.0.0.1:{port} (nothing persists after the host \
             stops), with topics demo-orders, demo-shipped"
        )],
    );
    // Another process feeds it through the port, as profiles/demo-feed does.
    let feeder = Workspace::with_components(
        &include_str!("../profiles/demo-feed/feed.xml").replace("19092", &port),
    );
    feeder.write(
        "orders.jsonl",
        include_str!("../profiles/demo/orders.jsonl"),
    );
    let fed = feeder.sluice(&["run", "feed-orders", "--input", "orders.jsonl"]);
    assert_exit(&fed, 0);
    // The listener ships the five orders: its executions say so.
    harness::wait_for("five orders shipped", Duration::from_secs(60), || {
        (documents_out(&ws, "demo-ship-orders") == 5).then_some(())
    });

    // A listener added later, on a topic nobody created yet: the reload creates it.
    ws.write(
        "components/returns.xml",
        r#"<components>
  <operation id="returns-in" type="listen" connection="demo-kafka"><topic>demo-returns</topic><consumer-group>returns</consumer-group><offset-reset>earliest</offset-reset></operation>
  <operation id="returns-out" type="produce" connection="demo-kafka"><topic>demo-shipped</topic></operation>
  <process id="demo-returns"><start operation="returns-in"/><steps><connector operation="returns-out"/></steps></process>
</components>"#,
    );
    serving.signal("HUP");
    harness::wait_for("the new listener", Duration::from_secs(60), || {
        serving
            .stderr()
            .contains("listener \"demo-returns\" starts")
            .then_some(())
    });
    let returns = Workspace::with_components(
        &include_str!("../profiles/demo-feed/feed.xml")
            .replace("19092", &port)
            .replace("<topic>demo-orders</topic>", "<topic>demo-returns</topic>"),
    );
    returns.write(
        "orders.jsonl",
        include_str!("../profiles/demo/orders.jsonl"),
    );
    assert_exit(
        &returns.sluice(&["run", "feed-orders", "--input", "orders.jsonl"]),
        0,
    );
    harness::wait_for("five returns handled", Duration::from_secs(60), || {
        (documents_out(&ws, "demo-returns") == 5).then_some(())
    });
    serving.stop("TERM", Duration::from_secs(60));
}

#[test]
fn connection_security_fields_are_checked_together() {
    let ws = conn(
        r#"<components>
<connection id="sasl-on-plaintext"><bootstrap-servers>b:9092</bootstrap-servers>
  <sasl-mechanism>PLAIN</sasl-mechanism></connection>
<connection id="no-mechanism"><bootstrap-servers>b:9092</bootstrap-servers>
  <security-protocol>SASL_SSL</security-protocol></connection>
<connection id="kerberos"><bootstrap-servers>10.0.0.7:9092</bootstrap-servers>
  <security-protocol>SASL_PLAINTEXT</security-protocol><sasl-mechanism>GSSAPI</sasl-mechanism><username>svc</username></connection>
<connection id="no-password"><bootstrap-servers>b:9092</bootstrap-servers>
  <security-protocol>SASL_SSL</security-protocol><sasl-mechanism>SCRAM-SHA-512</sasl-mechanism><username>u</username></connection>
<connection id="bad-tls"><bootstrap-servers>b:9093</bootstrap-servers><security-protocol>SSL</security-protocol>
  <tls><ca-file>missing.pem</ca-file><certificate-file>not-a-cert.pem</certificate-file></tls></connection>
<connection id="tls-on-plaintext"><bootstrap-servers>b:9092</bootstrap-servers>
  <tls><verify-hostname>false</verify-hostname></tls></connection>
<connection id="properties"><bootstrap-servers>b:9092</bootstrap-servers>
  <properties><property name="socket.keepalive.enabled">true</property><property name="sasl.password">x</property></properties></connection>
</components>
"#,
    );
    ws.write("not-a-cert.pem", "hello\n");
    assert_eq!(
        lines(&invalid(&ws, &["conn.xml"])),
        [
            "conn.xml:3:3: connection \"sasl-on-plaintext\": sasl-mechanism applies only to \
             security-protocol SASL_PLAINTEXT or SASL_SSL (this connection's is PLAINTEXT)",
            "conn.xml:4:1: connection \"no-mechanism\": sasl-mechanism is missing: \
             security-protocol SASL_SSL needs one: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, GSSAPI or \
             OAUTHBEARER",
            "conn.xml:7:95: connection \"kerberos\": username must be a Kerberos principal \
             user@REALM (letters, digits, '.', '_', '-', '/'), got \"svc\": the realm, after the @, \
             names the keytab {REALM}.keytab",
            "conn.xml:8:1: connection \"no-password\": password is missing: SCRAM-SHA-512 needs the \
             password; write it as ${env:NAME} or ${file:PATH} to keep it out of the file",
            "conn.xml:11:8: connection \"bad-tls\": tls/ca-file missing.pem cannot be read: No such \
             file or directory (os error 2)",
            "conn.xml:11:38: connection \"bad-tls\": tls/certificate-file not-a-cert.pem is not a \
             PEM certificate (no \"-----BEGIN CERTIFICATE-----\" line)",
            "conn.xml:11:38: connection \"bad-tls\": tls/certificate-file needs its partner: mutual \
             TLS takes both tls/certificate-file and tls/key-file",
            "conn.xml:13:3: connection \"tls-on-plaintext\": tls applies only to \
             security-protocol SSL or SASL_SSL (this connection's is PLAINTEXT)",
            "conn.xml:15:15: connection \"properties\": properties: socket.keepalive.enabled is \
             not a librdkafka property; close matches: socket.keepalive.enable, socket.nagle.disable",
            "conn.xml:15:72: connection \"properties\": properties: sasl.password is set by the \
             connection's password; use that instead",
        ]
    );
}

#[test]
fn kerberos_needs_host_names() {
    let ws = conn(
        r#"<connection id="k"><bootstrap-servers>broker-1.corp.example.com:9092,10.0.0.7:9092</bootstrap-servers>
<security-protocol>SASL_PLAINTEXT</security-protocol><sasl-mechanism>GSSAPI</sasl-mechanism><username>svc@CORP.EXAMPLE.COM</username></connection>"#,
    );
    assert_eq!(
        invalid(&ws, &["conn.xml"]).trim(),
        "conn.xml:1:20: connection \"k\": bootstrap-servers \"10.0.0.7:9092\" is an IP address, and \
         Kerberos needs the broker's host name (its fully qualified domain name, as in its service \
         principal)"
    );
}

#[test]
fn secrets_never_appear_in_validation_errors() {
    let ws = conn(
        r#"<connection id="c"><bootstrap-servers>b:1</bootstrap-servers><security-protocol>SASL_PLAINTEXT</security-protocol>
<sasl-mechanism>SCRAM-SHA-256</sasl-mechanism><password>top-secret-value</password></connection>"#,
    );
    ws.hold_secrets(&[b"top-secret-value"]);
    let output = ws.sluice_expect(
        &["validate", "conn.xml"],
        1,
        Stream::Stdout,
        &["username is missing"],
    );
    harness::assert_hidden(&output, "top-secret-value");
}

#[test]
fn test_connection_names_the_failing_check_and_the_fix() {
    // Port 1 on loopback: nothing listens there; .invalid never resolves (RFC 2606).
    let ws = Workspace::with_components(
        r#"<components>
  <connection id="closed"><bootstrap-servers>127.0.0.1:1</bootstrap-servers></connection>
  <connection id="unknown-host"><bootstrap-servers>broker.invalid:9093</bootstrap-servers><security-protocol>SSL</security-protocol></connection>
  <connection id="kerberos-elsewhere"><bootstrap-servers>kafka.corp.example.com:9092</bootstrap-servers>
    <security-protocol>SASL_PLAINTEXT</security-protocol><sasl-mechanism>GSSAPI</sasl-mechanism><username>svc@CORP.EXAMPLE.COM</username></connection>
</components>"#,
    );
    // The Kerberos connection's missing files concern only that connection.
    let output = ws.sluice_expect(
        &["test-connection", "closed"],
        1,
        Stream::Stdout,
        &[
            "  ✗ 127.0.0.1:1 refuses TCP connections (",
            "      check the port, that the broker runs, and firewalls in between",
        ],
    );
    let out = stdout(&output);
    assert!(out.trim_end().ends_with("2 checks failed"), "{out}");

    ws.sluice_expect(
        &["test-connection", "unknown-host"],
        1,
        Stream::Stdout,
        &[
            "  ✗ broker.invalid:9093 does not resolve (",
            "      check the host name in bootstrap-servers, and this machine's DNS",
        ],
    );

    ws.sluice_expect(
        &["test-connection", "nope"],
        1,
        Stream::Stderr,
        &[
            "error: connection \"nope\" is not defined; defined connections: closed, \
         kerberos-elsewhere, unknown-host",
        ],
    );
}

#[test]
fn test_connection_says_which_right_on_a_topic_is_refused() {
    // tansu has no ACLs: the refusals are injected on librdkafka's mock cluster (the checks
    // that pass are tested on tansu, in tests/broker.rs).
    use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
    let cluster = rdkafka::mocking::MockCluster::new(1).expect("mock cluster");
    let topic = harness::unique("guarded");
    cluster.create_topic(&topic, 1, 1).expect("topic");
    let ws = Workspace::with_components(&format!(
        r#"<components>
  <connection id="mock"><bootstrap-servers>{}</bootstrap-servers></connection>
</components>"#,
        cluster.bootstrap_servers()
    ));
    let refused = "the principal is not allowed to use this topic: ask for an ACL on it \
                   (TopicAuthorizationFailed)";
    let check = |args: &[&str], expected: &[String]| {
        let output = ws.sluice(args);
        assert_exit(&output, 1);
        let out = stdout(&output);
        for line in expected {
            assert!(out.contains(line.as_str()), "missing {line:?} in\n{out}");
        }
        out
    };

    // Everything allowed first: the probe lands in the topic's one partition, which then
    // holds a batch to fetch (a fetch from the end of an empty partition on the mock cluster
    // reports the end even when refused).
    let output = ws.sluice(&["test-connection", "mock", "--topic", &topic, "--write"]);
    assert_exit(&output, 0);
    assert_contains(
        &stdout(&output),
        &[&format!(
            "  ✓ writing topic \"{topic}\": a probe message (header sluice.probe) was produced \
             to partition 0 at offset 0 and read back"
        )],
    );

    cluster
        .topic_error(
            &topic,
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED,
        )
        .expect("inject");
    check(
        &["test-connection", "mock", "--topic", &topic, "--write"],
        &[
            format!("  ✗ topic \"{topic}\" cannot be described\n      {refused}: check the name"),
            "1 check failed".into(),
        ],
    );
    cluster
        .topic_error(&topic, RDKafkaRespErr::RD_KAFKA_RESP_ERR_NO_ERROR)
        .expect("clear");

    cluster.request_errors(
        RDKafkaApiKey::Fetch,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED; 20],
    );
    check(
        &["test-connection", "mock", "--topic", &topic],
        &[
            format!("  ✓ topic \"{topic}\": 1 partition, end offsets 0:1, 1 message kept"),
            format!("  ✗ reading topic \"{topic}\" is refused\n      {refused}: Consume and Listen need READ"),
        ],
    );
    cluster.clear_request_errors(RDKafkaApiKey::Fetch);

    cluster.request_errors(
        RDKafkaApiKey::Produce,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED; 20],
    );
    let out = check(
        &["test-connection", "mock", "--topic", &topic, "--write"],
        &[
            format!("  ✓ reading topic \"{topic}\": every partition answered a fetch"),
            format!("  ✗ writing topic \"{topic}\" is refused\n      "),
            "Produce needs WRITE on the topic".into(),
        ],
    );
    assert!(out.contains("TopicAuthorizationFailed"), "{out}");
}

#[test]
fn oauthbearer_needs_an_https_token_endpoint_and_no_password() {
    let ws = conn(
        r#"<components>
<connection id="plain-http"><bootstrap-servers>b:9093</bootstrap-servers><security-protocol>SASL_SSL</security-protocol><sasl-mechanism>OAUTHBEARER</sasl-mechanism>
  <oauth><token-endpoint>http://idp.example.com/token</token-endpoint><client-id>c</client-id><client-secret>s</client-secret></oauth></connection>
<connection id="no-oauth"><bootstrap-servers>b:9093</bootstrap-servers><security-protocol>SASL_SSL</security-protocol><sasl-mechanism>OAUTHBEARER</sasl-mechanism></connection>
<connection id="password"><bootstrap-servers>b:9093</bootstrap-servers><security-protocol>SASL_SSL</security-protocol><sasl-mechanism>OAUTHBEARER</sasl-mechanism><password>p</password></connection>
</components>"#,
    );
    assert_eq!(
        lines(&invalid(&ws, &["conn.xml"])),
        [
            "conn.xml:3:10: connection \"plain-http\": oauth/token-endpoint must be an https:// URL \
             (the client secret travels with every token request), got \"http://idp.example.com/token\"",
            "conn.xml:4:1: connection \"no-oauth\": oauth is missing: OAUTHBEARER needs \
             <oauth><token-endpoint>https://…</token-endpoint><client-id>…</client-id><client-secret>…</client-secret></oauth>, \
             or <aws-iam/> for Amazon MSK IAM",
            "conn.xml:5:163: connection \"password\": password does not apply to OAUTHBEARER, which \
             authenticates with <oauth> (token-endpoint, client-id, client-secret) or <aws-iam> \
             (Amazon MSK IAM)",
        ]
    );
}

#[test]
fn executions_without_a_database_says_where_it_looked() {
    let ws = Workspace::new();
    let output = ws.sluice(&["executions"]);
    assert_exit(&output, 1);
    assert_eq!(
        stderr(&output),
        "error: no execution database at sluice-executions.db: executions are recorded there by \
         sluice run and sluice serve started in this folder (or give --executions-db)\n"
    );
    ws.sluice_expect(
        &["executions", "--status", "broken"],
        2,
        Stream::Stderr,
        &["[possible values: succeeded, completed-with-errors, failed]"],
    );
}

#[test]
fn validate_checks_the_container_properties_and_kerberos_files_and_reads_sluice_components() {
    let ws = Workspace::new();
    ws.write(
        "team/c.xml",
        r#"<components>
  <connection id="kerberos">
    <bootstrap-servers>broker.example.test:9092</bootstrap-servers>
    <security-protocol>SASL_PLAINTEXT</security-protocol>
    <sasl-mechanism>GSSAPI</sasl-mechanism>
    <username>svc@EXAMPLE.TEST</username>
    <consumer-group>orders</consumer-group>
  </connection>
  <connection id="hubs" preset="azure-event-hubs">
    <namespace>contoso</namespace>
    <password>Endpoint=sb://contoso.servicebus.windows.net/;SharedAccessKeyName=k;SharedAccessKey=v</password>
  </connection>
  <operation id="in-a" type="listen" connection="kerberos"><topic>a</topic></operation>
  <operation id="in-b" type="listen" connection="kerberos"><topic>b</topic></operation>
  <operation id="out" type="produce" connection="hubs"><topic>c</topic></operation>
  <process id="a"><start operation="in-a"/><steps><connector operation="out"/></steps></process>
  <process id="b"><start operation="in-b"/><steps><connector operation="out"/></steps></process>
</components>"#,
    );
    ws.write(
        "container.properties",
        "kafka.max.request.size=2000000\nkafka.max.poll.records=zero\n",
    );
    // The components come from SLUICE_COMPONENTS, as for the other commands.
    ws.set_env("SLUICE_COMPONENTS", "team");
    let output = ws.sluice(&["validate", "--custom-library", "libs"]);
    assert_exit(&output, 1);
    assert_contains(
        &stdout(&output),
        &[
            "container.properties:2: kafka.max.poll.records must be",
            "libs/krb5.conf does not exist: Kerberos connection \"kerberos\" needs your realm's \
             krb5.conf",
            "libs/EXAMPLE.TEST.keytab does not exist",
        ],
    );
    assert_contains(
        &stderr(&output),
        &[
            "warning: listeners \"a\" and \"b\" share consumer group \"orders\" on \
           broker.example.test:9092",
        ],
    );

    // Without --custom-library the Kerberos files are not looked for; with the container
    // properties fixed, the components are valid.
    ws.write("container.properties", "kafka.max.request.size=2000000\n");
    let output = ws.sluice(&["validate"]);
    assert_exit(&output, 0);
    assert_contains(
        &stdout(&output),
        &["valid: 2 connections, 3 operations, 2 processes"],
    );
    assert_contains(
        &stderr(&output),
        &[
            "warning: connection \"hubs\" (Azure Event Hubs) accepts messages up to 1046527 \
           bytes, and the container properties set kafka.max.request.size to 2000000: 1046527 \
           bytes apply to this connection",
        ],
    );
}

#[test]
fn a_closed_pipe_ends_quietly_with_status_141_and_the_summary_still_on_stderr() {
    // A process that needs no broker: it only sets a property on each document.
    let ws = Workspace::with_components(
        r#"<components>
  <process id="keyed"><steps><set-properties><property name="message-key" value="k"/></set-properties></steps></process>
</components>"#,
    );
    let lines: String = (0..2000).map(|i| format!("document {i}\n")).collect();
    ws.write("in.txt", &lines);
    // `sluice run … --documents-out - | head`: the documents find no reader; the execution
    // happened, and its summary goes to standard error as always.
    let (code, err) =
        ws.sluice_into_closed_pipe(&["run", "keyed", "--input", "in.txt", "--documents-out", "-"]);
    assert_eq!(code, Some(141), "{err}");
    assert_contains(&err, &["documents: 2000 in, 2000 out, 0 errors"]);
    assert!(
        !err.contains("panicked") && !err.contains("error:"),
        "{err}"
    );
    // `sluice executions | head -1`, `sluice validate | head -1`: nothing but the status.
    for args in [&["executions"][..], &["validate"][..]] {
        let (code, err) = ws.sluice_into_closed_pipe(args);
        assert_eq!(code, Some(141), "{args:?}: {err}");
        assert!(
            !err.contains("panicked") && !err.contains("error:"),
            "{args:?}: {err}"
        );
    }
}
