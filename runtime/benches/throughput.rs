//! Sluice against raw librdkafka on the same tansu broker, in the same run (`./dev bench`).
//!
//! Every repetition runs in its own child process (this binary with `--worker`), so that its
//! CPU time and peak RSS are its own; Sluice and raw repetitions alternate (A B A B …) so that
//! drift in the machine or the broker touches both alike. Results go to `docs/BENCHMARKS.md`
//! and `docs/benchmarks.json`.
//!
//! Workloads:
//! - produce: documents through a Sluice process (one Produce step), in executions of a given
//!   size, against a raw `BaseProducer` loop with the same client settings.
//! - consume: a Sluice Consume operation (container max.poll.records 500, minimum = N) against
//!   a raw `BaseConsumer` loop, each with a fresh group on the same pre-filled topic.

#[path = "../../tests/harness/mod.rs"]
mod harness;

use std::num::NonZeroU32;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::ClientContext;
use serde_json::{json, Value};
use sluice_runtime::components::Components;
use sluice_runtime::container::ContainerProperties;
use sluice_runtime::document::{Document, DocumentProperties};
use sluice_runtime::execution::{ExecutionStatus, Host, NoProgress};

/// One benchmark cell.
#[derive(Clone, Debug)]
struct Cell {
    workload: &'static str,
    size: usize,
    partitions: i32,
    per_execution: usize,
    count: usize,
}

impl Cell {
    /// `produce/1024/4p/100`: workload, size, partitions, documents per execution.
    fn label(&self) -> String {
        format!(
            "{}/{}/{}p/{}",
            self.workload, self.size, self.partitions, self.per_execution
        )
    }
}

/// What one repetition measured (reported by the worker).
#[derive(Clone, Debug, Default)]
struct Run {
    seconds: f64,
    cpu_seconds: f64,
    peak_rss_kb: u64,
    broker_cpu_seconds: f64,
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--worker") {
        worker(&args[1..]);
        return;
    }
    let quick = args.iter().any(|a| a == "--quick");
    let repetitions = if quick { 3 } else { 5 };
    // `--only produce/1024`: the cells whose label contains the text (while investigating).
    let only = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1));
    let cells: Vec<Cell> = matrix(quick)
        .into_iter()
        .filter(|c| only.is_none_or(|o| c.label().contains(o.as_str())))
        .collect();
    let broker = harness::Broker::start();
    eprintln!(
        "sluice-bench: {} cells × {repetitions} repetitions × 2 (Sluice, raw) on tansu at {}",
        cells.len(),
        broker.bootstrap()
    );
    let mut results = Vec::new();
    for (index, cell) in cells.iter().enumerate() {
        let measured = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            measure(&broker, cell, repetitions)
        }));
        let Ok((sluice, raw)) = measured else {
            eprintln!(
                "[{}/{}] {}: failed (see above)",
                index + 1,
                cells.len(),
                cell.label()
            );
            results.push(json!({"workload": cell.workload, "size": cell.size,
                "partitions": cell.partitions, "per_execution": cell.per_execution,
                "messages": cell.count, "failed": true}));
            write_report(&results, repetitions, quick);
            continue;
        };
        let row = summarize(cell, &sluice, &raw);
        eprintln!(
            "[{}/{}] {} {} B × {} ({} partition(s), {}/execution): Sluice {:.0} msg/s, raw {:.0} msg/s, ratio {:.2}",
            index + 1,
            cells.len(),
            cell.workload,
            cell.size,
            cell.count,
            cell.partitions,
            cell.per_execution,
            row["sluice"]["msgs_per_s"].as_f64().unwrap_or(0.0),
            row["raw"]["msgs_per_s"].as_f64().unwrap_or(0.0),
            row["ratio"].as_f64().unwrap_or(0.0),
        );
        results.push(row);
        // Written after every cell: a long run that stops half-way still leaves its figures.
        write_report(&results, repetitions, quick);
    }
}

fn matrix(quick: bool) -> Vec<Cell> {
    let sizes: &[usize] = if quick {
        &[100, 1024]
    } else {
        &[100, 1024, 100 * 1024, 9_961_472]
    };
    let mut cells = Vec::new();
    for &size in sizes {
        // Enough messages for a few seconds of work at each size.
        let count = match size {
            0..=1024 => 50_000,
            1025..=102_400 => 2_000,
            _ => 20,
        };
        for partitions in [1, 4] {
            for per_execution in [1, 100, 10_000] {
                if quick && per_execution == 1 {
                    continue;
                }
                // One execution per document creates a client per document: fewer of them.
                let count = if per_execution == 1 {
                    count.min(500)
                } else {
                    count
                };
                let cell = Cell {
                    workload: "produce",
                    size,
                    partitions,
                    per_execution: per_execution.min(count),
                    count,
                };
                // With few messages, 100 and 10 000 per execution are the same cell.
                if !cells.iter().any(|c: &Cell| c.label() == cell.label()) {
                    cells.push(cell);
                }
            }
            cells.push(Cell {
                workload: "consume",
                size,
                partitions,
                per_execution: count,
                count,
            });
        }
    }
    cells
}

