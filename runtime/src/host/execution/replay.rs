//! Dead letters replayed as executions of their listener's process: back to the topic and
//! partition each came from (its bytes produced again; no step of the process runs), or
//! through the process's steps as if the listener had received it again. Either way the
//! execution is recorded with the dead letters it replayed, which is how a later replay knows
//! them.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use sluice_connector::produce::{Acks, ProduceSettings, Producer};
use sluice_connector::{Connection, ConsumedRecord, ProduceRecord};
use tracing::Instrument;

use super::{consumed_document, Host, NoProgress, Source};
use crate::advice::UserMessage as _;
use crate::document::TrackedProperties;
use crate::failure::Failure;
use crate::record::{ExecutionRecord, ExecutionStatus, HandledMessages, MessageRole};

/// The operation name a replay's document errors carry.
const REPLAY: &str = "replay";

/// One dead letter to replay.
#[derive(Debug, Clone)]
pub struct DeadLetterReplay {
    /// Where the dead letter is: topic, partition, offset.
    pub dead_letter: (Arc<str>, i32, i64),
    /// The message it is again: the topic, partition and offset it came from, its key,
    /// payload, timestamp and own headers (with `sluice.replay.of`, without the error
    /// headers).
    pub record: ConsumedRecord,
}

impl Host {
    /// Produces each dead letter's message again to the topic and partition it came from, on
    /// a producer of `connection` (idempotent, acks=all), and records that as an execution
    /// of `process_id` whose steps did not run: the source offsets written, the dead letters
    /// replayed. A message that is not delivered gets its own error. Not counted in the
    /// process's metrics: its listener counts the documents when it receives them again.
    pub async fn replay_to_source(
        &self,
        process_id: &str,
        connection: &Connection,
        letters: Vec<DeadLetterReplay>,
    ) -> ExecutionRecord {
        let id = uuid::Uuid::now_v7();
        let span = tracing::error_span!("execution", process = %process_id, execution_id = %id);
        async {
            let clock = Instant::now();
            let mut record = ExecutionRecord {
                id,
                process: process_id.to_string(),
                started: SystemTime::now(),
                duration: Duration::ZERO,
                status: ExecutionStatus::Succeeded,
                documents_in: letters.len(),
                documents_out: Vec::new(),
                documents_handed_on: 0,
                document_errors: Vec::new(),
                messages: HandledMessages::default(),
            };
            tracing::info!(dead_letters = letters.len(), "replay to source started");
            if let Err(failure) = self.produce_again(connection, &letters, &mut record).await {
                record.status = ExecutionStatus::Failed(failure);
            } else if !record.document_errors.is_empty() {
                record.status = ExecutionStatus::CompletedWithErrors;
            }
            record.duration = clock.elapsed();
            tracing::info!(
                status = record.status.name(),
                replayed = record.documents_handed_on,
                document_errors = record.document_errors.len(),
                "replay to source ended"
            );
            self.store(&mut record).await;
            record
        }
        .instrument(span)
        .await
    }

    async fn produce_again(
        &self,
        connection: &Connection,
        letters: &[DeadLetterReplay],
        record: &mut ExecutionRecord,
    ) -> Result<(), Failure> {
        let settings = ProduceSettings {
            topic: None,
            acks: Acks::All,
            compression: Default::default(),
            delivery_timeout: ProduceSettings::DEFAULT_DELIVERY_TIMEOUT,
        };
        let producer = Producer::new(connection, settings, self.container.kafka)
            .map_err(|e| Failure::from_connector(&e))?;
        let records = letters
            .iter()
            .map(|letter| {
                let message = &letter.record;
                ProduceRecord {
                    payload: Cow::Borrowed(&message.payload),
                    key: message.key.as_deref().map(Cow::Borrowed),
                    topic: Some(Cow::Borrowed(&message.topic)),
                    partition: Some(message.partition),
                    timestamp_ms: message.timestamp_ms,
                    headers: message.headers.clone(),
                }
            })
            .collect();
        let results = producer
            .produce(records, |_| {})
            .await
            .map_err(|e| Failure::from_connector(&e))?;
        for (index, (letter, result)) in letters.iter().zip(results).enumerate() {
            let (dead_topic, dead_partition, dead_offset) = &letter.dead_letter;
            match result {
                Ok(at) => {
                    record.documents_handed_on += 1;
                    if at.offset >= 0 {
                        record.messages.note(
                            MessageRole::Written,
                            &at.topic,
                            at.partition,
                            at.offset,
                        );
                    }
                    record.messages.note(
                        MessageRole::Replayed,
                        dead_topic,
                        *dead_partition,
                        *dead_offset,
                    );
                }
                Err(error) => {
                    let message = &letter.record;
                    let tracked = TrackedProperties {
                        topic: Some(message.topic.clone()),
                        partition: Some(message.partition),
                        offset: Some(message.offset),
                        ..TrackedProperties::default()
                    };
                    record.document_error(index + 1, 1, REPLAY, error.user_message(), tracked);
                }
            }
        }
        Ok(())
    }

    /// Runs the dead letters' messages through `process_id`'s steps as one execution, each as
    /// the document its listener made of it; those that come through without an error are
    /// recorded as replayed. `process_id` must be a process of this host.
    pub async fn replay_through_process(
        &self,
        process_id: &str,
        letters: Vec<DeadLetterReplay>,
    ) -> ExecutionRecord {
        let process = &self.components.processes[process_id];
        let (replayed, documents): (Vec<_>, Vec<_>) = letters
            .into_iter()
            .map(|letter| {
                let document =
                    consumed_document(sluice_connector::consume::Consumed::Record(letter.record));
                (letter.dead_letter, document)
            })
            .unzip();
        self.run_replaying(
            process,
            Source::Whole(Some(documents)),
            &NoProgress,
            &replayed,
        )
        .await
    }
}
