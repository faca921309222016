//! Container properties: the limits the runtime host's owner sets in `container.properties`
//! (Java-properties syntax), taking precedence over operation settings where seed 003 says so.

use std::fmt;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sluice_connector::Limits;

/// The host's container properties, typed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ContainerProperties {
    /// Limits every Kafka operation runs under.
    pub kafka: Limits,
    /// Limits of the long-running host (`sluice serve`).
    pub host: HostLimits,
    /// The properties the file set (by our names), as opposed to their defaults.
    pub set_in_file: Vec<&'static str>,
}

/// What bounds the long-running host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostLimits {
    /// Process executions running at once, across every listener.
    pub max_concurrent_executions: NonZeroU32,
    /// After SIGINT/SIGTERM, how long running executions may take to finish before the host
    /// stops without committing them.
    pub drain_timeout: Duration,
    /// How long execution records are kept.
    pub executions_retention: Duration,
    /// How many execution records are kept at most (the oldest go first).
    pub executions_max_records: u64,
    /// The waits between attempts to reach the brokers when a listener starts; the last one
    /// repeats.
    pub reconnect_backoff: Vec<Duration>,
    /// How long a listener with lag may go without committing before the watchdog marks it
    /// STALLED and restarts it; `None`: no watchdog.
    pub stall_timeout: Option<Duration>,
}

impl HostLimits {
    /// Executions at once when the container properties do not say: enough for a few busy
    /// listeners without letting one host swamp its brokers.
    pub const DEFAULT_MAX_CONCURRENT_EXECUTIONS: NonZeroU32 = NonZeroU32::new(8).expect("8");
    /// Drain time when the container properties do not say.
    pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
    /// Days execution records are kept when the container properties do not say.
    pub const DEFAULT_EXECUTIONS_RETENTION_DAYS: u64 = 30;
    /// Execution records kept at most when the container properties do not say: a busy
    /// host's few days, a database of a few hundred MB.
    pub const DEFAULT_EXECUTIONS_MAX_RECORDS: u64 = 1_000_000;
    /// The platform's reconnect schedule: 10 s, 30 s, 1 min, 2 min, then every 5 min.
    pub const DEFAULT_RECONNECT_BACKOFF_MS: [u64; 5] = [10_000, 30_000, 60_000, 120_000, 300_000];
    /// The stall watchdog's timeout when the container properties do not say: 5 minutes,
    /// longer than any retry sequence of the default retry settings.
    pub const DEFAULT_STALL_TIMEOUT: Duration = Duration::from_secs(300);
}

impl HostLimits {
    /// The wait before reconnect attempt `attempt` (0-based): the schedule's, its last wait
    /// repeating.
    pub fn reconnect_wait(&self, attempt: usize) -> Duration {
        let last = self.reconnect_backoff.len().saturating_sub(1);
        self.reconnect_backoff
            .get(attempt.min(last))
            .copied()
            // The schedule is never empty (checked when read); the platform's first wait.
            .unwrap_or(Duration::from_secs(10))
    }

    /// The longest wait of the reconnect schedule.
    pub fn longest_reconnect_wait(&self) -> Duration {
        self.reconnect_backoff
            .iter()
            .max()
            .copied()
            .unwrap_or_default()
    }
}

impl Default for HostLimits {
    fn default() -> Self {
        Self {
            max_concurrent_executions: Self::DEFAULT_MAX_CONCURRENT_EXECUTIONS,
            drain_timeout: Self::DEFAULT_DRAIN_TIMEOUT,
            executions_retention: days(Self::DEFAULT_EXECUTIONS_RETENTION_DAYS),
            executions_max_records: Self::DEFAULT_EXECUTIONS_MAX_RECORDS,
            reconnect_backoff: Self::DEFAULT_RECONNECT_BACKOFF_MS
                .iter()
                .map(|ms| Duration::from_millis(*ms))
                .collect(),
            stall_timeout: Some(Self::DEFAULT_STALL_TIMEOUT),
        }
    }
}

/// A problem in `container.properties`: `file:line: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PropertyProblem {
    /// The file.
    pub file: PathBuf,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// What is wrong and what would be valid.
    pub message: String,
}

impl fmt::Display for PropertyProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: {}", self.file.display(), self.message),
            None => write!(f, "{}: {}", self.file.display(), self.message),
        }
    }
}

/// Errors that stop the host from starting.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
pub struct ContainerPropertiesError(pub Vec<PropertyProblem>);

fn days(n: u64) -> Duration {
    Duration::from_secs(n.saturating_mul(86_400))
}

