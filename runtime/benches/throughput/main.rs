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
//! - bridge: a `serve` listener (Listen → Produce to another topic) against a raw
//!   consume → produce → wait for deliveries → commit loop: its rate through a backlog, and
//!   end-to-end latency (p50/p99) at half the raw loop's rate.

#[path = "../../../tests/harness/mod.rs"]
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
    /// Resident memory when the measured work began.
    idle_rss_kb: u64,
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
        let Ok(measured) = measured else {
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
        let row = summarize(cell, &measured);
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
            if size <= 1024 && (!quick || size == 1024) {
                cells.push(Cell {
                    workload: "bridge",
                    size,
                    partitions,
                    // A listener's batch: the listen operation's default max-messages.
                    per_execution: BRIDGE_BATCH,
                    count: 20_000,
                });
            }
        }
    }
    cells
}

/// Documents per listener batch (and per raw loop's batch) in the bridge cells.
const BRIDGE_BATCH: usize = 100;

/// How long the latency runs of a bridge cell send at their steady rate.
const LATENCY_SECONDS: f64 = 3.0;

/// What a cell measured: Sluice and raw repetitions, and the extra runs some workloads have.
#[derive(Default)]
struct Measured {
    sluice: Vec<Run>,
    raw: Vec<Run>,
    /// produce with fewer documents per execution than messages: a raw loop that also waits
    /// for its deliveries every `per_execution` messages, as an execution does.
    raw_waiting: Vec<Run>,
    /// bridge: end-to-end latencies (ms) at half the raw rate, Sluice and raw.
    latency_sluice: Vec<Latency>,
    latency_raw: Vec<Latency>,
    /// bridge: the rate the latency runs sent at.
    latency_rate: f64,
}

/// Percentiles of one latency run, in milliseconds.
#[derive(Clone, Copy, Debug)]
struct Latency {
    p50: f64,
    p99: f64,
}

/// Runs the cell's repetitions, Sluice and raw alternating.
fn measure(broker: &harness::Broker, cell: &Cell, repetitions: usize) -> Measured {
    if cell.workload == "bridge" {
        return measure_bridge(broker, cell, repetitions);
    }
    let mut measured = Measured::default();
    let waiting = cell.workload == "produce" && cell.per_execution < cell.count;
    let filled = (cell.workload == "consume").then(|| {
        let topic = broker.create_topic("bench-consume", cell.partitions);
        let filler = worker_run(broker, "produce-raw", &topic, cell, "");
        assert!(filler.seconds > 0.0);
        topic
    });
    for repetition in 0..repetitions {
        let mut modes = vec!["sluice", "raw"];
        if waiting {
            modes.push("rawwait");
        }
        for mode in modes {
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
            match mode {
                "sluice" => measured.sluice.push(run),
                "raw" => measured.raw.push(run),
                _ => measured.raw_waiting.push(run),
            }
            // tansu keeps memory storage in memory: produce topics go once measured.
            if filled.is_none() {
                broker.delete_topic(&topic);
            }
        }
    }
    if let Some(topic) = &filled {
        broker.delete_topic(topic);
    }
    measured
}

/// The bridge: first the rate through a backlog (each repetition on fresh topics filled
/// beforehand), then latency at half the raw rate, Sluice and raw alternating throughout.
fn measure_bridge(broker: &harness::Broker, cell: &Cell, repetitions: usize) -> Measured {
    let mut measured = Measured::default();
    for repetition in 0..repetitions {
        for mode in ["sluice", "raw"] {
            let group = harness::unique(&format!("bench-bridge-{mode}-{repetition}"));
            let run = bridge_run(broker, mode, cell, &group, true, |reader, _| {
                let started = Instant::now();
                reader.wait_for(cell.count);
                started.elapsed().as_secs_f64()
            });
            if mode == "sluice" {
                measured.sluice.push(run);
            } else {
                measured.raw.push(run);
            }
        }
    }
    let raw_rate = cell.count as f64 / median(measured.raw.iter().map(|r| r.seconds).collect());
    measured.latency_rate = raw_rate / 2.0;
    for repetition in 0..repetitions.min(3) {
        for mode in ["sluice", "raw"] {
            let group = harness::unique(&format!("bench-latency-{mode}-{repetition}"));
            let mut latency = None;
            bridge_run(broker, mode, cell, &group, false, |reader, input| {
                // The bridge is ready once a first message has come through.
                let load = LoadProducer::new(&broker.bootstrap(), input, cell.size);
                load.send_one();
                reader.wait_for(1);
                // The reader notes each message as it arrives, while the load is sent.
                let total = (measured.latency_rate * LATENCY_SECONDS) as usize;
                let latencies = std::thread::scope(|scope| {
                    let reading = scope.spawn(|| reader.wait_for(1 + total));
                    load.send_at(measured.latency_rate, total);
                    reading.join().expect("reader")
                });
                latency = Some(percentiles(latencies));
                0.0
            });
            let latency = latency.expect("latency measured");
            if mode == "sluice" {
                measured.latency_sluice.push(latency);
            } else {
                measured.latency_raw.push(latency);
            }
        }
    }
    measured
}

