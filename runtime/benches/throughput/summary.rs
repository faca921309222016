//! What a cell measured, and its row of `docs/benchmarks.json`: the medians of each side's
//! repetitions (with the repetitions themselves), the Sluice/raw ratios, whether the broker
//! set the pace, and for the bridge its latencies.

use serde_json::{json, Value};

use crate::latency::{Latency, LATENCY_SECONDS};
use crate::matrix::Cell;
use crate::worker::Run;

/// What a cell measured: Sluice and raw repetitions, and the extra runs some workloads have.
#[derive(Default)]
pub struct Measured {
    pub sluice: Vec<Run>,
    pub raw: Vec<Run>,
    /// produce with fewer documents per execution than messages: a raw loop that also waits
    /// for its deliveries every `per_execution` messages, as an execution does.
    pub raw_waiting: Vec<Run>,
    /// bridge: end-to-end latencies (ms) at half the raw rate, Sluice and raw.
    pub latency_sluice: Vec<Latency>,
    pub latency_raw: Vec<Latency>,
    /// bridge: the rate the latency runs sent at.
    pub latency_rate: f64,
}

impl Measured {
    /// Files a run under its side: `sluice`, `raw` or (any other) `rawwait`.
    pub fn push(&mut self, side: &str, run: Run) {
        match side {
            "sluice" => self.sluice.push(run),
            "raw" => self.raw.push(run),
            _ => self.raw_waiting.push(run),
        }
    }

    /// Files a bridge's latency run under its side, `sluice` or `raw`.
    pub fn push_latency(&mut self, side: &str, latency: Latency) {
        if side == "sluice" {
            self.latency_sluice.push(latency);
        } else {
            self.latency_raw.push(latency);
        }
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// The median of one figure of `items`.
pub fn median_of<T>(items: &[T], figure: impl Fn(&T) -> f64) -> f64 {
    median(items.iter().map(figure).collect())
}

/// The row of a cell that did not finish: what it was, and that it failed.
pub fn failed(cell: &Cell) -> Value {
    json!({"workload": cell.workload, "size": cell.size,
        "partitions": cell.partitions, "per_execution": cell.per_execution,
        "messages": cell.count, "failed": true})
}

/// The row of a measured cell.
pub fn row(cell: &Cell, measured: &Measured) -> Value {
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
    if cell.workload == "run" {
        // The same file in every repetition.
        let input = measured.sluice.first().map_or(0, |r| r.input_bytes) as f64;
        row["input_mb"] = json!(input / 1e6);
        row["peak_rss_to_input"] =
            json!(s["peak_rss_mb"].as_f64().unwrap_or(0.0) * 1024.0 * 1024.0 / input.max(1.0));
    }
    if cell.workload == "bridge" {
        row["latency"] = json!({
            "rate_msgs_per_s": measured.latency_rate,
            "seconds": LATENCY_SECONDS,
            "sluice": latency(&measured.latency_sluice),
            "raw": latency(&measured.latency_raw),
        });
    }
    row
}

/// One side's figures (Sluice, raw or raw waiting): medians and the repetitions.
fn side(cell: &Cell, runs: &[Run]) -> Value {
    let seconds = median_of(runs, |r| r.seconds);
    let cpu = median_of(runs, |r| r.cpu_seconds);
    let broker_cpu = median_of(runs, |r| r.broker_cpu_seconds);
    let rss = median_of(runs, |r| r.peak_rss_kb as f64);
    let added = median_of(runs, |r| r.peak_rss_kb.saturating_sub(r.idle_rss_kb) as f64);
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

/// One side's latency runs: the medians of their percentiles, and the runs.
fn latency(runs: &[Latency]) -> Value {
    json!({
        "p50_ms": median_of(runs, |l| l.p50),
        "p99_ms": median_of(runs, |l| l.p99),
        "runs": runs.iter().map(|l| json!({"p50_ms": l.p50, "p99_ms": l.p99})).collect::<Vec<_>>(),
    })
}
