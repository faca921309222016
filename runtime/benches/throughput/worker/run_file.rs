//! `sluice run --input FILE` over a JSONL file, as a user runs it: the `sluice` binary in a
//! child process of this worker, so that its peak resident memory and CPU time are its own
//! (the kernel's figures for a waited-for child) and can be set beside the input's size.

use std::io::Write;
use std::process::Command;
use std::time::Instant;

use super::sluice::send_process;
use super::{Figures, Job};
use crate::kafka::payload;
use crate::resources::{children_usage, Usage};

/// Writes the job's payloads as a JSONL file (one `{"data": …, "properties": {"message-key": …}}` a
/// line, as `sluice run --help` describes it) and components with one Produce step to the
/// job's topic, then times `sluice run` over them. The file is written before the clock
/// starts; the run includes starting the host and its producer, and the check of every line
/// that `sluice run` makes before anything is sent.
pub fn run(job: &Job) -> Figures {
    let folder = tempfile::tempdir().expect("a temporary folder");
    let input = folder.path().join("documents.jsonl");
    let mut file = std::io::BufWriter::new(std::fs::File::create(&input).expect("input file"));
    for i in 0..job.count {
        let data = payload(job.size, i);
        let data = std::str::from_utf8(&data).expect("payloads are ASCII letters");
        writeln!(
            file,
            r#"{{"data": "{data}", "properties": {{"message-key": "k{i}"}}}}"#
        )
        .expect("write the input");
    }
    file.into_inner()
        .expect("flush the input")
        .sync_all()
        .expect("sync the input");
    let components = folder.path().join("components");
    std::fs::create_dir(&components).expect("components folder");
    std::fs::write(
        components.join("bench.xml"),
        send_process(job.bootstrap, job.topic),
    )
    .expect("components");
    let input_bytes = std::fs::metadata(&input).expect("input size").len();
    let started = Instant::now();
    let output = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .current_dir(folder.path())
        .args(["run", "send", "--components", "components", "--input"])
        .arg(&input)
        .env("RUST_LOG", "error")
        .output()
        .expect("start sluice run");
    let seconds = started.elapsed().as_secs_f64();
    assert!(
        output.status.success(),
        "sluice run failed ({}):\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    // The worker's only child: the figures are this `sluice run`'s.
    let (cpu_seconds, peak_rss_kb) = children_usage();
    Figures {
        usage: Usage {
            seconds,
            cpu_seconds,
            idle_rss_kb: 0,
        },
        peak_rss_kb,
        input_bytes,
    }
}
