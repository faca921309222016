//! Measures one cell: runs its repetitions, Sluice and raw alternating, each in a worker
//! process on topics of its own, and collects what every run measured. A bridge cell runs
//! twice over: its rate through a backlog, then its latency under a steady load.

use std::process::Stdio;
use std::time::Instant;

use crate::broker::BenchBroker as Broker;
use crate::harness;
use crate::latency::{self, OutputReader};
use crate::matrix::Cell;
use crate::resources::process_cpu_seconds;
use crate::summary::{median_of, Measured};
use crate::worker::{self, Run};

/// Runs the cell's repetitions, Sluice and raw alternating.
pub fn measure(broker: &Broker, cell: &Cell, repetitions: usize) -> Measured {
    if cell.workload == "bridge" {
        return measure_bridge(broker, cell, repetitions);
    }
    let mut measured = Measured::default();
    let waiting = cell.workload == "produce" && cell.per_execution < cell.count;
    // Consumers all read one topic, filled once; each gets a fresh group.
    let filled = (cell.workload == "consume").then(|| {
        let topic = broker.create_topic("bench-consume", cell.partitions);
        fill(broker, &topic, cell);
        topic
    });
    for repetition in 0..repetitions {
        let mut sides = vec!["sluice", "raw"];
        if waiting {
            sides.push("rawwait");
        }
        for side in sides {
            let (topic, group) = match &filled {
                Some(topic) => (
                    topic.clone(),
                    harness::unique(&format!("bench-{side}-{repetition}")),
                ),
                None => (
                    broker.create_topic("bench-produce", cell.partitions),
                    String::new(),
                ),
            };
            let mode = format!("{}-{side}", cell.workload);
            measured.push(side, worker_run(broker, &mode, &topic, cell, &group));
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
fn measure_bridge(broker: &Broker, cell: &Cell, repetitions: usize) -> Measured {
    let mut measured = Measured::default();
    for repetition in 0..repetitions {
        for side in ["sluice", "raw"] {
            let group = harness::unique(&format!("bench-bridge-{side}-{repetition}"));
            let run = bridge_run(broker, side, cell, &group, true, |reader, _| {
                let started = Instant::now();
                reader.wait_for(cell.count);
                started.elapsed().as_secs_f64()
            });
            measured.push(side, run);
        }
    }
    let raw_rate = cell.count as f64 / median_of(&measured.raw, |r| r.seconds);
    measured.latency_rate = raw_rate / 2.0;
    let rate = measured.latency_rate;
    for repetition in 0..repetitions.min(3) {
        for side in ["sluice", "raw"] {
            let group = harness::unique(&format!("bench-latency-{side}-{repetition}"));
            let mut latency = None;
            // Only the latencies count here: the worker's own figures are not reported.
            bridge_run(broker, side, cell, &group, false, |reader, input| {
                let bootstrap = broker.bootstrap();
                latency = Some(latency::measure(&bootstrap, reader, input, cell.size, rate));
                0.0
            });
            measured.push_latency(side, latency.expect("latency measured"));
        }
    }
    measured
}

/// Starts a bridge worker (`sluice` or `raw`) between fresh input and output topics (the input
/// filled with the cell's messages first if `backlog`), lets `drive` feed and read it (given
/// the input topic; returning the seconds to report), then stops the worker, collects its
/// figures and deletes the topics.
fn bridge_run(
    broker: &Broker,
    side: &str,
    cell: &Cell,
    group: &str,
    backlog: bool,
    drive: impl FnOnce(&mut OutputReader, &str) -> f64,
) -> Run {
    let input = broker.create_topic("bench-bridge-in", cell.partitions);
    let output = broker.create_topic("bench-bridge-out", cell.partitions);
    if backlog {
        fill(broker, &input, cell);
    }
    let mut reader = OutputReader::new(&broker.bootstrap(), &output, cell.partitions);
    let mode = format!("bridge-{side}");
    let ((mut worker, seconds), broker_cpu_seconds) = with_broker_cpu(broker, || {
        let worker = worker::command(
            &mode,
            &broker.bootstrap(),
            &format!("{input},{output}"),
            cell,
            group,
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start a bridge worker");
        (worker, drive(&mut reader, &input))
    });
    // Closing its standard input tells the worker to stop.
    drop(worker.stdin.take());
    let finished = worker.wait_with_output().expect("bridge worker output");
    // The reader goes before its topics, so that no fetch of a deleted topic is timed.
    drop(reader);
    broker.delete_topic(&input);
    broker.delete_topic(&output);
    worker::finished_run(&mode, &finished, Some(seconds), broker_cpu_seconds)
}

/// Runs one repetition in a child process and measures the broker's CPU meanwhile.
fn worker_run(broker: &Broker, mode: &str, topic: &str, cell: &Cell, group: &str) -> Run {
    let (output, broker_cpu_seconds) = with_broker_cpu(broker, || {
        worker::command(mode, &broker.bootstrap(), topic, cell, group)
            .output()
            .expect("run a worker")
    });
    worker::finished_run(mode, &output, None, broker_cpu_seconds)
}

/// Fills `topic` with the cell's messages (after one warm-up message) from a raw worker.
fn fill(broker: &Broker, topic: &str, cell: &Cell) {
    let filler = worker_run(broker, "produce-raw", topic, cell, "");
    assert!(filler.seconds > 0.0);
}

/// What `work` returns, and the CPU seconds tansu used meanwhile: a broker near one core
/// busy sets the pace of the run.
fn with_broker_cpu<T>(broker: &Broker, work: impl FnOnce() -> T) -> (T, f64) {
    let before = process_cpu_seconds(broker.pid());
    let value = work();
    (value, process_cpu_seconds(broker.pid()) - before)
}