/// The properties we know, under our names. The integration platform we replace prefixes them
/// with `com.boomi.connector.`; that spelling is accepted too, so its files can be reused.
const MAX_REQUEST_SIZE: &str = "kafka.max.request.size";
const MAX_POLL_RECORDS: &str = "kafka.max.poll.records";
const PRODUCER_QUEUE_KBYTES: &str = "kafka.producer.queue.kbytes";
const CONSUMER_PREFETCH_KBYTES: &str = "kafka.consumer.prefetch.kbytes";
const MAX_CONCURRENT_EXECUTIONS: &str = "host.max.concurrent.executions";
const DRAIN_TIMEOUT_MS: &str = "host.drain.timeout.ms";
const EXECUTIONS_RETENTION_DAYS: &str = "host.executions.retention.days";
const EXECUTIONS_MAX_RECORDS: &str = "host.executions.max.records";
const RECONNECT_BACKOFF_MS: &str = "host.reconnect.backoff.ms";
const STALL_TIMEOUT_MS: &str = "host.stall.timeout.ms";
const KNOWN: &[&str] = &[
    MAX_REQUEST_SIZE,
    MAX_POLL_RECORDS,
    PRODUCER_QUEUE_KBYTES,
    CONSUMER_PREFETCH_KBYTES,
    MAX_CONCURRENT_EXECUTIONS,
    DRAIN_TIMEOUT_MS,
    EXECUTIONS_RETENTION_DAYS,
    EXECUTIONS_MAX_RECORDS,
    RECONNECT_BACKOFF_MS,
    STALL_TIMEOUT_MS,
];
const PLATFORM_PREFIX: &str = "com.boomi.connector.";

/// librdkafka refuses a message.max.bytes above 1,000,000,000.
const MAX_REQUEST_SIZE_LIMIT: u64 = 1_000_000_000;

impl ContainerProperties {
    /// The name of the largest message size property (`kafka.max.request.size`).
    pub const MAX_REQUEST_SIZE: &'static str = MAX_REQUEST_SIZE;

    /// Whether the file set `name` (rather than leaving its default).
    pub fn is_set(&self, name: &str) -> bool {
        self.set_in_file.contains(&name)
    }

    /// The file read when `--container-properties` is not given, if it exists.
    pub const DEFAULT_FILE: &'static str = "container.properties";

    /// Reads and checks a properties file. Unknown keys are returned as warnings (they are
    /// ignored, never silently); invalid values are errors.
    pub fn load(path: &Path) -> Result<(Self, Vec<PropertyProblem>), ContainerPropertiesError> {
        let file = std::fs::File::open(path).map_err(|e| {
            ContainerPropertiesError(vec![PropertyProblem {
                file: path.to_path_buf(),
                line: None,
                message: format!("cannot be read: {e}"),
            }])
        })?;
        Self::parse(path, std::io::BufReader::new(file))
    }

    /// Parses properties text; `path` is only used in messages.
    pub fn parse(
        path: &Path,
        input: impl std::io::Read,
    ) -> Result<(Self, Vec<PropertyProblem>), ContainerPropertiesError> {
        let problem = |line: Option<usize>, message: String| PropertyProblem {
            file: path.to_path_buf(),
            line,
            message,
        };
        let mut properties = Self::default();
        let mut errors = Vec::new();
        let mut warnings = Vec::new();
        for line in java_properties::PropertiesIter::new(input) {
            let line = match line {
                Ok(line) => line,
                Err(e) => {
                    errors.push(problem(e.line_number(), format!("cannot be parsed: {e}")));
                    break;
                }
            };
            let number = line.line_number();
            let java_properties::LineContent::KVPair(key, value) = line.consume_content() else {
                continue;
            };
            let name = key.strip_prefix(PLATFORM_PREFIX).unwrap_or(&key);
            let value = value.trim();
            let set = set_kafka_limit(&mut properties.kafka, &key, name, value)
                .or_else(|| set_host_limit(&mut properties.host, &key, name, value));
            match set {
                Some(Ok(())) => {
                    if let Some(known) = KNOWN.iter().find(|known| **known == name) {
                        properties.set_in_file.push(known);
                    }
                }
                Some(Err(message)) => errors.push(problem(Some(number), message)),
                None => warnings.push(problem(Some(number), unknown_property(&key, name))),
            }
        }
        if errors.is_empty() {
            Ok((properties, warnings))
        } else {
            Err(ContainerPropertiesError(errors))
        }
    }
}

