//! What can run when some components are broken: a process is runnable when everything it
//! uses — itself, its operations and their connections — is valid. The others are set aside
//! with the errors of what they use, so one team's broken file stops only its own processes.

use std::collections::{BTreeMap, BTreeSet};

use sluice_connector::ConnectionConfig;

use super::{
    ComponentKind, Components, ListenDefinition, LoadError, OperationDefinition, OperationKind,
    SetProperty, Step,
};

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

    /// The listeners that cannot run, each with the errors of what it uses, as `sluice
    /// validate` prints them.
    pub fn invalid_listeners(&self) -> BTreeMap<String, Vec<String>> {
        self.unrunnable_listeners
            .iter()
            .map(|id| {
                let errors = self.unrunnable[id].iter().map(ToString::to_string);
                (id.clone(), errors.collect())
            })
            .collect()
    }

    /// How many errors are in components no listener uses: those that no invalid listener's
    /// errors explain (listeners that share a broken component share its errors, counted
    /// once).
    pub fn errors_outside_listeners(&self) -> usize {
        let theirs: BTreeSet<String> = self
            .unrunnable_listeners
            .iter()
            .flat_map(|id| &self.unrunnable[id])
            .map(ToString::to_string)
            .collect();
        self.errors.len().saturating_sub(theirs.len())
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

/// Everything a process runs with — its start and steps, the operations they use and those
/// operations' connections — without where any of it is written. Two equal closures run the
/// same, so a reload leaves a listener whose closure did not change alone (a comment or a
/// component moved within its file is no change).
#[derive(Debug, PartialEq, Eq)]
pub struct Closure {
    start: Option<String>,
    steps: Vec<ClosureStep>,
    /// By id: the connection each names, and what it does.
    operations: BTreeMap<String, (String, OperationKind)>,
    connections: BTreeMap<String, ConnectionConfig>,
}

#[derive(Debug, PartialEq, Eq)]
enum ClosureStep {
    Connector(String),
    SetProperties(Vec<SetProperty>),
}

impl Components {
    /// What `process` runs with; `None` when there is no such process.
    pub fn closure(&self, process: &str) -> Option<Closure> {
        let definition = self.processes.get(process)?;
        let steps = definition
            .steps
            .iter()
            .map(|step| match step {
                Step::Connector { operation } => ClosureStep::Connector(operation.id.clone()),
                Step::SetProperties(properties) => ClosureStep::SetProperties(properties.clone()),
            })
            .collect();
        let operations: BTreeMap<String, (String, OperationKind)> = definition
            .operations()
            .filter_map(|id| self.operations.get(id))
            .map(|op| (op.id.clone(), (op.connection.id.clone(), op.kind.clone())))
            .collect();
        let connections = operations
            .values()
            .filter_map(|(connection, _)| self.connections.get(connection))
            .map(|c| (c.id.clone(), c.config.clone()))
            .collect();
        Some(Closure {
            start: definition.start.as_ref().map(|s| s.id.clone()),
            steps,
            operations,
            connections,
        })
    }

    /// Listeners among `processes` that share a consumer group on the same brokers, one
    /// sentence per group. They rebalance each other: each start, stop or redeploy of one
    /// takes the other's partitions away for a moment. (Several hosts running the same
    /// listener share its group on purpose; two different listeners should not.)
    pub fn shared_consumer_groups(&self, processes: &[String]) -> Vec<String> {
        let mut groups: BTreeMap<(String, String), Vec<&str>> = BTreeMap::new();
        for process in processes {
            let Some((operation, listen)) = self.listen_operation_of(process) else {
                continue;
            };
            let Some(connection) = self.connections.get(&operation.connection.id) else {
                continue;
            };
            let group = listen
                .consumer_group
                .clone()
                .or_else(|| connection.config.default_consumer_group.clone());
            if let Some(group) = group {
                let brokers = connection.config.bootstrap.to_string();
                groups.entry((brokers, group)).or_default().push(process);
            }
        }
        groups
            .into_iter()
            .filter(|(_, processes)| processes.len() > 1)
            .map(|((brokers, group), processes)| {
                let names: Vec<String> = processes.iter().map(|p| format!("\"{p}\"")).collect();
                format!(
                    "listeners {} share consumer group \"{group}\" on {brokers}: they \
                     rebalance each other, so starting, stopping or redeploying one interrupts \
                     the others; give each listen operation its own <consumer-group>",
                    names.join(" and ")
                )
            })
            .collect()
    }

    /// The topics that the operations of `processes` on the embedded broker name (listen,
    /// dead-letter, consume and produce topics), so that a host can create them: consumers do
    /// not create the topics they read.
    pub fn embedded_topics(&self, processes: &[String]) -> BTreeSet<String> {
        let mut topics = BTreeSet::new();
        for process in processes.iter().filter_map(|p| self.processes.get(p)) {
            for operation in process
                .operations()
                .filter_map(|id| self.operations.get(id))
            {
                let embedded = self
                    .connections
                    .get(&operation.connection.id)
                    .is_some_and(|c| c.config.bootstrap == sluice_connector::Bootstrap::Embedded);
                if !embedded {
                    continue;
                }
                match &operation.kind {
                    OperationKind::Listen(listen) => {
                        topics.extend(listen.topics.iter().cloned());
                        topics.extend(listen.dead_letter_topic.iter().cloned());
                    }
                    OperationKind::Produce(produce) => {
                        topics.extend(produce.settings.topic.iter().cloned())
                    }
                    OperationKind::Consume(consume) => topics.extend(consume.topic.iter().cloned()),
                    OperationKind::CommitOffset(_) => {}
                }
            }
        }
        topics
    }

    /// The listen operation `process` starts with, if it starts with one.
    fn listen_operation_of(
        &self,
        process: &str,
    ) -> Option<(&OperationDefinition, &ListenDefinition)> {
        let start = self.processes.get(process)?.start.as_ref()?;
        let operation = self.operations.get(&start.id)?;
        match &operation.kind {
            OperationKind::Listen(listen) => Some((operation, listen)),
            _ => None,
        }
    }
}
