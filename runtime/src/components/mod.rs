//! XML components: connection, operation and process definitions.
//!
//! Loading runs in three passes, each with located errors:
//! 1. `source::scan` finds the components of each file and where every element is;
//! 2. quick-xml's serde support reads each component into a raw struct (`raw.rs`) that mirrors
//!    the file and refuses unknown elements and attributes;
//! 3. `definitions.rs` checks every field and builds the typed definitions; then references
//!    between components (process → operation → connection) are resolved here.

mod definitions;
mod presets;
mod raw;
mod source;
mod values;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

pub use definitions::{
    CommitOffsetDefinition, ConnectionDefinition, ConsumeDefinition, ListenDefinition,
    OperationDefinition, OperationKind, ProcessDefinition, ProduceDefinition, PropertyName,
    PropertySource, Reference, SetProperty, Step, TrackedName,
};
pub use source::{ComponentKind, Location};

pub(crate) use values::{did_you_mean, topic as valid_topic};

use definitions::Checker;
use source::{ScannedComponent, SourceFile};

/// One problem found while loading components, located as precisely as we can.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError {
    /// The file.
    pub file: PathBuf,
    /// Line and column, when the problem is at a place in the file.
    pub at: Option<Location>,
    /// The component, when the problem is inside one (its id, once known).
    pub component: Option<(ComponentKind, Option<String>)>,
    /// What is wrong and what would be valid.
    pub message: String,
}

impl LoadError {
    pub(crate) fn new(
        file: &Path,
        at: Option<Location>,
        component: Option<(ComponentKind, Option<String>)>,
        message: String,
    ) -> Self {
        Self {
            file: file.to_path_buf(),
            at,
            component: component.map(|(kind, id)| (kind, id.map(|id| shortened(&id)))),
            message: shortened_quotes(&message),
        }
    }
}

/// Longest value an error message repeats whole; longer ones are cut (a 10 MB attribute must
/// not become a 10 MB message).
const SHOWN_VALUE_MAX: usize = 80;

fn shortened(value: &str) -> String {
    let length = value.chars().count();
    if length <= SHOWN_VALUE_MAX {
        return value.to_string();
    }
    let head: String = value.chars().take(SHOWN_VALUE_MAX - 20).collect();
    format!("{head}… ({length} characters)")
}

/// Shortens every double-quoted value in a message.
fn shortened_quotes(message: &str) -> String {
    if message.len() <= SHOWN_VALUE_MAX * 4 {
        return message.to_string();
    }
    let mut out = String::with_capacity(SHOWN_VALUE_MAX * 8);
    for (i, part) in message.split('"').enumerate() {
        if i > 0 {
            out.push('"');
        }
        // Odd parts are inside quotes.
        if i % 2 == 1 {
            out.push_str(&shortened(part));
        } else {
            out.push_str(part);
        }
    }
    // Long unquoted names (an element or attribute name) are cut too.
    if out.chars().count() > SHOWN_VALUE_MAX * 12 {
        out = out.chars().take(SHOWN_VALUE_MAX * 12).collect::<String>() + "…";
    }
    out
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.at {
            Some(at) => write!(f, "{at}: ")?,
            None => write!(f, "{}: ", self.file.display())?,
        }
        match &self.component {
            Some((kind, Some(id))) => write!(f, "{} \"{id}\": ", kind.name())?,
            Some((kind, None)) => write!(f, "{}: ", kind.name())?,
            None => {}
        }
        f.write_str(&self.message)
    }
}

/// Every problem found in a set of component files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadErrors(pub Vec<LoadError>);

impl fmt::Display for LoadErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for LoadErrors {}

/// A validated set of components whose references all resolve.
#[derive(Debug, Clone, Default)]
pub struct Components {
    /// Connections by id.
    pub connections: BTreeMap<String, ConnectionDefinition>,
    /// Operations by id.
    pub operations: BTreeMap<String, OperationDefinition>,
    /// Processes by id.
    pub processes: BTreeMap<String, ProcessDefinition>,
    /// The files read, in the order read.
    pub files: Vec<PathBuf>,
    /// Components that were found but are invalid: references to them are not reported again.
    invalid: BTreeSet<(ComponentKind, String)>,
}

