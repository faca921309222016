//! The Sluice runtime host: it loads XML components, reads container properties, and runs
//! process executions whose steps are Kafka connector operations.
//!
//! Data flows one way: XML → typed definitions (validated, [`components`]) → connector
//! operations ([`execution`]) → documents and execution records.

pub mod api;
pub mod components;
pub mod container;
pub mod demo;
pub mod doctor;
pub mod document;
pub mod execution;
pub mod kerberos;
pub mod listener;
pub mod metrics;
pub mod records;
pub mod serve;

/// `1 document`, `3 documents`, `2 processes`: counts in messages.
pub fn count(n: usize, what: &str) -> String {
    match (n, what) {
        (1, _) => format!("1 {what}"),
        (_, "process") => format!("{n} processes"),
        _ => format!("{n} {what}s"),
    }
}
