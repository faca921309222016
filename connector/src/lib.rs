//! The Kafka connector of Sluice.
//!
//! A [`Connection`] says where and how to reach Kafka; the operations ([`produce`], [`consume`])
//! run over typed records. This crate knows nothing of XML, processes or documents: the runtime
//! host maps its documents onto [`ProduceRecord`]s and [`ConsumedRecord`]s.
//!
//! Every blocking librdkafka call runs on tokio's blocking pool, so the async functions here are
//! safe to call from async worker threads.

pub mod aws_credentials;
pub mod backoff;
pub mod commit_offset;
mod connection;
pub mod consume;
mod context;
mod embedded;
mod error;
mod librdkafka_properties;
pub mod listen;
pub mod msk_iam;
mod oauth;
pub mod probe;
pub mod produce;
pub mod read_topic;
mod record;
mod security;
pub mod topic_pattern;

pub use connection::{
    Bootstrap, BrokerAddress, Connection, ConnectionConfig, Limits, ServiceLimit,
};
pub use embedded::EmbeddedBroker;
pub use error::{
    classify, explain, humanize, CodeClass, ConnectorError, ErrorKind, HandshakeProblem,
    PartitionNotFound, Reported, Unreachable,
};
pub use record::{ConsumedRecord, Delivered, Header, ProduceRecord};
pub use security::{
    check_property, is_sensitive_property, prepare_kerberos, AwsIam, ClientAuthentication,
    Kerberos, OAuth, PropertyError, Sasl, SaslMechanism, Secret, SecurityProtocol, Setting, Tls,
};
// librdkafka's error types appear in the errors above; callers name them through this crate.
pub use rdkafka::error::{KafkaError, RDKafkaErrorCode};

/// Runs `work` (librdkafka's blocking calls) on tokio's blocking pool; a task that panicked is
/// an internal error naming the `task`. The one place the async functions of this crate leave
/// the async worker threads.
pub(crate) async fn blocking<T: Send + 'static>(
    task: &'static str,
    work: impl FnOnce() -> Result<T, ConnectorError> + Send + 'static,
) -> Result<T, ConnectorError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ConnectorError::Internal(format!("{task} task failed: {e}")))?
}

/// The version of the librdkafka linked in, e.g. `2.10.0`.
pub fn librdkafka_version() -> String {
    rdkafka::util::get_rdkafka_version().1
}