/// Sets the Kafka limit `name` (`key` as written) from `value`: `None` when `name` is not a
/// Kafka limit, else whether `value` was valid, and if not, what would be.
fn set_kafka_limit(
    limits: &mut Limits,
    key: &str,
    name: &str,
    value: &str,
) -> Option<Result<(), String>> {
    let set = match name {
        MAX_REQUEST_SIZE => match value.parse::<u64>() {
            Ok(n) if (1..=MAX_REQUEST_SIZE_LIMIT).contains(&n) => {
                limits.max_request_size = n;
                Ok(())
            }
            _ => Err(format!(
                "{key} must be a whole number of bytes from 1 to \
                 {MAX_REQUEST_SIZE_LIMIT}, got \"{value}\" (default {})",
                Limits::DEFAULT_MAX_REQUEST_SIZE
            )),
        },
        MAX_POLL_RECORDS => at_least_one(key, value, Limits::DEFAULT_MAX_POLL_RECORDS)
            .map(|n| limits.max_poll_records = n),
        PRODUCER_QUEUE_KBYTES | CONSUMER_PREFETCH_KBYTES => match value.parse::<u32>() {
            Ok(n) if n >= 1024 => {
                if name == PRODUCER_QUEUE_KBYTES {
                    limits.producer_queue_kbytes = n;
                } else {
                    limits.consumer_prefetch_kbytes = n;
                }
                Ok(())
            }
            _ => Err(format!(
                "{key} must be a whole number of KiB from 1024 to {}, got \
                     \"{value}\" (default {})",
                u32::MAX,
                if name == PRODUCER_QUEUE_KBYTES {
                    Limits::DEFAULT_PRODUCER_QUEUE_KBYTES
                } else {
                    Limits::DEFAULT_CONSUMER_PREFETCH_KBYTES
                }
            )),
        },
        _ => return None,
    };
    Some(set)
}

/// `value` as a whole number ≥ 1, or what `key` must be.
fn at_least_one(
    key: &str,
    value: &str,
    default: impl std::fmt::Display,
) -> Result<NonZeroU32, String> {
    value.parse::<NonZeroU32>().map_err(|_| {
        format!("{key} must be a whole number ≥ 1, got \"{value}\" (default {default})")
    })
}

/// Sets the host limit `name` (`key` as written) from `value`: `None` when `name` is not a
/// host limit, else whether `value` was valid, and if not, what would be.
fn set_host_limit(
    limits: &mut HostLimits,
    key: &str,
    name: &str,
    value: &str,
) -> Option<Result<(), String>> {
    let set = match name {
        MAX_CONCURRENT_EXECUTIONS => {
            at_least_one(key, value, HostLimits::DEFAULT_MAX_CONCURRENT_EXECUTIONS)
                .map(|n| limits.max_concurrent_executions = n)
        }
        DRAIN_TIMEOUT_MS => match value.parse::<u64>() {
            Ok(ms) => {
                limits.drain_timeout = Duration::from_millis(ms);
                Ok(())
            }
            Err(_) => Err(format!(
                "{key} must be a whole number of milliseconds, got \"{value}\" \
                 (default {})",
                HostLimits::DEFAULT_DRAIN_TIMEOUT.as_millis()
            )),
        },
        EXECUTIONS_RETENTION_DAYS => match value.parse::<u64>() {
            Ok(n) if n >= 1 => {
                limits.executions_retention = days(n);
                Ok(())
            }
            _ => Err(format!(
                "{key} must be a whole number of days ≥ 1, got \"{value}\" \
                 (default {})",
                HostLimits::DEFAULT_EXECUTIONS_RETENTION_DAYS
            )),
        },
        EXECUTIONS_MAX_RECORDS => match value.parse::<u64>() {
            Ok(n) if n >= 1 => {
                limits.executions_max_records = n;
                Ok(())
            }
            _ => Err(format!(
                "{key} must be a whole number of records ≥ 1, got \"{value}\" (default {})",
                HostLimits::DEFAULT_EXECUTIONS_MAX_RECORDS
            )),
        },
        RECONNECT_BACKOFF_MS => match reconnect_backoff(value) {
            Some(waits) => {
                limits.reconnect_backoff = waits;
                Ok(())
            }
            None => Err(format!(
                "{key} must be milliseconds > 0 separated by commas, the last \
                 repeating, got \"{value}\" (default {})",
                HostLimits::DEFAULT_RECONNECT_BACKOFF_MS
                    .map(|ms| ms.to_string())
                    .join(",")
            )),
        },
        STALL_TIMEOUT_MS => match value.parse::<u64>() {
            Ok(ms) => {
                limits.stall_timeout = (ms > 0).then(|| Duration::from_millis(ms));
                Ok(())
            }
            Err(_) => Err(format!(
                "{key} must be a whole number of milliseconds (0: no watchdog), got \
                 \"{value}\" (default {})",
                HostLimits::DEFAULT_STALL_TIMEOUT.as_millis()
            )),
        },
        _ => return None,
    };
    Some(set)
}

