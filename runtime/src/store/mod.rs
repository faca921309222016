//! What the host keeps about its work: execution records in an embedded database (with its
//! schema migrations) and the counters behind `/metrics`.
//!
//! May use `record` and `failure` (the records it stores); never the host that writes them.

mod executions;
mod metrics;
mod migrations;
mod writer;

pub(crate) use executions::millis;
pub use executions::{
    Cursor, ExecutionStore, Filter, MessageHandling, RecordsError, StoredDocumentError,
    StoredExecution, StoredMessageRange, Totals,
};
pub use metrics::{ListenerSample, Metrics};
pub use migrations::MigrationError;
pub use writer::{Submitted, MAX_WAITING};