/// Starts a bridge worker (`sluice` or `raw`) between fresh input and output topics (the input
/// filled with the cell's messages first if `backlog`), lets `drive` feed and read it (given
/// the input topic; returning the seconds to report), then stops the worker, collects its
/// figures and deletes the topics.
fn bridge_run(
    broker: &harness::Broker,
    mode: &str,
    cell: &Cell,
    group: &str,
    backlog: bool,
    drive: impl FnOnce(&mut OutputReader, &str) -> f64,
) -> Run {
    let input = broker.create_topic("bench-bridge-in", cell.partitions);
    let output = broker.create_topic("bench-bridge-out", cell.partitions);
    if backlog {
        let filler = worker_run(broker, "produce-raw", &input, cell, "");
        assert!(filler.seconds > 0.0);
    }
    let mut reader = OutputReader::new(&broker.bootstrap(), &output, cell.partitions);
    let broker_before = process_cpu_seconds(broker.pid());
    let mut worker = worker_command(
        &format!("bridge-{mode}"),
        &broker.bootstrap(),
        &format!("{input},{output}"),
        cell,
        group,
    )
    .stdin(std::process::Stdio::piped())
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .expect("start a bridge worker");
    let seconds = drive(&mut reader, &input);
    let broker_cpu_seconds = process_cpu_seconds(broker.pid()) - broker_before;
    // Closing its standard input tells the worker to stop.
    drop(worker.stdin.take());
    let finished = worker.wait_with_output().expect("bridge worker output");
    // No client may still read a topic when it is deleted: tansu's metadata for a deleted
    // topic has no name, and librdkafka 2.12 crashes comparing it (strcmp on null).
    drop(reader);
    broker.delete_topic(&input);
    broker.delete_topic(&output);
    finished_run(mode, &finished, Some(seconds), broker_cpu_seconds)
}

/// This benchmark as a worker of `mode` (arguments: see `worker`).
fn worker_command(mode: &str, bootstrap: &str, topic: &str, cell: &Cell, group: &str) -> Command {
    let mut command = Command::new(std::env::current_exe().expect("this binary"));
    command
        .args(["--worker", mode, bootstrap, topic])
        .args([
            cell.size.to_string(),
            cell.count.to_string(),
            cell.per_execution.to_string(),
        ])
        .arg(if group.is_empty() { "-" } else { group })
        .env("RUST_LOG", "error");
    command
}