/// A reconnect schedule: milliseconds > 0 separated by commas; `None` when any is not.
fn reconnect_backoff(value: &str) -> Option<Vec<Duration>> {
    value
        .split(',')
        .map(|w| w.trim().parse::<u64>().ok().filter(|ms| *ms > 0))
        .map(|ms| ms.map(Duration::from_millis))
        .collect()
}

/// The warning for a property we do not know (`key` as written), with the closest known one
/// or else the list of them.
fn unknown_property(key: &str, name: &str) -> String {
    let mut message = format!("unknown container property \"{key}\" is ignored");
    match crate::components::did_you_mean(name, KNOWN.iter().copied()) {
        Some(close) => message.push_str(&format!(" (did you mean {close}?)")),
        None => message.push_str(&format!(" (known properties: {})", KNOWN.join(", "))),
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(
        text: &str,
    ) -> Result<(ContainerProperties, Vec<PropertyProblem>), ContainerPropertiesError> {
        ContainerProperties::parse(Path::new("container.properties"), text.as_bytes())
    }

    #[test]
    fn defaults_are_the_platforms() {
        let (props, warnings) = parse("# nothing set\n").expect("valid");
        assert_eq!(props.kafka.max_request_size, 10_485_760);
        assert_eq!(props.kafka.max_poll_records.get(), 1);
        assert!(warnings.is_empty());
    }

    #[test]
    fn reads_our_names_and_the_platforms() {
        let (props, _) =
            parse("kafka.max.poll.records = 3\ncom.boomi.connector.kafka.max.request.size: 2048\n")
                .expect("valid");
        assert_eq!(props.kafka.max_poll_records.get(), 3);
        assert_eq!(props.kafka.max_request_size, 2048);
    }

    #[test]
    fn host_bounds_are_read() {
        let (props, warnings) = parse(
            "kafka.producer.queue.kbytes=2048\nkafka.consumer.prefetch.kbytes=4096\n\
             host.max.concurrent.executions=2\nhost.drain.timeout.ms=1500\n\
             host.executions.retention.days=7\nhost.executions.max.records=2500\n\
             host.reconnect.backoff.ms=100, 2000\n",
        )
        .expect("valid");
        assert!(warnings.is_empty());
        assert_eq!(props.kafka.producer_queue_kbytes, 2048);
        assert_eq!(props.kafka.consumer_prefetch_kbytes, 4096);
        assert_eq!(props.host.max_concurrent_executions.get(), 2);
        assert_eq!(props.host.drain_timeout, Duration::from_millis(1500));
        assert_eq!(props.host.executions_retention, days(7));
        assert_eq!(props.host.executions_max_records, 2500);
        assert_eq!(
            props.host.reconnect_backoff,
            [Duration::from_millis(100), Duration::from_secs(2)]
        );
        // The last wait repeats.
        assert_eq!(props.host.reconnect_wait(0), Duration::from_millis(100));
        assert_eq!(props.host.reconnect_wait(5), Duration::from_secs(2));
        assert_eq!(props.host.longest_reconnect_wait(), Duration::from_secs(2));
        assert!(parse("host.reconnect.backoff.ms=10,soon\n").is_err());
        let err = parse("kafka.consumer.prefetch.kbytes=10\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "container.properties:1: kafka.consumer.prefetch.kbytes must be a whole number of \
             KiB from 1024 to 4294967295, got \"10\" (default 16384)"
        );
    }

    #[test]
    fn invalid_values_are_errors_with_line_numbers() {
        let err = parse("\nkafka.max.poll.records=0\nkafka.max.request.size=10MB\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "container.properties:2: kafka.max.poll.records must be a whole number ≥ 1, got \"0\" \
             (default 1)\ncontainer.properties:3: kafka.max.request.size must be a whole number \
             of bytes from 1 to 1000000000, got \"10MB\" (default 10485760)"
        );
    }

    #[test]
    fn unknown_keys_are_warned_about_with_a_suggestion() {
        let (_, warnings) = parse("kafka.max.pol.records=5\nfoo=bar\n").expect("valid");
        assert_eq!(
            warnings.iter().map(ToString::to_string).collect::<Vec<_>>(),
            [
                "container.properties:1: unknown container property \"kafka.max.pol.records\" \
                 is ignored (did you mean kafka.max.poll.records?)",
                "container.properties:2: unknown container property \"foo\" is ignored (known \
                 properties: kafka.max.request.size, kafka.max.poll.records, \
                 kafka.producer.queue.kbytes, kafka.consumer.prefetch.kbytes, \
                 host.max.concurrent.executions, host.drain.timeout.ms, \
                 host.executions.retention.days, host.executions.max.records, \
                 host.reconnect.backoff.ms, host.stall.timeout.ms)"
            ]
        );
    }
}