impl Components {
    /// Loads every `*.xml` file under each path (folders are searched recursively, hidden
    /// entries skipped, files in name order) and validates them together.
    pub fn load(paths: &[PathBuf]) -> Result<Self, LoadErrors> {
        let mut sources = Vec::new();
        let mut errors = Vec::new();
        for path in paths {
            match xml_files(path) {
                Ok(files) if files.is_empty() => errors.push(LoadError::new(
                    path,
                    None,
                    None,
                    "no component files (*.xml) here".into(),
                )),
                Ok(files) => {
                    for file in files {
                        match std::fs::read_to_string(&file) {
                            Ok(text) => sources.push((file, text)),
                            Err(e) => errors.push(LoadError::new(
                                &file,
                                None,
                                None,
                                format!("cannot be read: {e}"),
                            )),
                        }
                    }
                }
                Err(e) => errors.push(LoadError::new(path, None, None, e)),
            }
        }
        match Self::from_sources(sources) {
            Ok(components) if errors.is_empty() => Ok(components),
            Ok(_) => Err(LoadErrors(errors)),
            Err(LoadErrors(more)) => {
                errors.extend(more);
                Err(LoadErrors(errors))
            }
        }
    }

    /// The processes that start with a listen operation (what `sluice serve` runs), by id.
    pub fn listener_processes(&self) -> Vec<String> {
        self.processes
            .values()
            .filter(|p| {
                p.start.as_ref().is_some_and(|start| {
                    self.operations
                        .get(&start.id)
                        .is_some_and(|op| matches!(op.kind, OperationKind::Listen(_)))
                })
            })
            .map(|p| p.id.clone())
            .collect()
    }

    /// The connections a process uses (through its start and its steps); `None` when there is
    /// no such process.
    pub fn connections_of(&self, process: &str) -> Option<BTreeSet<String>> {
        let process = self.processes.get(process)?;
        let operations =
            process
                .start
                .iter()
                .map(|s| &s.id)
                .chain(process.steps.iter().filter_map(|step| match step {
                    Step::Connector { operation } => Some(&operation.id),
                    Step::SetProperties(_) => None,
                }));
        Some(
            operations
                .filter_map(|id| self.operations.get(id))
                .map(|op| op.connection.id.clone())
                .collect(),
        )
    }

    /// Validates components given as (file name, text) pairs, such as files built into the
    /// binary.
    pub fn from_sources(sources: Vec<(PathBuf, String)>) -> Result<Self, LoadErrors> {
        let mut components = Components::default();
        let mut errors = Vec::new();
        let mut first_definition: BTreeMap<(ComponentKind, String), Location> = BTreeMap::new();
        for (path, text) in sources {
            let file = SourceFile::new(&path, text);
            components.files.push(path);
            let scanned = match source::scan(&file.text) {
                Ok(scanned) => scanned,
                Err(e) => {
                    errors.push(LoadError::new(
                        &file.path,
                        Some(file.location(e.offset)),
                        None,
                        e.message,
                    ));
                    continue;
                }
            };
            for component in &scanned {
                if let Some(id) = &component.id {
                    let at = file.location(component.start());
                    if let Some(first) = first_definition.get(&(component.kind, id.clone())) {
                        let offset = component.attribute("", "id").unwrap_or(component.start());
                        errors.push(LoadError::new(
                            &file.path,
                            Some(file.location(offset)),
                            Some((component.kind, Some(id.clone()))),
                            format!(
                                "the id is already used by the {} defined at {first}",
                                component.kind.name()
                            ),
                        ));
                        continue;
                    }
                    first_definition.insert((component.kind, id.clone()), at);
                }
                components.add(&file, component, &mut errors);
            }
        }
        components.check_references(&mut errors);
        if errors.is_empty() {
            Ok(components)
        } else {
            Err(LoadErrors(errors))
        }
    }

    fn add(&mut self, file: &SourceFile, scanned: &ScannedComponent, errors: &mut Vec<LoadError>) {
        let mut checker = Checker::new(file, scanned);
        checker.id = scanned.id.clone();
        let valid = match scanned.kind {
            ComponentKind::Connection => deserialize(&mut checker)
                .and_then(|raw| definitions::connection(&mut checker, raw))
                .filter(|_| checker.errors.is_empty())
                .map(|def| self.connections.insert(def.id.clone(), def))
                .is_some(),
            ComponentKind::Operation => deserialize(&mut checker)
                .and_then(|raw| definitions::operation(&mut checker, raw))
                .filter(|_| checker.errors.is_empty())
                .map(|def| self.operations.insert(def.id.clone(), def))
                .is_some(),
            ComponentKind::Process => deserialize(&mut checker)
                .and_then(|raw| definitions::process(&mut checker, raw))
                .filter(|_| checker.errors.is_empty())
                .map(|def| self.processes.insert(def.id.clone(), def))
                .is_some(),
        };
        if !valid {
            if let Some(id) = &scanned.id {
                self.invalid.insert((scanned.kind, id.clone()));
            }
        }
        // Within a component, errors read in file order.
        checker
            .errors
            .sort_by_key(|e| e.at.as_ref().map(|at| (at.line, at.column)));
        errors.append(&mut checker.errors);
    }

