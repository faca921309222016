//! `<process>`: a start (a consume or listen operation, or documents given on the command
//! line) and its steps (connector operations, set-properties).

use super::check::{Checker, Reference};
use super::extract::{Template, ValuePattern};
use super::raw::{RawConnectorStep, RawProcess, RawProperty, RawSetProperties, RawStart, RawStep};
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

impl ProcessDefinition {
    /// The ids of the operations it uses: its start, then its connector steps.
    pub fn operations(&self) -> impl Iterator<Item = &str> {
        let steps = self.steps.iter().filter_map(|step| match step {
            Step::Connector { operation } => Some(operation.id.as_str()),
            Step::SetProperties(_) => None,
        });
        self.start
            .iter()
            .map(|start| start.id.as_str())
            .chain(steps)
    }
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

    pub(super) fn parse(text: &str) -> Result<Self, String> {
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
    pub(super) fn parse(text: &str) -> Result<Self, String> {
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
    /// Text and document values (`template="{header:tenant}-{property:message-key}"`).
    Template(Template),
}

/// One `<property>` of a set-properties step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetProperty {
    /// The property set.
    pub target: PropertyName,
    /// Where its value comes from.
    pub source: PropertySource,
    /// The part of the source value taken (`regex="…"`); `None`: all of it.
    pub pattern: Option<ValuePattern>,
    /// When the source is absent (or the pattern does not match it): leave the target as it
    /// is (`true`) or fail the document.
    pub optional: bool,
}

/// Where the `<property>` elements of set-properties steps are, below the process element.
const PROPERTY_PATH: &str = "steps/set-properties/property";

/// Reports a problem of the `index`-th `<property>` of the process (counted across its steps)
/// at its `attribute`, else at the element.
fn property_error(c: &mut Checker<'_>, index: usize, attribute: &str, message: String) {
    let offset = c
        .scanned()
        .nth_attribute(PROPERTY_PATH, index, attribute)
        .or_else(|| c.scanned().nth_element(PROPERTY_PATH, index))
        .unwrap_or(c.scanned().start());
    c.error_at(offset, format!("set-properties: {message}"));
}

/// The `index`-th `<property>` of the process (counted across its steps).
fn set_property(c: &mut Checker<'_>, raw: RawProperty, index: usize) -> Option<SetProperty> {
    let target = property_target(c, &raw, index)?;
    let source = property_source(c, &raw, &target, index)?;
    let pattern = property_pattern(c, &raw, &source, index)?;
    let optional = match raw.optional.as_deref().map(values::boolean) {
        None => false,
        Some(Ok(optional)) => optional,
        Some(Err(predicate)) => {
            property_error(c, index, "optional", format!("optional {predicate}"));
            return None;
        }
    };
    Some(SetProperty {
        target,
        source,
        pattern,
        optional,
    })
}

/// `regex="…"`, compiled: `Some(None)` without one, `None` when it is wrong.
fn property_pattern(
    c: &mut Checker<'_>,
    raw: &RawProperty,
    source: &PropertySource,
    index: usize,
) -> Option<Option<ValuePattern>> {
    let Some(pattern) = &raw.regex else {
        return Some(None);
    };
    if matches!(source, PropertySource::Constant(_)) {
        property_error(
            c,
            index,
            "regex",
            "regex takes part of a value from the document (from-property, from-header, \
             from-tracked or template); with a constant value, write the part you want"
                .into(),
        );
        return None;
    }
    match ValuePattern::parse(pattern) {
        Ok(pattern) => Some(Some(pattern)),
        Err(problem) => {
            property_error(c, index, "regex", format!("regex {problem}"));
            None
        }
    }
}

/// The property a `<property>` sets: its `name`.
fn property_target(c: &mut Checker<'_>, raw: &RawProperty, index: usize) -> Option<PropertyName> {
    let Some(name) = raw
        .name
        .as_deref()
        .map(str::trim)
        .filter(|name| !name.is_empty())
    else {
        property_error(
            c,
            index,
            "name",
            format!("a <property> needs name=\"…\": {}", PropertyName::VALID),
        );
        return None;
    };
    match PropertyName::parse(name) {
        Ok(target) => Some(target),
        Err(predicate) => {
            property_error(c, index, "name", format!("name {predicate}"));
            None
        }
    }
}

/// Where the value a `<property>` sets comes from: exactly one of value (a constant valid for
/// `target`), from-property, from-header and from-tracked.
fn property_source(
    c: &mut Checker<'_>,
    raw: &RawProperty,
    target: &PropertyName,
    index: usize,
) -> Option<PropertySource> {
    let sources = [
        raw.value.is_some(),
        raw.from_property.is_some(),
        raw.from_header.is_some(),
        raw.from_tracked.is_some(),
        raw.template.is_some(),
    ];
    if sources.iter().filter(|&&given| given).count() != 1 {
        property_error(
            c,
            index,
            "name",
            format!(
                "property {target} needs exactly one of value, from-property, from-header, \
                 from-tracked or template"
            ),
        );
        return None;
    }
    if let Some(value) = &raw.value {
        let value = c.text("value", Some(value.clone()))?;
        if let Err(predicate) = check_constant(target, &value) {
            property_error(c, index, "value", format!("value for {target} {predicate}"));
            return None;
        }
        Some(PropertySource::Constant(value))
    } else if let Some(name) = &raw.from_property {
        PropertyName::parse(name.trim())
            .map(PropertySource::Property)
            .map_err(|p| property_error(c, index, "from-property", format!("from-property {p}")))
            .ok()
    } else if let Some(header) = &raw.from_header {
        let header = header.trim();
        if header.is_empty() {
            property_error(
                c,
                index,
                "from-header",
                "from-header must name a header".into(),
            );
            return None;
        }
        Some(PropertySource::Property(PropertyName::Header(
            header.to_string(),
        )))
    } else if let Some(template) = &raw.template {
        Template::parse(template)
            .map(PropertySource::Template)
            .map_err(|p| property_error(c, index, "template", format!("template {p}")))
            .ok()
    } else {
        let name = raw.from_tracked.as_deref().unwrap_or_default();
        TrackedName::parse(name.trim())
            .map(PropertySource::Tracked)
            .map_err(|p| property_error(c, index, "from-tracked", format!("from-tracked {p}")))
            .ok()
    }
}

/// Whether `value` can be set as `target`; if not, what it must be.
fn check_constant(target: &PropertyName, value: &str) -> Result<(), String> {
    match target {
        PropertyName::Partition => values::partition(value).map(|_| ()),
        PropertyName::Timestamp => value
            .parse::<i64>()
            .map(|_| ())
            .map_err(|_| format!("must be milliseconds since the epoch, got \"{value}\"")),
        PropertyName::TopicName => values::topic(value).map(|_| ()),
        _ => Ok(()),
    }
}

pub(crate) fn process(c: &mut Checker<'_>, raw: RawProcess) -> Option<ProcessDefinition> {
    let id = c.component_id(raw.id);
    let description = c.text("description", raw.description);
    let start = raw.start.and_then(|start| start_reference(c, start));
    let steps = steps(c, raw.steps.map(|s| s.steps).unwrap_or_default());
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

/// The operation `<start operation="…"/>` names; `None` without one (documents then come from
/// `sluice run --input`).
fn start_reference(c: &Checker<'_>, start: RawStart) -> Option<Reference> {
    let op = start.operation?;
    let offset = c
        .scanned()
        .attribute("start", "operation")
        .unwrap_or(c.scanned().start());
    Some(Reference {
        at: c.file().location(offset),
        id: op.trim().to_string(),
    })
}

/// The steps of a process, in order; a step in error is left out.
fn steps(c: &mut Checker<'_>, raw: Vec<RawStep>) -> Vec<Step> {
    let mut steps = Vec::new();
    // Position among all <property> elements of the process, to locate errors.
    let mut property_index = 0;
    for (index, step) in raw.into_iter().enumerate() {
        let offset = c
            .scanned()
            .nth_child("steps", index)
            .map_or(c.scanned().start(), |t| t.start);
        match step {
            RawStep::SetProperties(step) => {
                let first_property = property_index;
                property_index += step.properties.len();
                steps.push(set_properties_step(c, step, index, offset, first_property));
            }
            RawStep::Connector(step) => steps.extend(connector_step(c, step, index, offset)),
        }
    }
    steps
}

/// The `index`-th step, a `<set-properties>` whose element is at `offset` and whose first
/// `<property>` is the `first_property`-th of the process.
fn set_properties_step(
    c: &mut Checker<'_>,
    step: RawSetProperties,
    index: usize,
    offset: usize,
    first_property: usize,
) -> Step {
    let mut properties = Vec::new();
    for (n, raw) in step.properties.into_iter().enumerate() {
        if let Some(property) = set_property(c, raw, first_property + n) {
            properties.push(property);
        }
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
    Step::SetProperties(properties)
}

/// The `index`-th step, a `<connector>` whose element is at `offset`; `None` when it names no
/// operation.
fn connector_step(
    c: &mut Checker<'_>,
    step: RawConnectorStep,
    index: usize,
    offset: usize,
) -> Option<Step> {
    match step.operation.map(|o| o.trim().to_string()) {
        Some(op) if !op.is_empty() => {
            let at = c
                .scanned()
                .nth_child("steps", index)
                .and_then(|t| t.attributes.iter().find(|(n, _)| n == "operation"))
                .map_or(offset, |a| a.1);
            Some(Step::Connector {
                operation: Reference {
                    at: c.file().location(at),
                    id: op,
                },
            })
        }
        _ => {
            c.error_at(
                offset,
                format!(
                    "step {} (<connector>) needs an operation attribute naming the operation \
                     to run, e.g. <connector operation=\"send-orders\"/>",
                    index + 1
                ),
            );
            None
        }
    }
}
