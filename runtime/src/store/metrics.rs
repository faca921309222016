//! The host's metrics, shown by the management API in Prometheus' text format through the
//! Prometheus project's own client (`prometheus-client`). Labels are few and bounded: the
//! process id (from the components), the execution status (three values), a listener's state
//! (seven), and for lag the topic and partition a listener holds.
//!
//! Every series of a process exists, at 0, from the moment its components are loaded
//! ([`Metrics::declare`]), so that an alert such as `increase(sluice_dead_letters_total[5m]) > 0`
//! can fire on the first event rather than the second.

use std::sync::Mutex;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};

use crate::record::{ExecutionRecord, ExecutionStatus};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProcessLabels {
    process: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    process: String,
    status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    process: String,
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PartitionLabels {
    process: String,
    topic: String,
    partition: i32,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
    librdkafka: String,
}

type Counters = Family<ProcessLabels, Counter>;
type Durations = Family<ProcessLabels, Histogram, fn() -> Histogram>;

/// 1 ms to a minute in the usual 1-2.5-5 steps: executions and commits of a healthy host sit
/// in the first half, a broker in trouble shows in the second.
const DURATION_BUCKETS: [f64; 15] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

fn duration_histogram() -> Histogram {
    Histogram::new(DURATION_BUCKETS)
}

/// The host's metrics since it started.
pub struct Metrics {
    registry: Registry,
    documents_in: Counters,
    documents_out: Counters,
    document_errors: Counters,
    executions: Family<StatusLabels, Counter>,
    execution_duration: Durations,
    commit_duration: Durations,
    dead_letters: Counters,
    retries: Counters,
    redeliveries: Counters,
    restarts: Counters,
    revocations: Counters,
    stalls: Counters,
    stalls_healed: Counters,
    listener_state: Family<StateLabels, Gauge>,
    consumer_lag: Family<PartitionLabels, Gauge>,
    records_waiting: Gauge,
    records_dropped: Counter,
    /// One scrape at a time: the listeners' gauges are refilled for each.
    scrape: Mutex<()>,
}

/// What a scrape reads from one listener.
#[derive(Debug, Clone)]
pub struct ListenerSample {
    /// The listener's process.
    pub process: String,
    /// The name of the state it is in.
    pub state: &'static str,
    /// How often its group took partitions from it.
    pub revocations: u64,
    /// Per (topic, partition) it holds, the messages not committed yet.
    pub lags: Vec<(String, i32, i64)>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let mut counters = |name: &str, help: &str| {
            let family = Counters::default();
            registry.register(name, help, family.clone());
            family
        };
        let documents_in = counters("sluice_documents_in", "Documents that entered executions");
        let documents_out = counters("sluice_documents_out", "Documents that left the last step");
        let document_errors = counters(
            "sluice_document_errors",
            "Documents that got a document error",
        );
        let dead_letters = counters(
            "sluice_dead_letters",
            "Documents a listener sent to its dead-letter topic",
        );
        let retries = counters(
            "sluice_retries",
            "Tries of failed documents again (a document tried three times counts two)",
        );
        let redeliveries = counters(
            "sluice_redeliveries",
            "Documents a listener received again after a restart or rebalance: the documents \
             since the last commit",
        );
        let restarts = counters(
            "sluice_listener_restarts",
            "Listener restarts: requested, after a reload changed it, or after a failure",
        );
        let revocations = counters(
            "sluice_listener_revocations",
            "Rebalances that took partitions from a listener",
        );
        let stalls = counters(
            "sluice_listener_stalls",
            "Times the stall watchdog found a partition with lag and no commit for \
             host.stall.timeout.ms (held by this listener, or by no member of its group), and \
             restarted the listener",
        );
        let stalls_healed = counters(
            "sluice_listener_stalls_healed",
            "Stalls after whose restart the listener committed again",
        );
        let executions = Family::<StatusLabels, Counter>::default();
        registry.register(
            "sluice_executions",
            "Executions by how they ended",
            executions.clone(),
        );
        let mut durations = |name: &str, help: &str| {
            let family: Durations = Family::new_with_constructor(duration_histogram);
            registry.register_with_unit(name, help, Unit::Seconds, family.clone());
            family
        };
        let execution_duration = durations("sluice_execution_duration", "How long executions took");
        let commit_duration = durations(
            "sluice_commit_duration",
            "How long a listener's offset commits took",
        );
        let listener_state = Family::<StateLabels, Gauge>::default();
        registry.register(
            "sluice_listener_state",
            "Whether a listener is in a state (1) or not (0), one series per state",
            listener_state.clone(),
        );
        let consumer_lag = Family::<PartitionLabels, Gauge>::default();
        registry.register_with_unit(
            "sluice_consumer_lag",
            "Messages a listener has not committed yet, per partition it holds",
            Unit::Other("messages".into()),
            consumer_lag.clone(),
        );
        let records_waiting = Gauge::default();
        registry.register(
            "sluice_execution_records_waiting",
            "Execution records waiting for the execution database (it is locked or slow)",
            records_waiting.clone(),
        );
        let records_dropped = Counter::default();
        registry.register(
            "sluice_execution_records_dropped",
            "Execution records never written: too many waited for the execution database",
            records_dropped.clone(),
        );
        registry.register(
            "sluice_build",
            "The sluice version and the librdkafka it links",
            Info::new(BuildLabels {
                version: env!("CARGO_PKG_VERSION"),
                librdkafka: sluice_connector::librdkafka_version(),
            }),
        );
        Self {
            registry,
            documents_in,
            documents_out,
            document_errors,
            executions,
            execution_duration,
            commit_duration,
            dead_letters,
            retries,
            redeliveries,
            restarts,
            revocations,
            stalls,
            stalls_healed,
            listener_state,
            consumer_lag,
            records_waiting,
            records_dropped,
            scrape: Mutex::new(()),
        }
    }
}