    fn check_references(&mut self, errors: &mut Vec<LoadError>) {
        let reference_error = |kind: ComponentKind, id: &str, at: &Location, message: String| {
            LoadError::new(
                &at.file,
                Some(at.clone()),
                Some((kind, Some(id.to_string()))),
                message,
            )
        };
        let invalid =
            |kind: ComponentKind, id: &str| self.invalid.contains(&(kind, id.to_string()));
        // Suggestions draw on every id found, valid or not.
        let found = |kind: ComponentKind, valid: Vec<&String>| -> Vec<String> {
            let mut ids: Vec<String> = valid.into_iter().cloned().collect();
            ids.extend(
                self.invalid
                    .iter()
                    .filter(|(k, _)| *k == kind)
                    .map(|(_, id)| id.clone()),
            );
            ids.sort();
            ids
        };
        let connection_ids = found(ComponentKind::Connection, self.connections.keys().collect());
        let operation_ids = found(ComponentKind::Operation, self.operations.keys().collect());
        for op in self.operations.values() {
            if invalid(ComponentKind::Connection, &op.connection.id) {
                continue;
            }
            let Some(connection) = self.connections.get(&op.connection.id) else {
                errors.push(reference_error(
                    ComponentKind::Operation,
                    &op.id,
                    &op.connection.at,
                    not_defined("connection", &op.connection.id, &connection_ids),
                ));
                continue;
            };
            let group = match &op.kind {
                OperationKind::Consume(consume) => Some(&consume.consumer_group),
                OperationKind::CommitOffset(commit) => Some(&commit.consumer_group),
                OperationKind::Listen(listen) => Some(&listen.consumer_group),
                OperationKind::Produce(_) => None,
            };
            if let Some(group) = group {
                if group.is_none() && connection.config.default_consumer_group.is_none() {
                    errors.push(reference_error(
                        ComponentKind::Operation,
                        &op.id,
                        &op.origin,
                        format!(
                            "consumer-group is missing: name it in the operation or give \
                             connection \"{}\" a default <consumer-group>",
                            connection.id
                        ),
                    ));
                }
            }
        }
        for process in self.processes.values() {
            if let Some(start) = process
                .start
                .as_ref()
                .filter(|s| !invalid(ComponentKind::Operation, &s.id))
            {
                match self.operations.get(&start.id) {
                    None => errors.push(reference_error(
                        ComponentKind::Process,
                        &process.id,
                        &start.at,
                        format!(
                            "start {}",
                            not_defined("operation", &start.id, &operation_ids)
                        ),
                    )),
                    Some(op)
                        if !matches!(
                            op.kind,
                            OperationKind::Consume(_) | OperationKind::Listen(_)
                        ) =>
                    {
                        errors.push(reference_error(
                            ComponentKind::Process,
                            &process.id,
                            &start.at,
                            format!(
                                "start operation \"{}\" is a {} operation; a process starts \
                                 with a consume or listen operation (or with no operation, \
                                 taking documents from sluice run --input)",
                                op.id,
                                op.kind.name()
                            ),
                        ))
                    }
                    Some(OperationDefinition {
                        kind: OperationKind::Consume(ConsumeDefinition { topic: None, .. }),
                        id,
                        ..
                    }) => errors.push(reference_error(
                        ComponentKind::Process,
                        &process.id,
                        &start.at,
                        format!(
                            "start operation \"{id}\" has no topic: it takes the topic from \
                             input documents (dynamic-topic), so it can only be a <connector> \
                             step; give it a <topic> to start a process with it"
                        ),
                    )),
                    Some(_) => {}
                }
            }
            for (index, step) in process.steps.iter().enumerate() {
                let Step::Connector { operation } = step else {
                    continue;
                };
                if invalid(ComponentKind::Operation, &operation.id) {
                    continue;
                }
                let problem = match self.operations.get(&operation.id) {
                    None => Some(not_defined("operation", &operation.id, &operation_ids)),
                    Some(op) if matches!(op.kind, OperationKind::Listen(_)) => Some(format!(
                        "operation \"{}\" is a listen operation, which can only start a \
                         process: <start operation=\"{}\"/>",
                        op.id, op.id
                    )),
                    Some(_) => None,
                };
                if let Some(problem) = problem {
                    errors.push(reference_error(
                        ComponentKind::Process,
                        &process.id,
                        &operation.at,
                        format!("step {}: {problem}", index + 1),
                    ));
                }
            }
        }
    }
}

