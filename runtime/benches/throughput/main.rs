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
//!
//! Flags: `--quick` (fewer cells, 3 repetitions instead of 5), `--only TEXT` (the cells whose
//! label contains the text; their report goes to target/tmp/bench-only, not docs/), `--report`
//! (writes docs/BENCHMARKS.md again from docs/benchmarks.json, measuring nothing). `--worker
//! MODE …` is how the benchmark starts its own workers.
//!
//! Where things are: [`matrix`] names the cells and [`driver`] measures them, starting
//! [`worker`] processes (Sluice or raw loops; the raw ones use [`kafka`]); [`latency`] is the
//! bridge's load producer and output reader; [`resources`] reads CPU and memory from /proc;
//! [`summary`] turns runs into JSON rows and [`report`] writes the two documents.

#[path = "../../../tests/harness/mod.rs"]
mod harness;

mod broker;
mod driver;
mod kafka;
mod latency;
mod matrix;
mod report;
mod resources;
mod summary;
mod worker;

use serde_json::Value;

use broker::BenchBroker;
use matrix::Cell;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--worker") {
        worker::main(&args[1..]);
        return;
    }
    if args.iter().any(|a| a == "--report") {
        report::rewrite();
        return;
    }
    let quick = args.iter().any(|a| a == "--quick");
    let repetitions = if quick { 3 } else { 5 };
    // `--only produce/1024`: the cells whose label contains the text (while investigating).
    let only = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1));
    let cells: Vec<Cell> = matrix::matrix(quick)
        .into_iter()
        .filter(|c| only.is_none_or(|o| c.label().contains(o.as_str())))
        .collect();
    if cells.is_empty() {
        // Measuring nothing is a typo, not a run.
        let labels: Vec<String> = matrix::matrix(quick).iter().map(Cell::label).collect();
        eprintln!(
            "sluice-bench: no cell's label contains {:?}; labels are workload/size/partitionsp/per-execution: {}",
            only.map_or("", String::as_str),
            labels.join(", ")
        );
        std::process::exit(2);
    }
    let tansu = BenchBroker::Tansu(harness::Broker::start());
    eprintln!(
        "sluice-bench: {} cells × {repetitions} repetitions × 2 (Sluice, raw), each on an \
         in-memory broker (librdkafka's mock cluster, in a process of its own) and on tansu at {}",
        cells.len(),
        tansu.bootstrap()
    );
    let folder = if only.is_some() {
        report::partial()
    } else {
        report::docs()
    };
    let mut results = Vec::new();
    let runs = cells.len() * 2;
    for (index, cell) in cells.iter().enumerate() {
        // The in-memory broker first: where the broker is not the limit, the targets are
        // judged; then tansu, the real broker, beside it.
        let memory = BenchBroker::memory();
        for (offset, broker) in [(0, &memory), (1, &tansu)] {
            let position = format!("[{}/{runs}]", index * 2 + offset + 1);
            results.push(run_cell(broker, cell, repetitions, &position));
            // Written after every cell: a long run that stops half-way leaves its figures.
            report::write(&folder, &results, repetitions, quick);
        }
    }
}

/// Measures one cell and returns its row for the report. A cell that panics (a worker failed,
/// a timeout) becomes a row marked failed, so that one bad cell does not cost the others.
fn run_cell(broker: &BenchBroker, cell: &Cell, repetitions: usize, position: &str) -> Value {
    let cell = &broker.fitted(cell);
    // Not measured: a row marked failed, and why on standard error.
    let not_measured = |why: &str| {
        eprintln!("{position} {} on {}: {why}", cell.label(), broker.name());
        let mut row = summary::failed(cell);
        row["broker"] = broker.name().into();
        row
    };
    if cell.count == 0 {
        return not_measured("skipped (one message is more than the broker keeps of a partition)");
    }
    let measured = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        driver::measure(broker, cell, repetitions)
    }));
    let Ok(measured) = measured else {
        return not_measured("failed (see above)");
    };
    let mut row = summary::row(cell, &measured);
    row["broker"] = broker.name().into();
    eprintln!(
        "{position} {} {} {} B × {} ({} partition(s), {}/execution): Sluice {:.0} msg/s, raw {:.0} msg/s, ratio {:.2}",
        broker.name(),
        cell.workload,
        cell.size,
        cell.count,
        cell.partitions,
        cell.per_execution,
        row["sluice"]["msgs_per_s"].as_f64().unwrap_or(0.0),
        row["raw"]["msgs_per_s"].as_f64().unwrap_or(0.0),
        row["ratio"].as_f64().unwrap_or(0.0),
    );
    row
}
