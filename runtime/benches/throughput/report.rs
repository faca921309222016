//! Writes the report: `docs/benchmarks.json` (every row as measured) and `docs/BENCHMARKS.md`
//! (the produce and consume table, the Listen bridge table, and memory against the limits the
//! container properties set).

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::latency::LATENCY_SECONDS;
use crate::matrix::{BRIDGE_BATCH, RUN_CHUNK};
use crate::resources::machine;
use crate::worker::sluice::container;

/// Bytes besides the payload that a document in flight costs (struct, properties, record,
/// delivery future), generously rounded.
const PER_DOCUMENT_OVERHEAD: f64 = 1024.0;

/// Threads, allocator arenas and client buffers that do not grow with the documents, in MiB.
const RUNTIME_ALLOWANCE_MIB: f64 = 32.0;

/// The folder both documents go to after a whole run.
pub fn docs() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs")
}

/// The folder for a run of some cells (`--only`): their figures beside the published ones
/// would make a report no run produced.
pub fn partial() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("bench-only")
}

/// Writes both documents from the rows so far into `folder`.
pub fn write(folder: &Path, results: &[Value], repetitions: usize, quick: bool) {
    std::fs::create_dir_all(folder).expect("report folder");
    let machine = machine();
    let date = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let json = json!({"date": date, "machine": machine, "repetitions": repetitions,
                      "quick": quick, "results": results});
    std::fs::write(
        folder.join("benchmarks.json"),
        serde_json::to_string_pretty(&json).expect("JSON") + "\n",
    )
    .expect("write benchmarks.json");
    write_markdown(folder, &json);
    eprintln!(
        "sluice-bench: wrote BENCHMARKS.md and benchmarks.json in {}",
        folder.display()
    );
}

/// `--report`: writes docs/BENCHMARKS.md again from docs/benchmarks.json as it is (after a
/// change to the report's text, without measuring again).
pub fn rewrite() {
    let text = std::fs::read_to_string(docs().join("benchmarks.json")).expect("benchmarks.json");
    write_markdown(
        &docs(),
        &serde_json::from_str(&text).expect("benchmarks.json is JSON"),
    );
    eprintln!("sluice-bench: wrote docs/BENCHMARKS.md from docs/benchmarks.json");
}

/// BENCHMARKS.md in `folder` from a run's JSON document.
fn write_markdown(folder: &Path, run: &Value) {
    let results = run["results"].as_array().map_or(&[][..], Vec::as_slice);
    let mut md = introduction(
        run["date"].as_str().unwrap_or("?"),
        run["machine"].as_str().unwrap_or("?"),
        run["repetitions"].as_u64().unwrap_or(0) as usize,
        run["quick"] == true,
    );
    targets_table(&mut md, results);
    client_table(&mut md, results);
    bridge_table(&mut md, results);
    run_table(&mut md, results);
    memory_section(&mut md, results);
    std::fs::write(folder.join("BENCHMARKS.md"), md).expect("write BENCHMARKS.md");
}

