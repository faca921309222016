//! XML components: connection, operation and process definitions, and loading them.
//!
//! Loading runs in three passes, each with located errors:
//! 1. `source::scan` finds the components of each file and where every element is;
//! 2. quick-xml's serde support reads each component into a raw struct (`raw.rs`,
//!    `operation/fields.rs`) that mirrors the file and refuses unknown elements and attributes
//!    (`deserialize.rs`);
//! 3. each component kind's checks (`connection.rs` with `sasl.rs` and `presets.rs`,
//!    `operation/`, `process.rs`, all through `check.rs`'s `Checker`) build the typed
//!    definitions; then references between components (process → operation → connection) are
//!    resolved (`references.rs`).
//!
//! May use the connector's configuration types; nothing of the host, the store or the command
//! line (they use it).

mod check;
mod connection;
mod deserialize;
mod extract;
mod load_error;
mod operation;
mod presets;
mod process;
mod raw;
mod references;
mod runnable;
mod sasl;
mod source;
mod values;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

pub use check::Reference;
pub use connection::ConnectionDefinition;
pub use extract::{Template, TemplatePart, ValuePattern};
pub use load_error::{LoadError, LoadErrors};
pub use operation::{
    CommitOffsetDefinition, ConsumeDefinition, ListenDefinition, OperationDefinition,
    OperationKind, OperationType, ProduceDefinition,
};
pub use process::{
    ProcessDefinition, PropertyName, PropertySource, SetProperty, Step, TrackedName,
};
pub use runnable::{Closure, Loaded};
pub use source::{ComponentKind, Location};

pub(crate) use values::{did_you_mean, topic as valid_topic};

use check::Checker;
use deserialize::{deserialize, xml_files};
use source::{ScannedComponent, SourceFile};

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
    /// The `type` attribute of every operation found, valid or not: a process whose listen
    /// operation is invalid is still known to be a listener.
    operation_types: BTreeMap<String, Option<String>>,
}

impl Components {
    /// Loads every `*.xml` file under each path (folders are searched recursively, hidden
    /// entries skipped, files in name order) and validates them together.
    pub fn load(paths: &[PathBuf]) -> Result<Self, LoadErrors> {
        let loaded = Self::load_runnable(paths);
        if loaded.is_valid() {
            Ok(loaded.components)
        } else {
            Err(LoadErrors(loaded.errors))
        }
    }

    /// Loads like [`Components::load`], but keeps what can run: every process whose own
    /// components (its operations and their connections) are valid, beside every error found.
    /// One broken component stops only the processes that use it.
    pub fn load_runnable(paths: &[PathBuf]) -> Loaded {
        let (sources, mut errors) = read_sources(paths);
        let (components, more) = Self::build(sources);
        errors.extend(more);
        in_reading_order(&components.files, &mut errors);
        Loaded::new(components, errors)
    }

    /// The component files under `paths`, as loading finds them: what `sluice serve --watch`
    /// watches. Paths that cannot be read are left out (loading reports them).
    pub fn files_under(paths: &[PathBuf]) -> Vec<PathBuf> {
        paths
            .iter()
            .filter_map(|path| xml_files(path).ok())
            .flatten()
            .collect()
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
        Some(
            process
                .operations()
                .filter_map(|id| self.operations.get(id))
                .map(|op| op.connection.id.clone())
                .collect(),
        )
    }

    /// Validates components given as (file name, text) pairs, such as files built into the
    /// binary.
    pub fn from_sources(sources: Vec<(PathBuf, String)>) -> Result<Self, LoadErrors> {
        let (components, mut errors) = Self::build(sources);
        in_reading_order(&components.files, &mut errors);
        if errors.is_empty() {
            Ok(components)
        } else {
            Err(LoadErrors(errors))
        }
    }

    /// The valid components of `sources` (references to invalid or missing ones may remain)
    /// and every error found.
    fn build(sources: Vec<(PathBuf, String)>) -> (Self, Vec<LoadError>) {
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
                if let (ComponentKind::Operation, Some(id)) = (component.kind, &component.id) {
                    let kind = component.type_attribute.clone();
                    components.operation_types.entry(id.clone()).or_insert(kind);
                }
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
        (components, errors)
    }

    fn add(&mut self, file: &SourceFile, scanned: &ScannedComponent, errors: &mut Vec<LoadError>) {
        let mut checker = Checker::new(file, scanned);
        checker.id = scanned.id.clone();
        let valid = match scanned.kind {
            ComponentKind::Connection => deserialize(&mut checker)
                .and_then(|raw| connection::connection(&mut checker, raw))
                .filter(|_| checker.errors.is_empty())
                .map(|def| self.connections.insert(def.id.clone(), def))
                .is_some(),
            ComponentKind::Operation => deserialize(&mut checker)
                .and_then(|raw| operation::operation(&mut checker, raw))
                .filter(|_| checker.errors.is_empty())
                .map(|def| self.operations.insert(def.id.clone(), def))
                .is_some(),
            ComponentKind::Process => deserialize(&mut checker)
                .and_then(|raw| process::process(&mut checker, raw))
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
}

/// Sorts `errors` by file (in the order `files` were read; files that could not be read
/// first), line and column, so that each file's errors read top to bottom, references
/// included (those are found after every file is read).
fn in_reading_order(files: &[PathBuf], errors: &mut [LoadError]) {
    errors.sort_by_key(|e| {
        let file = files.iter().position(|f| *f == e.file).map_or(0, |i| i + 1);
        let at = e.at.as_ref().map(|at| (at.line, at.column));
        (file, at)
    });
}

/// The component files under `paths` as (path, text), and the errors of those that cannot be
/// found or read.
fn read_sources(paths: &[PathBuf]) -> (Vec<(PathBuf, String)>, Vec<LoadError>) {
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
    (sources, errors)
}
