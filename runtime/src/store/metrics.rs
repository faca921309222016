//! The host's counters, shown by the management API in Prometheus' text format. Labels are few
//! and bounded: the process id (from the components), the execution status (three values),
//! and for lag the topic and partition a listener holds.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

use crate::record::ExecutionRecord;

/// Counters since the host started.
#[derive(Default)]
pub struct Metrics {
    inner: Mutex<Counters>,
}

#[derive(Default)]
struct Counters {
    /// Per process: documents in, out, with errors.
    documents: BTreeMap<String, [u64; 3]>,
    /// Per (process, status): executions.
    executions: BTreeMap<(String, &'static str), u64>,
    /// Per process: commits and their total duration.
    commits: BTreeMap<String, (u64, Duration)>,
    /// Per process: documents sent to the dead-letter topic.
    dead_letters: BTreeMap<String, u64>,
}

/// A listener's lag on one partition, gathered when metrics are scraped.
pub struct Lag {
    /// The listener's process.
    pub process: String,
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Messages not yet committed.
    pub lag: i64,
}

/// Each listener's state now, and the names of every state a listener can be in.
#[derive(Debug, Clone, Default)]
pub struct ListenerStates<'a> {
    /// Every state's name.
    pub names: &'a [&'a str],
    /// Each listener's process and the name of its state now.
    pub current: Vec<(String, &'a str)>,
}

impl Metrics {
    fn counters(&self) -> std::sync::MutexGuard<'_, Counters> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Counts one finished execution.
    pub fn execution(&self, record: &ExecutionRecord) {
        let status = record.status.name();
        let mut counters = self.counters();
        let documents = counters
            .documents
            .entry(record.process.clone())
            .or_default();
        documents[0] += record.documents_in as u64;
        documents[1] += record.documents_out.len() as u64;
        documents[2] += record.document_errors.len() as u64;
        *counters
            .executions
            .entry((record.process.clone(), status))
            .or_default() += 1;
    }

    /// Counts one commit of a listener and how long it took.
    pub fn commit(&self, process: &str, took: Duration) {
        let mut counters = self.counters();
        let entry = counters.commits.entry(process.to_string()).or_default();
        entry.0 += 1;
        entry.1 += took;
    }

    /// Counts one document sent to a dead-letter topic.
    pub fn dead_letter(&self, process: &str) {
        *self
            .counters()
            .dead_letters
            .entry(process.to_string())
            .or_default() += 1;
    }

    /// Everything in Prometheus' text exposition format, with the lags given.
    /// The counters, the consumer lags and the listeners' states as Prometheus text.
    pub fn render(&self, lags: &[Lag], states: &ListenerStates<'_>) -> String {
        let counters = self.counters();
        let mut out = String::new();
        render_documents(&mut out, &counters.documents);
        render_executions(&mut out, &counters.executions);
        render_dead_letters(&mut out, &counters.dead_letters);
        render_commits(&mut out, &counters.commits);
        render_lags(&mut out, lags);
        render_listener_states(&mut out, states);
        out
    }
}

// One function per metric family, each writing its HELP and TYPE lines, then its samples.
// Writing to a `String` cannot fail, hence the ignored results.

/// Documents in, out and with errors per process: three counters from one table.
fn render_documents(out: &mut String, documents: &BTreeMap<String, [u64; 3]>) {
    for (index, (name, help)) in [
        (
            "sluice_documents_in_total",
            "Documents that entered executions.",
        ),
        (
            "sluice_documents_out_total",
            "Documents that left the last step.",
        ),
        (
            "sluice_document_errors_total",
            "Documents that got a document error.",
        ),
    ]
    .iter()
    .enumerate()
    {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
        for (process, values) in documents {
            let _ = writeln!(
                out,
                "{name}{{process=\"{}\"}} {}",
                escape(process),
                values[index]
            );
        }
    }
}

