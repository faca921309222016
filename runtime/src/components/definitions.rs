//! Typed component definitions and the validation that builds them from the raw structs.

use std::path::Path;
use std::time::Duration;

use sluice_connector::consume::OffsetReset;
use sluice_connector::produce::{Acks, Compression, ProduceSettings};
use sluice_connector::{Bootstrap, ConnectionConfig};

use super::raw::{RawConnection, RawOperation, RawProcess, RawStep};
use super::source::{Location, ScannedComponent, SourceFile};
use super::values;
use super::LoadError;

/// A reference to another component, with where it is written (for "not defined" errors).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// The referenced component's id.
    pub id: String,
    /// Where the reference is written.
    pub at: Location,
}

/// A validated `<connection>`.
#[derive(Debug, Clone)]
pub struct ConnectionDefinition {
    /// Unique among connections.
    pub id: String,
    /// Where it is defined.
    pub origin: Location,
    /// What it is for.
    pub description: Option<String>,
    /// The connector's connection settings.
    pub config: ConnectionConfig,
}

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
#[derive(Debug, Clone)]
pub enum OperationKind {
    /// Sends documents to a topic.
    Produce(ProduceSettings),
    /// Reads documents from a topic.
    Consume(ConsumeDefinition),
}

impl OperationKind {
    /// The `type` attribute's value.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Produce(_) => "produce",
            Self::Consume(_) => "consume",
        }
    }
}

/// A Consume operation as defined; the consumer group may still come from the connection.
#[derive(Debug, Clone)]
pub struct ConsumeDefinition {
    /// Topic to read.
    pub topic: String,
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
}

/// Consume defaults, the platform's where it documents one.
impl ConsumeDefinition {
    /// Minimum Number of Messages when the operation does not say: one message.
    pub const DEFAULT_MINIMUM_MESSAGES: u32 = 1;
    /// Maximum wait time when the operation does not say.
    pub const DEFAULT_MAXIMUM_WAIT: Duration = Duration::from_secs(30);
}

/// A validated `<process>`.
#[derive(Debug, Clone)]
pub struct ProcessDefinition {
    /// Unique among processes; what `sluice run` names.
    pub id: String,
    /// Where it is defined.
    pub origin: Location,
    /// What it is for, shown by `sluice validate`.
    pub description: Option<String>,
    /// The operation that produces the documents; `None`: documents come from `--input`.
    pub start: Option<Reference>,
    /// What happens to each document, in order.
    pub steps: Vec<Step>,
}

/// One step of a process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Runs a connector operation on the documents.
    Connector {
        /// The operation.
        operation: Reference,
    },
}

/// Validation state for one component: where it is, and the errors found so far.
pub(crate) struct Checker<'a> {
    file: &'a SourceFile,
    scanned: &'a ScannedComponent,
    pub id: Option<String>,
    pub errors: Vec<LoadError>,
}

impl<'a> Checker<'a> {
    pub fn new(file: &'a SourceFile, scanned: &'a ScannedComponent) -> Self {
        Self {
            file,
            scanned,
            id: None,
            errors: Vec::new(),
        }
    }

