//! A listener's dead letters read back from its dead-letter topic, listed with the context
//! their headers carry, and replayed: to the topic and partition each came from, or through
//! the listener's process. A replay is an execution record that names the dead letters it
//! replayed, so a second replay skips them unless asked to replay them again.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use sluice_connector::{Connection, ConsumedRecord, Header};

use super::execution::{DeadLetterReplay, Host};
use super::listener::dead_letter_headers as headers;
use crate::components::OperationKind;
use crate::record::{ExecutionRecord, ExecutionStatus, MessageRole};

/// How long reading a dead-letter topic may take.
const READ_WAIT: Duration = Duration::from_secs(60);

/// Why dead letters cannot be listed or replayed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeadLetterError {
    /// No listener by that name.
    #[error("\"{id}\" is not a listener of these components{}", listeners_named(.listeners))]
    UnknownListener {
        /// The name asked for.
        id: String,
        /// The listeners there are.
        listeners: Vec<String>,
    },
    /// The listener has no dead-letter topic.
    #[error(
        "listener \"{0}\" has no dead-letter topic: a document that keeps failing stops it \
         instead (set <dead-letter-topic> on its listen operation)"
    )]
    NoDeadLetterTopic(String),
    /// The dead-letter topic could not be read.
    #[error("dead-letter topic \"{topic}\" cannot be read: {message}")]
    Unreadable {
        /// The topic.
        topic: String,
        /// Why.
        message: String,
    },
    /// Replays cannot be remembered: no execution records.
    #[error(
        "this host records no executions, so it cannot tell which dead letters were replayed \
         before: replay with --again (again=true) to replay them regardless"
    )]
    NoRecords,
    /// The execution records could not be read.
    #[error("the execution records cannot be read: {0}")]
    Records(String),
}

fn listeners_named(listeners: &[String]) -> String {
    if listeners.is_empty() {
        "; they define none".into()
    } else {
        format!("; listeners: {}", listeners.join(", "))
    }
}

/// Where a replay sends dead letters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReplayTo {
    /// Back to the topic and partition each came from, for the listener to receive again.
    Source,
    /// Through the listener's process, as one execution, without the source topic.
    Process,
}

/// A `since` of a list or a replay: an RFC 3339 time, or how long ago (`2h`), as milliseconds
/// since the epoch.
pub fn since_ms(text: &str) -> Result<i64, String> {
    let at = match humantime::parse_rfc3339_weak(text) {
        Ok(at) => at,
        Err(_) => {
            let ago = humantime::parse_duration(text).map_err(|_| {
                format!(
                    "\"{text}\" is neither a time (2026-11-30T10:00:00Z) nor a while ago (2h, \
                     30min)"
                )
            })?;
            std::time::SystemTime::now() - ago
        }
    };
    Ok(crate::store::millis(at))
}

/// Which dead letters a list or a replay takes.
#[derive(Debug, Clone, Default)]
pub struct DeadLetterFilter {
    /// Only those dead-lettered at or after this time, milliseconds since the epoch.
    pub since_ms: Option<i64>,
    /// Only those whose error contains this text (case-insensitive).
    pub error_contains: Option<String>,
}

/// One dead letter as its dead-letter topic holds it.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    /// The record in the dead-letter topic.
    pub record: ConsumedRecord,
    /// Where its message came from: topic, partition, offset.
    pub source: Option<(String, i32, i64)>,
    /// The process that failed it.
    pub process: Option<String>,
    /// The error of its last attempt.
    pub error: Option<String>,
    /// How often it was tried.
    pub attempts: Option<u32>,
    /// When it was dead-lettered (before that was recorded: the record's timestamp).
    pub dead_lettered_ms: Option<i64>,
    /// Its message's key, payload and headers were not kept (over max.request.size).
    pub omitted: bool,
    /// The execution that replayed it, if one did.
    pub replayed_by: Option<String>,
}

