//! `<operation>`: Produce, Consume, Commit Offset or Listen, each type with its own fields
//! (declared once in [`fields`]) and its own checks.

mod fields;

use std::time::Duration;

use sluice_connector::consume::OffsetReset;
use sluice_connector::produce::{Acks, Compression, ProduceSettings};
use sluice_connector::topic_pattern::TopicPattern;
use sluice_connector::Header;

pub use fields::OperationType;
pub(crate) use fields::RawOperation;

use super::check::{Checker, Reference};
use super::connection::group;
use super::source::Location;
use super::values;

/// A validated `<operation>`.
#[derive(Debug, Clone)]
pub struct OperationDefinition {
    /// Unique among operations.
    pub id: String,
    /// Where it is defined.
    pub origin: Location,
    /// What it is for.
    pub description: Option<String>,
    /// The connection it runs on.
    pub connection: Reference,
    /// What it does.
    pub kind: OperationKind,
}

/// The operation types and their settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OperationKind {
    /// Sends documents to a topic.
    Produce(ProduceDefinition),
    /// Reads documents from a topic.
    Consume(ConsumeDefinition),
    /// Commits consumed positions for a consumer group.
    CommitOffset(CommitOffsetDefinition),
    /// Waits for messages and starts a process execution for each batch (`sluice serve`).
    Listen(ListenDefinition),
}

impl OperationKind {
    /// The operation's type.
    pub fn operation_type(&self) -> OperationType {
        match self {
            Self::Produce(_) => OperationType::Produce,
            Self::Consume(_) => OperationType::Consume,
            Self::CommitOffset(_) => OperationType::CommitOffset,
            Self::Listen(_) => OperationType::Listen,
        }
    }

    /// The `type` attribute's value.
    pub fn name(&self) -> &'static str {
        self.operation_type().name()
    }
}

/// A Produce operation as defined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProduceDefinition {
    /// The connector's settings (topic, acks, compression, delivery timeout).
    pub settings: ProduceSettings,
    /// Whether a document's topic-name property picks the topic. Off by default: consumed
    /// documents carry the topic they came from, which must not redirect a later Produce.
    pub dynamic_topic: bool,
    /// Partition for documents that do not name one.
    pub partition: Option<i32>,
    /// Headers every document gets; a document's own header of the same name wins.
    pub headers: Vec<Header>,
}

/// A Commit Offset operation as defined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitOffsetDefinition {
    /// The operation's own consumer group, else the connection's.
    pub consumer_group: Option<String>,
}

/// A Consume operation as defined; the consumer group may still come from the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumeDefinition {
    /// Topic to read; `None` with `dynamic_topic` or a pattern.
    pub topic: Option<String>,
    /// Read every topic whose name matches instead, as found when the operation starts.
    pub pattern: Option<TopicPattern>,
    /// As a step, read the topic each input document's topic-name property names.
    pub dynamic_topic: bool,
    /// The operation's own consumer group, if it names one.
    pub consumer_group: Option<String>,
    /// Minimum Number of Messages: poll until at least this many are held (0: until the wait ends).
    pub minimum_messages: u32,
    /// Maximum wait time.
    pub maximum_wait: Duration,
    /// Where to start without a committed offset.
    pub offset_reset: OffsetReset,
    /// Commit consumed offsets as part of the operation.
    pub autocommit: bool,
    /// Manual partition assignment; `None`: the group assigns partitions.
    pub partitions: Option<Vec<i32>>,
    /// Overrides the connection's client id.
    pub client_id: Option<String>,
}

/// Consume defaults, the platform's where it documents one.
impl ConsumeDefinition {
    /// Minimum Number of Messages when the operation does not say: one message.
    pub const DEFAULT_MINIMUM_MESSAGES: u32 = 1;
    /// Maximum wait time when the operation does not say.
    pub const DEFAULT_MAXIMUM_WAIT: Duration = Duration::from_secs(30);
}

