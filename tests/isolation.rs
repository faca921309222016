//! Failure isolation, against tansu: a broken component stops only the processes that use it.
//! `sluice run` of a process whose own components are valid runs and names the others' errors
//! in one warning; `sluice serve --api off` with only invalid listeners ends with status 1.

mod harness;

use std::time::Duration;

use harness::{components, Broker, Stream, Workspace};

/// Another team's components in the same folder: a connection whose password comes from an
/// environment variable nobody set, and a process that uses it.
const BROKEN: &str = r#"<components>
  <connection id="billing-kafka">
    <bootstrap-servers>localhost:9096</bootstrap-servers>
    <security-protocol>SASL_PLAINTEXT</security-protocol>
    <sasl-mechanism>SCRAM-SHA-512</sasl-mechanism>
    <username>billing</username>
    <password>${env:SLUICE_TEST_NEVER_SET}</password>
  </connection>
  <operation id="bill" type="produce" connection="billing-kafka"><topic>invoices</topic></operation>
  <process id="send-invoices"><steps><connector operation="bill"/></steps></process>
</components>
"#;

#[test]
fn a_broken_component_stops_only_the_process_that_uses_it() {
    let broker = Broker::start();
    let topic = broker.create_topic("isolated", 1);
    let ws = Workspace::with_components(&components(
        &broker,
        "unused",
        &format!(
            r#"<operation id="send" type="produce" connection="tansu"><topic>{topic}</topic></operation>
<process id="send-orders"><steps><connector operation="send"/></steps></process>"#
        ),
    ));
    ws.write("components/billing.xml", BROKEN);

    let input = ws.write("orders.txt", "order-1\norder-2\n");
    let input = input.to_str().expect("path");
    ws.sluice_expect(
        &["run", "send-orders", "--input", input],
        0,
        Stream::Stderr,
        &[
            "warning: 1 error in components that process \"send-orders\" does not use; \
             sluice validate lists them",
        ],
    );
    let payloads: Vec<String> = broker
        .read_all(&topic, 2)
        .into_iter()
        .map(|r| r.payload)
        .collect();
    assert_eq!(payloads, ["order-1", "order-2"]);

    // The broken process itself still fails with its error, and validate reports it.
    ws.sluice_expect(
        &["run", "send-invoices", "--input", input],
        1,
        Stream::Stderr,
        &[
            "connection \"billing-kafka\": password",
            "SLUICE_TEST_NEVER_SET",
            "1 error in the components",
        ],
    );
    ws.sluice_expect(
        &["validate", "components"],
        1,
        Stream::Stdout,
        &["connection \"billing-kafka\": password"],
    );
    // A connection that is valid can be tested while another one is not.
    ws.sluice_expect(
        &["test-connection", "tansu"],
        0,
        Stream::Stderr,
        &["warning: 1 error in components that connection \"tansu\" does not use"],
    );
}

#[test]
fn serve_with_only_invalid_listeners_and_no_api_ends_with_status_1() {
    let broker = Broker::start();
    let ws = Workspace::with_components(&components(
        &broker,
        "g",
        r#"<operation id="receive" type="listen" connection="tansu"><topic>not a topic</topic></operation>
<operation id="send" type="produce" connection="tansu"><topic>out</topic></operation>
<process id="deaf"><start operation="receive"/><steps><connector operation="send"/></steps></process>"#,
    ));
    let mut serving = ws.sluice_spawn(&["serve", "--api", "off"]);
    let status = serving.wait(Duration::from_secs(30));
    let stderr = serving.stderr();
    assert_eq!(status, Some(1), "{stderr}");
    harness::assert_contains(
        &stderr,
        &[
            "sluice serve: listener \"deaf\" is INVALID and does not start (1 error):",
            "operation \"receive\": topic",
            "no listener can start",
        ],
    );
}

#[test]
fn a_listener_whose_kerberos_files_are_missing_is_invalid_and_the_others_serve() {
    let broker = Broker::start();
    let (source, target) = (
        broker.create_topic("iso-in", 1),
        broker.create_topic("iso-out", 1),
    );
    let ws = Workspace::with_components(&components(
        &broker,
        &harness::unique("g"),
        &format!(
            r#"<operation id="in" type="listen" connection="tansu"><topic>{source}</topic><offset-reset>earliest</offset-reset></operation>
<operation id="out" type="produce" connection="tansu"><topic>{target}</topic></operation>
<process id="forward"><start operation="in"/><steps><connector operation="out"/></steps></process>"#
        ),
    ));
    // Another team's listener needs Kerberos, and the custom library has nothing for it.
    ws.write(
        "components/kerberos.xml",
        r#"<components>
  <connection id="corp">
    <bootstrap-servers>broker.corp.example.test:9092</bootstrap-servers>
    <security-protocol>SASL_PLAINTEXT</security-protocol>
    <sasl-mechanism>GSSAPI</sasl-mechanism>
    <username>svc@CORP.EXAMPLE.TEST</username>
    <consumer-group>audit</consumer-group>
  </connection>
  <operation id="audit-in" type="listen" connection="corp"><topic>audit</topic></operation>
  <process id="audit"><start operation="audit-in"/></process>
</components>
"#,
    );
    let mut serving = ws.sluice_spawn(&["serve", "--api", "off"]);
    let said = harness::wait_for("the start lines", Duration::from_secs(60), || {
        let err = serving.stderr();
        err.contains("listener started").then_some(err)
    });
    harness::assert_contains(
        &said,
        &[
            "1 listener started (forward)",
            "listener \"audit\" is INVALID and does not start",
            "custom-libs/krb5.conf does not exist: Kerberos connection \"corp\"",
        ],
    );
    broker.produce_to(&source, 0, "served");
    assert_eq!(broker.read_payloads(&target, 1), ["served"]);
    serving.signal("TERM");
    // The invalid listener counts as failed.
    assert_eq!(serving.wait(Duration::from_secs(60)), Some(1));
}
