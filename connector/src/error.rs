use std::time::Duration;

use rdkafka::error::{KafkaError, RDKafkaErrorCode};

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
    ClientConfig(#[source] KafkaError),
    /// The embedded broker (librdkafka's mock cluster) could not start.
    #[error("the embedded broker could not start: {0}")]
    EmbeddedBroker(String),
    /// Cluster metadata could not be fetched: the brokers are unreachable or refused us.
    #[error(transparent)]
    Unreachable(Box<Unreachable>),
    /// The topic does not exist on the cluster.
    #[error("topic \"{0}\" does not exist")]
    UnknownTopic(String),
    /// No topic on the cluster matches the operation's topic pattern.
    #[error("no topic matches pattern \"{0}\"")]
    NoTopicMatches(String),
    /// A partition named in the operation does not exist.
    #[error(transparent)]
    UnknownPartition(#[from] PartitionNotFound),
    /// Subscribing or fetching failed.
    #[error("consuming from topic \"{topic}\" failed: {}", explain(.source))]
    Consume {
        /// The topic.
        topic: String,
        /// librdkafka's error.
        #[source]
        source: KafkaError,
    },
    /// Committing consumed offsets failed.
    #[error("committing offsets for consumer group \"{group}\" failed: {}", explain(.source))]
    Commit {
        /// The consumer group.
        group: String,
        /// librdkafka's error.
        #[source]
        source: KafkaError,
    },
    /// A seek of a listener's partitions asked for what cannot be: a partition this member
    /// does not hold, an offset outside what a partition keeps.
    #[error("{0}")]
    Seek(String),
    /// A blocking task panicked or was cancelled.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ConnectorError {
    /// Whose fault this is.
    ///
    /// A failed subscription, fetch or commit counts as the outside world's whatever its code
    /// (even one [`classify`] calls the user's, such as a missing ACL): a listener keeps trying
    /// to reconnect through it, as the host's owner may fix the cluster meanwhile.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::ClientConfig(_)
            | Self::UnknownTopic(_)
            | Self::NoTopicMatches(_)
            | Self::UnknownPartition(_)
            | Self::Seek(_) => ErrorKind::User,
            Self::Unreachable(_) | Self::Consume { .. } | Self::Commit { .. } => {
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

/// A partition that a topic does not have; the operations share it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("partition {partition} does not exist in topic \"{topic}\" (it has {count} partitions: 0 to {})", .count.saturating_sub(1))]
pub struct PartitionNotFound {
    /// The topic.
    pub topic: String,
    /// The partition asked for.
    pub partition: i32,
    /// How many the topic has.
    pub count: usize,
}

impl PartitionNotFound {
    /// `Err` when `partition` is not one of the `count` partitions of `topic`.
    pub(crate) fn check(topic: &str, partition: i32, count: usize) -> Result<(), Self> {
        if partition >= 0 && (partition as usize) < count {
            Ok(())
        } else {
            Err(Self {
                topic: topic.to_string(),
                partition,
                count,
            })
        }
    }
}

/// The brokers could not be reached, or refused the connection (TLS, SASL).
#[derive(Debug, thiserror::Error)]
#[error("{}", unreachable_message(self))]
pub struct Unreachable {
    /// The bootstrap servers tried, as librdkafka was given them.
    pub bootstrap: String,
    /// How long we waited at most.
    pub timeout: Duration,
    /// librdkafka's error.
    #[source]
    pub source: KafkaError,
    /// What librdkafka reported meanwhile, if anything.
    pub reported: Option<Reported>,
}

/// What librdkafka reported through its error callback while the brokers could not be reached:
/// TLS and SASL failures reach an application only this way, in librdkafka's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reported {
    /// A TLS or SASL handshake failed, so waiting longer will not help. `words` are
    /// librdkafka's (on a SASL connection that got nowhere without saying why, followed by our
    /// suspicion that the credentials are wrong); `problem` is what they say, when we recognise
    /// it.
    HandshakeFailed {
        /// What was reported.
        words: String,
        /// The problem recognised in `words`.
        problem: Option<HandshakeProblem>,
    },
    /// Anything else: a refused connection, a name that does not resolve …
    Other(String),
}

impl Reported {
    /// Sorts what the client reported: a TLS or SASL failure, with the problem it names, or
    /// anything else.
    pub(crate) fn new(words: String) -> Self {
        if crate::context::is_telling(&words) {
            Self::HandshakeFailed {
                problem: HandshakeProblem::recognise(&words),
                words,
            }
        } else {
            Self::Other(words)
        }
    }
}

/// A TLS or SASL handshake problem recognised in what librdkafka reported, in Kafka's terms;
/// the caller says what to change.
///
/// Not `#[non_exhaustive]`: a caller that phrases a fix for each problem should be told by the
/// compiler when one is added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandshakeProblem {
    /// The brokers ask for a client certificate (mutual TLS) and got none.
    ClientCertificateRequired,
    /// The broker's certificate names neither the host name nor the IP address connected to.
    HostNameMismatch,
    /// The broker's certificate is not signed by a trusted CA certificate.
    CertificateVerifyFailed,
    /// The KDC does not know the brokers' Kerberos service principal.
    KerberosServicePrincipalUnknown,
    /// The brokers did not accept the client's Kerberos ticket.
    KerberosTicketRefused,
    /// SASL authentication failed: wrong user name, password or mechanism.
    AuthenticationFailed,
    /// The OAuth token endpoint refused the client's credentials (OAUTHBEARER).
    TokenRefused,
}

/// What failed, in Kafka's terms, e.g. `the brokers require a client certificate`.
impl std::fmt::Display for HandshakeProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::ClientCertificateRequired => "the brokers require a client certificate",
            Self::HostNameMismatch => {
                "the broker's certificate does not name the host connected to"
            }
            Self::CertificateVerifyFailed => {
                "the broker's certificate could not be verified with the trusted CA certificates"
            }
            Self::KerberosServicePrincipalUnknown => {
                "the brokers' Kerberos service principal is not in the Kerberos database"
            }
            Self::KerberosTicketRefused => "the brokers refused the Kerberos ticket",
            Self::AuthenticationFailed => "SASL authentication failed",
            Self::TokenRefused => "the OAuth token endpoint refused the client's credentials",
        })
    }
}

