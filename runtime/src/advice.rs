//! What to fix, in the vocabulary of components: turns the connector's errors, reported in
//! Kafka terms, into the messages users see, naming XML fields.
//!
//! Every place the host shows a connector error (an execution's failure or document error, a
//! listener's reason or log line, a Test Connection verdict, a definition error) goes through
//! [`UserMessage`], so the field names live here and nowhere in the connector.

use sluice_connector::commit_offset::CommitError;
use sluice_connector::produce::{DeliveryFailure, ProduceError};
use sluice_connector::{
    humanize, ConnectorError, HandshakeProblem, KafkaError, PropertyError, RDKafkaErrorCode,
    Reported, Setting, Unreachable,
};

/// An error of the connector as users read it.
pub trait UserMessage {
    /// What failed and, where a field of a component (or a container property) fixes it,
    /// which one.
    fn user_message(&self) -> String;
}

impl UserMessage for ConnectorError {
    fn user_message(&self) -> String {
        match self {
            Self::Unreachable(unreachable) => unreachable.user_message(),
            Self::Consume { topic, source } => format!(
                "consuming from topic \"{topic}\" failed: {}",
                source.user_message()
            ),
            Self::Commit { group, source } => format!(
                "committing offsets for consumer group \"{group}\" failed: {}",
                source.user_message()
            ),
            // The others name nothing a field sets (a missing topic, a bug): the connector's
            // words are the message.
            other => other.to_string(),
        }
    }
}

impl UserMessage for Unreachable {
    /// Leads with a TLS or SASL failure when librdkafka reported one, with the fields that fix
    /// it, else says the brokers could not be reached and what the client saw meanwhile.
    fn user_message(&self) -> String {
        let Self {
            bootstrap,
            timeout,
            source,
            reported,
        } = self;
        match reported {
            Some(Reported::HandshakeFailed { words, problem }) => format!(
                "could not connect to the Kafka brokers at {bootstrap}: {words}{}",
                problem.map_or("", handshake_fix)
            ),
            Some(Reported::Other(words)) => format!(
                "could not reach the Kafka brokers at {bootstrap} within {}: {}; the client \
                 reported: {words}",
                humanize(*timeout),
                source.user_message()
            ),
            None => format!(
                "could not reach the Kafka brokers at {bootstrap} within {}: {}",
                humanize(*timeout),
                source.user_message()
            ),
        }
    }
}

/// What to change for a handshake problem, as a sentence that follows librdkafka's words.
fn handshake_fix(problem: HandshakeProblem) -> &'static str {
    match problem {
        HandshakeProblem::ClientCertificateRequired => {
            ". The brokers require a client certificate: set tls/certificate-file and \
             tls/key-file"
        }
        HandshakeProblem::HostNameMismatch => {
            ". The broker's certificate does not name the host connected to: use a host name \
             it holds in bootstrap-servers"
        }
        HandshakeProblem::CertificateVerifyFailed => {
            ". Check tls/ca-file: it must hold the CA certificate that signed the brokers' \
             certificates"
        }
        HandshakeProblem::KerberosServicePrincipalUnknown => {
            ". The brokers' service principal does not exist: check service-name (brokers are \
             service/host@REALM) and that bootstrap-servers names the brokers by their fully \
             qualified host names"
        }
        HandshakeProblem::KerberosTicketRefused => {
            ". The brokers refused the Kerberos ticket: check that the clocks of this \
             machine, the KDC and the brokers agree (NTP) and that the brokers' keytab is \
             current"
        }
        HandshakeProblem::AuthenticationFailed => ". Check username, password and sasl-mechanism",
        HandshakeProblem::TokenRefused => {
            ". Check oauth/client-id and oauth/client-secret, and oauth/client-authentication \
             (client_secret_post or client_secret_basic, as the identity provider expects)"
        }
    }
}

impl UserMessage for KafkaError {
    /// librdkafka's error as a sentence a user can act on, ending with the error code so that
    /// it can still be looked up. Where a field fixes it, the sentence names the field; the
    /// others are the connector's.
    fn user_message(&self) -> String {
        let (code, sentence) = match self.rdkafka_error_code() {
            Some(code @ RDKafkaErrorCode::MessageTimedOut) => (
                code,
                "the broker did not acknowledge the message within the delivery timeout: check \
                 that the brokers are up and reachable, or raise delivery-timeout",
            ),
            Some(
                code
                @ (RDKafkaErrorCode::AllBrokersDown | RDKafkaErrorCode::BrokerTransportFailure),
            ) => (
                code,
                "no broker could be reached: check bootstrap-servers, the network and the brokers",
            ),
            _ => return sluice_connector::explain(self),
        };
        format!("{sentence} ({code:?})")
    }
}