impl DeadLetter {
    fn of(record: ConsumedRecord) -> Self {
        let text = |name: &str| {
            record
                .headers
                .iter()
                .rev()
                .find(|h| h.name == name)
                .and_then(|h| h.value.as_deref())
                .map(|v| String::from_utf8_lossy(v).into_owned())
        };
        let source = match (
            text(headers::TOPIC),
            text(headers::PARTITION).and_then(|p| p.parse().ok()),
            text(headers::OFFSET).and_then(|o| o.parse().ok()),
        ) {
            (Some(topic), Some(partition), Some(offset)) => Some((topic, partition, offset)),
            _ => None,
        };
        let error = text(headers::MESSAGE);
        // Dead letters written before the omitted header existed: an empty payload with the
        // size error that sent it straight to the dead-letter topic.
        let omitted = text(headers::OMITTED).is_some()
            || (record.payload.is_empty()
                && error
                    .as_deref()
                    .is_some_and(|e| e.contains("bytes; max.request.size is")));
        Self {
            source,
            process: text(headers::PROCESS),
            attempts: text(headers::ATTEMPTS).and_then(|a| a.parse().ok()),
            dead_lettered_ms: text(headers::TIME)
                .and_then(|t| humantime::parse_rfc3339_weak(&t).ok())
                .map(crate::store::millis)
                .or(record.timestamp_ms),
            error,
            omitted,
            replayed_by: None,
            record,
        }
    }

    /// `TOPIC/PARTITION/OFFSET` of the dead letter itself.
    pub fn address(&self) -> String {
        let r = &self.record;
        format!("{}/{}/{}", r.topic, r.partition, r.offset)
    }

    /// `TOPIC/PARTITION/OFFSET` its message came from, if it says.
    pub fn source_address(&self) -> Option<String> {
        self.source
            .as_ref()
            .map(|(topic, partition, offset)| format!("{topic}/{partition}/{offset}"))
    }

    /// Why it can never be replayed, if it cannot.
    pub fn not_replayable(&self) -> Option<String> {
        if self.omitted {
            let from = self.source_address().unwrap_or_else(|| "its source".into());
            return Some(format!(
                "its message was over max.request.size, so the dead letter holds only where it \
                 is ({from}), not its bytes: read it there"
            ));
        }
        if self.source.is_none() {
            return Some(format!(
                "it has no {}, {} and {} headers: not a dead letter Sluice wrote",
                headers::TOPIC,
                headers::PARTITION,
                headers::OFFSET
            ));
        }
        None
    }

    fn matches(&self, filter: &DeadLetterFilter) -> bool {
        let recent = filter
            .since_ms
            .is_none_or(|since| self.dead_lettered_ms.is_some_and(|at| at >= since));
        let says = filter.error_contains.as_deref().is_none_or(|wanted| {
            self.error
                .as_deref()
                .is_some_and(|e| e.to_lowercase().contains(&wanted.to_lowercase()))
        });
        recent && says
    }

    /// The message again, as it was before it failed: its own headers without the error
    /// headers (and an earlier replay's mark), plus `sluice.replay.of` naming this dead
    /// letter. Only for a replayable dead letter.
    fn replay(&self) -> DeadLetterReplay {
        let (topic, partition, offset) = self.source.clone().expect("replayable: has a source");
        let mut own: Vec<Header> = self
            .record
            .headers
            .iter()
            .filter(|h| !h.name.starts_with("sluice.error.") && h.name != headers::REPLAY_OF)
            .cloned()
            .collect();
        own.push(Header {
            name: headers::REPLAY_OF.into(),
            value: Some(self.address().into_bytes()),
        });
        DeadLetterReplay {
            dead_letter: (
                self.record.topic.clone(),
                self.record.partition,
                self.record.offset,
            ),
            record: ConsumedRecord {
                topic: topic.into(),
                partition,
                offset,
                key: self.record.key.clone(),
                payload: self.record.payload.clone(),
                timestamp_ms: self.record.timestamp_ms,
                headers: own,
            },
        }
    }

