//! `<process>`: a start (a consume or listen operation, or documents given on the command
//! line) and its steps (connector operations, set-properties).

use super::check::{Checker, Reference};
use super::raw::{RawProcess, RawProperty, RawStep};
use super::source::Location;
use super::values;

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
    /// Sets document properties on each document, in order.
    SetProperties(Vec<SetProperty>),
}

/// A document property a step can set or read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PropertyName {
    /// `message-key`
    MessageKey,
    /// `topic-name`
    TopicName,
    /// `partition`
    Partition,
    /// `timestamp`
    Timestamp,
    /// `header:NAME`
    Header(String),
}

impl PropertyName {
    const VALID: &'static str = "message-key, topic-name, partition, timestamp or header:NAME";

    fn parse(text: &str) -> Result<Self, String> {
        match text {
            "message-key" => Ok(Self::MessageKey),
            "topic-name" => Ok(Self::TopicName),
            "partition" => Ok(Self::Partition),
            "timestamp" => Ok(Self::Timestamp),
            _ => match text.strip_prefix("header:") {
                Some(name) if !name.is_empty() => Ok(Self::Header(name.to_string())),
                _ => Err(format!("must be {}, got \"{text}\"", Self::VALID)),
            },
        }
    }
}

impl std::fmt::Display for PropertyName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::MessageKey => f.write_str("message-key"),
            Self::TopicName => f.write_str("topic-name"),
            Self::Partition => f.write_str("partition"),
            Self::Timestamp => f.write_str("timestamp"),
            Self::Header(name) => write!(f, "header:{name}"),
        }
    }
}

/// A tracked property a step can read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrackedName {
    /// `topic`
    Topic,
    /// `partition`
    Partition,
    /// `offset`
    Offset,
    /// `key`
    Key,
    /// `timestamp`
    Timestamp,
    /// `header:NAME`
    Header(String),
}

impl TrackedName {
    fn parse(text: &str) -> Result<Self, String> {
        match text {
            "topic" => Ok(Self::Topic),
            "partition" => Ok(Self::Partition),
            "offset" => Ok(Self::Offset),
            "key" => Ok(Self::Key),
            "timestamp" => Ok(Self::Timestamp),
            _ => match text.strip_prefix("header:") {
                Some(name) if !name.is_empty() => Ok(Self::Header(name.to_string())),
                _ => Err(format!(
                    "must be topic, partition, offset, key, timestamp or header:NAME, got \"{text}\""
                )),
            },
        }
    }
}

impl std::fmt::Display for TrackedName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Topic => f.write_str("topic"),
            Self::Partition => f.write_str("partition"),
            Self::Offset => f.write_str("offset"),
            Self::Key => f.write_str("key"),
            Self::Timestamp => f.write_str("timestamp"),
            Self::Header(name) => write!(f, "header:{name}"),
        }
    }
}

/// Where a set-properties value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PropertySource {
    /// A constant (`value="…"`).
    Constant(String),
    /// Another document property (`from-property="…"`, `from-header="NAME"`).
    Property(PropertyName),
    /// A tracked property (`from-tracked="…"`).
    Tracked(TrackedName),
}

/// One `<property>` of a set-properties step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetProperty {
    /// The property set.
    pub target: PropertyName,
    /// Where its value comes from.
    pub source: PropertySource,
    /// When the source is absent: leave the target as it is (`true`) or fail the document.
    pub optional: bool,
}