/// Creates the series of `labels` in `family` (at 0) unless it exists.
fn create<S, M, C>(family: &Family<S, M, C>, labels: &S)
where
    S: Clone + std::hash::Hash + Eq,
    C: prometheus_client::metrics::family::MetricConstructor<M>,
{
    // The guard is all get_or_create returns: having the series is the point.
    drop(family.get_or_create(labels));
}

fn process(process: &str) -> ProcessLabels {
    ProcessLabels {
        process: process.to_string(),
    }
}

impl Metrics {
    /// Creates every series of process `id` at 0 (see the module's comment); a `listener`
    /// gets the listener series too.
    pub fn declare(&self, id: &str, listener: bool) {
        let labels = process(id);
        for family in [
            &self.documents_in,
            &self.documents_out,
            &self.document_errors,
        ] {
            create(family, &labels);
        }
        create(&self.execution_duration, &labels);
        for status in ExecutionStatus::NAMES {
            let labels = StatusLabels {
                process: id.to_string(),
                status,
            };
            create(&self.executions, &labels);
        }
        if listener {
            for family in [
                &self.dead_letters,
                &self.retries,
                &self.redeliveries,
                &self.restarts,
                &self.revocations,
                &self.stalls,
                &self.stalls_healed,
            ] {
                create(family, &labels);
            }
            create(&self.commit_duration, &labels);
        }
    }

    /// Counts one finished execution.
    pub fn execution(&self, record: &ExecutionRecord) {
        let labels = process(&record.process);
        let count = |family: &Counters, n: usize| {
            family.get_or_create(&labels).inc_by(n as u64);
        };
        count(&self.documents_in, record.documents_in);
        count(&self.documents_out, record.documents_out_count());
        count(&self.document_errors, record.document_errors.len());
        self.executions
            .get_or_create(&StatusLabels {
                process: record.process.clone(),
                status: record.status.name(),
            })
            .inc();
        self.execution_duration
            .get_or_create(&labels)
            .observe(record.duration.as_secs_f64());
    }

    /// Counts one commit of a listener and how long it took.
    pub fn commit(&self, process_id: &str, took: Duration) {
        self.commit_duration
            .get_or_create(&process(process_id))
            .observe(took.as_secs_f64());
    }

    /// Counts one document sent to a dead-letter topic.
    pub fn dead_letter(&self, process_id: &str) {
        self.dead_letters.get_or_create(&process(process_id)).inc();
    }

    /// Documents `process_id` has sent to its dead-letter topic since the host started.
    pub fn dead_letters_of(&self, process_id: &str) -> u64 {
        self.dead_letters
            .get(&process(process_id))
            .map_or(0, |counter| counter.get())
    }

    /// Counts `documents` tried again.
    pub fn retries(&self, process_id: &str, documents: usize) {
        self.retries
            .get_or_create(&process(process_id))
            .inc_by(documents as u64);
    }

    /// Counts `documents` received again after a restart or rebalance.
    pub fn redeliveries(&self, process_id: &str, documents: usize) {
        self.redeliveries
            .get_or_create(&process(process_id))
            .inc_by(documents as u64);
    }

    /// Counts one stall of a listener.
    pub fn stall(&self, process_id: &str) {
        self.stalls.get_or_create(&process(process_id)).inc();
    }

    /// Counts one stall that healed after its restart.
    pub fn stall_healed(&self, process_id: &str) {
        self.stalls_healed.get_or_create(&process(process_id)).inc();
    }

    /// Counts one restart of a listener.
    pub fn restart(&self, process_id: &str) {
        self.restarts.get_or_create(&process(process_id)).inc();
    }

