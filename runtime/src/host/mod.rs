//! The runtime host at work: process executions, listeners, `sluice serve` and its management
//! API.
//!
//! May use `components` (the definitions it runs), `container`, `document`, `record`,
//! `failure`, `store` (where executions are recorded and counted) and the connector; nothing
//! here knows of the command line.

pub mod api;
pub mod console;
pub mod dead_letters;
pub mod deploy;
pub mod execution;
pub mod listener;
pub mod memory;
pub mod serve;