    pub fn file(&self) -> &'a SourceFile {
        self.file
    }

    pub fn scanned(&self) -> &'a ScannedComponent {
        self.scanned
    }

    pub fn origin(&self) -> Location {
        self.file.location(self.scanned.start())
    }

    fn base_dir(&self) -> &Path {
        self.file.path.parent().unwrap_or(Path::new("."))
    }

    pub fn error_at(&mut self, offset: usize, message: String) {
        self.errors.push(LoadError::new(
            &self.file.path,
            Some(self.file.location(offset)),
            Some((self.scanned.kind, self.id.clone())),
            message,
        ));
    }

    /// Where a field is written: an element of that name, else an attribute of the component.
    pub fn field_offset(&self, field: &str) -> usize {
        self.scanned
            .element(field)
            .or_else(|| self.scanned.attribute("", field))
            .unwrap_or(self.scanned.start())
    }

    pub fn field_location(&self, field: &str) -> Location {
        self.file.location(self.field_offset(field))
    }

    pub fn field_error(&mut self, field: &str, predicate: String) {
        self.error_at(self.field_offset(field), format!("{field} {predicate}"));
    }

    /// The field's text after `${…}` replacement, trimmed; `None` when absent or invalid.
    pub fn text(&mut self, field: &str, raw: Option<String>) -> Option<String> {
        let raw = raw?;
        match values::interpolate(raw.trim(), self.base_dir()) {
            Ok(v) => Some(v.trim().to_string()),
            Err(predicate) => {
                self.field_error(field, predicate);
                None
            }
        }
    }

    /// A required field; its absence is reported with `hint` on what to write.
    pub fn required(&mut self, field: &str, raw: Option<String>, hint: &str) -> Option<String> {
        if raw.is_none() {
            let at = self.scanned.start();
            self.error_at(at, format!("{field} is missing: {hint}"));
            return None;
        }
        let value = self.text(field, raw)?;
        if value.is_empty() {
            self.field_error(field, format!("is empty: {hint}"));
            return None;
        }
        Some(value)
    }

    /// Parses an optional field; `None` when absent or invalid (then an error is recorded).
    pub fn parse<T>(
        &mut self,
        field: &str,
        raw: Option<String>,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        let value = self.text(field, raw)?;
        match parse(&value) {
            Ok(v) => Some(v),
            Err(predicate) => {
                self.field_error(field, predicate);
                None
            }
        }
    }

    /// The component's `id` attribute, checked; also names the component in later errors.
    pub fn component_id(&mut self, raw: Option<String>) -> Option<String> {
        let kind = self.scanned.kind.name();
        let hint = format!("give the {kind} a unique id attribute, e.g. <{kind} id=\"orders\">");
        let id = self.required("id", raw, &hint)?;
        match values::id(&id) {
            Ok(id) => {
                self.id = Some(id.clone());
                Some(id)
            }
            Err(predicate) => {
                self.field_error("id", predicate);
                None
            }
        }
    }

    pub fn reference(&mut self, field: &str, id: String) -> Reference {
        Reference {
            at: self.field_location(field),
            id,
        }
    }
}

pub(crate) fn connection(c: &mut Checker<'_>, raw: RawConnection) -> Option<ConnectionDefinition> {
    let id = c.component_id(raw.id);
    let bootstrap = c
        .required(
            "bootstrap-servers",
            raw.bootstrap_servers,
            "list the brokers as host:port separated by commas, or write \"embedded\" for the \
             in-process broker",
        )
        .and_then(|text| match Bootstrap::parse(&text) {
            Ok(b) => Some(b),
            Err(predicate) => {
                c.field_error("bootstrap-servers", predicate);
                None
            }
        });
    let description = c.text("description", raw.description);
    let client_id = c.text("client-id", raw.client_id);
    let consumer_group = c.text("consumer-group", raw.consumer_group);
    if consumer_group.as_deref() == Some("") {
        c.field_error(
            "consumer-group",
            "is empty: remove it or name a group".into(),
        );
    }
    Some(ConnectionDefinition {
        origin: c.origin(),
        description,
        id: id?,
        config: ConnectionConfig {
            bootstrap: bootstrap?,
            client_id: client_id
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| ConnectionConfig::DEFAULT_CLIENT_ID.to_string()),
            default_consumer_group: consumer_group.filter(|s| !s.is_empty()),
        },
    })
}

pub(crate) const PRODUCE_FIELDS: &[&str] = &["acks", "compression", "delivery-timeout"];
pub(crate) const CONSUME_FIELDS: &[&str] = &[
    "consumer-group",
    "minimum-messages",
    "maximum-wait",
    "offset-reset",
    "autocommit",
];