/// Host overhead is judged on the in-memory broker, where the broker is not the limit: Produce
/// at 100 B and 1 KiB, 1 and 4 partitions, 100 and 10,000 documents an execution against the
/// raw loop that waits as an execution does (rate ≥ 0.95×, CPU per message ≤ 1.5×); Consume
/// and the Listen bridge against raw (rate ≥ 0.95×); `sluice run`'s peak RSS ≤ 1.5× its input.
fn targets_table(md: &mut String, results: &[Value]) {
    let judged: Vec<&Value> = results
        .iter()
        .filter(|r| r["broker"] == "memory")
        .filter(|r| match r["workload"].as_str() {
            Some("produce") => {
                matches!(r["size"].as_u64(), Some(100 | 1024))
                    && matches!(r["per_execution"].as_u64(), Some(100 | 10_000))
            }
            Some("consume" | "bridge") => matches!(r["size"].as_u64(), Some(100 | 1024)),
            Some("run") => true,
            _ => false,
        })
        .collect();
    if judged.is_empty() {
        return;
    }
    md.push_str(
        "## Targets\n\nJudged on the in-memory broker: Produce against the raw loop that waits \
         per execution (rate ≥ 0.95×, CPU per message ≤ 1.5×), Consume and the Listen bridge \
         against raw (rate ≥ 0.95×), `sluice run`'s peak RSS ≤ 1.5× its input. Where a cell \
         misses, [PROFILES.md](PROFILES.md) names the remaining cost from a profile.\n\n\
         | cell | rate ratio | CPU ratio | met |\n| --- | ---: | ---: | --- |\n",
    );
    for r in judged {
        let label = format!(
            "{} {} {}p{}",
            r["workload"].as_str().unwrap_or("?"),
            size_label(r),
            r["partitions"],
            if r["workload"] == "produce" {
                format!(" {}/exec", r["per_execution"])
            } else {
                String::new()
            }
        );
        // A judged cell that did not finish misses its target, and shows so.
        let (rate, cpu, met) = match r["workload"].as_str() {
            _ if r["failed"] == true => (failure(r).to_string(), "—".into(), false),
            Some("produce") => {
                let rate = num(&r["ratio_raw_waiting"]);
                let cpu = num(&r["sluice"]["cpu_s_per_million"])
                    / num(&r["raw_waiting"]["cpu_s_per_million"]).max(f64::MIN_POSITIVE);
                (
                    format!("{rate:.2}"),
                    format!("{cpu:.2}"),
                    rate >= 0.95 && cpu <= 1.5,
                )
            }
            Some("run") => {
                let rss = num(&r["peak_rss_to_input"]);
                (format!("peak RSS {rss:.2}× input"), "—".into(), rss <= 1.5)
            }
            _ => {
                let rate = num(&r["ratio"]);
                (format!("{rate:.2}"), "—".into(), rate >= 0.95)
            }
        };
        md.push_str(&format!(
            "| {label} | {rate} | {cpu} | {} |\n",
            if met { "yes" } else { "**no**" }
        ));
    }
    md.push('\n');
}

/// The title, how the figures were made, and what the workloads and columns mean.
fn introduction(date: &str, machine: &str, repetitions: usize, quick: bool) -> String {
    let mut md = String::new();
    md.push_str("# Benchmarks: Sluice against raw librdkafka\n\n");
    md.push_str(&format!(
        "Written by `./dev bench`{} on {date}. Machine: {machine}. Each cell runs on two \
         brokers on loopback, started by the benchmark: **memory**, librdkafka's mock cluster \
         in a process of its own (a fresh one per cell), where the broker is not the limit and \
         the clients' own costs show; and **tansu** 0.6.0 (memory storage), a real \
         Kafka-protocol broker that sets a ceiling of its own. Both share the machine's 2 cores \
         with the client, so CPU per message is the figure to compare beside the rates. Each \
         cell: {repetitions} repetitions, Sluice and raw alternating, each in its own process; \
         medians shown. Raw data: [benchmarks.json](benchmarks.json).\n\n",
        if quick { " --quick" } else { "" }
    ));
    md.push_str(
        "- **produce**: documents through a Sluice process with one Produce step (acks=all, \
         idempotent; librdkafka's linger.ms, flushed when an execution has sent its last \
         record), in executions of *docs/exec* documents, against a raw `BaseProducer` loop \
         with the same client settings but linger.ms 0 (its best for a loop that sends in one \
         burst) that waits for its deliveries only at the end; *raw waiting*: the same loop \
         waiting for every delivery after each *docs/exec* messages, as an execution must \
         before it ends. Payloads are generated before the clock starts.\n\
         - **consume**: a Sluice Consume operation (container `kafka.max.poll.records=500`, \
         minimum = all messages) against a raw `BaseConsumer` loop, each with a fresh consumer \
         group on the same pre-filled topic; both times include joining the group.\n\
         - *CPU s/M*: the client process's CPU seconds per million messages; *RSS*: its peak \
         resident memory. *broker-bound*: the broker used ≥ 90 % of a core during the run, so \
         throughput says more about the broker than the client: judge such cells on CPU and \
         memory.\n\n",
    );
    md
}