impl HandshakeProblem {
    /// The problem librdkafka's words name, if we know it. The first match wins: a report can
    /// name several (an authentication failure quoting a Kerberos error).
    pub(crate) fn recognise(words: &str) -> Option<Self> {
        let lower = words.to_ascii_lowercase();
        // RFC 6749 5.2: a refused client gets 400 or 401 from the token endpoint.
        let refused_token = ["answered http 400", "answered http 401"];
        if lower.contains("token endpoint") && refused_token.iter().any(|r| lower.contains(r)) {
            Some(Self::TokenRefused)
        } else if lower.contains("certificate required") {
            Some(Self::ClientCertificateRequired)
        } else if lower.contains("hostname mismatch") || lower.contains("ip address mismatch") {
            Some(Self::HostNameMismatch)
        } else if lower.contains("certificate verify failed") {
            Some(Self::CertificateVerifyFailed)
        } else if lower.contains("not found in kerberos database") {
            Some(Self::KerberosServicePrincipalUnknown)
        } else if lower.contains("gss_accept_sec_context") {
            Some(Self::KerberosTicketRefused)
        } else if lower.contains("authentication failed") || lower.contains("invalid-proof") {
            Some(Self::AuthenticationFailed)
        } else {
            None
        }
    }
}

/// Leads with a TLS or SASL failure when librdkafka reported one, else says the brokers could
/// not be reached and what the client saw meanwhile.
fn unreachable_message(unreachable: &Unreachable) -> String {
    let Unreachable {
        bootstrap,
        timeout,
        source,
        reported,
    } = unreachable;
    match reported {
        Some(Reported::HandshakeFailed { words, problem }) => {
            let problem = problem.map(|p| format!(" ({p})")).unwrap_or_default();
            format!("could not connect to the Kafka brokers at {bootstrap}: {words}{problem}")
        }
        Some(Reported::Other(words)) => format!(
            "could not reach the Kafka brokers at {bootstrap} within {}: {}; the client \
             reported: {words}",
            humanize(*timeout),
            explain(source)
        ),
        None => format!(
            "could not reach the Kafka brokers at {bootstrap} within {}: {}",
            humanize(*timeout),
            explain(source)
        ),
    }
}