/// The figures a worker reported; `seconds`, when given, replaces its own (a bridge is timed
/// by its reader).
fn finished_run(
    mode: &str,
    output: &std::process::Output,
    seconds: Option<f64>,
    broker_cpu_seconds: f64,
) -> Run {
    assert!(
        output.status.success(),
        "worker {mode} failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_slice(&output.stdout).expect("worker JSON");
    Run {
        seconds: seconds.unwrap_or_else(|| report["seconds"].as_f64().expect("seconds")),
        cpu_seconds: report["cpu_seconds"].as_f64().expect("cpu"),
        peak_rss_kb: report["peak_rss_kb"].as_u64().expect("rss"),
        idle_rss_kb: report["idle_rss_kb"].as_u64().expect("idle rss"),
        broker_cpu_seconds,
    }
}

/// Reads a bridge's output topic from the start and notes each message's latency: now minus
/// the send time the load producer wrote into the payload's first 8 bytes.
struct OutputReader {
    consumer: BaseConsumer,
    received: usize,
}

impl OutputReader {
    fn new(bootstrap: &str, topic: &str, partitions: i32) -> Self {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .set("group.id", harness::unique("bench-reader"))
            .set("enable.auto.commit", "false")
            // Fetch answers as soon as there is data; a short wait bounds what a broker that
            // holds fetches adds to the measured latency.
            .set("fetch.wait.max.ms", "5")
            .create()
            .expect("reader");
        let mut assignment = rdkafka::TopicPartitionList::new();
        for partition in 0..partitions {
            assignment
                .add_partition_offset(topic, partition, rdkafka::Offset::Beginning)
                .expect("assignment");
        }
        consumer.assign(&assignment).expect("assign");
        Self {
            consumer,
            received: 0,
        }
    }

    /// Reads until `total` messages have arrived in all; returns the latencies (ms) of those
    /// read in this call that carry a send time.
    fn wait_for(&mut self, total: usize) -> Vec<f64> {
        let deadline = Instant::now() + Duration::from_secs(300);
        let mut latencies = Vec::new();
        while self.received < total {
            assert!(
                Instant::now() < deadline,
                "bridge output: {} of {total}",
                self.received
            );
            let Some(message) = self.consumer.poll(Duration::from_millis(100)) else {
                continue;
            };
            let message = message.expect("bridge output message");
            self.received += 1;
            let payload = rdkafka::Message::payload(&message).unwrap_or_default();
            if let Some(sent) = payload.get(..8).and_then(|b| <[u8; 8]>::try_from(b).ok()) {
                let sent = u64::from_le_bytes(sent);
                if sent > 0 {
                    latencies.push(micros_now().saturating_sub(sent) as f64 / 1000.0);
                }
            }
        }
        latencies
    }
}

fn micros_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_micros() as u64
}

fn percentiles(mut latencies: Vec<f64>) -> Latency {
    assert!(!latencies.is_empty(), "no latencies measured");
    latencies.sort_by(f64::total_cmp);
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize];
    Latency {
        p50: at(0.50),
        p99: at(0.99),
    }
}

/// Sends timestamped payloads into a bridge's input topic at a steady rate.
struct LoadProducer {
    producer: BaseProducer<Deliveries>,
    topic: String,
    size: usize,
    sent: usize,
}

impl LoadProducer {
    fn new(bootstrap: &str, topic: &str, size: usize) -> Self {
        Self {
            producer: producer_config(bootstrap, size)
                .create_with_context(Deliveries::default())
                .expect("load producer"),
            topic: topic.to_string(),
            size,
            sent: 0,
        }
    }

    /// A message whose send time is 0: it is not counted as a latency.
    fn send_one(&self) {
        self.send(0);
        await_deliveries(&self.producer, 1);
    }

    fn send(&self, stamp: u64) {
        let mut payload = payload(self.size.max(8), self.sent);
        payload[..8].copy_from_slice(&stamp.to_le_bytes());
        let key = format!("k{}", self.sent);
        let mut record = BaseRecord::to(&self.topic).payload(&payload).key(&key);
        loop {
            match self.producer.send(record) {
                Ok(()) => return,
                Err((_, unsent)) => {
                    record = unsent;
                    self.producer.poll(Duration::from_millis(1));
                }
            }
        }
    }

    /// Sends `total` messages at `rate` a second, each stamped as it is sent.
    fn send_at(mut self, rate: f64, total: usize) {
        let started = Instant::now();
        while self.sent < total {
            let due = ((started.elapsed().as_secs_f64() * rate) as usize).min(total);
            while self.sent < due {
                self.send(micros_now());
                self.sent += 1;
            }
            self.producer.poll(Duration::ZERO);
            // Pacing: the next message is due within the millisecond at the rates measured.
            std::thread::sleep(Duration::from_micros(500));
        }
        // The warm-up message first.
        await_deliveries(&self.producer, 1 + total);
    }
}

