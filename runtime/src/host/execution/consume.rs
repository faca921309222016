//! The Consume operation, as a process's start and as a step, and how a consumed message
//! becomes a document.

use sluice_connector::consume::{self, ConsumeSettings, Consumed};
use sluice_connector::{Connection, ConnectorError};

use super::Host;
use crate::advice::UserMessage as _;
use crate::components::{ConsumeDefinition, OperationDefinition};
use crate::document::{Document, DocumentProperties, TrackedProperties};
use crate::record::ExecutionRecord;

impl Host {
    /// The operation's consumer group, else its connection's (one exists: checked at load).
    pub(super) fn consumer_group(&self, own: &Option<String>, connection: &Connection) -> String {
        own.clone()
            .or_else(|| connection.config().default_consumer_group.clone())
            .expect("an operation that needs a consumer group has one (checked at load)")
    }

    /// Runs the Consume operation on `topic`; `None`: on the topics its pattern matches.
    pub(super) async fn consume(
        &self,
        op: &OperationDefinition,
        def: &ConsumeDefinition,
        topic: Option<&str>,
    ) -> Result<Vec<Document>, ConnectorError> {
        let connection = self.connection(op)?;
        let pattern = topic.is_none().then(|| def.pattern.clone()).flatten();
        let topic = match (topic, &pattern) {
            (Some(topic), _) => topic.to_string(),
            (None, Some(pattern)) => format!("pattern {}", pattern.as_str()),
            (None, None) => {
                return Err(ConnectorError::Internal(format!(
                    "consume operation \"{}\" has neither a topic nor a pattern",
                    op.id
                )))
            }
        };
        let settings = ConsumeSettings {
            topic: topic.clone(),
            pattern,
            consumer_group: self.consumer_group(&def.consumer_group, &connection),
            minimum_messages: def.minimum_messages,
            max_wait: def.maximum_wait,
            offset_reset: def.offset_reset,
            autocommit: def.autocommit,
            partitions: def.partitions.clone(),
            client_id: def.client_id.clone(),
        };
        let outcome = consume::consume(&connection, settings, self.container.kafka).await?;
        tracing::info!(
            operation = %op.id,
            topic = %topic,
            documents = outcome.records.len(),
            polls = outcome.polls,
            "consumed"
        );
        Ok(outcome.records.into_iter().map(consumed_document).collect())
    }

    /// Consume as a step: one Consume per input document, of the topic the document names
    /// (with dynamic-topic) or the operation's. The messages read replace the input document
    /// and keep its position; a topic that does not exist is that document's error (seed 003).
    pub(super) async fn consume_step(
        &self,
        op: &OperationDefinition,
        def: &ConsumeDefinition,
        step: usize,
        documents: Vec<(usize, Document)>,
        record: &mut ExecutionRecord,
    ) -> Result<Vec<(usize, Document)>, ConnectorError> {
        let mut out = Vec::new();
        for (position, document) in documents {
            if document.application_error.is_some() {
                out.push((position, document));
                continue;
            }
            let mut fail = |message: String| {
                record.document_error(position, step, &op.id, message, document.tracked.clone())
            };
            let named = document
                .properties
                .topic_name
                .as_deref()
                .filter(|_| def.dynamic_topic);
            let topic = named.or(def.topic.as_deref());
            match topic {
                // The operation's pattern (dynamic-topic does not go with one).
                None if def.pattern.is_some() => {}
                None => {
                    fail(
                        "no topic: the document has no topic-name property and the operation no \
                         topic"
                            .into(),
                    );
                    continue;
                }
                Some(topic) if crate::components::valid_topic(topic).is_err() => {
                    fail(format!("topic-name \"{topic}\" is not a Kafka topic name"));
                    continue;
                }
                Some(_) => {}
            }
            match self.consume(op, def, topic).await {
                Ok(consumed) => {
                    record.messages.note_read(&consumed);
                    for document in consumed {
                        if let Some(message) = &document.application_error {
                            let tracked = document.tracked.clone();
                            record.document_error(position, step, &op.id, message.clone(), tracked);
                        }
                        out.push((position, document));
                    }
                }
                Err(
                    error @ (ConnectorError::UnknownTopic(_)
                    | ConnectorError::UnknownPartition(_)
                    | ConnectorError::NoTopicMatches(_)),
                ) => fail(error.user_message()),
                Err(error) => return Err(error),
            }
        }
        Ok(out)
    }
}

/// A consumed message as a document. Topic name is set (seed 003), partition is not: it would
/// pin a later Produce to the same partition number in another topic. Where the message came
/// from is in the tracked properties.
pub(crate) fn consumed_document(consumed: Consumed) -> Document {
    match consumed {
        Consumed::Record(r) => Document {
            properties: DocumentProperties {
                message_key: r.key.clone(),
                topic_name: Some(r.topic.clone()),
                headers: r.headers.clone(),
                ..DocumentProperties::default()
            },
            tracked: TrackedProperties {
                topic: Some(r.topic),
                partition: Some(r.partition),
                offset: Some(r.offset),
                key: r.key,
                timestamp: r.timestamp_ms,
                headers: r.headers,
            },
            data: r.payload,
            application_error: None,
        },
        Consumed::TooLarge {
            topic,
            partition,
            offset,
            size,
            max,
        } => Document {
            tracked: TrackedProperties {
                topic: Some(topic),
                partition: Some(partition),
                offset: Some(offset),
                ..TrackedProperties::default()
            },
            application_error: Some(format!(
                "message is {size} bytes; max.request.size is {max} bytes"
            )),
            ..Document::default()
        },
    }
}