/// `1.5 s`, `250 ms`: how durations appear in Sluice's messages.
pub fn humanize(d: Duration) -> String {
    if d.as_millis() < 1000 {
        format!("{} ms", d.as_millis())
    } else if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

/// What a librdkafka error code means to the code that handles it: whose fault it is, and
/// whether trying again can help.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct CodeClass {
    /// Whose fault it is.
    pub kind: ErrorKind,
    /// Sending the same request again later may succeed: the outside world failed for now.
    /// Produce reports a record that failed so as retriable.
    pub retriable: bool,
    /// The condition clears by itself within seconds (librdkafka finds a moved coordinator,
    /// reconnects), so the same request may be sent again after a short back-off. Commit
    /// Offset does so.
    pub heals_by_itself: bool,
}

impl CodeClass {
    const fn new(kind: ErrorKind, retriable: bool, heals_by_itself: bool) -> Self {
        Self {
            kind,
            retriable,
            heals_by_itself,
        }
    }
}

/// Whose fault a librdkafka error code is, and whether trying again can help: the one table
/// every operation consults.
pub fn classify(code: RDKafkaErrorCode) -> CodeClass {
    use ErrorKind::{Environment, User};
    use RDKafkaErrorCode as Code;
    match code {
        // Lost on the way: a request not answered, a connection dropped.
        Code::RequestTimedOut | Code::BrokerTransportFailure => {
            CodeClass::new(Environment, true, true)
        }
        // The cluster cannot take a record now: unreachable, a partition without its leader,
        // too few in-sync replicas, the client's own queue full, or the delivery timed out.
        Code::MessageTimedOut
        | Code::QueueFull
        | Code::NotEnoughReplicas
        | Code::NotEnoughReplicasAfterAppend
        | Code::LeaderNotAvailable
        | Code::NotLeaderForPartition
        | Code::AllBrokersDown => CodeClass::new(Environment, true, false),
        // The group's coordinator is moving, loading or being looked up, or a connection
        // dropped before its answer (NetworkException). Commit Offset tries again; Produce has
        // never counted these as retriable (a producer meets the coordinator codes never, and
        // NetworkException only once librdkafka's own retries are spent) and still does not.
        Code::NotCoordinator
        | Code::CoordinatorNotAvailable
        | Code::CoordinatorLoadInProgress
        | Code::WaitingForCoordinator
        | Code::NetworkException => CodeClass::new(Environment, false, true),
        // The definition, the document or the principal's rights need a fix.
        Code::MessageSizeTooLarge
        | Code::InvalidMessageSize
        | Code::MessageBatchTooLarge
        | Code::InvalidRecord
        | Code::UnknownTopicOrPartition
        | Code::UnknownTopic
        | Code::UnknownPartition
        | Code::InvalidTopic
        | Code::OffsetMetadataTooLarge
        | Code::PolicyViolation
        | Code::TopicAuthorizationFailed
        | Code::GroupAuthorizationFailed
        | Code::ClusterAuthorizationFailed
        | Code::Authentication
        | Code::SaslAuthenticationFailed => CodeClass::new(User, false, false),
        // Everything else the brokers or librdkafka refused: the outside world, and the same
        // request would be refused again.
        _ => CodeClass::new(Environment, false, false),
    }
}

