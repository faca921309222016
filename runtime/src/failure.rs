//! Why an execution or a listener stopped: one typed failure for both, carried from where it
//! arises to the execution records, the management API and the listeners' restart policy.
//!
//! Uses only the connector's errors and [`crate::advice`], which words them.

use sluice_connector::{ConnectorError, ErrorKind};

use crate::advice::UserMessage as _;

/// A failure: whose fault it is (the connector's [`ErrorKind`], set where the failure arises
/// from a typed source, never read back from the message) and what happened, with what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Failure {
    /// Whose fault it is: a definition or document, the outside world, or a bug of ours.
    pub kind: ErrorKind,
    /// What happened and what to do, as users read it.
    pub message: String,
}

impl Failure {
    /// A failure of `kind`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    /// The definitions or documents must be fixed first.
    pub fn user(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::User, message)
    }

    /// The outside world failed (brokers unreachable, timed out, refused).
    pub fn environment(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Environment, message)
    }

    /// A bug in Sluice or librdkafka.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, message)
    }

    /// A connector error, of the connector's kind, told as `message` (which adds what to fix).
    pub fn connector(error: &ConnectorError, message: impl Into<String>) -> Self {
        Self::new(error.kind(), message)
    }

    /// A connector error, of the connector's kind, as users read it (the fields that fix it).
    pub fn from_connector(error: &ConnectorError) -> Self {
        Self::connector(error, error.user_message())
    }

    /// The same failure, its message led by where it happened (`step 2 (operation "send")`).
    pub fn within(self, place: impl std::fmt::Display) -> Self {
        Self {
            message: format!("{place}: {}", self.message),
            ..self
        }
    }

    /// Whether trying again later, unchanged, may succeed: the listeners' restart policy.
    pub fn is_outside(&self) -> bool {
        self.kind == ErrorKind::Environment
    }

    /// The kind's name in records and API answers: `user`, `environment` or `internal`.
    pub fn kind_name(&self) -> &'static str {
        kind_name(self.kind)
    }
}

/// `user`, `environment` or `internal`: how a kind is stored and shown.
pub fn kind_name(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::User => "user",
        ErrorKind::Environment => "environment",
        // ErrorKind is non-exhaustive; a kind the connector adds later counts as ours until
        // it is named here.
        _ => "internal",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_has_its_own_name() {
        let names = [ErrorKind::User, ErrorKind::Environment, ErrorKind::Internal].map(kind_name);
        assert_eq!(names, ["user", "environment", "internal"]);
    }

    #[test]
    fn only_the_outside_world_is_worth_waiting_for() {
        assert!(Failure::environment("brokers gone").is_outside());
        assert!(!Failure::user("no such topic").is_outside());
        let placed = Failure::user("no such topic").within("step 1 (operation \"send\")");
        assert_eq!(
            placed.to_string(),
            "step 1 (operation \"send\"): no such topic"
        );
        assert_eq!(placed.kind, ErrorKind::User);
    }
}