fn not_defined(kind: &str, id: &str, defined: &[String]) -> String {
    let defined: Vec<&str> = defined.iter().map(String::as_str).collect();
    let mut message = format!("{kind} \"{id}\" is not defined");
    if let Some(close) = values::did_you_mean(id, defined.iter().copied()) {
        message.push_str(&format!(" (did you mean \"{close}\"?)"));
    } else if defined.is_empty() {
        message.push_str(&format!(" (no {kind} is defined in the files loaded)"));
    } else {
        message.push_str(&format!(" (defined: {})", defined.join(", ")));
    }
    message
}

/// Reads one component into its raw struct; serde's messages are rewritten to name the
/// element or attribute and located where it is written.
fn deserialize<T: DeserializeOwned>(checker: &mut Checker<'_>) -> Option<T> {
    let text = &checker.file().text[checker.scanned().range.clone()];
    match quick_xml::de::from_str::<T>(text) {
        Ok(raw) => Some(raw),
        Err(e) => {
            let (offset, message) = explain_de_error(checker.scanned(), &e.to_string());
            checker.error_at(offset, message);
            None
        }
    }
}

/// Turns serde's "unknown field `x`, expected one of `a`, `b`" and friends into our messages.
fn explain_de_error(scanned: &ScannedComponent, message: &str) -> (usize, String) {
    let ticked: Vec<&str> = message.split('`').skip(1).step_by(2).collect();
    let name = ticked.first().copied().unwrap_or_default();
    let is_attribute = name.starts_with('@');
    let bare = name.trim_start_matches('@');
    // Elements of other operation types are valid XML-wise but not worth suggesting.
    let type_fields = match scanned.kind {
        ComponentKind::Operation => scanned
            .type_attribute
            .as_deref()
            .and_then(definitions::operation_fields),
        _ => None,
    };
    // serde lists the expected names after the offending one; offer those of the same sort.
    let expected: Vec<&str> = ticked
        .iter()
        .skip(1)
        .filter(|n| n.starts_with('@') == is_attribute && **n != "@xmlns" && **n != "$value")
        .map(|n| n.trim_start_matches('@'))
        .filter(|n| is_attribute || type_fields.is_none_or(|fields| fields.contains(n)))
        .collect();
    let show = |n: &str| {
        if is_attribute {
            n.to_string()
        } else {
            format!("<{n}>")
        }
    };
    let offset_of = |n: &str| {
        if is_attribute {
            scanned
                .tags
                .iter()
                .find_map(|t| t.attributes.iter().find(|(a, _)| a == n).map(|a| a.1))
        } else {
            scanned
                .tags
                .iter()
                .find(|t| t.path.rsplit('/').next() == Some(n))
                .map(|t| t.start)
        }
    };
    let valid = |label: &str| {
        let names: Vec<String> = expected.iter().map(|n| show(n)).collect();
        let listed = if names.is_empty() {
            "none".to_string()
        } else {
            names.join(", ")
        };
        match values::did_you_mean(bare, expected.iter().copied()) {
            Some(close) => format!("did you mean {}? ({label}: {listed})", show(close)),
            None => format!("{label}: {listed}"),
        }
    };
    let sort = if is_attribute { "attribute" } else { "element" };
    if message.starts_with("unknown field") {
        let offset = offset_of(bare).unwrap_or(scanned.start());
        let label = format!("valid {sort}s here");
        (
            offset,
            format!("unknown {sort} {}; {}", show(bare), valid(&label)),
        )
    } else if message.starts_with("unknown variant") {
        let offset = offset_of(bare).unwrap_or(scanned.start());
        (
            offset,
            format!("unknown step <{bare}>; {}", valid("steps available")),
        )
    } else if message.starts_with("duplicate field") {
        let offset = scanned
            .tags
            .iter()
            .filter(|t| t.path.rsplit('/').next() == Some(bare))
            .nth(1)
            .map_or(scanned.start(), |t| t.start);
        (
            offset,
            format!("{sort} {} is given twice; give it once", show(bare)),
        )
    } else {
        (scanned.start(), format!("cannot be read: {message}"))
    }
}