/// Runs one repetition in a child process and measures the broker's CPU meanwhile.
fn worker_run(broker: &harness::Broker, mode: &str, topic: &str, cell: &Cell, group: &str) -> Run {
    let broker_before = process_cpu_seconds(broker.pid());
    let output = worker_command(mode, &broker.bootstrap(), topic, cell, group)
        .output()
        .expect("run a worker");
    let broker_cpu_seconds = process_cpu_seconds(broker.pid()) - broker_before;
    finished_run(mode, &output, None, broker_cpu_seconds)
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
    let added = median(
        runs.iter()
            .map(|r| r.peak_rss_kb.saturating_sub(r.idle_rss_kb) as f64)
            .collect(),
    );
    let messages = cell.count as f64;
    json!({
        "seconds": seconds,
        "msgs_per_s": messages / seconds,
        "mb_per_s": messages * cell.size as f64 / seconds / 1e6,
        "cpu_s_per_million": cpu / messages * 1e6,
        "peak_rss_mb": rss / 1024.0,
        "added_rss_mb": added / 1024.0,
        // tansu runs on its own threads: near one core busy means the broker sets the pace.
        "broker_cpu_share": broker_cpu / seconds,
        "repetitions": runs.iter().map(|r| json!({"seconds": r.seconds, "cpu_seconds": r.cpu_seconds,
            "peak_rss_kb": r.peak_rss_kb, "idle_rss_kb": r.idle_rss_kb,
            "broker_cpu_seconds": r.broker_cpu_seconds})).collect::<Vec<_>>(),
    })
}

fn summarize(cell: &Cell, measured: &Measured) -> Value {
    let (s, r) = (side(cell, &measured.sluice), side(cell, &measured.raw));
    let rate = |v: &Value| v["msgs_per_s"].as_f64().unwrap_or(0.0);
    let ratio = rate(&s) / rate(&r).max(f64::MIN_POSITIVE);
    let mut sides = vec![&s, &r];
    let waiting = (!measured.raw_waiting.is_empty()).then(|| side(cell, &measured.raw_waiting));
    sides.extend(waiting.as_ref());
    let broker_bound = sides
        .iter()
        .any(|v| v["broker_cpu_share"].as_f64().unwrap_or(0.0) >= 0.9);
    let mut row = json!({
        "workload": cell.workload,
        "size": cell.size,
        "partitions": cell.partitions,
        "per_execution": cell.per_execution,
        "messages": cell.count,
        "sluice": s,
        "raw": r,
        "ratio": ratio,
        "broker_bound": broker_bound,
    });
    if let Some(waiting) = waiting {
        row["ratio_raw_waiting"] = json!(rate(&s) / rate(&waiting).max(f64::MIN_POSITIVE));
        row["raw_waiting"] = waiting;
    }
    if cell.workload == "bridge" {
        let summary = |runs: &[Latency]| {
            json!({
                "p50_ms": median(runs.iter().map(|l| l.p50).collect()),
                "p99_ms": median(runs.iter().map(|l| l.p99).collect()),
                "runs": runs.iter().map(|l| json!({"p50_ms": l.p50, "p99_ms": l.p99})).collect::<Vec<_>>(),
            })
        };
        row["latency"] = json!({
            "rate_msgs_per_s": measured.latency_rate,
            "seconds": LATENCY_SECONDS,
            "sluice": summary(&measured.latency_sluice),
            "raw": summary(&measured.latency_raw),
        });
    }
    row
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
         idempotent, linger.ms 0), in executions of *docs/exec* documents, against a raw \
         `BaseProducer` loop with the same client settings that waits for its deliveries only \
         at the end; *raw waiting*: the same loop waiting for every delivery after each \
         *docs/exec* messages, as an execution must before it ends. Payloads are generated \
         before the clock starts.\n\
         - **consume**: a Sluice Consume operation (container `kafka.max.poll.records=500`, \
         minimum = all messages) against a raw `BaseConsumer` loop, each with a fresh consumer \
         group on the same pre-filled topic; both times include joining the group.\n\
         - *CPU s/M*: the client process's CPU seconds per million messages; *RSS*: its peak \
         resident memory. *broker-bound*: tansu used ≥ 90 % of a core during the run, so \
         throughput says more about the broker than the client: judge such cells on CPU and \
         memory.\n\n",
    );
    md.push_str("| workload | size | partitions | docs/exec | messages | Sluice msg/s | raw msg/s | ratio | raw waiting msg/s | ratio to waiting | Sluice MB/s | CPU s/M Sluice / raw | peak RSS MB Sluice / raw | broker-bound |\n");
    md.push_str(
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n",
    );
    for r in results.iter().filter(|r| r["workload"] != "bridge") {
        if r["failed"] == true {
            md.push_str(&format!(
                "| {} | {} | {} | {} | {} | failed | | | | | | | | |\n",
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
            "| {} | {} | {} | {} | {} | {:.0} | {:.0} | {:.2} | {} | {} | {:.1} | {} |\n",
            r["workload"].as_str().unwrap_or("?"),
            size_label(r["size"].as_u64().unwrap_or(0) as usize),
            r["partitions"],
            if r["workload"] == "produce" {
                r["per_execution"].to_string()
            } else {
                "—".into()
            },
            r["messages"],
            f(&r["sluice"]["msgs_per_s"]),
            f(&r["raw"]["msgs_per_s"]),
            f(&r["ratio"]),
            r["raw_waiting"]["msgs_per_s"]
                .as_f64()
                .map_or("—".into(), |v| format!("{v:.0}")),
            r["ratio_raw_waiting"]
                .as_f64()
                .map_or("—".into(), |v| format!("{v:.2}")),
            f(&r["sluice"]["mb_per_s"]),
            client_columns(r),
        ));
    }
    bridge_table(&mut md, results);
    memory_section(&mut md, results);
    std::fs::write(docs.join("BENCHMARKS.md"), md).expect("write BENCHMARKS.md");
    eprintln!("sluice-bench: wrote docs/BENCHMARKS.md and docs/benchmarks.json");
}