/// The sentence for an error code, in Kafka's terms, if we have one.
fn describe(code: RDKafkaErrorCode) -> Option<&'static str> {
    use RDKafkaErrorCode as Code;
    Some(match code {
        Code::MessageTimedOut => {
            "the broker did not acknowledge the message within the delivery timeout: check that \
             the brokers are up and reachable, or raise the delivery timeout (message.timeout.ms)"
        }
        Code::MessageSizeTooLarge | Code::InvalidMessageSize => {
            "the broker refused the message as too large: raise the topic's max.message.bytes or \
             send smaller documents"
        }
        Code::UnknownTopicOrPartition | Code::UnknownTopic => {
            "the topic or partition does not exist on the cluster: create it, or check its name"
        }
        Code::UnknownPartition => "the partition does not exist in the topic",
        Code::TopicAuthorizationFailed => {
            "the principal is not allowed to use this topic: ask for an ACL on it"
        }
        Code::GroupAuthorizationFailed => {
            "the principal is not allowed to use this consumer group: ask for an ACL on it"
        }
        Code::ClusterAuthorizationFailed => "the principal is not allowed this cluster operation",
        Code::AllBrokersDown | Code::BrokerTransportFailure => {
            "no broker could be reached: check the bootstrap servers, the network and the brokers"
        }
        Code::Authentication | Code::SaslAuthenticationFailed => {
            "authentication failed: check the user name, password or credentials"
        }
        Code::RequestTimedOut | Code::OperationTimedOut => {
            "the broker did not answer in time: the cluster may be overloaded or unreachable"
        }
        Code::NotCoordinator | Code::CoordinatorNotAvailable | Code::CoordinatorLoadInProgress => {
            "the consumer group's coordinator is moving or not ready: retry shortly"
        }
        Code::RebalanceInProgress | Code::IllegalGeneration | Code::UnknownMemberId => {
            "the consumer group is rebalancing, so this member's commit was refused: run again \
             to read the documents again"
        }
        Code::OffsetOutOfRange => {
            "the offset is outside the partition's range (deleted by retention, or not yet \
             written)"
        }
        Code::NotEnoughReplicas | Code::NotEnoughReplicasAfterAppend => {
            "too few in-sync replicas to accept the message with acks=all: the cluster is \
             degraded"
        }
        Code::InvalidTopic => "the topic name is not valid on this cluster",
        Code::MessageBatchTooLarge => "the batch is larger than the broker accepts",
        Code::OffsetMetadataTooLarge => {
            "the commit metadata is longer than the broker accepts: shorten it"
        }
        Code::PolicyViolation => "a broker policy refused the request",
        Code::InvalidRecord => "the broker refused the record as invalid",
        Code::QueueFull => "the client's send queue is full",
        _ => return None,
    })
}

