//! One batch: its partitions run side by side, each partition's documents in order, failing
//! documents retried with a growing wait and then dead-lettered; each partition's progress is
//! marked up to its first unfinished document.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use sluice_connector::consume::Consumed;
use sluice_connector::listen::NextOffset;
use sluice_connector::ErrorKind;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::{Attempted, Listener, PartitionOutcome};
use crate::failure::Failure;
use crate::host::execution::consumed_document;
use crate::record::ExecutionStatus;

impl Listener {
    /// Runs one batch, its partitions side by side. After a shutdown signal, running work has
    /// the drain deadline to finish; what has not finished by then is not committed.
    pub(super) async fn process_batch(
        self: Arc<Self>,
        batch: Vec<Consumed>,
        shutdown: &CancellationToken,
    ) -> Vec<PartitionOutcome> {
        let mut partitions: BTreeMap<(String, i32), Vec<Consumed>> = BTreeMap::new();
        for message in batch {
            let (topic, partition, _) = message.position();
            partitions
                .entry((topic.to_string(), partition))
                .or_default()
                .push(message);
        }
        let mut running = tokio::task::JoinSet::new();
        for ((topic, partition), messages) in partitions {
            let this = self.clone();
            let stop_retrying = shutdown.clone();
            let span = tracing::error_span!("partition", %topic, partition);
            running.spawn(
                async move {
                    this.process_partition(topic, partition, messages, &stop_retrying)
                        .await
                }
                .instrument(span),
            );
        }
        let mut outcomes = Vec::new();
        let mut drain_deadline = None;
        loop {
            tokio::select! {
                next = running.join_next() => match next {
                    Some(Ok(outcome)) => outcomes.push(outcome),
                    Some(Err(error)) => outcomes.push(PartitionOutcome {
                        failure: Some(Failure::internal(format!("internal error: a partition task failed: {error}"))),
                    }),
                    None => break,
                },
                () = shutdown.cancelled(), if drain_deadline.is_none() => {
                    drain_deadline = Some(tokio::time::Instant::now() + self.shared.drain);
                }
                () = sleep_until(drain_deadline), if drain_deadline.is_some() => {
                    tracing::warn!(
                        unfinished = running.len(),
                        "drain deadline passed; unfinished documents will be delivered again"
                    );
                    running.abort_all();
                    break;
                }
            }
        }
        outcomes
    }