/// What the container properties let one cell's Sluice worker add to its idle memory, in MiB,
/// and how that figure is made up.
fn memory_bound(r: &Value) -> (f64, String) {
    let size = r["size"].as_u64().unwrap_or(0) as f64;
    let per_execution = r["per_execution"].as_f64().unwrap_or(0.0);
    let messages = r["messages"].as_f64().unwrap_or(0.0);
    let limits = container(size as usize).kafka;
    let mib = 1024.0 * 1024.0;
    let request = limits.max_request_size as f64 / mib;
    // The librdkafka queues, as Sluice bounds them (see Limits in the connector).
    let producer_queue = (f64::from(limits.producer_queue_kbytes) / 1024.0).max(2.0 * request);
    let prefetch = (f64::from(limits.consumer_prefetch_kbytes) / 1024.0).max(request + 0.0625);
    // Each document in flight: its bytes, plus its properties, record and delivery future.
    let documents = |n: f64| n * (size + PER_DOCUMENT_OVERHEAD) / mib;
    let (held, terms) = match r["workload"].as_str() {
        // The documents exist before the clock starts (they are the input).
        Some("produce") => (
            producer_queue + documents(per_execution) - per_execution * size / mib,
            format!(
                "producer queue {producer_queue:.0} + per-document overhead {:.1}",
                documents(per_execution) - per_execution * size / mib
            ),
        ),
        // Consume hands all its documents to the execution at once.
        Some("consume") => (
            prefetch + documents(messages),
            format!(
                "prefetch {prefetch:.0} + {messages:.0} documents {:.0}",
                documents(messages)
            ),
        ),
        // A listener's batch, and what its Produce step queues.
        _ => (
            prefetch + producer_queue + documents(per_execution),
            format!(
                "prefetch {prefetch:.0} + producer queue {producer_queue:.0} + {per_execution:.0} documents {:.1}",
                documents(per_execution)
            ),
        ),
    };
    let bound = held + RUNTIME_ALLOWANCE_MIB;
    (
        bound,
        format!("{terms} + runtime {RUNTIME_ALLOWANCE_MIB:.0} = {bound:.0}"),
    )
}

/// Bytes besides the payload that a document in flight costs (struct, properties, record,
/// delivery future), generously rounded.
const PER_DOCUMENT_OVERHEAD: f64 = 1024.0;

/// Threads, allocator arenas and client buffers that do not grow with the documents, in MiB.
const RUNTIME_ALLOWANCE_MIB: f64 = 32.0;

fn memory_section(md: &mut String, results: &[Value]) {
    md.push_str(
        "\n## Memory against the container limits\n\nWhat the measured work added to the \
         Sluice worker's resident memory (peak minus the resident memory when the work began; \
         median of the repetitions), against what the container properties allow it to add: \
         the librdkafka queues as Sluice bounds them (`kafka.producer.queue.kbytes`, at least \
         twice `kafka.max.request.size`; `kafka.consumer.prefetch.kbytes`, at least one \
         request), the documents an execution holds (their bytes plus 1 KiB each for \
         properties, records and futures), and 32 MiB for threads and allocator arenas. \
         Figures in MiB.\n\n| workload | size | partitions | docs/exec | added | bound: arithmetic | within |\n| --- | --- | ---: | ---: | ---: | --- | --- |\n",
    );
    for r in results.iter().filter(|r| r["failed"] != true) {
        let added = r["sluice"]["added_rss_mb"].as_f64().unwrap_or(0.0);
        let (bound, arithmetic) = memory_bound(r);
        md.push_str(&format!(
            "| {} | {} | {} | {} | {added:.0} | {arithmetic} | {} |\n",
            r["workload"].as_str().unwrap_or("?"),
            size_label(r["size"].as_u64().unwrap_or(0) as usize),
            r["partitions"],
            if r["workload"] == "consume" {
                "—".to_string()
            } else {
                r["per_execution"].to_string()
            },
            if added <= bound { "yes" } else { "**no**" },
        ));
    }
}

