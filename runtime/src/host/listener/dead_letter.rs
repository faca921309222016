//! Dead letters: a document that keeps failing goes to the listen operation's dead-letter
//! topic with headers saying where it came from and why it failed, so that its partition can
//! go on; without a dead-letter topic the listener stops at it.

use sluice_connector::produce::Producer;
use sluice_connector::{ErrorKind, Header, ProduceRecord};

use super::{Attempted, Listener};
use crate::advice::UserMessage as _;
use crate::failure::Failure;

/// Room for the context headers of a dead letter beyond max.request.size.
pub(super) const DEAD_LETTER_ALLOWANCE: u64 = 16 * 1024;

/// The longest error message a dead letter carries (the execution record keeps the whole).
const DEAD_LETTER_MESSAGE_MAX: usize = 4096;

/// Headers a dead-lettered record carries besides its own (names in the style of Kafka
/// Connect's `__connect.errors.*`).
pub mod dead_letter_headers {
    /// The topic the document was read from.
    pub const TOPIC: &str = "sluice.error.topic";
    /// Its partition.
    pub const PARTITION: &str = "sluice.error.partition";
    /// Its offset.
    pub const OFFSET: &str = "sluice.error.offset";
    /// The error of its last attempt.
    pub const MESSAGE: &str = "sluice.error.message";
    /// How many times it was tried.
    pub const ATTEMPTS: &str = "sluice.error.attempts";
    /// The process that failed it.
    pub const PROCESS: &str = "sluice.error.process";
    /// When it was dead-lettered, RFC 3339 in UTC.
    pub const TIME: &str = "sluice.error.time";
    /// Set on the dead letter of a message over max.request.size, which carries only where
    /// the message is: its key, payload and headers were not read.
    pub const OMITTED: &str = "sluice.error.omitted";
    /// Set on a replayed message: the dead letter it was replayed from,
    /// `TOPIC/PARTITION/OFFSET`.
    pub const REPLAY_OF: &str = "sluice.replay.of";
}

impl Listener {
    /// Sends a document that keeps failing to the dead-letter topic, or explains why the
    /// listener must stop. Returns its offset once the dead-letter topic has it.
    pub(super) async fn dead_letter(
        &self,
        topic: &str,
        partition: i32,
        attempted: Attempted,
    ) -> Result<i64, Failure> {
        let position = format!(
            "topic \"{topic}\" partition {partition} offset {}",
            attempted.offset
        );
        let Some(producer) = &self.dead_letters else {
            let Attempted {
                offset,
                attempts,
                error,
                kind,
                ..
            } = attempted;
            tracing::error!(offset, attempts, %error, "document failed; no dead-letter topic");
            return Err(Failure::new(
                kind,
                format!(
                    "the document at {position} failed {attempts} time(s): {error}\n  no \
                     dead-letter-topic is set, so the listener stops rather than skip it; fix \
                     the cause or set <dead-letter-topic> on the listen operation, then start it \
                     again (it resumes at this document)"
                ),
            ));
        };
        let (offset, attempts) = (attempted.offset, attempted.attempts);
        let error = attempted.error.clone();
        let record = self.dead_letter_record(topic, partition, attempted);
        let dead_letter_topic = self.definition.dead_letter_topic.as_deref().unwrap_or("?");
        match deliver(producer, record).await {
            Ok(at) => {
                self.host.metrics().dead_letter(&self.process.id);
                tracing::warn!(
                    offset,
                    attempts,
                    %error,
                    dead_letter_topic,
                    dead_letter_offset = at.offset,
                    "document sent to the dead-letter topic"
                );
                Ok(offset)
            }
            Err(refused) => Err(Failure::new(
                refused.kind,
                format!(
                    "the document at {position} failed {attempts} time(s) ({error}) and could \
                     not be sent to dead-letter topic \"{dead_letter_topic}\": {}",
                    refused.message
                ),
            )),
        }
    }

    /// The document as a dead letter: its key, payload, timestamp and own headers, plus
    /// headers saying where it came from and why it failed.
    fn dead_letter_record(
        &self,
        topic: &str,
        partition: i32,
        attempted: Attempted,
    ) -> ProduceRecord<'static> {
        let Attempted {
            offset,
            document,
            attempts,
            error,
            ..
        } = attempted;
        // Only a message over max.request.size arrives as an application error: its bytes
        // were never read.
        let omitted = document.application_error.is_some();
        let mut headers = document.tracked.headers.clone();
        let text = |name: &str, value: String| Header {
            name: name.to_string(),
            value: Some(value.into_bytes()),
        };
        headers.extend([
            text(dead_letter_headers::TOPIC, topic.to_string()),
            text(dead_letter_headers::PARTITION, partition.to_string()),
            text(dead_letter_headers::OFFSET, offset.to_string()),
            text(
                dead_letter_headers::MESSAGE,
                truncated(&error, DEAD_LETTER_MESSAGE_MAX),
            ),
            text(dead_letter_headers::ATTEMPTS, attempts.to_string()),
            text(dead_letter_headers::PROCESS, self.process.id.clone()),
            text(
                dead_letter_headers::TIME,
                humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string(),
            ),
        ]);
        if omitted {
            headers.push(text(
                dead_letter_headers::OMITTED,
                "key, payload and headers: the message was over max.request.size".into(),
            ));
        }
        ProduceRecord {
            payload: document.data.into(),
            key: document.tracked.key.as_deref().map(|k| k.to_vec().into()),
            topic: None,
            partition: None,
            timestamp_ms: document.tracked.timestamp,
            headers,
        }
    }
}

/// Sends one dead letter. A refusal that may heal (the dead-letter topic's brokers were
/// unreachable, or the delivery timed out) is the outside world's; one that will repeat is
/// the definition's.
async fn deliver(
    producer: &Producer,
    record: ProduceRecord<'static>,
) -> Result<sluice_connector::Delivered, Failure> {
    match producer.produce(vec![record], |_| {}).await {
        Err(error) => Err(Failure::from_connector(&error)),
        Ok(mut results) => match results.pop().expect("one result per record") {
            Ok(at) => Ok(at),
            Err(error) => {
                let kind = if error.is_retriable() {
                    ErrorKind::Environment
                } else {
                    ErrorKind::User
                };
                Err(Failure::new(kind, error.user_message()))
            }
        },
    }
}

/// At most `max` bytes of `text`, cut at a character boundary, marked when cut.
fn truncated(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max.saturating_sub(3);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_errors_are_cut_at_a_character_boundary() {
        assert_eq!(truncated("short", 10), "short");
        assert_eq!(truncated("ééééé", 6), "é…");
        assert!(truncated(&"x".repeat(5000), 4096).len() <= 4096);
    }
}