/// A Listen operation as defined; the consumer group may still come from the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenDefinition {
    /// Topics to listen to; empty with a pattern.
    pub topics: Vec<String>,
    /// Listen to every topic whose name matches instead, looked for again every
    /// `pattern.refresh`; never the dead-letter topic.
    pub pattern: Option<TopicPattern>,
    /// The operation's own consumer group, if it names one.
    pub consumer_group: Option<String>,
    /// Where to start without a committed offset.
    pub offset_reset: OffsetReset,
    /// Manual partition assignment (one topic only); `None`: the group assigns partitions.
    pub partitions: Option<Vec<i32>>,
    /// Overrides the connection's client id.
    pub client_id: Option<String>,
    /// Most documents one execution receives.
    pub max_messages: std::num::NonZeroUsize,
    /// How often a failing document is tried again before it goes to the dead-letter topic.
    pub retry_limit: u32,
    /// The wait before the first retry; it doubles with each further retry.
    pub retry_backoff: Duration,
    /// Where documents go that still fail after the retries; without one, such a document
    /// stops the listener (nothing is skipped silently).
    pub dead_letter_topic: Option<String>,
    /// Each document its own execution, instead of one per partition and batch.
    pub execution_per_document: bool,
}

/// Listen defaults.
impl ListenDefinition {
    /// The longest wait between two tries of a document: the back-off doubles up to it.
    pub const MAX_RETRY_BACKOFF: Duration = Duration::from_secs(60);

    /// The wait before the next try of a document tried `attempts` times: the back-off,
    /// doubling, at most [`ListenDefinition::MAX_RETRY_BACKOFF`] (before jitter).
    pub fn retry_wait(&self, attempts: u32) -> Duration {
        self.retry_backoff
            .saturating_mul(1 << attempts.saturating_sub(1).min(16))
            .min(Self::MAX_RETRY_BACKOFF)
    }

    /// The longest a failing document's retries may hold its partition's commits back: every
    /// wait between its tries, each at its longest jitter.
    pub fn longest_retry_time(&self) -> Duration {
        (1..=self.retry_limit)
            .map(|attempts| sluice_connector::backoff::longest_jittered(self.retry_wait(attempts)))
            .sum()
    }

    /// Documents per execution when the operation does not say.
    pub const DEFAULT_MAX_MESSAGES: usize = 100;
    /// Retries of a failing document when the operation does not say.
    pub const DEFAULT_RETRY_LIMIT: u32 = 3;
    /// First retry wait when the operation does not say.
    pub const DEFAULT_RETRY_BACKOFF: Duration = Duration::from_secs(1);
    /// How often a pattern's topics are looked for again when the operation does not say:
    /// a minute, shorter than Kafka consumers' five (metadata.max.age.ms), since a listener
    /// that misses a new topic for minutes looks broken.
    pub const DEFAULT_PATTERN_REFRESH: Duration = Duration::from_secs(60);

    /// The topics as messages name them: the pattern, or the topics.
    pub fn shown(&self) -> String {
        match &self.pattern {
            Some(pattern) => format!("pattern {}", pattern.as_str()),
            None => self.topics.join(","),
        }
    }
}

/// `topic-pattern`, compiled; `None` when absent or wrong (reported).
fn topic_pattern(
    c: &mut Checker<'_>,
    raw: Option<String>,
    refresh: Duration,
) -> Option<TopicPattern> {
    let pattern = c.text("topic-pattern", raw)?;
    if pattern.is_empty() {
        c.field_error(
            "topic-pattern",
            "is empty: write a regular expression that topic names match, e.g. orders-.*".into(),
        );
        return None;
    }
    if let Some(problem) = super::extract::regex_problem(&pattern, true) {
        c.field_error("topic-pattern", problem);
        return None;
    }
    TopicPattern::new(&pattern, refresh)
        .map_err(|e| {
            c.field_error(
                "topic-pattern",
                format!("\"{pattern}\" does not compile: {e}"),
            )
        })
        .ok()
}

/// Why `partitions` (and Consume's `dynamic-topic`) are refused beside `topic-pattern`.
const NOT_WITH_PATTERN: &str =
    "does not go with <topic-pattern>: the group assigns the partitions of every matching topic";