/// The last columns of both tables: client CPU per million messages and peak RSS, Sluice /
/// raw, and whether the broker set the pace.
fn client_columns(r: &Value) -> String {
    let f = |v: &Value| v.as_f64().unwrap_or(0.0);
    format!(
        "{:.1} / {:.1} | {:.0} / {:.0} | {}",
        f(&r["sluice"]["cpu_s_per_million"]),
        f(&r["raw"]["cpu_s_per_million"]),
        f(&r["sluice"]["peak_rss_mb"]),
        f(&r["raw"]["peak_rss_mb"]),
        if r["broker_bound"] == true {
            "yes"
        } else {
            "no"
        },
    )
}

fn bridge_table(md: &mut String, results: &[Value]) {
    let bridges: Vec<&Value> = results
        .iter()
        .filter(|r| r["workload"] == "bridge")
        .collect();
    if bridges.is_empty() {
        return;
    }
    md.push_str(&format!(
        "\n## Listen bridge\n\nA `serve` listener (Listen → Produce to another topic, batches of \
         {BRIDGE_BATCH}) against a raw loop with the same guarantee: poll up to {BRIDGE_BATCH} \
         messages, produce them, wait for every delivery, commit. *Rate*: messages a second \
         through a backlog on fresh topics, from the bridge's start (joining the group \
         included) to its last output read. *Latency*: input messages sent at half the raw \
         rate for {LATENCY_SECONDS:.0} s, each stamped with its send time; latency is when a \
         reader of the output topic sees it, minus that stamp (the load producer and the \
         reader run in the benchmark's own process, on the same 2 cores as tansu and the \
         bridge).\n\n"
    ));
    md.push_str("| size | partitions | messages | Sluice msg/s | raw msg/s | ratio | load msg/s | p50 ms Sluice / raw | p99 ms Sluice / raw | CPU s/M Sluice / raw | peak RSS MB Sluice / raw | broker-bound |\n");
    md.push_str(
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n",
    );
    for r in bridges {
        let f = |v: &Value| v.as_f64().unwrap_or(0.0);
        if r["failed"] == true {
            md.push_str(&format!(
                "| {} | {} | {} | failed | | | | | | | | |\n",
                size_label(r["size"].as_u64().unwrap_or(0) as usize),
                r["partitions"],
                r["messages"]
            ));
            continue;
        }
        let latency = &r["latency"];
        md.push_str(&format!(
            "| {} | {} | {} | {:.0} | {:.0} | {:.2} | {:.0} | {:.1} / {:.1} | {:.1} / {:.1} | {} |\n",
            size_label(r["size"].as_u64().unwrap_or(0) as usize),
            r["partitions"],
            r["messages"],
            f(&r["sluice"]["msgs_per_s"]),
            f(&r["raw"]["msgs_per_s"]),
            f(&r["ratio"]),
            f(&latency["rate_msgs_per_s"]),
            f(&latency["sluice"]["p50_ms"]),
            f(&latency["raw"]["p50_ms"]),
            f(&latency["sluice"]["p99_ms"]),
            f(&latency["raw"]["p99_ms"]),
            client_columns(r),
        ));
    }
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
    status_kb("VmHWM:")
}