    /// Everything in Prometheus' text exposition format (version 0.0.4), with the
    /// `listeners` as they are now; `states` names every state a listener can be in.
    /// `records`: the execution database's backlog, records waiting and dropped (see
    /// [`crate::store::ExecutionStore::backlog`]), when the host records executions.
    pub fn render(
        &self,
        listeners: &[ListenerSample],
        states: &[&'static str],
        records: Option<(usize, u64)>,
    ) -> String {
        let _one_at_a_time = self
            .scrape
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((waiting, dropped)) = records {
            self.records_waiting
                .set(i64::try_from(waiting).unwrap_or(i64::MAX));
            self.records_dropped
                .inc_by(dropped.saturating_sub(self.records_dropped.get()));
        }
        // Listeners come and go with reloads, and partitions with rebalances: only what is
        // there now is shown.
        self.listener_state.clear();
        self.consumer_lag.clear();
        for listener in listeners {
            for state in states {
                let labels = StateLabels {
                    process: listener.process.clone(),
                    state,
                };
                let value = i64::from(*state == listener.state);
                self.listener_state.get_or_create(&labels).set(value);
            }
            // A counter only grows: it catches up with the listener's own count.
            let revocations = self.revocations.get_or_create(&process(&listener.process));
            let behind = listener.revocations.saturating_sub(revocations.get());
            revocations.inc_by(behind);
            for (topic, partition, lag) in &listener.lags {
                let labels = PartitionLabels {
                    process: listener.process.clone(),
                    topic: topic.clone(),
                    partition: *partition,
                };
                self.consumer_lag.get_or_create(&labels).set(*lag);
            }
        }
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut text, &self.registry);
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::ExecutionStatus;

    #[test]
    fn metrics_render_as_prometheus_text() {
        let metrics = Metrics::default();
        metrics.execution(&ExecutionRecord {
            id: uuid::Uuid::now_v7(),
            process: "route".into(),
            started: std::time::SystemTime::now(),
            duration: Duration::from_millis(20),
            status: ExecutionStatus::Succeeded,
            documents_in: 3,
            documents_out: vec![Default::default(), Default::default()],
            documents_handed_on: 0,
            document_errors: Vec::new(),
            messages: Default::default(),
        });
        metrics.commit("route", Duration::from_millis(250));
        metrics.dead_letter("route");
        metrics.retries("route", 2);
        let listeners = [
            ListenerSample {
                process: "bad".into(),
                state: "INVALID",
                revocations: 0,
                lags: Vec::new(),
            },
            ListenerSample {
                process: "route".into(),
                state: "RUNNING",
                revocations: 2,
                lags: vec![("in".into(), 1, 7)],
            },
        ];
        let text = metrics.render(&listeners, &["RUNNING", "INVALID"], Some((3, 2)));
        for line in [
            "# TYPE sluice_documents_in_total counter",
            "sluice_documents_in_total{process=\"route\"} 3",
            "sluice_documents_out_total{process=\"route\"} 2",
            "sluice_document_errors_total{process=\"route\"} 0",
            "sluice_executions_total{process=\"route\",status=\"succeeded\"} 1",
            "sluice_execution_duration_seconds_bucket{process=\"route\",le=\"0.025\"} 1",
            "sluice_execution_duration_seconds_count{process=\"route\"} 1",
            "sluice_dead_letters_total{process=\"route\"} 1",
            "sluice_retries_total{process=\"route\"} 2",
            "sluice_listener_revocations_total{process=\"route\"} 2",
            "# TYPE sluice_commit_duration_seconds histogram",
            "sluice_commit_duration_seconds_sum{process=\"route\"} 0.25",
            "sluice_commit_duration_seconds_count{process=\"route\"} 1",
            "sluice_consumer_lag_messages{process=\"route\",topic=\"in\",partition=\"1\"} 7",
            "sluice_listener_state{process=\"bad\",state=\"RUNNING\"} 0",
            "sluice_listener_state{process=\"bad\",state=\"INVALID\"} 1",
            "sluice_execution_records_waiting 3",
            "sluice_execution_records_dropped_total 2",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
        let build = text
            .lines()
            .find(|l| l.starts_with("sluice_build_info{"))
            .expect("build info");
        assert!(build.contains(&format!("version=\"{}\"", env!("CARGO_PKG_VERSION"))));
        assert!(
            build.contains("librdkafka=\"2") && build.ends_with(" 1"),
            "{build}"
        );
    }

    #[test]
    fn a_declared_process_has_its_series_at_zero() {
        let metrics = Metrics::default();
        metrics.declare("bridge", true);
        metrics.declare("send", false);
        let text = metrics.render(&[], &[], None);
        for line in [
            "sluice_executions_total{process=\"send\",status=\"failed\"} 0",
            "sluice_document_errors_total{process=\"send\"} 0",
            "sluice_execution_duration_seconds_count{process=\"send\"} 0",
            "sluice_dead_letters_total{process=\"bridge\"} 0",
            "sluice_redeliveries_total{process=\"bridge\"} 0",
            "sluice_listener_restarts_total{process=\"bridge\"} 0",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
        // A one-off process has no listener series.
        assert!(!text.contains("sluice_dead_letters_total{process=\"send\"}"));
    }
}