/// Runs the cell's repetitions, Sluice and raw alternating.
fn measure(broker: &harness::Broker, cell: &Cell, repetitions: usize) -> (Vec<Run>, Vec<Run>) {
    let (mut sluice, mut raw) = (Vec::new(), Vec::new());
    let filled = (cell.workload == "consume").then(|| {
        let topic = broker.create_topic("bench-consume", cell.partitions);
        let filler = worker_run(broker, "produce-raw", &topic, cell, "");
        assert!(filler.seconds > 0.0);
        topic
    });
    for repetition in 0..repetitions {
        for (mode, runs) in [("sluice", &mut sluice), ("raw", &mut raw)] {
            let (topic, group) = match &filled {
                Some(topic) => (
                    topic.clone(),
                    harness::unique(&format!("bench-{mode}-{repetition}")),
                ),
                None => (
                    broker.create_topic("bench-produce", cell.partitions),
                    String::new(),
                ),
            };
            let run = worker_run(
                broker,
                &format!("{}-{mode}", cell.workload),
                &topic,
                cell,
                &group,
            );
            runs.push(run);
            // tansu keeps memory storage in memory: produce topics go once measured.
            if filled.is_none() {
                broker.delete_topic(&topic);
            }
        }
    }
    if let Some(topic) = &filled {
        broker.delete_topic(topic);
    }
    (sluice, raw)
}