/// The produce and consume cells.
fn client_table(md: &mut String, results: &[Value]) {
    md.push_str("## Produce and consume\n\n");
    md.push_str("| workload · broker | size | partitions | docs/exec | messages | Sluice msg/s | raw msg/s | ratio | raw waiting msg/s | ratio to waiting | raw waiting CPU s/M | Sluice MB/s | CPU s/M Sluice / raw | peak RSS MB Sluice / raw | broker-bound |\n");
    md.push_str(
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n",
    );
    for r in results
        .iter()
        .filter(|r| r["workload"] != "bridge" && r["workload"] != "run")
    {
        if r["failed"] == true {
            md.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} | | | | | | | | | |\n",
                workload(r),
                size_label(r),
                r["partitions"],
                r["per_execution"],
                r["messages"],
                failure(r)
            ));
            continue;
        }
        md.push_str(&format!(
            "| {} | {} | {} | {} | {} | {:.0} | {:.0} | {:.2} | {} | {} | {} | {:.1} | {} |\n",
            workload(r),
            size_label(r),
            r["partitions"],
            if r["workload"] == "produce" {
                r["per_execution"].to_string()
            } else {
                "—".into()
            },
            r["messages"],
            num(&r["sluice"]["msgs_per_s"]),
            num(&r["raw"]["msgs_per_s"]),
            num(&r["ratio"]),
            r["raw_waiting"]["msgs_per_s"]
                .as_f64()
                .map_or("—".into(), |v| format!("{v:.0}")),
            r["ratio_raw_waiting"]
                .as_f64()
                .map_or("—".into(), |v| format!("{v:.2}")),
            // The CPU target compares Sluice with the loop that waits as an execution does.
            r["raw_waiting"]["cpu_s_per_million"]
                .as_f64()
                .map_or("—".into(), |v| format!("{v:.1}")),
            num(&r["sluice"]["mb_per_s"]),
            client_columns(r),
        ));
    }
}

/// The bridge cells, if any: rate through a backlog and latency under load.
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
    md.push_str("| size · broker | partitions | messages | Sluice msg/s | raw msg/s | ratio | load msg/s | p50 ms Sluice / raw | p99 ms Sluice / raw | CPU s/M Sluice / raw | peak RSS MB Sluice / raw | broker-bound |\n");
    md.push_str(
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n",
    );
    for r in bridges {
        if r["failed"] == true {
            md.push_str(&format!(
                "| {} | {} | {} | failed | | | | | | | | |\n",
                size_label(r),
                r["partitions"],
                r["messages"]
            ));
            continue;
        }
        let latency = &r["latency"];
        md.push_str(&format!(
            "| {} · {} | {} | {} | {:.0} | {:.0} | {:.2} | {:.0} | {:.1} / {:.1} | {:.1} / {:.1} | {} |\n",
            size_label(r),
            r["broker"].as_str().unwrap_or("tansu"),
            r["partitions"],
            r["messages"],
            num(&r["sluice"]["msgs_per_s"]),
            num(&r["raw"]["msgs_per_s"]),
            num(&r["ratio"]),
            num(&latency["rate_msgs_per_s"]),
            num(&latency["sluice"]["p50_ms"]),
            num(&latency["raw"]["p50_ms"]),
            num(&latency["sluice"]["p99_ms"]),
            num(&latency["raw"]["p99_ms"]),
            client_columns(r),
        ));
    }
}