/// The `*.xml` files at `path`: the file itself, or those under a folder, recursively.
fn xml_files(path: &Path) -> Result<Vec<PathBuf>, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot be read: {e}"))?;
    if meta.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(path)
        .map_err(|e| format!("cannot be listed: {e}"))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            !p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    entries.sort();
    for entry in entries {
        if entry.is_dir() {
            files.extend(xml_files(&entry)?);
        } else if entry.extension().is_some_and(|e| e == "xml") {
            files.push(entry);
        }
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use sluice_connector::consume::OffsetReset;
    use sluice_connector::produce::{Acks, Compression};
    use sluice_connector::Bootstrap;

    use super::*;

    fn load(text: &str) -> Result<Components, LoadErrors> {
        Components::from_sources(vec![(PathBuf::from("t.xml"), text.to_string())])
    }

    #[test]
    fn builds_typed_definitions_with_defaults() {
        let components = load(
            r#"<components>
                 <connection id="k"><bootstrap-servers>a:1, b:2</bootstrap-servers><consumer-group>g</consumer-group></connection>
                 <operation id="p" type="produce" connection="k"><topic>t</topic><compression>zstd</compression></operation>
                 <operation id="c" type="consume" connection="k"><topic>t</topic><maximum-wait>1500ms</maximum-wait></operation>
                 <process id="x"><start operation="c"/><steps><connector operation="p"/></steps></process>
               </components>"#,
        )
        .expect("valid");
        let connection = &components.connections["k"].config;
        assert_eq!(
            connection.bootstrap,
            Bootstrap::Servers(vec!["a:1".into(), "b:2".into()])
        );
        assert_eq!(connection.client_id, "sluice");
        let OperationKind::Produce(produce) = &components.operations["p"].kind else {
            panic!("produce")
        };
        assert_eq!(
            (produce.settings.acks, produce.settings.compression),
            (Acks::All, Compression::Zstd)
        );
        assert_eq!(produce.settings.delivery_timeout, Duration::from_secs(30));
        assert!(!produce.dynamic_topic);
        let OperationKind::Consume(consume) = &components.operations["c"].kind else {
            panic!("consume")
        };
        assert_eq!(consume.maximum_wait, Duration::from_millis(1500));
        assert_eq!(consume.minimum_messages, 1);
        assert_eq!(consume.offset_reset, OffsetReset::Latest);
        assert!(!consume.autocommit);
        assert_eq!(
            consume.consumer_group, None,
            "the connection's group applies at run time"
        );
        let process = &components.processes["x"];
        assert_eq!(process.start.as_ref().map(|s| s.id.as_str()), Some("c"));
        assert_eq!(
            process.start.as_ref().map(|s| s.at.to_string()).as_deref(),
            Some("t.xml:5:41")
        );
        assert_eq!(process.steps.len(), 1);
    }

    #[test]
    fn an_error_names_place_component_field_and_valid_values() {
        let err = load(
            "<operation id=\"o\" type=\"consume\" connection=\"k\">\n  <topic>t</topic>\n  \
             <offset-reset>oldest</offset-reset>\n</operation>",
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "t.xml:3:3: operation \"o\": offset-reset must be one of earliest, latest; got \"oldest\""
        );
    }

    #[test]
    fn an_invalid_connection_does_not_cascade_into_reference_errors() {
        let err = load(
            r#"<components>
                 <connection id="k"><bootstrap-servers>nope</bootstrap-servers></connection>
                 <operation id="p" type="produce" connection="k"><topic>t</topic></operation>
               </components>"#,
        )
        .unwrap_err();
        assert_eq!(err.0.len(), 1, "{err}");
    }
}

#[cfg(test)]
mod set_properties_tests {
    use super::*;