impl UserMessage for ProduceError {
    fn user_message(&self) -> String {
        match self {
            Self::TooLarge {
                size,
                max,
                service: None,
            } => format!(
                "message is {size} bytes; max.request.size is {max} bytes: send smaller \
                 documents, or raise kafka.max.request.size in the host's container.properties"
            ),
            Self::TooLarge {
                size,
                max,
                service: Some(service),
            } => format!(
                "message is {size} bytes; {service} accepts messages up to {max} bytes (the \
                 service's own limit, whatever kafka.max.request.size says): send smaller \
                 documents"
            ),
            Self::NoTopic => {
                "no topic: the document has no topic-name property and the operation no topic"
                    .to_string()
            }
            Self::Delivery { topic, failure } => format!(
                "delivery to topic \"{topic}\" failed: {}",
                failure.user_message()
            ),
            // A missing topic or partition: the connector's words are the message.
            other => other.to_string(),
        }
    }
}

impl UserMessage for DeliveryFailure {
    fn user_message(&self) -> String {
        match self {
            Self::Refused(error) => error.user_message(),
            other => other.to_string(),
        }
    }
}

impl UserMessage for CommitError {
    fn user_message(&self) -> String {
        match self {
            Self::Rejected(error) => format!("the commit was rejected: {}", error.user_message()),
            other => other.to_string(),
        }
    }
}

impl UserMessage for PropertyError {
    fn user_message(&self) -> String {
        match self {
            Self::SetBySluice { name, owner } => {
                format!("{name} is set by {}; use that instead", field_of(*owner))
            }
            // An unknown property, with close matches: nothing of ours to name.
            other => other.to_string(),
        }
    }
}

/// The field (or mechanism) that controls a setting the connector derives librdkafka
/// properties from.
fn field_of(setting: Setting) -> &'static str {
    match setting {
        Setting::Bootstrap => "the connection's bootstrap-servers",
        Setting::ClientId => "the connection's client-id",
        Setting::SecurityProtocol => "the connection's security-protocol",
        Setting::SaslMechanism => "the connection's sasl-mechanism",
        Setting::SaslUsername => "the connection's username",
        Setting::SaslPassword => "the connection's password",
        Setting::TlsCaFile => "the connection's tls/ca-file",
        Setting::TlsCertificateFile => "the connection's tls/certificate-file",
        Setting::TlsKeyFile => "the connection's tls/key-file",
        Setting::TlsKeyPassword => "the connection's tls/key-password",
        Setting::TlsVerifyHostname => "the connection's tls/verify-hostname",
        Setting::ConsumerGroup => "the operation's (or connection's) consumer-group",
        Setting::Autocommit => {
            "Sluice (offsets follow documents: the consume operation's autocommit)"
        }
        Setting::OffsetStore => "Sluice (offsets follow documents)",
        Setting::OffsetReset => "the consume operation's offset-reset",
        Setting::Acks => "the produce operation's acks",
        Setting::Idempotence => "the produce operation's acks (idempotence comes with acks=all)",
        Setting::Compression => "the produce operation's compression",
        Setting::DeliveryTimeout => "the produce operation's delivery-timeout",
        Setting::MaxRequestSize => "the container property kafka.max.request.size",
    }
}

#[cfg(test)]
mod tests {
    //! Each string below is the message users saw before the connector reported in Kafka
    //! terms; they must not change.

    use std::time::Duration;

    use sluice_connector::commit_offset::CommitError;
    use sluice_connector::produce::{DeliveryFailure, ProduceError};
    use sluice_connector::{
        check_property, ConnectorError, HandshakeProblem, KafkaError, PartitionNotFound,
        RDKafkaErrorCode, Reported, Unreachable,
    };

    use super::UserMessage;

    fn unreachable(source: RDKafkaErrorCode, reported: Option<Reported>) -> ConnectorError {
        ConnectorError::Unreachable(Box::new(Unreachable {
            bootstrap: "broker.example.com:9093".into(),
            timeout: Duration::from_secs(15),
            source: KafkaError::MetadataFetch(source),
            reported,
        }))
    }