/// Refuses `topic` and `topic-pattern` together (Consume and Listen read one or the other).
fn topic_or_pattern(c: &mut Checker<'_>, raw: &RawOperation) -> bool {
    let both = raw.topic.is_some() && raw.topic_pattern.is_some();
    if both {
        c.field_error(
            "topic-pattern",
            "and <topic> exclude each other: read the named topics, or every topic the \
             pattern matches"
                .into(),
        );
    }
    both
}

pub(crate) fn operation(c: &mut Checker<'_>, raw: RawOperation) -> Option<OperationDefinition> {
    let id = c.component_id(raw.id.clone());
    let kind = c
        .required(
            "type",
            raw.kind.clone(),
            "say what the operation does: type=\"produce\", \"consume\", \"commit-offset\" \
             or \"listen\"",
        )
        .and_then(|t| {
            values::one_of(&t, OperationType::NAMES)
                .map_err(|p| c.field_error("type", p))
                .ok()
        });
    let connection = c
        .required(
            "connection",
            raw.connection.clone(),
            "name the connection it runs on, e.g. connection=\"local-kafka\"",
        )
        .map(|id| c.reference("connection", id));
    let description = c.text("description", raw.description.clone());
    let kind = kind?;
    refuse_other_types_fields(c, kind, &raw);
    let kind = match kind {
        OperationType::Produce => OperationKind::Produce(produce(c, raw)?),
        OperationType::Consume => OperationKind::Consume(consume(c, raw)?),
        OperationType::Listen => OperationKind::Listen(listen(c, raw)?),
        OperationType::CommitOffset => OperationKind::CommitOffset(CommitOffsetDefinition {
            consumer_group: group(c, raw.consumer_group),
        }),
    };
    if !c.errors.is_empty() {
        return None;
    }
    Some(OperationDefinition {
        origin: c.origin(),
        description,
        id: id?,
        connection: connection?,
        kind,
    })
}

/// Fields given that this type does not take.
fn refuse_other_types_fields(c: &mut Checker<'_>, kind: OperationType, raw: &RawOperation) {
    let allowed = kind.fields();
    for field in raw.given() {
        if !allowed.contains(&field) {
            c.field_error(
                field,
                format!(
                    "does not apply to a {} operation (its fields: {})",
                    kind.name(),
                    allowed[1..].join(", ")
                ),
            );
        }
    }
}

/// `offset-reset`: where a group without a committed offset starts.
fn offset_reset(c: &mut Checker<'_>, raw: Option<String>) -> Option<OffsetReset> {
    c.parse("offset-reset", raw, |v| {
        values::one_of(
            v,
            &[
                ("earliest", OffsetReset::Earliest),
                ("latest", OffsetReset::Latest),
            ],
        )
    })
}

/// `dynamic-topic` and `topic`: with a dynamic topic the topic may be left out (documents name
/// theirs); otherwise it is required, and `None` means it is missing or invalid.
fn topic_or_dynamic(
    c: &mut Checker<'_>,
    dynamic: Option<String>,
    topic: Option<String>,
    hint: &str,
) -> (bool, Option<String>) {
    let dynamic = c
        .parse("dynamic-topic", dynamic, values::boolean)
        .unwrap_or(false);
    if dynamic && topic.is_none() {
        return (true, None);
    }
    let topic = c.required("topic", topic, hint).and_then(|t| {
        values::topic(&t)
            .map_err(|p| c.field_error("topic", p))
            .ok()
    });
    (dynamic, topic)
}