fn set_property(c: &mut Checker<'_>, raw: RawProperty, index: usize) -> Option<SetProperty> {
    const PATH: &str = "steps/set-properties/property";
    let at = |c: &Checker<'_>, attribute: &str| {
        c.scanned()
            .nth_attribute(PATH, index, attribute)
            .or_else(|| c.scanned().nth_element(PATH, index))
            .unwrap_or(c.scanned().start())
    };
    let fail = |c: &mut Checker<'_>, attribute: &str, message: String| {
        let offset = at(c, attribute);
        c.error_at(offset, format!("set-properties: {message}"));
    };
    let target = match raw.name.as_deref().map(str::trim) {
        None | Some("") => {
            fail(
                c,
                "name",
                format!("a <property> needs name=\"…\": {}", PropertyName::VALID),
            );
            return None;
        }
        Some(name) => match PropertyName::parse(name) {
            Ok(target) => target,
            Err(predicate) => {
                fail(c, "name", format!("name {predicate}"));
                return None;
            }
        },
    };
    let sources = [
        raw.value.is_some(),
        raw.from_property.is_some(),
        raw.from_header.is_some(),
        raw.from_tracked.is_some(),
    ];
    if sources.iter().filter(|&&given| given).count() != 1 {
        fail(
            c,
            "name",
            format!(
                "property {target} needs exactly one of value, from-property, from-header or \
                 from-tracked"
            ),
        );
        return None;
    }
    let source = if let Some(value) = raw.value {
        let value = c.text("value", Some(value))?;
        let check = match target {
            PropertyName::Partition => values::partition(&value).map(|_| ()),
            PropertyName::Timestamp => value
                .parse::<i64>()
                .map(|_| ())
                .map_err(|_| format!("must be milliseconds since the epoch, got \"{value}\"")),
            PropertyName::TopicName => values::topic(&value).map(|_| ()),
            _ => Ok(()),
        };
        if let Err(predicate) = check {
            fail(c, "value", format!("value for {target} {predicate}"));
            return None;
        }
        PropertySource::Constant(value)
    } else if let Some(name) = raw.from_property {
        match PropertyName::parse(name.trim()) {
            Ok(name) => PropertySource::Property(name),
            Err(predicate) => {
                fail(c, "from-property", format!("from-property {predicate}"));
                return None;
            }
        }
    } else if let Some(header) = raw.from_header {
        let header = header.trim().to_string();
        if header.is_empty() {
            fail(c, "from-header", "from-header must name a header".into());
            return None;
        }
        PropertySource::Property(PropertyName::Header(header))
    } else {
        let name = raw.from_tracked.unwrap_or_default();
        match TrackedName::parse(name.trim()) {
            Ok(name) => PropertySource::Tracked(name),
            Err(predicate) => {
                fail(c, "from-tracked", format!("from-tracked {predicate}"));
                return None;
            }
        }
    };
    let optional = match raw.optional.as_deref().map(values::boolean) {
        None => false,
        Some(Ok(optional)) => optional,
        Some(Err(predicate)) => {
            fail(c, "optional", format!("optional {predicate}"));
            return None;
        }
    };
    Some(SetProperty {
        target,
        source,
        optional,
    })
}

pub(crate) fn process(c: &mut Checker<'_>, raw: RawProcess) -> Option<ProcessDefinition> {
    let id = c.component_id(raw.id);
    let description = c.text("description", raw.description);
    let start = match raw.start {
        Some(start) => match start.operation {
            Some(op) => {
                let offset = c
                    .scanned()
                    .attribute("start", "operation")
                    .unwrap_or(c.scanned().start());
                let op = op.trim().to_string();
                Some(Reference {
                    at: c.file().location(offset),
                    id: op,
                })
            }
            None => None,
        },
        None => None,
    };
    let mut steps = Vec::new();
    // Position among all <property> elements of the process, to locate errors.
    let mut property_index = 0;
    for (index, step) in raw
        .steps
        .map(|s| s.steps)
        .unwrap_or_default()
        .into_iter()
        .enumerate()
    {
        let offset = c
            .scanned()
            .nth_child("steps", index)
            .map_or(c.scanned().start(), |t| t.start);
        match step {
            RawStep::SetProperties(step) => {
                let mut properties = Vec::new();
                for raw in step.properties {
                    if let Some(property) = set_property(c, raw, property_index) {
                        properties.push(property);
                    }
                    property_index += 1;
                }
                if properties.is_empty() && c.errors.is_empty() {
                    c.error_at(
                        offset,
                        format!(
                            "step {} (<set-properties>) sets nothing: add <property name=\"…\" \
                             value=\"…\"/> elements",
                            index + 1
                        ),
                    );
                }
                steps.push(Step::SetProperties(properties));
            }
            RawStep::Connector(step) => match step.operation.map(|o| o.trim().to_string()) {
                Some(op) if !op.is_empty() => {
                    let at = c
                        .scanned()
                        .nth_child("steps", index)
                        .and_then(|t| t.attributes.iter().find(|(n, _)| n == "operation"))
                        .map_or(offset, |a| a.1);
                    steps.push(Step::Connector {
                        operation: Reference {
                            at: c.file().location(at),
                            id: op,
                        },
                    })
                }
                _ => c.error_at(
                    offset,
                    format!(
                        "step {} (<connector>) needs an operation attribute naming the operation \
                         to run, e.g. <connector operation=\"send-orders\"/>",
                        index + 1
                    ),
                ),
            },
        }
    }
    if start.is_none() && steps.is_empty() && c.errors.is_empty() {
        let at = c.scanned().start();
        c.error_at(
            at,
            "does nothing: give it a <start operation=\"…\"/> (a consume or listen \
             operation) or <steps> to run on the documents given with sluice run --input"
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