    fn handshake(words: &str, problem: Option<HandshakeProblem>) -> Option<Reported> {
        Some(Reported::HandshakeFailed {
            words: words.into(),
            problem,
        })
    }

    #[test]
    fn librdkafka_errors_become_sentences_that_keep_the_code() {
        assert_eq!(
            KafkaError::MessageProduction(RDKafkaErrorCode::MessageTimedOut).user_message(),
            "the broker did not acknowledge the message within the delivery timeout: check that \
             the brokers are up and reachable, or raise delivery-timeout (MessageTimedOut)"
        );
        for code in [
            RDKafkaErrorCode::AllBrokersDown,
            RDKafkaErrorCode::BrokerTransportFailure,
        ] {
            assert_eq!(
                KafkaError::MetadataFetch(code).user_message(),
                format!(
                    "no broker could be reached: check bootstrap-servers, the network and the \
                     brokers ({code:?})"
                )
            );
        }
        assert_eq!(
            KafkaError::ConsumerCommit(RDKafkaErrorCode::RebalanceInProgress).user_message(),
            "the consumer group is rebalancing, so this member's commit was refused: run again to \
             read the documents again (RebalanceInProgress)"
        );
        assert_eq!(
            KafkaError::MessageProduction(RDKafkaErrorCode::MessageSizeTooLarge).user_message(),
            "the broker refused the message as too large: raise the topic's max.message.bytes or \
             send smaller documents (MessageSizeTooLarge)"
        );
        // Codes without a sentence of ours keep librdkafka's text and the code.
        assert!(
            KafkaError::MessageProduction(RDKafkaErrorCode::InvalidTransactionTimeout)
                .user_message()
                .ends_with("(InvalidTransactionTimeout)")
        );
        // Errors without a code are librdkafka's text.
        assert_eq!(
            KafkaError::Canceled.user_message(),
            KafkaError::Canceled.to_string()
        );
    }

    #[test]
    fn unreachable_brokers_without_a_report() {
        assert_eq!(
            unreachable(RDKafkaErrorCode::BrokerTransportFailure, None).user_message(),
            "could not reach the Kafka brokers at broker.example.com:9093 within 15 s: no broker \
             could be reached: check bootstrap-servers, the network and the brokers \
             (BrokerTransportFailure)"
        );
    }

    #[test]
    fn unreachable_brokers_with_what_the_client_reported() {
        assert_eq!(
            unreachable(
                RDKafkaErrorCode::AllBrokersDown,
                Some(Reported::Other("Connection refused".into()))
            )
            .user_message(),
            "could not reach the Kafka brokers at broker.example.com:9093 within 15 s: no broker \
             could be reached: check bootstrap-servers, the network and the brokers \
             (AllBrokersDown); the client reported: Connection refused"
        );
    }

    #[test]
    fn each_handshake_problem_names_the_fields_that_fix_it() {
        let message = |problem| {
            unreachable(
                RDKafkaErrorCode::AllBrokersDown,
                handshake("SSL handshake failed", problem),
            )
            .user_message()
        };
        let at = "could not connect to the Kafka brokers at broker.example.com:9093: SSL \
                  handshake failed";
        assert_eq!(message(None), at);
        assert_eq!(
            message(Some(HandshakeProblem::ClientCertificateRequired)),
            format!(
                "{at}. The brokers require a client certificate: set tls/certificate-file and \
                 tls/key-file"
            )
        );
        assert_eq!(
            message(Some(HandshakeProblem::HostNameMismatch)),
            format!(
                "{at}. The broker's certificate does not name the host connected to: use a host \
                 name it holds in bootstrap-servers"
            )
        );
        assert_eq!(
            message(Some(HandshakeProblem::CertificateVerifyFailed)),
            format!(
                "{at}. Check tls/ca-file: it must hold the CA certificate that signed the \
                 brokers' certificates"
            )
        );
        assert_eq!(
            message(Some(HandshakeProblem::KerberosServicePrincipalUnknown)),
            format!(
                "{at}. The brokers' service principal does not exist: check service-name \
                 (brokers are service/host@REALM) and that bootstrap-servers names the brokers \
                 by their fully qualified host names"
            )
        );
        assert_eq!(
            message(Some(HandshakeProblem::KerberosTicketRefused)),
            format!(
                "{at}. The brokers refused the Kerberos ticket: check that the clocks of this \
                 machine, the KDC and the brokers agree (NTP) and that the brokers' keytab is \
                 current"
            )
        );
        assert_eq!(
            message(Some(HandshakeProblem::AuthenticationFailed)),
            format!("{at}. Check username, password and sasl-mechanism")
        );
    }

