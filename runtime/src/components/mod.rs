//! XML components: connection, operation and process definitions.
//!
//! Loading runs in three passes, each with located errors:
//! 1. `source::scan` finds the components of each file and where every element is;
//! 2. quick-xml's serde support reads each component into a raw struct (`raw.rs`) that mirrors
//!    the file and refuses unknown elements and attributes;
//! 3. `definitions.rs` checks every field and builds the typed definitions; then references
//!    between components (process → operation → connection) are resolved here.

mod definitions;
mod raw;
mod source;
mod values;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

pub use definitions::{
    ConnectionDefinition, ConsumeDefinition, OperationDefinition, OperationKind,
    ProcessDefinition, Reference, Step,
};
pub use source::{ComponentKind, Location};

pub(crate) use values::did_you_mean;

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
            component,
            message,
        }
    }
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

    /// Validates components given as (file name, text) pairs, such as files built into the
    /// binary.
    pub fn from_sources(sources: Vec<(PathBuf, String)>) -> Result<Self, LoadErrors> {
        let mut components = Components::default();
        let mut errors = Vec::new();
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
        match scanned.kind {
            ComponentKind::Connection => {
                let def = deserialize(&mut checker)
                    .and_then(|raw| definitions::connection(&mut checker, raw));
                if let Some(def) = def.filter(|_| checker.errors.is_empty()) {
                    insert(&mut self.connections, def.id.clone(), def, |d| &d.origin, &mut checker);
                }
            }
            ComponentKind::Operation => {
                let def = deserialize(&mut checker)
                    .and_then(|raw| definitions::operation(&mut checker, raw));
                if let Some(def) = def.filter(|_| checker.errors.is_empty()) {
                    insert(&mut self.operations, def.id.clone(), def, |d| &d.origin, &mut checker);
                }
            }
            ComponentKind::Process => {
                let def = deserialize(&mut checker)
                    .and_then(|raw| definitions::process(&mut checker, raw));
                if let Some(def) = def.filter(|_| checker.errors.is_empty()) {
                    insert(&mut self.processes, def.id.clone(), def, |d| &d.origin, &mut checker);
                }
            }
        }
        errors.append(&mut checker.errors);
    }

    fn check_references(&mut self, errors: &mut Vec<LoadError>) {
        let reference_error = |kind: ComponentKind, id: &str, at: &Location, message: String| {
            LoadError::new(&at.file, Some(at.clone()), Some((kind, Some(id.to_string()))), message)
        };
        for op in self.operations.values() {
            let Some(connection) = self.connections.get(&op.connection.id) else {
                errors.push(reference_error(
                    ComponentKind::Operation,
                    &op.id,
                    &op.connection.at,
                    not_defined("connection", &op.connection.id, self.connections.keys()),
                ));
                continue;
            };
            if let OperationKind::Consume(consume) = &op.kind {
                if consume.consumer_group.is_none()
                    && connection.config.default_consumer_group.is_none()
                {
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
            if let Some(start) = &process.start {
                match self.operations.get(&start.id) {
                    None => errors.push(reference_error(
                        ComponentKind::Process,
                        &process.id,
                        &start.at,
                        format!(
                            "start {}",
                            not_defined("operation", &start.id, self.operations.keys())
                        ),
                    )),
                    Some(op) if !matches!(op.kind, OperationKind::Consume(_)) => {
                        errors.push(reference_error(
                            ComponentKind::Process,
                            &process.id,
                            &start.at,
                            format!(
                                "start operation \"{}\" is a {} operation; a process starts \
                                 with a consume operation (or with no operation, taking \
                                 documents from sluice run --input)",
                                op.id,
                                op.kind.name()
                            ),
                        ))
                    }
                    Some(_) => {}
                }
            }
            for (index, step) in process.steps.iter().enumerate() {
                let Step::Connector { operation } = step;
                match self.operations.get(&operation.id) {
                    None => errors.push(reference_error(
                        ComponentKind::Process,
                        &process.id,
                        &operation.at,
                        format!(
                            "step {}: {}",
                            index + 1,
                            not_defined("operation", &operation.id, self.operations.keys())
                        ),
                    )),
                    Some(op) if !matches!(op.kind, OperationKind::Produce(_)) => {
                        errors.push(reference_error(
                            ComponentKind::Process,
                            &process.id,
                            &operation.at,
                            format!(
                                "step {}: operation \"{}\" is a {} operation; a connector \
                                 step runs a produce operation (a consume operation belongs \
                                 in <start>)",
                                index + 1,
                                op.id,
                                op.kind.name()
                            ),
                        ))
                    }
                    Some(_) => {}
                }
            }
        }
    }
}

fn not_defined<'a>(kind: &str, id: &str, defined: impl Iterator<Item = &'a String>) -> String {
    let defined: Vec<&str> = defined.map(String::as_str).collect();
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

fn insert<D>(
    map: &mut BTreeMap<String, D>,
    id: String,
    def: D,
    origin: impl Fn(&D) -> &Location,
    checker: &mut Checker<'_>,
) {
    if let Some(existing) = map.get(&id) {
        let first = origin(existing).clone();
        let at = checker.field_offset("id");
        checker.error_at(at, format!("the id is already used by the one defined at {first}"));
    } else {
        map.insert(id, def);
    }
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
    let expected: Vec<&str> = ticked.iter().skip(1).copied().collect();
    let show = |n: &str| match n.strip_prefix('@') {
        Some(attr) => format!("attribute {attr}"),
        None => format!("<{n}>"),
    };
    let place = |n: &str| match n.strip_prefix('@') {
        Some(attr) => scanned
            .tags
            .iter()
            .find_map(|t| t.attributes.iter().find(|(a, _)| a == attr).map(|a| a.1)),
        None => scanned
            .tags
            .iter()
            .find(|t| t.path.rsplit('/').next() == Some(n))
            .map(|t| t.start),
    };
    let valid = || {
        let names: Vec<String> = expected
            .iter()
            .filter(|n| **n != "@xmlns" && **n != "$value")
            .map(|n| show(n))
            .collect();
        let suggestion = values::did_you_mean(
            name.trim_start_matches('@'),
            expected.iter().map(|n| n.trim_start_matches('@')),
        );
        let mut s = format!("valid here: {}", names.join(", "));
        if let Some(close) = suggestion {
            s = format!("did you mean {}? ({s})", show(&format!("{}{close}", if name.starts_with('@') { "@" } else { "" })));
        }
        s
    };
    if message.starts_with("unknown field") {
        let offset = place(name).unwrap_or(scanned.start());
        (offset, format!("unknown {}; {}", show(name).replacen('<', "element <", 1), valid()))
    } else if message.starts_with("unknown variant") {
        let offset = place(name).unwrap_or(scanned.start());
        (offset, format!("unknown step <{name}>; {}", valid().replace("valid here", "steps available")))
    } else if message.starts_with("duplicate field") {
        let offset = scanned
            .tags
            .iter()
            .filter(|t| t.path.rsplit('/').next() == Some(name))
            .nth(1)
            .map_or(scanned.start(), |t| t.start);
        (offset, format!("{} is given twice; give it once", show(name)))
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
        .filter(|p| !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')))
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
