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
