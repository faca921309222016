//! `sluice demo`: the README's first command. It runs the shipped demo components on the
//! embedded broker and explains what happened.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use sluice_connector::EmbeddedBroker;
use tokio_util::sync::CancellationToken;

use sluice_runtime::advice::UserMessage as _;
use sluice_runtime::components::Components;
use sluice_runtime::container::ContainerProperties;
use sluice_runtime::document::{self, InputFormat};
use sluice_runtime::host::execution::{Host, NoProgress};
use sluice_runtime::host::listener::{self, ListenerControl, Shared};
use sluice_runtime::record::{ExecutionRecord, ExecutionStatus};

/// The demo components and documents, built into the binary so `sluice demo` works from any
/// folder.
const DEMO_XML: &str = include_str!("../../../profiles/demo/demo.xml");
const DEMO_ORDERS: &str = include_str!("../../../profiles/demo/orders.jsonl");
const DEMO_XML_NAME: &str = "profiles/demo/demo.xml";

/// `sluice demo`: the demo on a runtime of its own, its story on standard output.
pub(super) fn demo(container: ContainerProperties) -> anyhow::Result<ExitCode> {
    super::async_runtime()?.block_on(run(container, &mut std::io::stdout()))?;
    Ok(ExitCode::SUCCESS)
}

/// Runs the demo, writing a newcomer's explanation to `out`.
async fn run(container: ContainerProperties, out: &mut dyn Write) -> anyhow::Result<()> {
    let components =
        Components::from_sources(vec![(PathBuf::from(DEMO_XML_NAME), DEMO_XML.into())])
            .context("the built-in demo components are invalid (a bug: please report it)")?;
    let broker = EmbeddedBroker::get().map_err(|e| anyhow::anyhow!(e.user_message()))?;
    writeln!(out, "Sluice demo: three processes on the embedded broker\n")?;
    writeln!(
        out,
        "The embedded broker (librdkafka's in-process mock cluster) is listening on {}.\n\
         Its components come from {DEMO_XML_NAME}: connection \"demo-kafka\", a produce\n\
         operation \"send-orders\", a consume operation \"receive-orders\" and a listen\n\
         operation \"ship-orders\" on topic \"demo-orders\", and three processes that use them.\n",
        broker.bootstrap_servers()
    )?;
    let shared = Shared::new(Host::new(components, container));
    let host = shared.host();

    let input = parse_orders()?;
    writeln!(
        out,
        "1. Process \"demo-send-orders\" sends {} documents, each with a message key:",
        input.len()
    )?;
    let sent = host
        .execute("demo-send-orders", Some(input), &NoProgress)
        .await?;
    for doc in &sent.documents_out {
        writeln!(
            out,
            "   key {:<6} -> partition {} offset {}   {}",
            doc.properties
                .message_key
                .as_deref()
                .map_or("-".into(), document::show_bytes),
            doc.tracked.partition.unwrap_or(-1),
            doc.tracked.offset.unwrap_or(-1),
            String::from_utf8_lossy(&doc.data)
        )?;
    }
    outcome(out, &sent)?;

    let per_poll = host.container().kafka.max_poll_records.get();
    writeln!(
        out,
        "\n2. Process \"demo-receive-orders\" starts with the consume operation: it polls the\n   \
         topic until it holds at least 5 messages, up to {per_poll} per poll (container\n   \
         property kafka.max.poll.records), and commits their offsets:"
    )?;
    let received = host
        .execute("demo-receive-orders", None, &NoProgress)
        .await?;
    for doc in &received.documents_out {
        writeln!(
            out,
            "   partition {} offset {}  key {:<6} {}",
            doc.tracked.partition.unwrap_or(-1),
            doc.tracked.offset.unwrap_or(-1),
            doc.properties
                .message_key
                .as_deref()
                .map_or("-".into(), document::show_bytes),
            String::from_utf8_lossy(&doc.data)
        )?;
    }
    outcome(out, &received)?;

    writeln!(
        out,
        "\nDocuments with the same key went to the same partition, and each partition kept\n\
         their order.\n\n\
         3. Process \"demo-ship-orders\" starts with a listen operation: a host (sluice serve)\n   \
         runs it for as long as it runs, one execution per batch and partition, committing\n   \
         each partition's offset once its documents have finished. It ships each order to\n   \
         topic \"demo-shipped\" with a header; here it runs until the {} orders are shipped:",
        sent.documents_out.len()
    )?;
    let shipped = ship(&shared, sent.documents_out.len()).await?;
    for (partition, committed) in &shipped {
        writeln!(
            out,
            "   partition {partition}: committed up to offset {committed}"
        )?;
    }
    writeln!(
        out,
        "\nRun the listener as a host does, in two terminals (the second feeds the first):\n  \
         sluice serve --components profiles/demo --embedded-port 19092\n  \
         sluice run feed-orders --components profiles/demo-feed --input profiles/demo/orders.jsonl\n\n\
         Next:\n  \
         sluice validate profiles/demo         check component files, with located errors\n  \
         sluice run --help                     run a process against your own cluster\n  \
         RUST_LOG=sluice=debug sluice demo     the same, with the host's structured logs"
    )?;
    if sent.status != ExecutionStatus::Succeeded || received.status != ExecutionStatus::Succeeded {
        bail!("the demo did not run cleanly (see above)");
    }
    Ok(())
}

/// How long the demo's listener may take to ship the orders.
const SHIPPING_WAIT: Duration = Duration::from_secs(30);

/// Runs the listener of "demo-ship-orders" until it has committed `orders` documents; returns
/// the committed offset of each partition.
async fn ship(shared: &Shared, orders: usize) -> anyhow::Result<Vec<(i32, i64)>> {
    let control = ListenerControl::new("demo-ship-orders", false);
    control.deploy(shared.host());
    let stop = CancellationToken::new();
    let running = tokio::spawn(listener::run(shared.clone(), control.clone(), stop.clone()));
    let deadline = Instant::now() + SHIPPING_WAIT;
    let committed = loop {
        if let Some(consumer) = control.consumer() {
            let positions = consumer.positions().await.unwrap_or_default();
            let done: i64 = positions.iter().filter_map(|p| p.committed).sum();
            if done >= orders as i64 {
                break positions
                    .iter()
                    .filter_map(|p| Some((p.partition, p.committed?)))
                    .collect();
            }
        }
        if Instant::now() > deadline || running.is_finished() {
            stop.cancel();
            bail!("the listener did not ship the orders within 30 s (a bug: please report it)");
        }
        // Polling the committed offsets: the listener reports nothing else to wait on.
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    stop.cancel();
    running
        .await
        .context("the demo's listener stopped abnormally")?
        .map_err(|failure| anyhow::anyhow!("{failure}"))?;
    Ok(committed)
}

fn parse_orders() -> anyhow::Result<Vec<document::Document>> {
    Ok(document::read_documents(
        DEMO_ORDERS.as_bytes(),
        "profiles/demo/orders.jsonl",
        InputFormat::Jsonl,
    )?)
}

fn outcome(out: &mut dyn Write, record: &ExecutionRecord) -> anyhow::Result<()> {
    let status = &record.status;
    writeln!(
        out,
        "   {status}: {} documents in, {} out, {} errors ({} ms)",
        record.documents_in,
        record.documents_out.len(),
        record.document_errors.len(),
        record.duration.as_millis()
    )?;
    Ok(())
}
