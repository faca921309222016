use std::time::Duration;

/// Whose fault an error is: it tells a user whether to fix their definitions, their
/// environment, or to report a bug to us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The definition or the document is wrong (unknown topic, message too large …).
    User,
    /// The outside world failed: broker unreachable, timed out, refused.
    Environment,
    /// A bug in Sluice or librdkafka.
    Internal,
}

/// What went wrong in a connector operation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectorError {
    /// librdkafka refused the client configuration.
    #[error("the Kafka client configuration was refused: {0}")]
    ClientConfig(#[source] rdkafka::error::KafkaError),
    /// The embedded broker (librdkafka's mock cluster) could not start.
    #[error("the embedded broker could not start: {0}")]
    EmbeddedBroker(String),
    /// Cluster metadata could not be fetched: the brokers are unreachable or refused us.
    #[error("could not reach the Kafka brokers at {bootstrap} within {}: {source}", humanize(*.timeout))]
    Unreachable {
        /// The bootstrap servers tried.
        bootstrap: String,
        /// How long we waited.
        timeout: Duration,
        /// librdkafka's error.
        #[source]
        source: rdkafka::error::KafkaError,
    },
    /// The topic does not exist on the cluster.
    #[error("topic \"{0}\" does not exist")]
    UnknownTopic(String),
    /// Subscribing or fetching failed.
    #[error("consuming from topic \"{topic}\" failed: {source}")]
    Consume {
        /// The topic.
        topic: String,
        /// librdkafka's error.
        #[source]
        source: rdkafka::error::KafkaError,
    },
    /// Committing consumed offsets failed.
    #[error("committing offsets for consumer group \"{group}\" failed: {source}")]
    Commit {
        /// The consumer group.
        group: String,
        /// librdkafka's error.
        #[source]
        source: rdkafka::error::KafkaError,
    },
    /// A blocking task panicked or was cancelled.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ConnectorError {
    /// Whose fault this is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::ClientConfig(_) | Self::UnknownTopic(_) => ErrorKind::User,
            Self::Unreachable { .. } | Self::Consume { .. } | Self::Commit { .. } => {
                ErrorKind::Environment
            }
            Self::EmbeddedBroker(_) | Self::Internal(_) => ErrorKind::Internal,
        }
    }

    /// Whether trying the same thing again later may succeed.
    pub fn is_retriable(&self) -> bool {
        self.kind() == ErrorKind::Environment
    }
}

/// `1.5 s`, `250 ms`: how durations appear in our messages.
pub(crate) fn humanize(d: Duration) -> String {
    if d.as_millis() < 1000 {
        format!("{} ms", d.as_millis())
    } else if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}
