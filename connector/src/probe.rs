//! A connection check for Test Connection: one metadata request with the connection's full
//! security settings, so TLS and SASL are exercised exactly as the operations will.

use rdkafka::consumer::{BaseConsumer, Consumer};

use crate::context::Observer;
use crate::{Connection, ConnectorError};

/// What the cluster said about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterSummary {
    /// The brokers it advertises (`host:port`), which clients connect to after bootstrapping.
    pub brokers: Vec<String>,
    /// How many topics the connection may see.
    pub topics: usize,
}

/// Connects, authenticates and fetches cluster metadata. A TLS or SASL failure comes back as
/// [`ConnectorError::Unreachable`] with what librdkafka reported and the
/// [`crate::HandshakeProblem`] recognised in it. Runs on tokio's blocking pool; returns within
/// the metadata timeout.
pub async fn probe(connection: &Connection) -> Result<ClusterSummary, ConnectorError> {
    let connection = connection.clone();
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer<Observer> = connection
            .client_config()
            .create_with_context(Observer::for_connection(&connection))
            .map_err(ConnectorError::ClientConfig)?;
        Observer::serve_first_token(&consumer);
        let metadata = connection.metadata(consumer.client(), consumer.context(), None)?;
        Ok(ClusterSummary {
            brokers: metadata
                .brokers()
                .iter()
                .map(|b| format!("{}:{}", b.host(), b.port()))
                .collect(),
            topics: metadata.topics().len(),
        })
    })
    .await
    .map_err(|e| ConnectorError::Internal(format!("probe task failed: {e}")))?
}