/// `sluice run --input FILE` over a JSONL file, if measured: rate and peak memory against the
/// input's size.
fn run_table(md: &mut String, results: &[Value]) {
    let runs: Vec<&Value> = results.iter().filter(|r| r["workload"] == "run").collect();
    if runs.is_empty() {
        return;
    }
    md.push_str(&format!(
        "\n## `sluice run` over a JSONL file\n\n`sluice run send --input documents.jsonl` \
         (one Produce step, 1 partition), the `sluice` binary as a user starts it, over a file \
         of JSON envelopes with 1 KiB of data and a message key each. Timed from the command's \
         start to its exit: starting the host and its producer, the check of every line before \
         anything is sent, and the documents going through the steps {RUN_CHUNK} at a time. \
         Against the raw producer loop (warm, documents already in memory) that waits for its \
         deliveries after every {RUN_CHUNK}. *Peak RSS* is the `sluice` process's own \
         (the kernel's high-water mark); *÷ input* sets it beside the file's size.\n\n\
         | broker | messages | input MB | Sluice msg/s | raw waiting msg/s | ratio | Sluice MB/s \
         | CPU s/M Sluice / raw | peak RSS MB | ÷ input |\n\
         | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n"
    ));
    for r in runs {
        if r["failed"] == true {
            md.push_str(&format!(
                "| {} | {} | | failed | | | | | | |\n",
                r["broker"].as_str().unwrap_or("tansu"),
                r["messages"]
            ));
            continue;
        }
        md.push_str(&format!(
            "| {} | {} | {:.0} | {:.0} | {:.0} | {:.2} | {:.1} | {:.1} / {:.1} | {:.0} | {:.2} |\n",
            r["broker"].as_str().unwrap_or("tansu"),
            r["messages"],
            num(&r["input_mb"]),
            num(&r["sluice"]["msgs_per_s"]),
            num(&r["raw"]["msgs_per_s"]),
            num(&r["ratio"]),
            num(&r["sluice"]["mb_per_s"]),
            num(&r["sluice"]["cpu_s_per_million"]),
            num(&r["raw"]["cpu_s_per_million"]),
            num(&r["sluice"]["peak_rss_mb"]),
            num(&r["peak_rss_to_input"]),
        ));
    }
}

/// The last columns of both tables: client CPU per million messages and peak RSS, Sluice /
/// raw, and whether the broker set the pace.
fn client_columns(r: &Value) -> String {
    format!(
        "{:.1} / {:.1} | {:.0} / {:.0} | {}",
        num(&r["sluice"]["cpu_s_per_million"]),
        num(&r["raw"]["cpu_s_per_million"]),
        num(&r["sluice"]["peak_rss_mb"]),
        num(&r["raw"]["peak_rss_mb"]),
        if r["broker_bound"] == true {
            "yes"
        } else {
            "no"
        },
    )
}

/// What each measured cell added to the Sluice worker's memory, against its bound.
fn memory_section(md: &mut String, results: &[Value]) {
    md.push_str(
        "\n## Memory against the container limits\n\nWhat the measured work added to the \
         Sluice worker's resident memory (peak minus the resident memory when the work began; \
         median of the repetitions), against what the container properties allow it to add: \
         the librdkafka queues as Sluice bounds them (`kafka.producer.queue.kbytes`, at least \
         twice `kafka.max.request.size`; `kafka.consumer.prefetch.kbytes`, at least one \
         request), the documents an execution holds (their bytes plus 1 KiB each for \
         properties, records and futures), and 32 MiB for threads and allocator arenas. \
         Figures in MiB.\n\n| workload · broker | size | partitions | docs/exec | added | bound: arithmetic | within |\n| --- | --- | ---: | ---: | ---: | --- | --- |\n",
    );
    // `sluice run` has its own section: its whole peak against its input.
    for r in results
        .iter()
        .filter(|r| r["failed"] != true && r["workload"] != "run")
    {
        let added = num(&r["sluice"]["added_rss_mb"]);
        let (bound, arithmetic) = memory_bound(r);
        md.push_str(&format!(
            "| {} | {} | {} | {} | {added:.0} | {arithmetic} | {} |\n",
            workload(r),
            size_label(r),
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

/// What the table shows for a cell that did not finish: a cell whose message is larger than
/// what the in-memory broker keeps of a partition cannot run there (it never had a message).
fn failure(r: &Value) -> &'static str {
    if r["broker"] == "memory" && r["messages"] == 0 {
        "— (larger than the in-memory broker keeps of a partition)"
    } else {
        "failed"
    }
}

/// A number of a row, 0 where it is missing.
fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or(0.0)
}

/// The row's workload and the broker it ran on: `produce · memory`.
fn workload(r: &Value) -> String {
    format!(
        "{} · {}",
        r["workload"].as_str().unwrap_or("?"),
        r["broker"].as_str().unwrap_or("tansu")
    )
}

/// The row's message size, as `100 B`, `1 KiB`, `9.5 MiB`.
fn size_label(r: &Value) -> String {
    match r["size"].as_u64().unwrap_or(0) as usize {
        s if s >= 1024 * 1024 => format!("{:.1} MiB", s as f64 / 1024.0 / 1024.0),
        s if s >= 1024 => format!("{} KiB", s / 1024),
        s => format!("{s} B"),
    }
}
