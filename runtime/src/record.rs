//! What one process execution did: the execution record and its parts. A leaf that the host
//! (which writes records), the store and the metrics (which read them) all use.

use std::time::{Duration, SystemTime};

use crate::document::{Document, TrackedProperties};
use crate::failure::Failure;

/// How an execution ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecutionStatus {
    /// Every document went through every step.
    Succeeded,
    /// It ran to the end, but some documents have errors (application errors).
    CompletedWithErrors,
    /// It stopped: the failure says why (a failure, not a document's error).
    Failed(Failure),
}

impl ExecutionStatus {
    /// The status names the records and their filters use.
    pub const NAMES: &'static [&'static str] = &["succeeded", "completed-with-errors", "failed"];

    /// This status's name in records, filters and API answers.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Succeeded => "succeeded",
            Self::CompletedWithErrors => "completed-with-errors",
            Self::Failed(_) => "failed",
        }
    }
}

impl std::fmt::Display for ExecutionStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Succeeded => f.write_str("succeeded"),
            Self::CompletedWithErrors => f.write_str("completed with document errors"),
            Self::Failed(failure) => write!(f, "failed: {failure}"),
        }
    }
}

/// An error that belongs to one document; the other documents go on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentError {
    /// 1-based position of the document among the execution's documents in.
    pub document: usize,
    /// 1-based step where it failed; 0: the process's start operation.
    pub step: usize,
    /// The operation that failed it (`set-properties` for that step).
    pub operation: String,
    /// What happened.
    pub message: String,
    /// Where the document came from or was going.
    pub tracked: TrackedProperties,
}

/// What one process execution did.
#[derive(Debug, Clone)]
pub struct ExecutionRecord {
    /// Unique, time-ordered id.
    pub id: uuid::Uuid,
    /// The process.
    pub process: String,
    /// When it started.
    pub started: SystemTime,
    /// How long it ran.
    pub duration: Duration,
    /// How it ended.
    pub status: ExecutionStatus,
    /// Documents that entered the process.
    pub documents_in: usize,
    /// Documents that left the last step, when they are kept (see `documents_handed_on`).
    pub documents_out: Vec<Document>,
    /// Documents that left the last step and were handed on as they left instead of being
    /// kept in `documents_out`: a run over a large input, a chunk at a time.
    pub documents_handed_on: usize,
    /// One entry per document that failed.
    pub document_errors: Vec<DocumentError>,
}

impl ExecutionRecord {
    /// How many documents left the last step, kept or handed on.
    pub fn documents_out_count(&self) -> usize {
        self.documents_out.len() + self.documents_handed_on
    }

    /// Records one document's error; the document leaves the flow unless the caller keeps it.
    pub(crate) fn document_error(
        &mut self,
        document: usize,
        step: usize,
        operation: &str,
        message: String,
        tracked: TrackedProperties,
    ) {
        self.document_errors.push(DocumentError {
            document,
            step,
            operation: operation.to_string(),
            message,
            tracked,
        });
    }
}