/// A KiB figure of /proc/self/status (`VmRSS:`, `VmHWM:`).
fn status_kb(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with(field))
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
    let payloads: Vec<Vec<u8>> = if mode.starts_with("bridge") {
        Vec::new()
    } else {
        (0..count).map(|i| payload(size, i)).collect()
    };
    let pid = std::process::id();
    // Produce is measured warm: the client exists and has sent one message (connection,
    // metadata, producer id) before the clock starts, so the figures are throughput, not the
    // broker's start-up round trips. Consume includes joining the group, for both sides.
    let (seconds, cpu_seconds) = match mode.as_str() {
        "produce-sluice" => produce_sluice(bootstrap, topic, size, payloads, per_execution, pid),
        "produce-raw" => produce_raw(bootstrap, topic, size, payloads, count, pid),
        "produce-rawwait" => produce_raw(bootstrap, topic, size, payloads, per_execution, pid),
        "bridge-sluice" => timed(pid, || bridge_sluice(bootstrap, topic, size, group)),
        "bridge-raw" => timed(pid, || bridge_raw(bootstrap, topic, size, group)),
        "consume-sluice" => timed(pid, || consume_sluice(bootstrap, topic, size, count, group)),
        "consume-raw" => timed(pid, || consume_raw(bootstrap, topic, size, count, group)),
        other => panic!("unknown worker mode {other}"),
    };
    println!(
        "{}",
        json!({"seconds": seconds, "cpu_seconds": cpu_seconds, "peak_rss_kb": peak_rss_kb(),
               "idle_rss_kb": IDLE_RSS_KB.load(std::sync::atomic::Ordering::Relaxed)})
    );
}

