//! The Commit Offset operation: commit consumed positions for a consumer group, one result per
//! request.

use std::collections::{BTreeMap, BTreeSet};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::{Offset, TopicPartitionList};

use crate::context::Observer;
use crate::{classify, Connection, ConnectorError, ErrorKind, PartitionNotFound};

/// "This message, and everything before it in its partition, is done."
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitRequest {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Offset of the last message that is done; `offset + 1` is committed.
    pub offset: i64,
    /// Free text stored with the committed offset.
    pub metadata: Option<String>,
}

/// What was committed for a request's partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// The committed offset: where the group resumes (the highest requested offset + 1).
    pub offset: i64,
}

/// Why one request was not committed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CommitError {
    /// Negative offset.
    #[error("offset {0} is not valid: offsets start at 0")]
    InvalidOffset(i64),
    /// The topic does not exist.
    #[error("topic \"{0}\" does not exist")]
    UnknownTopic(String),
    /// The partition does not exist.
    #[error(transparent)]
    UnknownPartition(#[from] PartitionNotFound),
    /// The group coordinator refused the commit.
    #[error("the commit was rejected: {}", crate::explain(.0))]
    Rejected(KafkaError),
}

impl CommitError {
    /// Whose fault this is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::InvalidOffset(_) | Self::UnknownTopic(_) | Self::UnknownPartition(_) => {
                ErrorKind::User
            }
            Self::Rejected(error) => error
                .rdkafka_error_code()
                .map_or(ErrorKind::Environment, |code| classify(code).kind),
        }
    }
}

/// Commits, for `consumer_group`, `offset + 1` of the highest requested offset of each
/// topic-partition, in one request to the group coordinator; the metadata stored is that of
/// the request with the highest offset. Every request gets its own result.
///
/// Fails as a whole only when the cluster cannot be reached. Runs on tokio's blocking pool;
/// dropping the future does not cancel a commit already sent.
pub async fn commit_offsets(
    connection: &Connection,
    consumer_group: &str,
    requests: Vec<CommitRequest>,
) -> Result<Vec<Result<Committed, CommitError>>, ConnectorError> {
    let connection = connection.clone();
    let group = consumer_group.to_string();
    crate::blocking("commit", move || {
        commit_blocking(&connection, &group, &requests)
    })
    .await
}

fn commit_blocking(
    connection: &Connection,
    group: &str,
    requests: &[CommitRequest],
) -> Result<Vec<Result<Committed, CommitError>>, ConnectorError> {
    let consumer: BaseConsumer<Observer> = connection
        .client_config()
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create_with_context(Observer::for_connection(connection))
        .map_err(ConnectorError::ClientConfig)?;
    Observer::serve_first_token(&consumer);

    let mut partition_counts = BTreeMap::new();
    for topic in requests
        .iter()
        .map(|r| r.topic.as_str())
        .collect::<BTreeSet<_>>()
    {
        let count = connection.partition_count(consumer.client(), consumer.context(), topic)?;
        partition_counts.insert(topic, count);
    }

    let mut results: Vec<Option<Result<Committed, CommitError>>> = vec![None; requests.len()];
    // The highest offset per partition and the index of the request that asked for it.
    let mut highest: BTreeMap<(&str, i32), (i64, usize)> = BTreeMap::new();
    for (index, request) in requests.iter().enumerate() {
        let problem = match partition_counts[request.topic.as_str()] {
            _ if request.offset < 0 => Some(CommitError::InvalidOffset(request.offset)),
            None => Some(CommitError::UnknownTopic(request.topic.clone())),
            Some(count) => PartitionNotFound::check(&request.topic, request.partition, count)
                .err()
                .map(CommitError::from),
        };
        if let Some(problem) = problem {
            results[index] = Some(Err(problem));
            continue;
        }
        let entry = highest
            .entry((&request.topic, request.partition))
            .or_insert((request.offset, index));
        if request.offset > entry.0 {
            *entry = (request.offset, index);
        }
    }

    if !highest.is_empty() {
        let mut list = TopicPartitionList::new();
        for (&(topic, partition), &(offset, index)) in &highest {
            list.add_partition_offset(topic, partition, Offset::Offset(offset + 1))
                .map_err(|e| ConnectorError::Internal(e.to_string()))?;
            if let Some(metadata) = &requests[index].metadata {
                if let Some(mut element) = list.find_partition(topic, partition) {
                    element.set_metadata(metadata);
                }
            }
        }
        let outcome = commit_with_retries(&consumer, &list);
        // Per-partition errors, where the coordinator gave them.
        let partition_errors: BTreeMap<(String, i32), KafkaError> = list
            .elements()
            .iter()
            .filter_map(|e| {
                e.error()
                    .err()
                    .map(|err| ((e.topic().to_string(), e.partition()), err))
            })
            .collect();
        // A list passed to commit() must be gone before the consumer is destroyed.
        drop(list);
        for (index, request) in requests.iter().enumerate() {
            if results[index].is_some() {
                continue;
            }
            let key = (request.topic.as_str(), request.partition);
            let partition_error = partition_errors.get(&(request.topic.clone(), request.partition));
            results[index] = Some(match (&outcome, partition_error) {
                (Err(error), _) => Err(CommitError::Rejected(error.clone())),
                (Ok(()), Some(error)) => Err(CommitError::Rejected(error.clone())),
                (Ok(()), None) => Ok(Committed {
                    topic: request.topic.clone(),
                    partition: request.partition,
                    offset: highest[&key].0 + 1,
                }),
            });
        }
        if outcome.is_ok() {
            for ((topic, partition), (offset, _)) in &highest {
                tracing::info!(group, topic, partition, offset = offset + 1, "committed");
            }
        }
    }
    Ok(results
        .into_iter()
        .map(|r| r.expect("every request has a result"))
        .collect())
}

/// How long a commit is tried again while the group's coordinator cannot take it yet.
const COMMIT_RETRY_FOR: std::time::Duration = std::time::Duration::from_secs(15);

/// Commits, trying again (backing off) while the answer is one that heals by itself: the
/// coordinator is moving to another broker, still loading the group, or did not answer in
/// time. librdkafka finds the new coordinator but hands such an answer to the caller.
fn commit_with_retries(
    consumer: &BaseConsumer<Observer>,
    list: &TopicPartitionList,
) -> KafkaResult<()> {
    let deadline = std::time::Instant::now() + COMMIT_RETRY_FOR;
    let mut backoff = std::time::Duration::from_millis(100);
    loop {
        let outcome = consumer.commit(list, CommitMode::Sync);
        let transient = match &outcome {
            Err(error) => heals_by_itself(error),
            // Per-partition answers: all must be transient to try the whole list again.
            Ok(()) => {
                let mut errors = list
                    .elements()
                    .into_iter()
                    .filter_map(|e| e.error().err())
                    .peekable();
                errors.peek().is_some() && errors.all(|e| heals_by_itself(&e))
            }
        };
        if !transient || std::time::Instant::now() + backoff > deadline {
            return outcome;
        }
        tracing::debug!(
            error = ?outcome.err().map(|e| crate::explain(&e)),
            retry_in_ms = backoff.as_millis() as u64,
            "the coordinator cannot take the commit yet; trying again"
        );
        std::thread::sleep(crate::backoff::jittered(backoff));
        backoff = (backoff * 2).min(std::time::Duration::from_secs(2));
    }
}

fn heals_by_itself(error: &KafkaError) -> bool {
    error
        .rdkafka_error_code()
        .is_some_and(|code| classify(code).heals_by_itself)
}