/// Runs one repetition in a child process and measures the broker's CPU meanwhile.
fn worker_run(broker: &harness::Broker, mode: &str, topic: &str, cell: &Cell, group: &str) -> Run {
    let broker_before = process_cpu_seconds(broker.pid());
    let output = Command::new(std::env::current_exe().expect("this binary"))
        .args(["--worker", mode, &broker.bootstrap(), topic])
        .args([
            cell.size.to_string(),
            cell.count.to_string(),
            cell.per_execution.to_string(),
        ])
        .arg(if group.is_empty() { "-" } else { group })
        .env("RUST_LOG", "error")
        .output()
        .expect("run a worker");
    let broker_cpu_seconds = process_cpu_seconds(broker.pid()) - broker_before;
    assert!(
        output.status.success(),
        "worker {mode} failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_slice(&output.stdout).expect("worker JSON");
    Run {
        seconds: report["seconds"].as_f64().expect("seconds"),
        cpu_seconds: report["cpu_seconds"].as_f64().expect("cpu"),
        peak_rss_kb: report["peak_rss_kb"].as_u64().expect("rss"),
        broker_cpu_seconds,
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn side(cell: &Cell, runs: &[Run]) -> Value {
    let seconds = median(runs.iter().map(|r| r.seconds).collect());
    let cpu = median(runs.iter().map(|r| r.cpu_seconds).collect());
    let broker_cpu = median(runs.iter().map(|r| r.broker_cpu_seconds).collect());
    let rss = median(runs.iter().map(|r| r.peak_rss_kb as f64).collect());
    let messages = cell.count as f64;
    json!({
        "seconds": seconds,
        "msgs_per_s": messages / seconds,
        "mb_per_s": messages * cell.size as f64 / seconds / 1e6,
        "cpu_s_per_million": cpu / messages * 1e6,
        "peak_rss_mb": rss / 1024.0,
        // tansu runs on its own threads: near one core busy means the broker sets the pace.
        "broker_cpu_share": broker_cpu / seconds,
        "repetitions": runs.iter().map(|r| json!({"seconds": r.seconds, "cpu_seconds": r.cpu_seconds,
            "peak_rss_kb": r.peak_rss_kb, "broker_cpu_seconds": r.broker_cpu_seconds})).collect::<Vec<_>>(),
    })
}

fn summarize(cell: &Cell, sluice: &[Run], raw: &[Run]) -> Value {
    let (s, r) = (side(cell, sluice), side(cell, raw));
    let ratio = s["msgs_per_s"].as_f64().unwrap_or(0.0) / r["msgs_per_s"].as_f64().unwrap_or(1.0);
    let broker_bound = [&s, &r]
        .iter()
        .any(|v| v["broker_cpu_share"].as_f64().unwrap_or(0.0) >= 0.9);
    json!({
        "workload": cell.workload,
        "size": cell.size,
        "partitions": cell.partitions,
        "per_execution": cell.per_execution,
        "messages": cell.count,
        "sluice": s,
        "raw": r,
        "ratio": ratio,
        "broker_bound": broker_bound,
    })
}

fn size_label(size: usize) -> String {
    match size {
        s if s >= 1024 * 1024 => format!("{:.1} MiB", s as f64 / 1024.0 / 1024.0),
        s if s >= 1024 => format!("{} KiB", s / 1024),
        s => format!("{s} B"),
    }
}

fn write_report(results: &[Value], repetitions: usize, quick: bool) {
    let docs = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs");
    std::fs::create_dir_all(&docs).expect("docs folder");
    let machine = machine();
    let date = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let json = json!({"date": date, "machine": machine, "repetitions": repetitions,
                      "quick": quick, "results": results});
    std::fs::write(
        docs.join("benchmarks.json"),
        serde_json::to_string_pretty(&json).expect("JSON") + "\n",
    )
    .expect("write benchmarks.json");

    let mut md = String::new();
    md.push_str("# Benchmarks: Sluice against raw librdkafka\n\n");
    md.push_str(&format!(
        "Written by `./dev bench`{} on {date}. Machine: {machine}. Broker: tansu 0.6.0 \
         (memory storage) on loopback, started by the benchmark. Each cell: {repetitions} \
         repetitions, Sluice and raw alternating, each in its own process; medians shown. \
         Raw data: [benchmarks.json](benchmarks.json).\n\n",
        if quick { " --quick" } else { "" }
    ));
    md.push_str(
        "- **produce**: documents through a Sluice process with one Produce step (acks=all, \
         idempotent), in executions of *docs/exec* documents, against a raw `BaseProducer` \
         loop with the same client settings. Payloads are generated before the clock starts.\n\
         - **consume**: a Sluice Consume operation (container `kafka.max.poll.records=500`, \
         minimum = all messages) against a raw `BaseConsumer` loop, each with a fresh consumer \
         group on the same pre-filled topic; both times include joining the group.\n\
         - *CPU s/M*: the client process's CPU seconds per million messages; *RSS*: its peak \
         resident memory. *broker-bound*: tansu used ≥ 90 % of a core during the run, so \
         throughput says more about the broker than the client: judge such cells on CPU and \
         memory.\n\n",
    );
    md.push_str("| workload | size | partitions | docs/exec | messages | Sluice msg/s | raw msg/s | ratio | Sluice MB/s | CPU s/M Sluice / raw | peak RSS MB Sluice / raw | broker-bound |\n");
    md.push_str(
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n",
    );
    for r in results {
        if r["failed"] == true {
            md.push_str(&format!(
                "| {} | {} | {} | {} | {} | failed | | | | | | |\n",
                r["workload"].as_str().unwrap_or("?"),
                size_label(r["size"].as_u64().unwrap_or(0) as usize),
                r["partitions"],
                r["per_execution"],
                r["messages"]
            ));
            continue;
        }
        let f = |v: &Value| v.as_f64().unwrap_or(0.0);
        md.push_str(&format!(
            "| {} | {} | {} | {} | {} | {:.0} | {:.0} | {:.2} | {:.1} | {:.1} / {:.1} | {:.0} / {:.0} | {} |\n",
            r["workload"].as_str().unwrap_or("?"),
            size_label(r["size"].as_u64().unwrap_or(0) as usize),
            r["partitions"],
            if r["workload"] == "produce" { r["per_execution"].to_string() } else { "—".into() },
            r["messages"],
            f(&r["sluice"]["msgs_per_s"]),
            f(&r["raw"]["msgs_per_s"]),
            f(&r["ratio"]),
            f(&r["sluice"]["mb_per_s"]),
            f(&r["sluice"]["cpu_s_per_million"]),
            f(&r["raw"]["cpu_s_per_million"]),
            f(&r["sluice"]["peak_rss_mb"]),
            f(&r["raw"]["peak_rss_mb"]),
            if r["broker_bound"] == true { "yes" } else { "no" },
        ));
    }
    std::fs::write(docs.join("BENCHMARKS.md"), md).expect("write BENCHMARKS.md");
    eprintln!("sluice-bench: wrote docs/BENCHMARKS.md and docs/benchmarks.json");
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("MemTotal"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or_else(String::new, |kb| {
            format!(", {:.0} GiB", kb as f64 / 1024.0 / 1024.0)
        });
    format!("{cpu}, {cores} cores{memory}")
}

/// CPU seconds (user + system) a process has used, from /proc.
fn process_cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces), which ends with ')'.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    let ticks: f64 = fields
        .get(11..13)
        .map(|t| t.iter().filter_map(|v| v.parse::<f64>().ok()).sum())
        .unwrap_or(0.0);
    ticks / clock_ticks_per_second()
}

fn clock_ticks_per_second() -> f64 {
    // Linux reports /proc times in USER_HZ, 100 on every architecture Debian ships.
    100.0
}

/// This process's peak resident memory, in KiB.
fn peak_rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse().ok())
        })
        .unwrap_or(0)
}