/// Resident memory just before the measured work began (KiB): the worker's idle figure.
static IDLE_RSS_KB: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Wall and CPU seconds of `work`.
fn timed(pid: u32, work: impl FnOnce()) -> (f64, f64) {
    IDLE_RSS_KB.store(status_kb("VmRSS:"), std::sync::atomic::Ordering::Relaxed);
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

/// Counts delivery reports, and those that failed.
#[derive(Default)]
struct Deliveries {
    done: std::sync::atomic::AtomicUsize,
    failed: std::sync::atomic::AtomicUsize,
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if result.is_err() {
            self.failed
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        self.done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Serves delivery reports until `sent` messages (counted since the producer was created)
/// have theirs, and checks none failed. Without a blocking poll: rust-rdkafka 0.39's
/// `BaseProducer::poll` (and so `flush`, which polls in 100 ms slices) returns only when its
/// timeout has passed, even when reports came earlier, which would add the timeout to every
/// wait of a raw loop; so it serves what is there and naps 50 µs between looks.
fn await_deliveries(producer: &BaseProducer<Deliveries>, sent: usize) {
    let deadline = Instant::now() + Duration::from_secs(120);
    let context = producer.context();
    loop {
        producer.poll(Duration::ZERO);
        if context.done.load(std::sync::atomic::Ordering::Relaxed) >= sent {
            break;
        }
        assert!(Instant::now() < deadline, "raw deliveries did not arrive");
        std::thread::sleep(Duration::from_micros(50));
    }
    assert_eq!(
        context.failed.load(std::sync::atomic::Ordering::Relaxed),
        0,
        "raw deliveries failed"
    );
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
        .set("linger.ms", "0")
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

/// A raw producer loop; it waits for every delivery after each `wait_every` messages.
fn produce_raw(
    bootstrap: &str,
    topic: &str,
    size: usize,
    payloads: Vec<Vec<u8>>,
    wait_every: usize,
    pid: u32,
) -> (f64, f64) {
    let producer: BaseProducer<Deliveries> = producer_config(bootstrap, size)
        .create_with_context(Deliveries::default())
        .expect("producer");
    // Warm-up, as for Sluice: one message sent and acknowledged.
    producer
        .send(BaseRecord::<(), _>::to(topic).payload("warm-up"))
        .map_err(|(e, _)| e)
        .expect("warm-up");
    producer
        .flush(Duration::from_secs(30))
        .expect("warm-up flush");
    timed(pid, || {
        for (chunk, payloads) in payloads.chunks(wait_every).enumerate() {
            produce_raw_loop(&producer, topic, payloads, chunk * wait_every);
        }
    })
}

/// Sends `payloads` (keys numbered from `first`) and waits for every delivery.
fn produce_raw_loop(
    producer: &BaseProducer<Deliveries>,
    topic: &str,
    payloads: &[Vec<u8>],
    first: usize,
) {
    for (i, payload) in (first..).zip(payloads) {
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
    // The warm-up message was the first.
    await_deliveries(producer, 1 + first + payloads.len());
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

/// The settings Sluice's Consume and Listen operations give librdkafka for this cell.
fn consumer_config(bootstrap: &str, size: usize, group: &str) -> ClientConfig {
    let limits = container(size).kafka;
    let fetch_max = (limits.max_request_size + 64 * 1024).min(1_000_000_000);
    let mut config = ClientConfig::new();
    config
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
        );
    config
}

fn consume_raw(bootstrap: &str, topic: &str, size: usize, count: usize, group: &str) {
    let consumer: BaseConsumer = consumer_config(bootstrap, size, group)
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

/// Ends when the parent closes this worker's standard input.
fn stop_on_stdin_close() -> std::sync::Arc<std::sync::atomic::AtomicBool> {
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = stop.clone();
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
        flag.store(true, std::sync::atomic::Ordering::Relaxed);
    });
    stop
}

/// A `serve` listener: Listen on the input topic, Produce each document to the output topic,
/// until standard input closes (then it drains, as on a shutdown signal).
fn bridge_sluice(bootstrap: &str, topics: &str, size: usize, group: &str) {
    let (input, output) = topics.split_once(',').expect("INPUT,OUTPUT");
    let host = host(
        format!(
            r#"<components>
  <connection id="bench"><bootstrap-servers>{bootstrap}</bootstrap-servers></connection>
  <operation id="listen" type="listen" connection="bench">
    <topic>{input}</topic><consumer-group>{group}</consumer-group>
    <offset-reset>earliest</offset-reset><max-messages>{BRIDGE_BATCH}</max-messages>
  </operation>
  <operation id="send" type="produce" connection="bench"><topic>{output}</topic></operation>
  <process id="bridge"><start operation="listen"/><steps><connector operation="send"/></steps></process>
</components>"#
        ),
        size,
    );
    let limits = host.container().host.clone();
    let shared = sluice_runtime::listener::Shared {
        host: std::sync::Arc::new(host),
        executions: std::sync::Arc::new(tokio::sync::Semaphore::new(
            limits.max_concurrent_executions.get() as usize,
        )),
        drain: limits.drain_timeout,
    };
    let control = sluice_runtime::listener::ListenerControl::new("bridge", false);
    let shutdown = tokio_util::sync::CancellationToken::new();
    let stop = stop_on_stdin_close();
    let runtime = runtime();
    runtime.block_on(async {
        let cancel = shutdown.clone();
        tokio::spawn(async move {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            cancel.cancel();
        });
        sluice_runtime::listener::run(shared, control, shutdown)
            .await
            .expect("listener");
    });
}

/// The raw counterpart of a listener with the same guarantee (at-least-once): poll a batch,
/// produce it, wait for every delivery, commit, until standard input closes.
fn bridge_raw(bootstrap: &str, topics: &str, size: usize, group: &str) {
    let (input, output) = topics.split_once(',').expect("INPUT,OUTPUT");
    let consumer: BaseConsumer = consumer_config(bootstrap, size, group)
        .create()
        .expect("consumer");
    consumer.subscribe(&[input]).expect("subscribe");
    let producer: BaseProducer<Deliveries> = producer_config(bootstrap, size)
        .create_with_context(Deliveries::default())
        .expect("producer");
    let stop = stop_on_stdin_close();
    let mut next = rdkafka::TopicPartitionList::new();
    let mut sent = 0;
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        let mut batch = 0;
        let mut wait = Duration::from_millis(100);
        while batch < BRIDGE_BATCH {
            let Some(message) = consumer.poll(wait) else {
                break;
            };
            let message = message.expect("message");
            let (payload, key) = (
                rdkafka::Message::payload(&message).unwrap_or_default(),
                rdkafka::Message::key(&message),
            );
            let mut record = BaseRecord::to(output).payload(payload);
            if let Some(key) = key {
                record = record.key(key);
            }
            loop {
                match producer.send(record) {
                    Ok(()) => break,
                    Err((_, unsent)) => {
                        record = unsent;
                        producer.poll(Duration::from_millis(5));
                    }
                }
            }
            next.add_partition_offset(
                rdkafka::Message::topic(&message),
                rdkafka::Message::partition(&message),
                rdkafka::Offset::Offset(rdkafka::Message::offset(&message) + 1),
            )
            .expect("offset");
            batch += 1;
            // The rest of the batch is what is already fetched, as a listener takes it.
            wait = Duration::ZERO;
        }
        if batch == 0 {
            continue;
        }
        sent += batch;
        await_deliveries(&producer, sent);
        consumer
            .commit(&next, rdkafka::consumer::CommitMode::Sync)
            .expect("commit");
        next = rdkafka::TopicPartitionList::new();
    }
}
