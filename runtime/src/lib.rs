//! The Sluice runtime host: it loads XML components, reads container properties, and runs
//! process executions whose steps are Kafka connector operations.
//!
//! Data flows one way: XML → typed definitions (validated, [`components`]) → connector
//! operations ([`host::execution`]) → documents ([`document`]) and execution records
//! ([`record`], kept by [`store`]). The modules, by role:
//! - [`components`]: reading and validating component files into definitions;
//! - [`container`]: the host's limits from `container.properties`;
//! - [`connection`]: Kerberos from the custom library, and the connection doctor;
//! - [`host`]: executions, listeners, `sluice serve` and its management API;
//! - [`store`]: execution records and metrics;
//! - [`record`], [`failure`], [`document`]: the values that flow between them (leaves);
//! - [`advice`]: the connector's errors as users read them, naming fields (a leaf).
//!
//! The command line (`cli/`, `main.rs`) is the binary's, on top of all of these.

pub mod advice;
pub mod components;
pub mod connection;
pub mod container;
pub mod document;
pub mod failure;
pub mod host;
pub mod record;
pub mod store;

/// `2026-11-22 12:34:56` (UTC) for milliseconds since the epoch, as the execution records are
/// shown.
pub fn utc_time(ms: i64) -> String {
    let at =
        std::time::UNIX_EPOCH + std::time::Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    humantime::format_rfc3339_seconds(at)
        .to_string()
        .replace('T', " ")
        .trim_end_matches('Z')
        .to_string()
}

/// `1 document`, `3 documents`, `2 processes`: counts in messages.
pub fn count(n: usize, what: &str) -> String {
    match (n, what) {
        (1, _) => format!("1 {what}"),
        (_, "process") => format!("{n} processes"),
        _ => format!("{n} {what}s"),
    }
}