pub(crate) fn operation(c: &mut Checker<'_>, raw: RawOperation) -> Option<OperationDefinition> {
    let id = c.component_id(raw.id);
    let kind = c
        .required(
            "type",
            raw.kind,
            "say what the operation does: type=\"produce\" or type=\"consume\"",
        )
        .and_then(|t| {
            let parsed = values::one_of(&t, &[("produce", "produce"), ("consume", "consume")]);
            parsed.map_err(|p| c.field_error("type", p)).ok()
        });
    let connection = c
        .required(
            "connection",
            raw.connection,
            "name the connection it runs on, e.g. connection=\"local-kafka\"",
        )
        .map(|id| c.reference("connection", id));
    let description = c.text("description", raw.description);
    let topic = c
        .required(
            "topic",
            raw.topic,
            "name the topic, e.g. <topic>orders</topic>",
        )
        .and_then(|t| {
            values::topic(&t)
                .map_err(|p| c.field_error("topic", p))
                .ok()
        });

    let present = |field: &str, value: &Option<String>| value.is_some().then(|| field.to_string());
    let produce_present: Vec<String> = [
        present("acks", &raw.acks),
        present("compression", &raw.compression),
        present("delivery-timeout", &raw.delivery_timeout),
    ]
    .into_iter()
    .flatten()
    .collect();
    let consume_present: Vec<String> = [
        present("consumer-group", &raw.consumer_group),
        present("minimum-messages", &raw.minimum_messages),
        present("maximum-wait", &raw.maximum_wait),
        present("offset-reset", &raw.offset_reset),
        present("autocommit", &raw.autocommit),
    ]
    .into_iter()
    .flatten()
    .collect();

    let kind = match kind? {
        "produce" => {
            for field in consume_present {
                c.field_error(
                    &field,
                    format!(
                        "does not apply to a produce operation (its fields: topic, {})",
                        PRODUCE_FIELDS.join(", ")
                    ),
                );
            }
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
            let delivery_timeout =
                c.parse("delivery-timeout", raw.delivery_timeout, values::duration);
            OperationKind::Produce(ProduceSettings {
                topic: topic?,
                acks: acks.unwrap_or_default(),
                compression: compression.unwrap_or_default(),
                delivery_timeout: delivery_timeout
                    .unwrap_or(ProduceSettings::DEFAULT_DELIVERY_TIMEOUT),
            })
        }
        _ => {
            for field in produce_present {
                c.field_error(
                    &field,
                    format!(
                        "does not apply to a consume operation (its fields: topic, {})",
                        CONSUME_FIELDS.join(", ")
                    ),
                );
            }
            let consumer_group = c.text("consumer-group", raw.consumer_group);
            if consumer_group.as_deref() == Some("") {
                c.field_error(
                    "consumer-group",
                    "is empty: remove it or name a group".into(),
                );
            }
            let minimum = c.parse("minimum-messages", raw.minimum_messages, |v| {
                values::whole_number(v, 0)
            });
            let maximum_wait = c.parse("maximum-wait", raw.maximum_wait, values::duration);
            let offset_reset = c.parse("offset-reset", raw.offset_reset, |v| {
                values::one_of(
                    v,
                    &[
                        ("earliest", OffsetReset::Earliest),
                        ("latest", OffsetReset::Latest),
                    ],
                )
            });
            let autocommit = c.parse("autocommit", raw.autocommit, values::boolean);
            OperationKind::Consume(ConsumeDefinition {
                topic: topic?,
                consumer_group: consumer_group.filter(|g| !g.is_empty()),
                minimum_messages: minimum.unwrap_or(ConsumeDefinition::DEFAULT_MINIMUM_MESSAGES),
                maximum_wait: maximum_wait.unwrap_or(ConsumeDefinition::DEFAULT_MAXIMUM_WAIT),
                offset_reset: offset_reset.unwrap_or_default(),
                autocommit: autocommit.unwrap_or(false),
            })
        }
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

pub(crate) fn process(c: &mut Checker<'_>, raw: RawProcess) -> Option<ProcessDefinition> {
    let id = c.component_id(raw.id);
    let description = c.text("description", raw.description);
    let start = match raw.start {
        Some(start) => match start.operation {
            Some(op) => {
                let offset = c
                    .scanned
                    .attribute("start", "operation")
                    .unwrap_or(c.scanned.start());
                let op = op.trim().to_string();
                Some(Reference {
                    at: c.file.location(offset),
                    id: op,
                })
            }
            None => None,
        },
        None => None,
    };
    let mut steps = Vec::new();
    for (index, step) in raw
        .steps
        .map(|s| s.steps)
        .unwrap_or_default()
        .into_iter()
        .enumerate()
    {
        let offset = c
            .scanned
            .nth_child("steps", index)
            .map_or(c.scanned.start(), |t| t.start);
        match step {
            RawStep::Connector(step) => match step.operation.map(|o| o.trim().to_string()) {
                Some(op) if !op.is_empty() => {
                    let at = c
                        .scanned
                        .nth_child("steps", index)
                        .and_then(|t| t.attributes.iter().find(|(n, _)| n == "operation"))
                        .map_or(offset, |a| a.1);
                    steps.push(Step::Connector {
                        operation: Reference {
                            at: c.file.location(at),
                            id: op,
                        },
                    })
                }
                _ => c.error_at(
                    offset,
                    format!(
                        "step {} (<connector>) needs an operation attribute naming a produce \
                         operation, e.g. <connector operation=\"send-orders\"/>",
                        index + 1
                    ),
                ),
            },
        }
    }
    if start.is_none() && steps.is_empty() && c.errors.is_empty() {
        let at = c.scanned.start();
        c.error_at(
            at,
            "does nothing: give it a <start operation=\"…\"/> (a consume operation) or \
             <steps> to run on the documents given with sluice run --input"
                .into(),
        );
    }
    if !c.errors.is_empty() {
        return None;
    }
    Some(ProcessDefinition {
        origin: c.origin(),
        id: id?,
        description,
        start,
        steps,
    })
}
