//! The Sluice side of each workload, as a worker runs it: a process with one Produce step fed
//! in executions, a Consume operation, and a `serve` listener bridging two topics. Every path
//! the benchmark takes from `sluice_runtime` is imported here and nowhere else, so that a move
//! in the runtime touches one place.

use std::num::NonZeroU32;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::Duration;

use sluice_runtime::components::Components;
use sluice_runtime::container::ContainerProperties;
use sluice_runtime::document::{Document, DocumentProperties};
use sluice_runtime::host::execution::{Host, NoProgress};
use sluice_runtime::host::listener::{run as run_listener, ListenerControl, Shared};
use sluice_runtime::record::{ExecutionRecord, ExecutionStatus};

use super::{stop_on_stdin_close, Job};
use crate::matrix::BRIDGE_BATCH;
use crate::resources::{timed, Usage};

/// The host limits a cell needs: max.request.size above its messages, 500 per poll.
pub fn container(size: usize) -> ContainerProperties {
    let mut container = ContainerProperties::default();
    container.kafka.max_request_size = container.kafka.max_request_size.max(size as u64 * 2);
    container.kafka.max_poll_records = NonZeroU32::new(500).expect("500");
    container
}

/// A component file of `operations_and_process` (XML lines) with a connection `bench` to the
/// broker.
fn components(bootstrap: &str, operations_and_process: &str) -> String {
    format!(
        r#"<components>
  <connection id="bench"><bootstrap-servers>{bootstrap}</bootstrap-servers></connection>
{operations_and_process}
</components>
"#
    )
}

/// A host of `operations_and_process` (XML lines) with a connection `bench` to the broker.
fn host(bootstrap: &str, operations_and_process: &str, size: usize) -> Host {
    host_of(components(bootstrap, operations_and_process), size)
}

/// A host of one component file's text.
fn host_of(text: String, size: usize) -> Host {
    let components = Components::from_sources(vec![(PathBuf::from("bench.xml"), text)])
        .unwrap_or_else(|e| panic!("{e}"));
    Host::new(components, container(size))
}

/// Process `send`: one Produce step to `topic` (the produce cells and `sluice run`).
pub fn send_process(bootstrap: &str, topic: &str) -> String {
    components(
        bootstrap,
        &format!(
            r#"  <operation id="send" type="produce" connection="bench"><topic>{topic}</topic></operation>
  <process id="send"><steps><connector operation="send"/></steps></process>"#
        ),
    )
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// Runs one execution of `process` and checks that it succeeded.
fn execute(
    runtime: &tokio::runtime::Runtime,
    host: &Host,
    process: &str,
    input: Option<Vec<Document>>,
) -> ExecutionRecord {
    let record = runtime
        .block_on(host.execute(process, input, &NoProgress))
        .expect("execution");
    assert_eq!(
        record.status,
        ExecutionStatus::Succeeded,
        "{:?}",
        record.status
    );
    record
}

/// Sends `payloads` through a Produce process, `per_execution` documents an execution, after
/// a warm-up execution of one document.
pub fn produce(job: &Job, payloads: Vec<Vec<u8>>) -> Usage {
    let host = host_of(send_process(job.bootstrap, job.topic), job.size);
    let executions = executions(payloads, job.per_execution);
    let runtime = runtime();
    let run = |documents: Vec<Document>| {
        let expected = documents.len();
        let record = execute(&runtime, &host, "send", Some(documents));
        assert_eq!(record.documents_out.len(), expected);
    };
    // Warm-up: one document creates the operation's producer.
    run(vec![Document {
        data: b"warm-up".to_vec(),
        ..Document::default()
    }]);
    timed(|| {
        for documents in executions {
            run(documents);
        }
    })
}

/// The payloads as documents keyed `k0`, `k1`, …, `per_execution` an execution.
fn executions(payloads: Vec<Vec<u8>>, per_execution: usize) -> Vec<Vec<Document>> {
    let mut executions = Vec::new();
    let mut payloads = payloads.into_iter().enumerate().peekable();
    while payloads.peek().is_some() {
        executions.push(
            payloads
                .by_ref()
                .take(per_execution)
                .map(|(i, data)| Document {
                    data,
                    properties: DocumentProperties {
                        message_key: Some(format!("k{i}").as_bytes().into()),
                        ..DocumentProperties::default()
                    },
                    ..Document::default()
                })
                .collect(),
        );
    }
    executions
}

/// One Consume execution that waits for all the cell's messages, in a fresh group.
pub fn consume(job: &Job) {
    let (topic, group, count) = (job.topic, job.group, job.count);
    let host = host(
        job.bootstrap,
        &format!(
            r#"  <operation id="receive" type="consume" connection="bench">
    <topic>{topic}</topic><consumer-group>{group}</consumer-group>
    <minimum-messages>{count}</minimum-messages><maximum-wait>300s</maximum-wait>
    <offset-reset>earliest</offset-reset>
  </operation>
  <process id="receive"><start operation="receive"/></process>"#
        ),
        job.size,
    );
    let record = execute(&runtime(), &host, "receive", None);
    assert!(
        record.documents_in >= count,
        "{} of {count}",
        record.documents_in
    );
}

/// A `serve` listener: Listen on the input topic, Produce each document to the output topic,
/// until standard input closes (then it drains, as on a shutdown signal).
pub fn bridge(job: &Job) {
    let (input, output) = job.topic.split_once(',').expect("INPUT,OUTPUT");
    let group = job.group;
    let host = host(
        job.bootstrap,
        &format!(
            r#"  <operation id="listen" type="listen" connection="bench">
    <topic>{input}</topic><consumer-group>{group}</consumer-group>
    <offset-reset>earliest</offset-reset><max-messages>{BRIDGE_BATCH}</max-messages>
  </operation>
  <operation id="send" type="produce" connection="bench"><topic>{output}</topic></operation>
  <process id="bridge"><start operation="listen"/><steps><connector operation="send"/></steps></process>"#
        ),
        job.size,
    );
    let shared = Shared::new(host);
    let control = ListenerControl::new("bridge", false);
    control.deploy(shared.host());
    let shutdown = tokio_util::sync::CancellationToken::new();
    let stop = stop_on_stdin_close();
    runtime().block_on(async {
        let cancel = shutdown.clone();
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            cancel.cancel();
        });
        run_listener(shared, control, shutdown)
            .await
            .expect("listener");
    });
}