fn render_executions(out: &mut String, executions: &BTreeMap<(String, &'static str), u64>) {
    let _ = writeln!(
        out,
        "# HELP sluice_executions_total Executions by how they ended.\n\
         # TYPE sluice_executions_total counter"
    );
    for ((process, status), n) in executions {
        let _ = writeln!(
            out,
            "sluice_executions_total{{process=\"{}\",status=\"{status}\"}} {n}",
            escape(process)
        );
    }
}

fn render_dead_letters(out: &mut String, dead_letters: &BTreeMap<String, u64>) {
    let _ = writeln!(
        out,
        "# HELP sluice_dead_letters_total Documents sent to a dead-letter topic.\n\
         # TYPE sluice_dead_letters_total counter"
    );
    for (process, n) in dead_letters {
        let _ = writeln!(
            out,
            "sluice_dead_letters_total{{process=\"{}\"}} {n}",
            escape(process)
        );
    }
}

fn render_commits(out: &mut String, commits: &BTreeMap<String, (u64, Duration)>) {
    let _ = writeln!(
        out,
        "# HELP sluice_commit_duration_seconds Listener offset commits.\n\
         # TYPE sluice_commit_duration_seconds summary"
    );
    for (process, (n, total)) in commits {
        let process = escape(process);
        let _ = writeln!(
            out,
            "sluice_commit_duration_seconds_sum{{process=\"{process}\"}} {}\n\
             sluice_commit_duration_seconds_count{{process=\"{process}\"}} {n}",
            total.as_secs_f64()
        );
    }
}

/// One series per listener and state, 1 for the state it is in and 0 for the others, so
/// that an alert on a state can fire before any listener has been in it.
fn render_listener_states(out: &mut String, states: &ListenerStates<'_>) {
    let _ = writeln!(
        out,
        "# HELP sluice_listener_state Whether a listener is in a state (1) or not (0).\n\
         # TYPE sluice_listener_state gauge"
    );
    for (process, now) in &states.current {
        let process = escape(process);
        for state in states.names {
            let value = u8::from(state == now);
            let _ = writeln!(
                out,
                "sluice_listener_state{{process=\"{process}\",state=\"{state}\"}} {value}"
            );
        }
    }
}

fn render_lags(out: &mut String, lags: &[Lag]) {
    let _ = writeln!(
        out,
        "# HELP sluice_consumer_lag Messages a listener has not committed yet.\n\
         # TYPE sluice_consumer_lag gauge"
    );
    for lag in lags {
        let _ = writeln!(
            out,
            "sluice_consumer_lag{{process=\"{}\",topic=\"{}\",partition=\"{}\"}} {}",
            escape(&lag.process),
            escape(&lag.topic),
            lag.partition,
            lag.lag
        );
    }
}

/// Prometheus label values escape backslash, double quote and newline.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::ExecutionStatus;

    #[test]
    fn counters_render_as_prometheus_text() {
        let metrics = Metrics::default();
        metrics.execution(&ExecutionRecord {
            id: uuid::Uuid::now_v7(),
            process: "route".into(),
            started: std::time::SystemTime::now(),
            duration: Duration::ZERO,
            status: ExecutionStatus::Succeeded,
            documents_in: 3,
            documents_out: vec![Default::default(), Default::default()],
            document_errors: Vec::new(),
        });
        metrics.commit("route", Duration::from_millis(250));
        metrics.dead_letter("route");
        let states = ListenerStates {
            names: &["RUNNING", "INVALID"],
            current: vec![("bad".into(), "INVALID")],
        };
        let lags = [Lag {
            process: "route".into(),
            topic: "in".into(),
            partition: 1,
            lag: 7,
        }];
        let text = metrics.render(&lags, &states);
        for line in [
            "# TYPE sluice_documents_in_total counter",
            "sluice_documents_in_total{process=\"route\"} 3",
            "sluice_documents_out_total{process=\"route\"} 2",
            "sluice_document_errors_total{process=\"route\"} 0",
            "sluice_executions_total{process=\"route\",status=\"succeeded\"} 1",
            "sluice_dead_letters_total{process=\"route\"} 1",
            "sluice_commit_duration_seconds_sum{process=\"route\"} 0.25",
            "sluice_commit_duration_seconds_count{process=\"route\"} 1",
            "sluice_consumer_lag{process=\"route\",topic=\"in\",partition=\"1\"} 7",
            "sluice_listener_state{process=\"bad\",state=\"RUNNING\"} 0",
            "sluice_listener_state{process=\"bad\",state=\"INVALID\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
    }
}
