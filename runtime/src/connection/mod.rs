//! What a connection needs from the host beyond the connector: Kerberos tickets from the
//! custom library's files, and the doctor that checks a connection part by part.
//!
//! May use `components` (the connection definitions) and the connector; nothing of the host.

pub mod doctor;
pub mod kerberos;
