//! One repetition in a child process, both ends of it: the command line the driver starts this
//! binary with (`--worker MODE …`), the worker's dispatch to its mode, and the JSON figures
//! it prints back. The Sluice modes are in [`sluice`], the raw librdkafka loops in [`raw`].

mod raw;
mod run_file;
pub mod sluice;

use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use serde_json::{json, Value};

use crate::kafka::payload;
use crate::matrix::Cell;
use crate::resources::{peak_rss_kb, timed, Usage};

/// What one repetition measured (reported by the worker).
#[derive(Clone, Debug, Default)]
pub struct Run {
    pub seconds: f64,
    pub cpu_seconds: f64,
    pub peak_rss_kb: u64,
    /// Resident memory when the measured work began.
    pub idle_rss_kb: u64,
    pub broker_cpu_seconds: f64,
    /// run: the size of the JSONL input file.
    pub input_bytes: u64,
}

/// What a worker was told to do: its command-line arguments after the mode.
pub struct Job<'a> {
    pub bootstrap: &'a str,
    /// The topic; for a bridge, `INPUT,OUTPUT`.
    pub topic: &'a str,
    pub size: usize,
    pub count: usize,
    pub per_execution: usize,
    /// The consumer group (`-` when the mode has none).
    pub group: &'a str,
}

/// This benchmark as a worker of `mode` (`produce-sluice`, `consume-raw`, `bridge-sluice`, …),
/// with the arguments [`main`] reads.
pub fn command(mode: &str, bootstrap: &str, topic: &str, cell: &Cell, group: &str) -> Command {
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
pub fn finished_run(mode: &str, output: &Output, seconds: Option<f64>, broker_cpu: f64) -> Run {
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
        broker_cpu_seconds: broker_cpu,
        input_bytes: report["input_bytes"].as_u64().unwrap_or(0),
    }
}

/// The worker: runs one repetition of `MODE` and prints its figures as JSON on stdout.
pub fn main(args: &[String]) {
    // While investigating a cell: `RUST_LOG=sluice_runtime=debug` shows the runtime's own
    // events, timed, on the worker's standard error (the JSON on stdout is unchanged).
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .with_ansi(false)
            .init();
    }
    if args.first().map(String::as_str) == Some("mock-broker") {
        crate::broker::serve_mock_cluster();
        return;
    }
    let [mode, bootstrap, topic, size, count, per_execution, group] = args else {
        panic!("worker arguments: MODE BOOTSTRAP TOPIC SIZE COUNT PER_EXECUTION GROUP");
    };
    let job = Job {
        bootstrap,
        topic,
        size: size.parse().expect("size"),
        count: count.parse().expect("count"),
        per_execution: per_execution.parse().expect("per execution"),
        group,
    };
    // Generated before the clock starts. Consume workers make them too, unused: their idle
    // and peak RSS have always included them, and the published figures were made so.
    // `sluice run` writes its file a line at a time instead: the kernel's peak RSS of a child
    // counts the pages it shared with this process before it started the binary.
    let payloads: Vec<Vec<u8>> = if mode.starts_with("bridge") || mode == "run-sluice" {
        Vec::new()
    } else {
        (0..job.count).map(|i| payload(job.size, i)).collect()
    };
    // Produce is measured warm: the client exists and has sent one message (connection,
    // metadata, producer id) before the clock starts, so the figures are throughput, not the
    // broker's start-up round trips. Consume includes joining the group, for both sides.
    let in_process = |usage: Usage| Figures {
        usage,
        peak_rss_kb: peak_rss_kb(),
        input_bytes: 0,
    };
    let figures = match mode.as_str() {
        "run-sluice" => run_file::run(&job),
        other => in_process(match other {
            "produce-sluice" => sluice::produce(&job, payloads),
            // The raw loop beside `sluice run`: waits for its deliveries after each chunk's worth.
            "run-raw" => raw::produce(&job, payloads, job.per_execution),
            "produce-raw" => raw::produce(&job, payloads, job.count),
            "produce-rawwait" => raw::produce(&job, payloads, job.per_execution),
            "bridge-sluice" => timed(|| sluice::bridge(&job)),
            "bridge-raw" => timed(|| raw::bridge(&job)),
            "consume-sluice" => timed(|| sluice::consume(&job)),
            "consume-raw" => timed(|| raw::consume(&job)),
            other => panic!("unknown worker mode {other}"),
        }),
    };
    let Figures {
        usage,
        peak_rss_kb,
        input_bytes,
    } = figures;
    println!(
        "{}",
        json!({"seconds": usage.seconds, "cpu_seconds": usage.cpu_seconds,
               "peak_rss_kb": peak_rss_kb, "idle_rss_kb": usage.idle_rss_kb,
               "input_bytes": input_bytes})
    );
}

/// What a worker reports: its timing, its peak RSS (a `sluice run` worker's is its child's),
/// and for `sluice run` the size of the input file.
pub struct Figures {
    pub usage: Usage,
    pub peak_rss_kb: u64,
    pub input_bytes: u64,
}

/// Set when the parent closes this worker's standard input: how a bridge worker is told to
/// stop (and drain, as a listener does on a shutdown signal).
fn stop_on_stdin_close() -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
        flag.store(true, Ordering::Relaxed);
    });
    stop
}