    #[test]
    fn consume_and_commit_failures() {
        assert_eq!(
            ConnectorError::Consume {
                topic: "orders".into(),
                source: KafkaError::MessageConsumption(RDKafkaErrorCode::AllBrokersDown),
            }
            .user_message(),
            "consuming from topic \"orders\" failed: no broker could be reached: check \
             bootstrap-servers, the network and the brokers (AllBrokersDown)"
        );
        assert_eq!(
            ConnectorError::Commit {
                group: "billing".into(),
                source: KafkaError::ConsumerCommit(RDKafkaErrorCode::RebalanceInProgress),
            }
            .user_message(),
            "committing offsets for consumer group \"billing\" failed: the consumer group is \
             rebalancing, so this member's commit was refused: run again to read the documents \
             again (RebalanceInProgress)"
        );
    }

    #[test]
    fn connector_errors_that_name_no_field_keep_the_connectors_words() {
        let missing = PartitionNotFound {
            topic: "orders".into(),
            partition: 3,
            count: 2,
        };
        for (error, expected) in [
            (
                ConnectorError::UnknownTopic("orders".into()),
                "topic \"orders\" does not exist",
            ),
            (
                ConnectorError::UnknownPartition(missing),
                "partition 3 does not exist in topic \"orders\" (it has 2 partitions: 0 to 1)",
            ),
            (
                ConnectorError::EmbeddedBroker("no port".into()),
                "the embedded broker could not start: no port",
            ),
            (
                ConnectorError::Internal("task panicked".into()),
                "internal error: task panicked",
            ),
        ] {
            assert_eq!(error.user_message(), expected);
        }
        let refused = ConnectorError::ClientConfig(KafkaError::ClientCreation("bad".into()));
        assert_eq!(
            refused.user_message(),
            format!(
                "the Kafka client configuration was refused: {}",
                KafkaError::ClientCreation("bad".into())
            )
        );
    }

    #[test]
    fn produce_errors() {
        assert_eq!(
            ProduceError::TooLarge {
                size: 2000,
                max: 1000,
                service: None,
            }
            .user_message(),
            "message is 2000 bytes; max.request.size is 1000 bytes: send smaller documents, or \
             raise kafka.max.request.size in the host's container.properties"
        );
        // Raising the host's limit would not help: the service's own limit is named.
        assert_eq!(
            ProduceError::TooLarge {
                size: 2_000_000,
                max: 1_046_527,
                service: Some("Azure Event Hubs"),
            }
            .user_message(),
            "message is 2000000 bytes; Azure Event Hubs accepts messages up to 1046527 bytes \
             (the service's own limit, whatever kafka.max.request.size says): send smaller \
             documents"
        );
        assert_eq!(
            ProduceError::NoTopic.user_message(),
            "no topic: the document has no topic-name property and the operation no topic"
        );
        assert_eq!(
            ProduceError::UnknownTopic("orders".into()).user_message(),
            "topic \"orders\" does not exist"
        );
        assert_eq!(
            ProduceError::UnknownPartition(PartitionNotFound {
                topic: "orders".into(),
                partition: 5,
                count: 1,
            })
            .user_message(),
            "partition 5 does not exist in topic \"orders\" (it has 1 partitions: 0 to 0)"
        );
        let delivery = |failure| ProduceError::Delivery {
            topic: "orders".into(),
            failure,
        };
        assert_eq!(
            delivery(DeliveryFailure::Refused(KafkaError::MessageProduction(
                RDKafkaErrorCode::MessageTimedOut
            )))
            .user_message(),
            "delivery to topic \"orders\" failed: the broker did not acknowledge the message \
             within the delivery timeout: check that the brokers are up and reachable, or raise \
             delivery-timeout (MessageTimedOut)"
        );
        assert_eq!(
            delivery(DeliveryFailure::Refused(KafkaError::MessageProduction(
                RDKafkaErrorCode::TopicAuthorizationFailed
            )))
            .user_message(),
            "delivery to topic \"orders\" failed: the principal is not allowed to use this \
             topic: ask for an ACL on it (TopicAuthorizationFailed)"
        );
        assert_eq!(
            delivery(DeliveryFailure::ProducerShutDown).user_message(),
            "delivery to topic \"orders\" failed: the producer was shut down before the broker \
             answered"
        );
    }