    /// As the API answers it.
    pub fn to_json(&self) -> Value {
        let key = self
            .record
            .key
            .as_deref()
            .map(|k| String::from_utf8_lossy(k).into_owned());
        json!({
            "dead_letter": self.address(),
            "source": self.source_address(),
            "process": self.process,
            "error": self.error,
            "attempts": self.attempts,
            "dead_lettered_ms": self.dead_lettered_ms,
            "key": key,
            "payload_bytes": self.record.payload.len(),
            "not_replayable": self.not_replayable(),
            "replayed_by": self.replayed_by,
        })
    }
}

/// A listener's dead-letter topic and the connection it is on.
fn dead_letter_topic(host: &Host, listener: &str) -> Result<(String, Connection), DeadLetterError> {
    let components = host.components();
    let unknown = || DeadLetterError::UnknownListener {
        id: listener.to_string(),
        listeners: components.listener_processes(),
    };
    let process = components.processes.get(listener).ok_or_else(unknown)?;
    let start = process.start.as_ref().ok_or_else(unknown)?;
    let operation = &components.operations[&start.id];
    let OperationKind::Listen(definition) = &operation.kind else {
        return Err(unknown());
    };
    let topic = definition
        .dead_letter_topic
        .clone()
        .ok_or_else(|| DeadLetterError::NoDeadLetterTopic(listener.to_string()))?;
    let config = components.connections[&operation.connection.id]
        .config
        .clone();
    let connection = Connection::open(config).map_err(|e| DeadLetterError::Unreadable {
        topic: topic.clone(),
        message: crate::advice::UserMessage::user_message(&e),
    })?;
    Ok((topic, connection))
}

/// The dead letters of `listener` that `filter` takes, oldest first per partition, each with
/// the execution that replayed it if one did; and the dead-letter topic.
pub async fn dead_letters(
    host: &Host,
    listener: &str,
    filter: &DeadLetterFilter,
) -> Result<(String, Vec<DeadLetter>), DeadLetterError> {
    let (topic, connection) = dead_letter_topic(host, listener)?;
    let records = sluice_connector::read_topic::read_topic(
        &connection,
        &topic,
        host.container().kafka,
        READ_WAIT,
    )
    .await
    .map_err(|e| DeadLetterError::Unreadable {
        topic: topic.clone(),
        message: crate::advice::UserMessage::user_message(&e),
    })?;
    let mut letters: Vec<DeadLetter> = records
        .into_iter()
        .map(DeadLetter::of)
        .filter(|letter| letter.matches(filter))
        .collect();
    if let Some(store) = host.records().cloned() {
        let positions: Vec<(Arc<str>, i32, i64)> = letters
            .iter()
            .map(|l| (l.record.topic.clone(), l.record.partition, l.record.offset))
            .collect();
        let replays = tokio::task::spawn_blocking(move || {
            positions
                .iter()
                .map(|(topic, partition, offset)| {
                    let handled = store.handled(topic, *partition, *offset)?;
                    Ok(handled
                        .into_iter()
                        .find(|h| h.role == MessageRole::Replayed.name())
                        .map(|h| h.execution.id))
                })
                .collect::<Result<Vec<_>, crate::store::RecordsError>>()
        })
        .await
        .map_err(|e| DeadLetterError::Records(e.to_string()))?
        .map_err(|e| DeadLetterError::Records(e.to_string()))?;
        for (letter, replayed_by) in letters.iter_mut().zip(replays) {
            letter.replayed_by = replayed_by;
        }
    }
    Ok((topic, letters))
}