/// librdkafka's error as a sentence in Kafka's terms, ending with the error code so that it
/// can still be looked up, e.g. `the broker did not acknowledge … (MessageTimedOut)`.
pub fn explain(error: &KafkaError) -> String {
    let Some(code) = error.rdkafka_error_code() else {
        return error.to_string();
    };
    match describe(code) {
        Some(sentence) => format!("{sentence} ({code:?})"),
        None => format!("{error} ({code:?})"),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use rdkafka::error::{KafkaError, RDKafkaErrorCode};

    use super::*;

    #[test]
    fn librdkafka_errors_become_sentences_that_keep_the_code() {
        assert_eq!(
            explain(&KafkaError::MessageProduction(
                RDKafkaErrorCode::MessageTimedOut
            )),
            "the broker did not acknowledge the message within the delivery timeout: check that \
             the brokers are up and reachable, or raise the delivery timeout \
             (message.timeout.ms) (MessageTimedOut)"
        );
        assert_eq!(
            explain(&KafkaError::ConsumerCommit(
                RDKafkaErrorCode::RebalanceInProgress
            )),
            "the consumer group is rebalancing, so this member's commit was refused: run again to \
             read the documents again (RebalanceInProgress)"
        );
        // Codes without a sentence of ours keep librdkafka's text and the code.
        assert!(explain(&KafkaError::MessageProduction(
            RDKafkaErrorCode::InvalidTransactionTimeout
        ))
        .ends_with("(InvalidTransactionTimeout)"));
    }

    #[test]
    fn every_operation_reads_retries_from_one_table() {
        let retriable = |code| classify(code).retriable;
        let heals = |code| classify(code).heals_by_itself;
        // Both: lost on the way.
        for code in [
            RDKafkaErrorCode::RequestTimedOut,
            RDKafkaErrorCode::BrokerTransportFailure,
        ] {
            assert!(retriable(code) && heals(code), "{code:?}");
        }
        // Produce's: the cluster cannot take a record now.
        for code in [
            RDKafkaErrorCode::MessageTimedOut,
            RDKafkaErrorCode::QueueFull,
            RDKafkaErrorCode::NotEnoughReplicas,
            RDKafkaErrorCode::NotEnoughReplicasAfterAppend,
            RDKafkaErrorCode::LeaderNotAvailable,
            RDKafkaErrorCode::NotLeaderForPartition,
            RDKafkaErrorCode::AllBrokersDown,
        ] {
            assert!(retriable(code) && !heals(code), "{code:?}");
        }
        // Commit Offset's: the coordinator moves.
        for code in [
            RDKafkaErrorCode::NotCoordinator,
            RDKafkaErrorCode::CoordinatorNotAvailable,
            RDKafkaErrorCode::CoordinatorLoadInProgress,
            RDKafkaErrorCode::WaitingForCoordinator,
            RDKafkaErrorCode::NetworkException,
        ] {
            assert!(!retriable(code) && heals(code), "{code:?}");
        }
        let authorization = classify(RDKafkaErrorCode::TopicAuthorizationFailed);
        assert_eq!(authorization.kind, ErrorKind::User);
        assert!(!authorization.retriable && !authorization.heals_by_itself);
    }

    #[test]
    fn handshake_problems_are_recognised_in_librdkafkas_words() {
        let problem = |words: &str| match Reported::new(words.to_string()) {
            Reported::HandshakeFailed { problem, .. } => problem,
            Reported::Other(_) => panic!("not a handshake failure: {words}"),
        };
        assert_eq!(
            problem("SSL handshake failed: error:0A00045C:SSL routines::tlsv13 alert certificate required"),
            Some(HandshakeProblem::ClientCertificateRequired)
        );
        assert_eq!(
            problem("SSL handshake failed: Hostname mismatch"),
            Some(HandshakeProblem::HostNameMismatch)
        );
        assert_eq!(
            problem("SSL handshake failed: certificate verify failed"),
            Some(HandshakeProblem::CertificateVerifyFailed)
        );
        assert_eq!(
            problem("SASL authentication error: Server kafka/h@R not found in Kerberos database"),
            Some(HandshakeProblem::KerberosServicePrincipalUnknown)
        );
        assert_eq!(
            problem("SASL authentication error: gss_accept_sec_context failed"),
            Some(HandshakeProblem::KerberosTicketRefused)
        );
        assert_eq!(
            problem("SASL authentication error: Authentication failed"),
            Some(HandshakeProblem::AuthenticationFailed)
        );
        assert_eq!(problem("SSL handshake failed: something new"), None);
        assert_eq!(
            Reported::new("Connection refused".into()),
            Reported::Other("Connection refused".into())
        );
    }

    #[test]
    fn unreachable_brokers_are_reported_in_kafka_terms() {
        let unreachable = |reported| Unreachable {
            bootstrap: "h:9093".into(),
            timeout: Duration::from_secs(15),
            source: KafkaError::MetadataFetch(RDKafkaErrorCode::AllBrokersDown),
            reported,
        };
        assert_eq!(
            unreachable(None).to_string(),
            "could not reach the Kafka brokers at h:9093 within 15 s: no broker could be reached: \
             check the bootstrap servers, the network and the brokers (AllBrokersDown)"
        );
        assert_eq!(
            unreachable(Some(Reported::new(
                "SSL handshake failed: certificate verify failed".into()
            )))
            .to_string(),
            "could not connect to the Kafka brokers at h:9093: SSL handshake failed: certificate \
             verify failed (the broker's certificate could not be verified with the trusted CA \
             certificates)"
        );
        assert_eq!(humanize(Duration::from_millis(1500)), "1.5 s");
        assert_eq!(humanize(Duration::from_millis(250)), "250 ms");
    }
}