    #[test]
    fn commit_errors() {
        assert_eq!(
            CommitError::Rejected(KafkaError::ConsumerCommit(
                RDKafkaErrorCode::BrokerTransportFailure
            ))
            .user_message(),
            "the commit was rejected: no broker could be reached: check bootstrap-servers, the \
             network and the brokers (BrokerTransportFailure)"
        );
        assert_eq!(
            CommitError::Rejected(KafkaError::ConsumerCommit(
                RDKafkaErrorCode::OffsetMetadataTooLarge
            ))
            .user_message(),
            "the commit was rejected: the commit metadata is longer than the broker accepts: \
             shorten it (OffsetMetadataTooLarge)"
        );
        assert_eq!(
            CommitError::InvalidOffset(-2).user_message(),
            "offset -2 is not valid: offsets start at 0"
        );
        assert_eq!(
            CommitError::UnknownTopic("orders".into()).user_message(),
            "topic \"orders\" does not exist"
        );
    }

    #[test]
    fn pass_through_properties_that_sluice_sets_name_the_field() {
        let problem = |name: &str| {
            check_property(name)
                .expect_err("a property Sluice sets")
                .user_message()
        };
        assert_eq!(
            problem("sasl.password"),
            "sasl.password is set by the connection's password; use that instead"
        );
        assert_eq!(
            problem("bootstrap.servers"),
            "bootstrap.servers is set by the connection's bootstrap-servers; use that instead"
        );
        assert_eq!(
            problem("enable.auto.commit"),
            "enable.auto.commit is set by Sluice (offsets follow documents: the consume \
             operation's autocommit); use that instead"
        );
        assert_eq!(
            problem("message.max.bytes"),
            "message.max.bytes is set by the container property kafka.max.request.size; use \
             that instead"
        );
        // Unknown properties: the connector's words.
        assert_eq!(
            check_property("socket.keepalive.enabled")
                .expect_err("misspelt")
                .user_message(),
            "socket.keepalive.enabled is not a librdkafka property; close matches: \
             socket.keepalive.enable, socket.nagle.disable"
        );
    }

    #[test]
    fn every_property_sluice_sets_names_the_field_it_named_before() {
        // The whole table of librdkafka properties Sluice sets, with the field (or mechanism)
        // each message named.
        for (property, field) in [
            ("bootstrap.servers", "the connection's bootstrap-servers"),
            ("metadata.broker.list", "the connection's bootstrap-servers"),
            ("client.id", "the connection's client-id"),
            ("security.protocol", "the connection's security-protocol"),
            ("sasl.mechanism", "the connection's sasl-mechanism"),
            ("sasl.mechanisms", "the connection's sasl-mechanism"),
            ("sasl.username", "the connection's username"),
            ("sasl.password", "the connection's password"),
            ("ssl.ca.location", "the connection's tls/ca-file"),
            (
                "ssl.certificate.location",
                "the connection's tls/certificate-file",
            ),
            ("ssl.key.location", "the connection's tls/key-file"),
            ("ssl.key.password", "the connection's tls/key-password"),
            (
                "ssl.endpoint.identification.algorithm",
                "the connection's tls/verify-hostname",
            ),
            (
                "group.id",
                "the operation's (or connection's) consumer-group",
            ),
            (
                "enable.auto.commit",
                "Sluice (offsets follow documents: the consume operation's autocommit)",
            ),
            (
                "enable.auto.offset.store",
                "Sluice (offsets follow documents)",
            ),
            ("auto.offset.reset", "the consume operation's offset-reset"),
            ("acks", "the produce operation's acks"),
            ("request.required.acks", "the produce operation's acks"),
            (
                "enable.idempotence",
                "the produce operation's acks (idempotence comes with acks=all)",
            ),
            ("compression.codec", "the produce operation's compression"),
            ("compression.type", "the produce operation's compression"),
            (
                "message.timeout.ms",
                "the produce operation's delivery-timeout",
            ),
            (
                "delivery.timeout.ms",
                "the produce operation's delivery-timeout",
            ),
            (
                "message.max.bytes",
                "the container property kafka.max.request.size",
            ),
        ] {
            assert_eq!(
                check_property(property)
                    .expect_err("a property Sluice sets")
                    .user_message(),
                format!("{property} is set by {field}; use that instead")
            );
        }
    }
}