fn worker(args: &[String]) {
    let [mode, bootstrap, topic, size, count, per_execution, group] = args else {
        panic!("worker arguments: MODE BOOTSTRAP TOPIC SIZE COUNT PER_EXECUTION GROUP");
    };
    let size: usize = size.parse().expect("size");
    let count: usize = count.parse().expect("count");
    let per_execution: usize = per_execution.parse().expect("per execution");
    let payloads: Vec<Vec<u8>> = (0..count).map(|i| payload(size, i)).collect();
    let pid = std::process::id();
    // Produce is measured warm: the client exists and has sent one message (connection,
    // metadata, producer id) before the clock starts, so the figures are throughput, not the
    // broker's start-up round trips. Consume includes joining the group, for both sides.
    let (seconds, cpu_seconds) = match mode.as_str() {
        "produce-sluice" => produce_sluice(bootstrap, topic, size, payloads, per_execution, pid),
        "produce-raw" => produce_raw(bootstrap, topic, size, payloads, pid),
        "consume-sluice" => timed(pid, || consume_sluice(bootstrap, topic, size, count, group)),
        "consume-raw" => timed(pid, || consume_raw(bootstrap, topic, size, count, group)),
        other => panic!("unknown worker mode {other}"),
    };
    println!(
        "{}",
        json!({"seconds": seconds, "cpu_seconds": cpu_seconds, "peak_rss_kb": peak_rss_kb()})
    );
}

/// Wall and CPU seconds of `work`.
fn timed(pid: u32, work: impl FnOnce()) -> (f64, f64) {
    let cpu_before = process_cpu_seconds(pid);
    let started = Instant::now();
    work();
    (
        started.elapsed().as_secs_f64(),
        process_cpu_seconds(pid) - cpu_before,
    )
}

/// `size` bytes that do not compress to nothing (the benchmark sends no compression anyway).
fn payload(size: usize, seed: usize) -> Vec<u8> {
    let mut state = (seed as u64)
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1);
    (0..size)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            b'a' + (state >> 59) as u8 % 26
        })
        .collect()
}

/// The host limits a cell needs: max.request.size above its messages, 500 per poll.
fn container(size: usize) -> ContainerProperties {
    let mut container = ContainerProperties::default();
    container.kafka.max_request_size = container.kafka.max_request_size.max(size as u64 * 2);
    container.kafka.max_poll_records = NonZeroU32::new(500).expect("500");
    container
}