/// What a replay asks for.
#[derive(Debug, Clone)]
pub struct ReplayRequest {
    /// Where the dead letters go.
    pub to: ReplayTo,
    /// Which dead letters.
    pub filter: DeadLetterFilter,
    /// Say what would be replayed, replay nothing.
    pub dry_run: bool,
    /// Replay dead letters that were replayed before, too.
    pub again: bool,
}

/// What a replay did (or, dry, would do).
#[derive(Debug, Clone, Default)]
pub struct ReplayOutcome {
    /// Dead letters replayed (dry: to replay), each with where its message goes.
    pub replayed: Vec<(String, String)>,
    /// Dead letters left alone, each with why.
    pub skipped: Vec<(String, String)>,
    /// Dead letters whose replay failed, each with the error.
    pub failed: Vec<(String, String)>,
    /// The replay's execution: id and status (none when dry or when nothing was replayed).
    pub execution: Option<(String, String)>,
}

impl ReplayOutcome {
    /// As the API answers it.
    pub fn to_json(&self, dry_run: bool) -> Value {
        let pairs = |list: &[(String, String)], second: &str| -> Vec<Value> {
            list.iter()
                .map(|(letter, what)| json!({"dead_letter": letter, second: what}))
                .collect()
        };
        json!({
            "dry_run": dry_run,
            "replayed": pairs(&self.replayed, "to"),
            "skipped": pairs(&self.skipped, "reason"),
            "failed": pairs(&self.failed, "error"),
            "execution": self.execution.as_ref().map(|(id, status)| json!({"id": id, "status": status})),
        })
    }
}

/// Replays the dead letters of `listener` that `request` takes: those that can never be
/// replayed (no payload kept, not Sluice's) and, unless `again`, those replayed before are
/// skipped with the reason; the rest go as one execution (see [`Host::replay_to_source`] and
/// [`Host::replay_through_process`]).
pub async fn replay(
    host: &Host,
    listener: &str,
    request: &ReplayRequest,
) -> Result<ReplayOutcome, DeadLetterError> {
    if host.records().is_none() && !request.again {
        return Err(DeadLetterError::NoRecords);
    }
    let (_, letters) = dead_letters(host, listener, &request.filter).await?;
    let mut outcome = ReplayOutcome::default();
    let mut chosen = Vec::new();
    for letter in letters {
        if let Some(why) = letter.not_replayable() {
            outcome.skipped.push((letter.address(), why));
        } else if let (Some(by), false) = (&letter.replayed_by, request.again) {
            outcome.skipped.push((
                letter.address(),
                format!("replayed before, by execution {by} (--again replays it anyway)"),
            ));
        } else {
            chosen.push(letter);
        }
    }
    let destination = |letter: &DeadLetter| match request.to {
        ReplayTo::Source => letter.source_address().unwrap_or_default(),
        ReplayTo::Process => format!("process {listener}"),
    };
    if request.dry_run || chosen.is_empty() {
        outcome.replayed = chosen
            .iter()
            .map(|l| (l.address(), destination(l)))
            .collect();
        return Ok(outcome);
    }
    let replays: Vec<DeadLetterReplay> = chosen.iter().map(DeadLetter::replay).collect();
    let record: ExecutionRecord = match request.to {
        ReplayTo::Source => {
            let (_, connection) = dead_letter_topic(host, listener)?;
            host.replay_to_source(listener, &connection, replays).await
        }
        ReplayTo::Process => host.replay_through_process(listener, replays).await,
    };
    for (index, letter) in chosen.iter().enumerate() {
        let error = match &record.status {
            ExecutionStatus::Failed(failure) => Some(failure.message.clone()),
            _ => record
                .document_errors
                .iter()
                .find(|e| e.document == index + 1)
                .map(|e| e.message.clone()),
        };
        match error {
            Some(error) => outcome.failed.push((letter.address(), error)),
            None => outcome
                .replayed
                .push((letter.address(), destination(letter))),
        }
    }
    outcome.execution = Some((record.id.to_string(), record.status.name().to_string()));
    Ok(outcome)
}