fn produce(c: &mut Checker<'_>, raw: RawOperation) -> Option<ProduceDefinition> {
    let hint = "name the topic, e.g. <topic>orders</topic>, or set \
                <dynamic-topic>true</dynamic-topic> to take it from each document's topic-name \
                property";
    let (dynamic_topic, topic) = topic_or_dynamic(c, raw.dynamic_topic, raw.topic, hint);
    let partition = c.parse("partition", raw.partition, values::partition);
    let headers = raw
        .headers
        .map(|h| headers(c, h.headers))
        .unwrap_or_default();
    let acks = c.parse("acks", raw.acks, |v| {
        values::one_of(
            v,
            &[("all", Acks::All), ("1", Acks::Leader), ("0", Acks::None)],
        )
    });
    let compression = c.parse("compression", raw.compression, |v| {
        values::one_of(
            v,
            &[
                ("none", Compression::None),
                ("gzip", Compression::Gzip),
                ("snappy", Compression::Snappy),
                ("lz4", Compression::Lz4),
                ("zstd", Compression::Zstd),
            ],
        )
    });
    let delivery_timeout = c.parse("delivery-timeout", raw.delivery_timeout, values::duration);
    if topic.is_none() && !dynamic_topic {
        return None;
    }
    Some(ProduceDefinition {
        settings: ProduceSettings {
            topic,
            acks: acks.unwrap_or_default(),
            compression: compression.unwrap_or_default(),
            delivery_timeout: delivery_timeout.unwrap_or(ProduceSettings::DEFAULT_DELIVERY_TIMEOUT),
        },
        dynamic_topic,
        partition,
        headers,
    })
}

fn consume(c: &mut Checker<'_>, mut raw: RawOperation) -> Option<ConsumeDefinition> {
    if topic_or_pattern(c, &raw) {
        return None;
    }
    let pattern_given = raw.topic_pattern.is_some();
    let pattern = topic_pattern(
        c,
        raw.topic_pattern.take(),
        ListenDefinition::DEFAULT_PATTERN_REFRESH,
    );
    if pattern_given && pattern.is_none() {
        return None;
    }
    if pattern.is_some() {
        let clash = [
            ("dynamic-topic", raw.dynamic_topic.is_some()),
            ("partitions", raw.partitions.is_some()),
        ];
        for (field, given) in clash {
            if given {
                c.field_error(field, NOT_WITH_PATTERN.into());
                return None;
            }
        }
    }
    let hint = "name the topic, e.g. <topic>orders</topic>, or give <topic-pattern>";
    let topic_given = raw.topic.is_some();
    let (dynamic_topic, topic) = if pattern.is_some() {
        (false, None)
    } else {
        topic_or_dynamic(c, raw.dynamic_topic, raw.topic, hint)
    };
    // Unlike Produce, a Consume whose topic is wrong is not checked further.
    if pattern.is_none() && topic.is_none() && (topic_given || !dynamic_topic) {
        return None;
    }
    let consumer_group = group(c, raw.consumer_group);
    let minimum = c.parse("minimum-messages", raw.minimum_messages, |v| {
        values::whole_number(v, 0)
    });
    let maximum_wait = c.parse("maximum-wait", raw.maximum_wait, values::duration);
    let offset_reset = offset_reset(c, raw.offset_reset);
    let autocommit = c.parse("autocommit", raw.autocommit, values::boolean);
    let partitions = c.parse("partitions", raw.partitions, values::partition_list);
    let client_id = c
        .text("client-id", raw.client_id)
        .filter(|id| !id.is_empty());
    Some(ConsumeDefinition {
        topic,
        pattern,
        dynamic_topic,
        consumer_group,
        minimum_messages: minimum.unwrap_or(ConsumeDefinition::DEFAULT_MINIMUM_MESSAGES),
        maximum_wait: maximum_wait.unwrap_or(ConsumeDefinition::DEFAULT_MAXIMUM_WAIT),
        offset_reset: offset_reset.unwrap_or_default(),
        autocommit: autocommit.unwrap_or(false),
        partitions,
        client_id,
    })
}

