//! References between components: every process's start and steps name operations that
//! exist and fit, every operation names a connection that exists (and a consumer group where
//! it needs one). Checked once every file is read.

use super::check::Reference;
use super::source::{ComponentKind, Location};
use super::{
    values, Components, ConsumeDefinition, LoadError, OperationDefinition, OperationKind,
    ProcessDefinition, Step,
};

impl Components {
    pub(super) fn check_references(&mut self, errors: &mut Vec<LoadError>) {
        let connection_ids = self.ids_found(ComponentKind::Connection, self.connections.keys());
        let operation_ids = self.ids_found(ComponentKind::Operation, self.operations.keys());
        for op in self.operations.values() {
            self.check_connection_and_group(op, &connection_ids, errors);
        }
        for process in self.processes.values() {
            if let Some(start) = &process.start {
                self.check_start(process, start, &operation_ids, errors);
            }
            self.check_steps(process, &operation_ids, errors);
        }
    }

    /// Whether a component of this kind and id was found but is invalid: references to it were
    /// already reported with it.
    fn is_invalid(&self, kind: ComponentKind, id: &str) -> bool {
        self.invalid.contains(&(kind, id.to_string()))
    }

    /// The ids of `kind`, sorted: the `valid` ones and the invalid ones, since suggestions
    /// draw on every id found, valid or not.
    fn ids_found<'a>(
        &self,
        kind: ComponentKind,
        valid: impl Iterator<Item = &'a String>,
    ) -> Vec<String> {
        let mut ids: Vec<String> = valid.cloned().collect();
        ids.extend(
            self.invalid
                .iter()
                .filter(|(k, _)| *k == kind)
                .map(|(_, id)| id.clone()),
        );
        ids.sort();
        ids
    }

    /// An operation's connection exists, and an operation that reads as a consumer group has
    /// one: its own or its connection's default.
    fn check_connection_and_group(
        &self,
        op: &OperationDefinition,
        connection_ids: &[String],
        errors: &mut Vec<LoadError>,
    ) {
        if self.is_invalid(ComponentKind::Connection, &op.connection.id) {
            return;
        }
        let Some(connection) = self.connections.get(&op.connection.id) else {
            errors.push(reference_error(
                ComponentKind::Operation,
                &op.id,
                &op.connection.at,
                not_defined("connection", &op.connection.id, connection_ids),
            ));
            return;
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

    /// A process's start operation exists and can start it: a listen operation, or a consume
    /// operation with a topic of its own.
    fn check_start(
        &self,
        process: &ProcessDefinition,
        start: &Reference,
        operation_ids: &[String],
        errors: &mut Vec<LoadError>,
    ) {
        if self.is_invalid(ComponentKind::Operation, &start.id) {
            return;
        }
        let problem = match self.operations.get(&start.id) {
            None => format!(
                "start {}",
                not_defined("operation", &start.id, operation_ids)
            ),
            Some(op)
                if !matches!(
                    op.kind,
                    OperationKind::Consume(_) | OperationKind::Listen(_)
                ) =>
            {
                format!(
                    "start operation \"{}\" is a {} operation; a process starts \
                     with a consume or listen operation (or with no operation, \
                     taking documents from sluice run --input)",
                    op.id,
                    op.kind.name()
                )
            }
            Some(OperationDefinition {
                kind:
                    OperationKind::Consume(ConsumeDefinition {
                        topic: None,
                        pattern: None,
                        ..
                    }),
                id,
                ..
            }) => format!(
                "start operation \"{id}\" has no topic: it takes the topic from \
                 input documents (dynamic-topic), so it can only be a <connector> \
                 step; give it a <topic> to start a process with it"
            ),
            Some(_) => return,
        };
        errors.push(reference_error(
            ComponentKind::Process,
            &process.id,
            &start.at,
            problem,
        ));
    }

    /// Each connector step of a process names an operation that exists and is not a listen
    /// operation (which can only start a process).
    fn check_steps(
        &self,
        process: &ProcessDefinition,
        operation_ids: &[String],
        errors: &mut Vec<LoadError>,
    ) {
        for (index, step) in process.steps.iter().enumerate() {
            let Step::Connector { operation } = step else {
                continue;
            };
            if self.is_invalid(ComponentKind::Operation, &operation.id) {
                continue;
            }
            let problem = match self.operations.get(&operation.id) {
                None => Some(not_defined("operation", &operation.id, operation_ids)),
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

/// An error in the component `kind` `id`, at the reference `at`.
fn reference_error(kind: ComponentKind, id: &str, at: &Location, message: String) -> LoadError {
    LoadError::new(
        &at.file,
        Some(at.clone()),
        Some((kind, Some(id.to_string()))),
        message,
    )
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