fn host(text: String, size: usize) -> Host {
    let components = Components::from_sources(vec![(PathBuf::from("bench.xml"), text)])
        .unwrap_or_else(|e| panic!("{e}"));
    Host::new(components, container(size))
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

fn produce_sluice(
    bootstrap: &str,
    topic: &str,
    size: usize,
    payloads: Vec<Vec<u8>>,
    per_execution: usize,
    pid: u32,
) -> (f64, f64) {
    let host = host(
        format!(
            r#"<components>
  <connection id="bench"><bootstrap-servers>{bootstrap}</bootstrap-servers></connection>
  <operation id="send" type="produce" connection="bench"><topic>{topic}</topic></operation>
  <process id="send"><steps><connector operation="send"/></steps></process>
</components>"#
        ),
        size,
    );
    let mut executions: Vec<Vec<Document>> = Vec::new();
    let mut payloads = payloads.into_iter().enumerate().peekable();
    while payloads.peek().is_some() {
        executions.push(
            payloads
                .by_ref()
                .take(per_execution)
                .map(|(i, data)| Document {
                    data,
                    properties: DocumentProperties {
                        message_key: Some(format!("k{i}").into_bytes()),
                        ..DocumentProperties::default()
                    },
                    ..Document::default()
                })
                .collect(),
        );
    }
    let runtime = runtime();
    let run = |documents: Vec<Document>| {
        let expected = documents.len();
        let record = runtime
            .block_on(host.execute("send", Some(documents), &NoProgress))
            .expect("execution");
        assert_eq!(
            record.status,
            ExecutionStatus::Succeeded,
            "{:?}",
            record.status
        );
        assert_eq!(record.documents_out.len(), expected);
    };
    // Warm-up: one document creates the operation's producer.
    run(vec![Document {
        data: b"warm-up".to_vec(),
        ..Document::default()
    }]);
    timed(pid, || {
        for documents in executions {
            run(documents);
        }
    })
}

/// Counts deliveries that failed.
struct Failures(std::sync::atomic::AtomicUsize);

impl ClientContext for Failures {}

impl ProducerContext for Failures {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if result.is_err() {
            self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

/// The settings Sluice's Produce operation gives librdkafka for this cell.
fn producer_config(bootstrap: &str, size: usize) -> ClientConfig {
    let limits = container(size).kafka;
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("client.id", "sluice")
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("compression.codec", "none")
        .set("message.timeout.ms", "30000")
        .set(
            "message.max.bytes",
            (limits.max_request_size + 64 * 1024)
                .min(1_000_000_000)
                .to_string(),
        )
        .set(
            "queue.buffering.max.kbytes",
            u64::from(limits.producer_queue_kbytes)
                .max(limits.max_request_size.div_ceil(1024) * 2)
                .to_string(),
        );
    config
}

fn produce_raw(
    bootstrap: &str,
    topic: &str,
    size: usize,
    payloads: Vec<Vec<u8>>,
    pid: u32,
) -> (f64, f64) {
    let producer: BaseProducer<Failures> = producer_config(bootstrap, size)
        .create_with_context(Failures(Default::default()))
        .expect("producer");
    // Warm-up, as for Sluice: one message sent and acknowledged.
    producer
        .send(BaseRecord::<(), _>::to(topic).payload("warm-up"))
        .map_err(|(e, _)| e)
        .expect("warm-up");
    producer
        .flush(Duration::from_secs(30))
        .expect("warm-up flush");
    timed(pid, || produce_raw_loop(&producer, topic, &payloads))
}

fn produce_raw_loop(producer: &BaseProducer<Failures>, topic: &str, payloads: &[Vec<u8>]) {
    for (i, payload) in payloads.iter().enumerate() {
        let key = format!("k{i}");
        let mut record = BaseRecord::to(topic).payload(payload).key(&key);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((_, unsent)) => {
                    // Queue full: serve delivery reports, then try again.
                    record = unsent;
                    producer.poll(Duration::from_millis(5));
                }
            }
        }
        // Delivery reports are served now and then, not after every send.
        if i % 1000 == 999 {
            producer.poll(Duration::ZERO);
        }
    }
    producer.flush(Duration::from_secs(120)).expect("flush");
    let failed = producer
        .context()
        .0
        .load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(failed, 0, "raw deliveries failed");
}

fn consume_sluice(bootstrap: &str, topic: &str, size: usize, count: usize, group: &str) {
    let host = host(
        format!(
            r#"<components>
  <connection id="bench"><bootstrap-servers>{bootstrap}</bootstrap-servers></connection>
  <operation id="receive" type="consume" connection="bench">
    <topic>{topic}</topic><consumer-group>{group}</consumer-group>
    <minimum-messages>{count}</minimum-messages><maximum-wait>300s</maximum-wait>
    <offset-reset>earliest</offset-reset>
  </operation>
  <process id="receive"><start operation="receive"/></process>
</components>"#
        ),
        size,
    );
    let record = runtime()
        .block_on(host.execute("receive", None, &NoProgress))
        .expect("execution");
    assert_eq!(
        record.status,
        ExecutionStatus::Succeeded,
        "{:?}",
        record.status
    );
    assert!(
        record.documents_in >= count,
        "{} of {count}",
        record.documents_in
    );
}

fn consume_raw(bootstrap: &str, topic: &str, size: usize, count: usize, group: &str) {
    // The settings Sluice's Consume operation uses.
    let limits = container(size).kafka;
    let fetch_max = (limits.max_request_size + 64 * 1024).min(1_000_000_000);
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("client.id", "sluice")
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("fetch.max.bytes", fetch_max.to_string())
        .set("message.max.bytes", fetch_max.to_string())
        .set(
            "queued.max.messages.kbytes",
            u64::from(limits.consumer_prefetch_kbytes)
                .max(fetch_max.div_ceil(1024))
                .to_string(),
        )
        .create()
        .expect("consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut received = 0;
    while received < count {
        assert!(
            Instant::now() < deadline,
            "raw consume: {received} of {count}"
        );
        if let Some(message) = consumer.poll(Duration::from_millis(100)) {
            message.expect("message");
            received += 1;
        }
    }
}
