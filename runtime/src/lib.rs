//! The Sluice runtime host: it loads XML components, reads container properties, and runs
//! process executions whose steps are Kafka connector operations.
//!
//! Data flows one way: XML → typed definitions (validated, [`components`]) → connector
//! operations ([`execution`]) → documents and execution records.

pub mod components;
pub mod container;
pub mod demo;
pub mod doctor;
pub mod document;
pub mod execution;
pub mod kerberos;