    fn errors(steps: &str) -> Vec<String> {
        let text = format!(
            "<components>\n<connection id=\"k\"><bootstrap-servers>a:1</bootstrap-servers></connection>\n\
             <operation id=\"p\" type=\"produce\" connection=\"k\"><topic>t</topic></operation>\n\
             <process id=\"x\"><steps>\n{steps}\n<connector operation=\"p\"/></steps></process>\n</components>"
        );
        match Components::from_sources(vec![(PathBuf::from("t.xml"), text)]) {
            Ok(_) => Vec::new(),
            Err(e) => e.0.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn valid_steps_load() {
        assert!(errors(
            r#"<set-properties><property name="header:h" from-tracked="header:x" optional="true"/>
               <property name="partition" value="2"/><property name="message-key" from-property="topic-name"/></set-properties>"#
        )
        .is_empty());
    }

    #[test]
    fn each_mistake_is_located_and_says_what_is_valid() {
        assert_eq!(
            errors(r#"<set-properties><property name="key" value="x"/></set-properties>"#),
            [
                "t.xml:5:27: process \"x\": set-properties: name must be message-key, topic-name, \
              partition, timestamp or header:NAME, got \"key\""
            ]
        );
        assert_eq!(
            errors(r#"<set-properties><property name="partition" value="first"/></set-properties>"#),
            ["t.xml:5:44: process \"x\": set-properties: value for partition must be a partition \
              number (a whole number ≥ 0), got \"first\""]
        );
        assert_eq!(
            errors(r#"<set-properties><property name="message-key" value="a" from-header="b"/></set-properties>"#),
            ["t.xml:5:27: process \"x\": set-properties: property message-key needs exactly one of \
              value, from-property, from-header or from-tracked"]
        );
        assert_eq!(
            errors(r#"<set-properties><property name="topic-name" from-tracked="leader"/></set-properties>"#),
            ["t.xml:5:45: process \"x\": set-properties: from-tracked must be topic, partition, \
              offset, key, timestamp or header:NAME, got \"leader\""]
        );
    }
}

#[cfg(test)]
mod preset_tests {
    use sluice_connector::Connection;

    use super::*;

    const PRESETS: &str = r#"<components>
  <connection id="event-hubs-namespace" preset="azure-event-hubs">
    <namespace>contoso-orders</namespace>
    <password>Endpoint=sb://contoso-orders.servicebus.windows.net/;SharedAccessKeyName=send;SharedAccessKey=c2VjcmV0LWtleQ==</password>
  </connection>
  <connection id="event-hubs-connection-string" preset="azure-event-hubs">
    <password>Endpoint=sb://fabrikam.servicebus.windows.net/;SharedAccessKeyName=listen;SharedAccessKey=b3RoZXIta2V5</password>
    <properties><property name="request.timeout.ms">30000</property></properties>
  </connection>
  <connection id="msk-tls" preset="amazon-msk">
    <bootstrap-servers>b-1.orders.abc123.c2.kafka.eu-west-1.amazonaws.com:9094</bootstrap-servers>
  </connection>
  <connection id="msk-scram" preset="amazon-msk">
    <bootstrap-servers>b-1.orders.abc123.c2.kafka.eu-west-1.amazonaws.com:9096,b-2.orders.abc123.c2.kafka.eu-west-1.amazonaws.com:9096</bootstrap-servers>
    <sasl-mechanism>SCRAM-SHA-512</sasl-mechanism>
    <username>orders</username>
    <password>msk-secret</password>
  </connection>
  <connection id="msk-iam" preset="amazon-msk">
    <bootstrap-servers>b-1.orders.abc123.c2.kafka.eu-west-1.amazonaws.com:9098,b-2.orders.abc123.c2.kafka.eu-west-1.amazonaws.com:9098</bootstrap-servers>
    <sasl-mechanism>OAUTHBEARER</sasl-mechanism>
  </connection>
</components>"#;

    /// The resolved client settings of each preset, against the golden files in
    /// tests/golden/ (`SLUICE_BLESS=1` rewrites them; read the diff before committing).
    #[test]
    fn presets_resolve_to_the_golden_client_settings() {
        let components =
            Components::from_sources(vec![(PathBuf::from("presets.xml"), PRESETS.into())])
                .expect("valid presets");
        let golden = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/golden"));
        for (id, definition) in &components.connections {
            let connection = Connection::open(definition.config.clone()).expect("open");
            let mut text: String = connection
                .resolved_settings()
                .into_iter()
                .map(|(name, value)| format!("{name}={value}\n"))
                .collect();
            text.push_str(&format!(
                "# sluice: idempotence={} max.request.size cap={:?}\n",
                definition.config.idempotence, definition.config.max_request_size_cap
            ));
            let file = golden.join(format!("{id}.properties"));
            if std::env::var_os("SLUICE_BLESS").is_some() {
                std::fs::write(&file, &text).expect("write golden");
            }
            let expected = std::fs::read_to_string(&file).unwrap_or_else(|e| {
                panic!(
                    "{}: {e} (run with SLUICE_BLESS=1 to create it)",
                    file.display()
                )
            });
            assert_eq!(text, expected, "{id} differs from {}", file.display());
            assert!(
                !text.contains("c2VjcmV0LWtleQ") && !text.contains("msk-secret"),
                "{id} shows a secret"
            );
        }
    }

    fn errors(connection: &str) -> Vec<String> {
        let text = format!("<components>\n{connection}\n</components>");
        match Components::from_sources(vec![(PathBuf::from("p.xml"), text)]) {
            Ok(_) => Vec::new(),
            Err(e) => e.0.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn aws_iam_needs_a_region_and_excludes_oauth() {
        let sasl = r#"<security-protocol>SASL_SSL</security-protocol><sasl-mechanism>OAUTHBEARER</sasl-mechanism>"#;
        // The region comes from the MSK host name when the field does not give it.
        let text = format!(
            "<components><connection id=\"m\"><bootstrap-servers>b-1.o.x.c2.kafka.ap-south-1.amazonaws.com:9098</bootstrap-servers>{sasl}<aws-iam/></connection></components>"
        );
        let components =
            Components::from_sources(vec![(PathBuf::from("p.xml"), text)]).expect("valid");
        let iam = components.connections["m"]
            .config
            .sasl
            .as_ref()
            .and_then(|s| s.aws_iam.clone())
            .expect("aws-iam");
        assert_eq!(iam.region, "ap-south-1");
        assert_eq!(iam.profile, None);
        if std::env::var_os("AWS_REGION").is_none()
            && std::env::var_os("AWS_DEFAULT_REGION").is_none()
        {
            assert_eq!(
                errors(&format!(
                    r#"<connection id="m"><bootstrap-servers>broker:9098</bootstrap-servers>{sasl}<aws-iam><profile>dev</profile></aws-iam></connection>"#
                )),
                ["p.xml:2:161: connection \"m\": aws-iam needs the cluster's region: write \
                  <aws-iam><region>eu-west-1</region></aws-iam> (the bootstrap servers do not name \
                  one, as MSK's b-1.NAME.ID.c2.kafka.REGION.amazonaws.com do, and AWS_REGION is not \
                  set)"]
            );
        }
        assert_eq!(
            errors(&format!(
                r#"<connection id="m"><bootstrap-servers>broker:9098</bootstrap-servers>{sasl}<aws-iam><region>Ireland</region></aws-iam></connection>"#
            )),
            ["p.xml:2:170: connection \"m\": aws-iam/region must be an AWS region such as eu-west-1, got \"Ireland\""]
        );
        assert_eq!(
            errors(&format!(
                r#"<connection id="m"><bootstrap-servers>broker:9098</bootstrap-servers>{sasl}<oauth><token-endpoint>https://idp/token</token-endpoint></oauth><aws-iam/></connection>"#
            )),
            ["p.xml:2:226: connection \"m\": aws-iam and oauth exclude each other: Amazon MSK IAM \
              signs its own tokens with AWS credentials; keep one"]
        );
        assert_eq!(
            errors(r#"<connection id="m"><bootstrap-servers>broker:9096</bootstrap-servers><security-protocol>SASL_SSL</security-protocol><sasl-mechanism>PLAIN</sasl-mechanism><username>u</username><password>p</password><aws-iam/></connection>"#),
            ["p.xml:2:199: connection \"m\": aws-iam applies only to sasl-mechanism OAUTHBEARER (this connection's is PLAIN)"]
        );
    }

    #[test]
    fn presets_refuse_what_the_service_does_not_do() {
        assert_eq!(
            errors(r#"<connection id="m" preset="amazon-msk"><bootstrap-servers>b-1.x.amazonaws.com:9096</bootstrap-servers></connection>"#),
            ["p.xml:2:40: connection \"m\": bootstrap-servers \"b-1.x.amazonaws.com:9096\": Amazon MSK \
              serves TLS on port 9094 (public access: 9194), not 9096; port 9094 is TLS, 9096 \
              SASL/SCRAM, 9098 IAM"]
        );
        assert_eq!(
            errors(
                r#"<connection id="m" preset="amazon-msk"><bootstrap-servers>b-1.x.kafka.eu-west-1.amazonaws.com:9096</bootstrap-servers><sasl-mechanism>OAUTHBEARER</sasl-mechanism></connection>"#
            ),
            ["p.xml:2:40: connection \"m\": bootstrap-servers \
                 \"b-1.x.kafka.eu-west-1.amazonaws.com:9096\": Amazon MSK serves IAM on port 9098 \
                 (public access: 9198), not 9096; port 9094 is TLS, 9096 SASL/SCRAM, 9098 IAM"]
        );
        assert_eq!(
            errors(
                r#"<connection id="m" preset="amazon-msk"><bootstrap-servers>b-1.x.kafka.eu-west-1.amazonaws.com:9098</bootstrap-servers><sasl-mechanism>AWS_MSK_IAM</sasl-mechanism></connection>"#
            ),
            [
                "p.xml:2:119: connection \"m\": sasl-mechanism AWS_MSK_IAM is the Java client's \
                 name for Amazon MSK IAM; Sluice speaks it as OAUTHBEARER: write \
                 <sasl-mechanism>OAUTHBEARER</sasl-mechanism> with preset=\"amazon-msk\" (or with \
                 <aws-iam/>)"
            ]
        );
        let leaked = errors(
            r#"<connection id="e" preset="azure-event-hubs"><password>not-a-connection-string</password></connection>"#,
        );
        assert_eq!(
            leaked,
            [
                "p.xml:2:46: connection \"e\": password must be the Event Hubs connection string \
              (Endpoint=sb://…;SharedAccessKeyName=…;SharedAccessKey=…), from the namespace's \
              Shared access policies in the Azure portal"
            ]
        );
        assert_eq!(
            errors(r#"<connection id="e" preset="azure-event-hubs"><password>Endpoint=sb://n.servicebus.windows.net/;SharedAccessKey=k</password><properties><property name="request.timeout.ms">5000</property></properties></connection>"#),
            ["p.xml:2:124: connection \"e\": properties request.timeout.ms must be at least 20000 \
              for Azure Event Hubs, which can take that long to answer"]
        );
        assert_eq!(
            errors(r#"<connection id="x" preset="confluent-cloud"><bootstrap-servers>b:9092</bootstrap-servers></connection>"#),
            ["p.xml:2:20: connection \"x\": preset must be one of azure-event-hubs, amazon-msk; got \"confluent-cloud\""]
        );
    }
}

#[cfg(test)]
mod listen_tests {
    use super::*;

    fn load(body: &str) -> Result<Components, Vec<String>> {
        let text = format!(
            "<components>\n<connection id=\"k\"><bootstrap-servers>a:1</bootstrap-servers>\
             <consumer-group>g</consumer-group></connection>\n\
             <operation id=\"p\" type=\"produce\" connection=\"k\"><topic>t</topic></operation>\n\
             {body}\n</components>"
        );
        Components::from_sources(vec![(PathBuf::from("l.xml"), text)])
            .map_err(|e| e.0.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn a_listen_operation_with_its_defaults_starts_a_process() {
        let components = load(
            r#"<operation id="l" type="listen" connection="k"><topic>a, b</topic></operation>
<process id="x"><start operation="l"/><steps><connector operation="p"/></steps></process>"#,
        )
        .expect("valid");
        let OperationKind::Listen(listen) = &components.operations["l"].kind else {
            panic!("a listen operation");
        };
        assert_eq!(listen.topics, ["a", "b"]);
        assert_eq!(listen.max_messages.get(), 100);
        assert_eq!(listen.retry_limit, 3);
        assert_eq!(listen.retry_backoff, std::time::Duration::from_secs(1));
        assert_eq!(listen.dead_letter_topic, None);
        assert_eq!(components.listener_processes(), ["x"]);
    }

    #[test]
    fn listen_settings_that_cannot_work_are_refused() {
        assert_eq!(
            load(
                r#"<operation id="l" type="listen" connection="k"><topic>a, b</topic><partitions>0</partitions><dead-letter-topic>b</dead-letter-topic><max-messages>0</max-messages></operation>"#
            )
            .unwrap_err(),
            [
                "l.xml:4:67: operation \"l\": partitions applies to one topic; listen to several \
                 topics without partitions (the group assigns them), or use one listen operation \
                 per topic",
                "l.xml:4:93: operation \"l\": dead-letter-topic \"b\" is a topic this operation \
                 listens to: failed documents would come back forever; name another topic",
                "l.xml:4:133: operation \"l\": max-messages must be a whole number ≥ 1 (at most \
                 4294967295), got \"0\"",
            ]
        );
        assert_eq!(
            load(
                r#"<operation id="l" type="listen" connection="k"><topic>a</topic></operation>
<process id="x"><steps><connector operation="l"/></steps></process>"#
            )
            .unwrap_err(),
            ["l.xml:5:35: process \"x\": step 1: operation \"l\" is a listen operation, which can \
              only start a process: <start operation=\"l\"/>"]
        );
    }
}
