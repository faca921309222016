//! What can run when some components are broken: a process is runnable when everything it
//! uses — itself, its operations and their connections — is valid. The others are set aside
//! with the errors of what they use, so one team's broken file stops only its own processes.

use std::collections::{BTreeMap, BTreeSet};

use super::{ComponentKind, Components, LoadError};

/// Components loaded for running: the runnable ones, and every error found.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The runnable processes with the operations and connections they use (and every other
    /// valid operation and connection): all references resolve, as in [`Components::load`].
    pub components: Components,
    /// Every error found, in the order `sluice validate` reports them.
    pub errors: Vec<LoadError>,
    /// The processes found that cannot run, each with the errors of what it uses.
    pub unrunnable: BTreeMap<String, Vec<LoadError>>,
    /// Of the unrunnable processes, those that start with a listen operation (valid or not).
    pub unrunnable_listeners: BTreeSet<String>,
}

impl Loaded {
    pub(super) fn new(mut components: Components, errors: Vec<LoadError>) -> Self {
        // A component with an error of its own (a duplicate id, a missing consumer group, a
        // reference to nothing) cannot be trusted even if it was read.
        let mut blocked = components.invalid.clone();
        blocked.extend(errors.iter().filter_map(|e| match &e.component {
            Some((kind, Some(id))) => Some((*kind, id.clone())),
            _ => None,
        }));
        let is_blocked = |kind: ComponentKind, id: &str| blocked.contains(&(kind, id.to_string()));
        components
            .connections
            .retain(|id, _| !is_blocked(ComponentKind::Connection, id));
        // Which connection each operation read names, before operations are set aside.
        let connection_of: BTreeMap<String, String> = components
            .operations
            .iter()
            .map(|(id, op)| (id.clone(), op.connection.id.clone()))
            .collect();
        let connections = &components.connections;
        components.operations.retain(|id, op| {
            !is_blocked(ComponentKind::Operation, id) && connections.contains_key(&op.connection.id)
        });
        let mut unrunnable = BTreeMap::new();
        let mut unrunnable_listeners = BTreeSet::new();
        let found: Vec<String> = components.processes.keys().cloned().collect();
        for id in found {
            let process = &components.processes[&id];
            let used: Vec<&str> = process.operations().collect();
            let runnable = !is_blocked(ComponentKind::Process, &id)
                && used
                    .iter()
                    .all(|op| components.operations.contains_key(*op));
            if runnable {
                continue;
            }
            let starts_listening = process.start.as_ref().is_some_and(|start| {
                components
                    .operation_types
                    .get(&start.id)
                    .and_then(Option::as_deref)
                    == Some("listen")
            });
            if starts_listening {
                unrunnable_listeners.insert(id.clone());
            }
            let closure = closure_errors(&connection_of, &errors, &id, &used);
            components.processes.remove(&id);
            unrunnable.insert(id, closure);
        }
        // Processes that could not be read at all: only their own errors are known.
        for (kind, id) in &components.invalid {
            if *kind == ComponentKind::Process {
                let own = errors_of(&errors, ComponentKind::Process, id);
                unrunnable.insert(id.clone(), own);
            }
        }
        Self {
            components,
            errors,
            unrunnable,
            unrunnable_listeners,
        }
    }

    /// Whether nothing was wrong.
    pub fn is_valid(&self) -> bool {
        self.errors.is_empty()
    }
}

/// The errors of a process and of what it uses: its operations and their connections.
fn closure_errors(
    connection_of: &BTreeMap<String, String>,
    errors: &[LoadError],
    process: &str,
    operations: &[&str],
) -> Vec<LoadError> {
    let mut closure = BTreeSet::from([(ComponentKind::Process, process.to_string())]);
    for op in operations {
        closure.insert((ComponentKind::Operation, op.to_string()));
    }
    // The connection an invalid operation names is not known; a valid one's is.
    for op in operations {
        if let Some(connection) = connection_of.get(*op) {
            closure.insert((ComponentKind::Connection, connection.clone()));
        }
    }
    errors
        .iter()
        .filter(|e| match &e.component {
            Some((kind, Some(id))) => closure.contains(&(*kind, id.clone())),
            _ => false,
        })
        .cloned()
        .collect()
}

fn errors_of(errors: &[LoadError], kind: ComponentKind, id: &str) -> Vec<LoadError> {
    errors
        .iter()
        .filter(|e| matches!(&e.component, Some((k, Some(i))) if *k == kind && i == id))
        .cloned()
        .collect()
}