fn listen(c: &mut Checker<'_>, raw: RawOperation) -> Option<ListenDefinition> {
    if topic_or_pattern(c, &raw) {
        return None;
    }
    let refresh = c.parse("pattern-refresh", raw.pattern_refresh, values::duration);
    if refresh.is_some() && raw.topic_pattern.is_none() {
        c.field_error(
            "pattern-refresh",
            "applies to <topic-pattern>: named topics are not looked for".into(),
        );
    }
    let mut pattern = topic_pattern(
        c,
        raw.topic_pattern.clone(),
        refresh.unwrap_or(ListenDefinition::DEFAULT_PATTERN_REFRESH),
    );
    let topics = if raw.topic_pattern.is_some() {
        pattern.as_ref().map(|_| Vec::new())
    } else {
        let hint = "name the topic, e.g. <topic>orders</topic>, several separated by commas, \
                    or give <topic-pattern>";
        c.required("topic", raw.topic, hint).and_then(|t| {
            t.split(',')
                .map(|topic| values::topic(topic.trim()))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|p| c.field_error("topic", p))
                .ok()
        })
    };
    let consumer_group = group(c, raw.consumer_group);
    let offset_reset = offset_reset(c, raw.offset_reset);
    let partitions = c.parse("partitions", raw.partitions, values::partition_list);
    if partitions.is_some() && pattern.is_some() {
        c.field_error("partitions", NOT_WITH_PATTERN.into());
    }
    if partitions.is_some() && topics.as_ref().is_some_and(|t| t.len() > 1) {
        c.field_error(
            "partitions",
            "applies to one topic; listen to several topics without partitions (the group \
             assigns them), or use one listen operation per topic"
                .into(),
        );
    }
    let client_id = c
        .text("client-id", raw.client_id)
        .filter(|id| !id.is_empty());
    let max_messages = c.parse("max-messages", raw.max_messages, |v| {
        values::whole_number(v, 1)
    });
    let retry_limit = c.parse("retry-limit", raw.retry_limit, |v| {
        values::whole_number(v, 0)
    });
    let retry_backoff = c.parse("retry-backoff", raw.retry_backoff, values::duration);
    let dead_letter_topic = c.parse("dead-letter-topic", raw.dead_letter_topic, values::topic);
    if let (Some(pattern), Some(dlq)) = (&mut pattern, &dead_letter_topic) {
        if pattern.picks(dlq) {
            c.field_error(
                "dead-letter-topic",
                format!(
                    "\"{dlq}\" matches the operation's topic-pattern \"{}\": failed documents \
                     would come back forever; name a topic the pattern does not match",
                    pattern.as_str()
                ),
            );
        }
        // Never read, whatever else changes: the load check above is for the user's sake.
        pattern.excluded.push(dlq.clone());
    }
    if let (Some(topics), Some(dlq)) = (&topics, &dead_letter_topic) {
        if topics.contains(dlq) {
            c.field_error(
                "dead-letter-topic",
                format!(
                    "\"{dlq}\" is a topic this operation listens to: failed documents would \
                     come back forever; name another topic"
                ),
            );
        }
    }
    let execution_per_document = c.parse("execution-per", raw.execution_per, |v| {
        values::one_of(v, &[("batch", false), ("document", true)])
    });
    Some(ListenDefinition {
        topics: topics?,
        pattern,
        consumer_group,
        offset_reset: offset_reset.unwrap_or_default(),
        partitions,
        client_id,
        max_messages: max_messages
            .and_then(|n| std::num::NonZeroUsize::new(n as usize))
            .unwrap_or(
                std::num::NonZeroUsize::new(ListenDefinition::DEFAULT_MAX_MESSAGES)
                    .expect("not zero"),
            ),
        retry_limit: retry_limit.unwrap_or(ListenDefinition::DEFAULT_RETRY_LIMIT),
        retry_backoff: retry_backoff.unwrap_or(ListenDefinition::DEFAULT_RETRY_BACKOFF),
        dead_letter_topic,
        execution_per_document: execution_per_document.unwrap_or(false),
    })
}

fn headers(c: &mut Checker<'_>, raw: Vec<super::raw::RawNamedValue>) -> Vec<Header> {
    let mut headers = Vec::new();
    for (index, header) in raw.into_iter().enumerate() {
        let at = c
            .scanned()
            .nth_element("headers/header", index)
            .unwrap_or(c.scanned().start());
        match header.name.map(|n| n.trim().to_string()).filter(|n| !n.is_empty()) {
            Some(name) => {
                let value = c.text("headers", Some(header.value.unwrap_or_default()));
                headers.push(Header {
                    name,
                    value: value.map(String::into_bytes),
                });
            }
            None => c.error_at(
                at,
                "headers: a <header> needs a name attribute, e.g. <header name=\"source\">sluice</header>"
                    .into(),
            ),
        }
    }
    headers
}