    /// One partition's share of a batch: its documents in order, failing ones tried again
    /// until the retry limit, then dead-lettered; progress marked as documents finish.
    async fn process_partition(
        &self,
        topic: String,
        partition: i32,
        messages: Vec<Consumed>,
        shutdown: &CancellationToken,
    ) -> PartitionOutcome {
        let offsets: Vec<i64> = messages.iter().map(|m| m.position().2).collect();
        let mut finished = BTreeSet::new();
        let (mut pending, mut failure) = self
            .arrivals(&topic, partition, messages, &mut finished)
            .await;
        while failure.is_none() && !pending.is_empty() {
            let failed = self.attempt(&pending).await;
            let mut retry = Vec::new();
            for (index, mut attempted) in pending.into_iter().enumerate() {
                attempted.attempts += 1;
                let Some((error, kind)) = failed.get(&index) else {
                    finished.insert(attempted.offset);
                    continue;
                };
                attempted.error = error.clone();
                attempted.kind = *kind;
                if attempted.attempts <= self.definition.retry_limit {
                    retry.push(attempted);
                    continue;
                }
                if failure.is_some() {
                    continue;
                }
                match self.dead_letter(&topic, partition, attempted).await {
                    Ok(offset) => {
                        finished.insert(offset);
                    }
                    Err(stop) => failure = Some(stop),
                }
            }
            pending = retry;
            if !pending.is_empty() {
                self.host.metrics().retries(&self.process.id, pending.len());
            }
            self.mark_finished(&topic, partition, &offsets, &finished);
            if let Some(first) = pending.first() {
                let wait = self.retry_wait(first.attempts);
                tracing::info!(
                    documents = pending.len(),
                    attempt = first.attempts + 1,
                    wait_ms = wait.as_millis() as u64,
                    error = %first.error,
                    "retrying failed documents"
                );
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    // Not finished: they are delivered again after the restart.
                    () = shutdown.cancelled() => break,
                }
            }
        }
        self.mark_finished(&topic, partition, &offsets, &finished);
        PartitionOutcome { failure }
    }

    /// The partition's messages as documents to attempt. A message over max.request.size will
    /// not fit on a retry: it goes straight to the dead-letter topic (seed 003: it fails the
    /// batch, with where it is); if that fails, the listener stops there.
    async fn arrivals(
        &self,
        topic: &str,
        partition: i32,
        messages: Vec<Consumed>,
        finished: &mut BTreeSet<i64>,
    ) -> (Vec<Attempted>, Option<Failure>) {
        let mut pending = Vec::new();
        for message in messages {
            let offset = message.position().2;
            let document = consumed_document(message);
            let Some(error) = document.application_error.clone() else {
                pending.push(Attempted {
                    offset,
                    document,
                    attempts: 0,
                    error: String::new(),
                    kind: ErrorKind::User,
                });
                continue;
            };
            let attempted = Attempted {
                offset,
                document,
                attempts: 1,
                error,
                kind: ErrorKind::User,
            };
            match self.dead_letter(topic, partition, attempted).await {
                Ok(offset) => {
                    finished.insert(offset);
                }
                Err(stop) => return (pending, Some(stop)),
            }
        }
        (pending, None)
    }

    /// Runs the pending documents (one execution, or one per document) and returns each
    /// failing document's first error and its kind, by its 0-based position in `pending`.
    async fn attempt(&self, pending: &[Attempted]) -> HashMap<usize, (String, ErrorKind)> {
        let mut failed = HashMap::new();
        let per_execution = if self.definition.execution_per_document {
            1
        } else {
            pending.len()
        };
        for (chunk, attempted) in pending.chunks(per_execution).enumerate() {
            let first = chunk * per_execution;
            let record = {
                let _permit = self.shared.executions.acquire().await;
                let documents = attempted.iter().map(|a| a.document.clone()).collect();
                self.host.execute_listened(&self.process, documents).await
            };
            match &record.status {
                ExecutionStatus::Failed(failure) => failed.extend(
                    (0..attempted.len())
                        .map(|i| (first + i, (failure.message.clone(), failure.kind))),
                ),
                _ => {
                    for error in &record.document_errors {
                        failed
                            .entry(first + error.document - 1)
                            .or_insert_with(|| (error.message.clone(), ErrorKind::User));
                    }
                }
            }
        }
        failed
    }

    /// The wait before the next try of a document tried `attempts` times: the operation's
    /// back-off, doubling, at most a minute, with jitter.
    fn retry_wait(&self, attempts: u32) -> Duration {
        sluice_connector::backoff::jittered(self.definition.retry_wait(attempts))
    }

    /// Records the partition's progress: up to the first document that has not finished.
    fn mark_finished(
        &self,
        topic: &str,
        partition: i32,
        offsets: &[i64],
        finished: &BTreeSet<i64>,
    ) {
        let next = offsets
            .iter()
            .find(|offset| !finished.contains(offset))
            .copied()
            .or_else(|| offsets.iter().max().map(|last| last + 1))
            .filter(|next| offsets.first().is_some_and(|first| next > first));
        if let Some(offset) = next {
            let kept = self.consumer.mark_finished(NextOffset {
                topic: topic.to_string(),
                partition,
                offset,
            });
            if !kept {
                tracing::info!(
                    offset,
                    "partition revoked during the batch; its new owner delivers these documents again"
                );
            }
        }
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}
