//! The Produce step: every document of the step is enqueued at once on the operation's warm
//! producer, then every delivery report is collected; a document that is not delivered gets
//! its own error and the others go on.

use std::borrow::Cow;
use std::sync::Arc;

use sluice_connector::produce::Producer;
use sluice_connector::{ConnectorError, ProduceRecord};

use super::{Host, Progress};
use crate::advice::UserMessage as _;
use crate::components::{OperationDefinition, ProduceDefinition};
use crate::document::{Document, TrackedProperties};
use crate::record::{ExecutionRecord, MessageRole};

impl Host {
    /// The warm producer of a Produce operation, created at its first use.
    fn producer(
        &self,
        op: &OperationDefinition,
        def: &ProduceDefinition,
    ) -> Result<Arc<Producer>, ConnectorError> {
        let mut producers = self
            .producers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(producer) = producers.get(&op.id) {
            return Ok(producer.clone());
        }
        let connection = self.connection(op)?;
        let producer = Arc::new(Producer::new(
            &connection,
            def.settings.clone(),
            self.container.kafka,
        )?);
        producers.insert(op.id.clone(), producer.clone());
        Ok(producer)
    }

    /// Creates the producers of the process's Produce steps now, so that they connect and
    /// (idempotent) obtain their producer id while a listener joins its group: created at the
    /// first batch instead, a producer whose brokers were not up yet when it asked waited
    /// librdkafka's half-second retry before sending that batch. A producer that cannot be
    /// created here is created, and its error reported, by the execution that needs it.
    pub fn warm_producers(&self, process: &str) {
        let Some(process) = self.components.processes.get(process) else {
            return;
        };
        for step in &process.steps {
            let crate::components::Step::Connector { operation } = step else {
                continue;
            };
            let op = &self.components.operations[&operation.id];
            if let crate::components::OperationKind::Produce(def) = &op.kind {
                if let Err(error) = self.producer(op, def) {
                    tracing::debug!(operation = %op.id, error = %error.user_message(), "producer not created ahead");
                }
            }
        }
    }

    /// Forgets the warm producer of an operation (if it is still `producer`): the next
    /// execution creates a new one.
    fn retire_producer(&self, operation: &str, producer: &Arc<Producer>) {
        let mut producers = self
            .producers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if producers
            .get(operation)
            .is_some_and(|current| Arc::ptr_eq(current, producer))
        {
            producers.remove(operation);
            tracing::debug!(
                operation,
                "producer retired after an error; the next execution creates a new one"
            );
        }
    }

    pub(super) async fn produce(
        &self,
        op: &OperationDefinition,
        def: &ProduceDefinition,
        step: usize,
        mut documents: Vec<(usize, Document)>,
        progress: &dyn Progress,
        record: &mut ExecutionRecord,
    ) -> Result<Vec<(usize, Document)>, ConnectorError> {
        let producer = self.producer(op, def)?;
        // Documents that carry an application error pass through without being sent. The
        // documents stay where they are: moving thousands of them between vectors was a
        // measurable share of a small document's cost.
        let records: Vec<_> = documents
            .iter()
            .filter(|(_, d)| d.application_error.is_none())
            .map(|(_, d)| produce_record(def, d))
            .collect();
        let total = records.len();
        let results = producer
            .produce(records, |done| {
                progress.step_progress(step, &op.id, done, total)
            })
            .await
            .inspect_err(|_| self.retire_producer(&op.id, &producer))?;
        // After a failed delivery the producer's state may fail later documents too: a
        // refusal (authorization) stays cached in librdkafka, and after timed-out documents
        // the idempotent producer must bump its epoch, which brokers without KIP-360 (Kafka
        // before 2.5, tansu 0.6) cannot do. A new producer for the next execution avoids both.
        if results.iter().any(|r| {
            matches!(
                r,
                Err(sluice_connector::produce::ProduceError::Delivery { .. })
            )
        }) {
            self.retire_producer(&op.id, &producer);
        }
        let mut results = results.into_iter();
        let mut delivered = Vec::with_capacity(documents.len());
        for (position, document) in &mut documents {
            if document.application_error.is_some() {
                delivered.push(true);
                continue;
            }
            let result = results.next().expect("one result per record sent");
            delivered.push(result.is_ok());
            match result {
                Ok(at) => {
                    tracing::debug!(topic = %at.topic, partition = at.partition, offset = at.offset, "delivered");
                    if at.offset >= 0 {
                        record.messages.note(
                            MessageRole::Written,
                            &at.topic,
                            at.partition,
                            at.offset,
                        );
                    }
                    document.tracked = TrackedProperties {
                        topic: Some(at.topic),
                        partition: Some(at.partition),
                        // acks=0: the broker reports no offset.
                        offset: (at.offset >= 0).then_some(at.offset),
                        key: document.properties.message_key.clone(),
                        timestamp: document.properties.timestamp,
                        headers: Vec::new(),
                    };
                }
                Err(error) => {
                    tracing::warn!(document = *position, error = %error.user_message(), "document failed");
                    // A consumed document keeps where it came from (the error names the topic
                    // it was going to); any other is tracked by that target topic.
                    let tracked = if document.tracked.topic.is_some() {
                        std::mem::take(&mut document.tracked)
                    } else {
                        TrackedProperties {
                            topic: topic_override(def, document)
                                .cloned()
                                .or_else(|| def.settings.topic.as_deref().map(Arc::from)),
                            ..TrackedProperties::default()
                        }
                    };
                    let message = error.user_message();
                    record.document_error(*position, step, &op.id, message, tracked);
                }
            }
        }
        let mut delivered = delivered.into_iter();
        documents.retain(|_| delivered.next().unwrap_or(true));
        Ok(documents)
    }
}

/// The topic a document names for itself, when the operation lets documents choose.
fn topic_override<'d>(def: &ProduceDefinition, document: &'d Document) -> Option<&'d Arc<str>> {
    document
        .properties
        .topic_name
        .as_ref()
        .filter(|_| def.dynamic_topic)
}

fn produce_record<'a>(def: &ProduceDefinition, document: &'a Document) -> ProduceRecord<'a> {
    let properties = &document.properties;
    // Operation headers first, except those the document sets itself.
    let mut headers: Vec<_> = def
        .headers
        .iter()
        .filter(|h| !properties.headers.iter().any(|own| own.name == h.name))
        .cloned()
        .collect();
    headers.extend(properties.headers.iter().cloned());
    ProduceRecord {
        payload: Cow::Borrowed(&document.data),
        key: properties.message_key.as_deref().map(Cow::Borrowed),
        topic: topic_override(def, document).map(|t| Cow::Borrowed(&**t)),
        partition: properties.partition.or(def.partition),
        timestamp_ms: properties.timestamp,
        headers,
    }
}
