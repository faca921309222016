//! Listeners: a process whose start is a Listen operation runs for as long as the host does.
//! Each batch of messages becomes process executions, one per partition, so that order holds
//! within a partition while partitions run side by side (up to the host's execution limit).
//!
//! At-least-once without endless redelivery: a document that fails is tried again with a
//! growing wait, up to the operation's retry limit, then sent to the dead-letter topic with
//! headers saying where it came from and why it failed. Offsets are committed per partition up
//! to the first document that has not finished, and always before the next poll, so a
//! rebalance (which happens inside a poll) never moves a partition with finished, uncommitted
//! work.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use sluice_connector::consume::Consumed;
use sluice_connector::listen::{ListenConsumer, ListenSettings, NextOffset};
use sluice_connector::produce::{Acks, ProduceSettings, Producer};
use sluice_connector::{Connection, ConnectorError, ErrorKind, Header, ProduceRecord};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::components::{ListenDefinition, OperationKind, ProcessDefinition};
use crate::document::Document;
use crate::execution::{consumed_document, ExecutionStatus, Host};

/// How long one poll waits for a first message before the listener looks at its shutdown
/// signal again.
const POLL_WAIT: Duration = Duration::from_millis(500);

/// Room for the context headers of a dead letter beyond max.request.size.
const DEAD_LETTER_ALLOWANCE: u64 = 16 * 1024;

/// The longest error message a dead letter carries (the execution record keeps the whole).
const DEAD_LETTER_MESSAGE_MAX: usize = 4096;

/// The longest wait between two tries of a failing document.
const MAX_RETRY_BACKOFF: Duration = Duration::from_secs(60);

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
}

/// Why a listener stopped on its own.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("listener \"{process}\" failed: {reason}")]
pub struct ListenerFailure {
    /// The process it runs.
    pub process: String,
    /// What happened and what to do.
    pub reason: String,
    /// The outside world failed (brokers unreachable, a whole execution failed): starting
    /// the listener again later may succeed. Otherwise it needs a fix first.
    pub outside: bool,
}

/// Why a listener stops: a message, and whether the outside world caused it.
struct Stop {
    reason: String,
    outside: bool,
}

impl From<String> for Stop {
    fn from(reason: String) -> Self {
        Self {
            reason,
            outside: false,
        }
    }
}

impl Stop {
    fn connector(error: &ConnectorError, connection_id: &str) -> Self {
        Self {
            reason: with_fix(error, connection_id),
            outside: error.is_retriable(),
        }
    }
}

/// What every execution of every listener of one host shares.
#[derive(Clone)]
pub struct Shared {
    /// The host that runs the executions.
    pub host: Arc<Host>,
    /// Caps the executions running at once, across listeners.
    pub executions: Arc<Semaphore>,
    /// After a shutdown signal, how long running executions may take to finish.
    pub drain: Duration,
}

/// What a listener is doing, as the management API reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenerStatus {
    /// Connecting to the brokers and joining the group.
    Starting,
    /// Receiving and processing documents.
    Running,
    /// Holding its partitions without fetching (pause through the API; kept across restarts).
    Paused,
    /// Stopped on its own; the reason says why. A restart through the API starts it again.
    Failed(String),
    /// Stopped with the host.
    Stopped,
}

impl ListenerStatus {
    /// Kafka Connect's state names.
    pub fn state(&self) -> &'static str {
        match self {
            Self::Starting => "STARTING",
            Self::Running => "RUNNING",
            Self::Paused => "PAUSED",
            Self::Failed(_) => "FAILED",
            Self::Stopped => "STOPPED",
        }
    }
}

/// The host's handle on one listener: its status, and the switches the API turns.
pub struct ListenerControl {
    /// The process the listener runs.
    pub process: String,
    state: std::sync::Mutex<ControlState>,
    paused: tokio::sync::watch::Sender<bool>,
    restart: tokio::sync::Notify,
}

struct ControlState {
    status: ListenerStatus,
    consumer: Option<ListenConsumer>,
    run: Option<CancellationToken>,
    restart_requested: bool,
    /// How many runs have begun (the first, then one per restart).
    runs: u32,
}

impl ListenerControl {
    /// A control for the listener of `process`, paused or not from the start.
    pub fn new(process: &str, paused: bool) -> Arc<Self> {
        Arc::new(Self {
            process: process.to_string(),
            state: std::sync::Mutex::new(ControlState {
                status: ListenerStatus::Starting,
                consumer: None,
                run: None,
                restart_requested: false,
                runs: 0,
            }),
            paused: tokio::sync::watch::Sender::new(paused),
            restart: tokio::sync::Notify::new(),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, ControlState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// What the listener is doing now.
    pub fn status(&self) -> ListenerStatus {
        self.state().status.clone()
    }

    /// Marks what the listener is doing.
    pub fn set_status(&self, status: ListenerStatus) {
        self.state().status = status;
    }

    /// How often the listener was started again since the host started.
    pub fn restarts(&self) -> u32 {
        self.state().runs.saturating_sub(1)
    }

    /// The listener's consumer while it runs (for its partitions and lag).
    pub fn consumer(&self) -> Option<ListenConsumer> {
        self.state().consumer.clone()
    }

    /// Whether the listener is to hold off fetching.
    pub fn is_paused(&self) -> bool {
        *self.paused.borrow()
    }

    /// Pauses or resumes the listener (it reacts within a poll).
    pub fn set_paused(&self, paused: bool) {
        self.paused.send_replace(paused);
    }

    /// Stops the running listener (its work drains as on shutdown) and starts it again; a
    /// failed listener starts again.
    pub fn request_restart(&self) {
        let mut state = self.state();
        state.restart_requested = true;
        if let Some(run) = &state.run {
            run.cancel();
        }
        drop(state);
        // Wakes a failed listener's supervisor if it waits; otherwise the flag above is seen
        // when the cancelled run ends.
        self.restart.notify_waiters();
    }

    /// Hands out the token of the next run.
    pub fn begin_run(&self, token: CancellationToken) {
        let mut state = self.state();
        state.run = Some(token);
        state.restart_requested = false;
        state.runs += 1;
        state.status = ListenerStatus::Starting;
    }

    /// Whether a restart was asked for since the run began (and forgets it).
    pub fn take_restart(&self) -> bool {
        std::mem::take(&mut self.state().restart_requested)
    }

    /// Waits for a restart request (returns at once if one is pending).
    pub async fn restart_requested(&self) {
        let notified = self.restart.notified();
        tokio::pin!(notified);
        // Registered before the flag is read, so a request in between is not missed.
        notified.as_mut().enable();
        if self.state().restart_requested {
            return;
        }
        notified.await;
    }
}

/// One listener: its process, its Listen operation and where it writes dead letters.
struct Listener {
    shared: Shared,
    control: Arc<ListenerControl>,
    consumer: ListenConsumer,
    /// How long a batch may run before the listener polls (paused) to stay in its group: a
    /// third of the consumer's max.poll.interval.ms.
    keepalive_after: Duration,
    /// The listen operation's connection, named in messages that suggest test-connection.
    connection_id: String,
    process: ProcessDefinition,
    definition: ListenDefinition,
    dead_letters: Option<Producer>,
}

/// Runs the listener of `process` until `shutdown` is cancelled (then drains and returns
/// `Ok`) or until it cannot go on.
///
/// Cancellation-safe only through `shutdown`: dropping the future abandons running
/// executions without committing them (their documents are delivered again).
pub async fn run(
    shared: Shared,
    control: Arc<ListenerControl>,
    shutdown: CancellationToken,
) -> Result<(), ListenerFailure> {
    let process = control.process.clone();
    let process = process.as_str();
    // At ERROR level so that its field reaches every event inside it (see execution.rs).
    let span = tracing::error_span!("listener", process);
    run_listener(shared, control, process, shutdown)
        .instrument(span)
        .await
        .map_err(|stop| ListenerFailure {
            process: process.to_string(),
            reason: stop.reason,
            outside: stop.outside,
        })
}

async fn run_listener(
    shared: Shared,
    control: Arc<ListenerControl>,
    process_id: &str,
    shutdown: CancellationToken,
) -> Result<(), Stop> {
    let host = shared.host.clone();
    let components = host.components();
    let process = components.processes[process_id].clone();
    let start = process
        .start
        .as_ref()
        .ok_or_else(|| format!("process \"{process_id}\" has no start operation"))?;
    let operation = &components.operations[&start.id];
    let OperationKind::Listen(definition) = &operation.kind else {
        return Err(format!(
            "process \"{process_id}\" starts with a {} operation, not a listen operation",
            operation.kind.name()
        )
        .into());
    };
    let connection_id = &operation.connection.id;
    let connection = Connection::open(components.connections[connection_id].config.clone())
        .map_err(|e| e.to_string())?;
    let limits = shared.host.container().kafka;
    let settings = ListenSettings {
        topics: definition.topics.clone(),
        consumer_group: definition
            .consumer_group
            .clone()
            .or_else(|| connection.config().default_consumer_group.clone())
            .expect("a listen operation has a consumer group (checked at load)"),
        offset_reset: definition.offset_reset,
        partitions: definition.partitions.clone(),
        client_id: definition.client_id.clone(),
        max_messages: definition.max_messages,
    };
    let dead_letters = match &definition.dead_letter_topic {
        Some(topic) => Some(
            Producer::new(
                &connection,
                ProduceSettings {
                    topic: Some(topic.clone()),
                    acks: Acks::All,
                    compression: Default::default(),
                    delivery_timeout: ProduceSettings::DEFAULT_DELIVERY_TIMEOUT,
                },
                // A dead letter is the document plus its context headers: room for those on
                // top of the largest document the host accepts.
                sluice_connector::Limits {
                    max_request_size: limits.max_request_size + DEAD_LETTER_ALLOWANCE,
                    ..limits
                },
            )
            .map_err(|e| format!("dead-letter topic \"{topic}\": {e}"))?,
        ),
        None => None,
    };
    let Some(consumer) = open(
        &connection,
        settings,
        limits,
        &shutdown,
        connection_id,
        &host.container().host,
    )
    .await?
    else {
        return Ok(());
    };
    tracing::info!(
        topics = %definition.topics.join(","),
        group = %consumer.settings().consumer_group,
        "listening"
    );
    control.state().consumer = Some(consumer.clone());
    // librdkafka's default max.poll.interval.ms, unless the connection sets its own.
    let max_poll_interval = connection
        .config()
        .properties
        .iter()
        .find(|(name, _)| name == "max.poll.interval.ms")
        .and_then(|(_, value)| value.parse::<u64>().ok())
        .unwrap_or(300_000);
    let listener = Listener {
        shared,
        control: control.clone(),
        consumer: consumer.clone(),
        keepalive_after: Duration::from_millis(max_poll_interval / 3),
        connection_id: connection_id.clone(),
        process,
        definition: definition.clone(),
        dead_letters,
    };
    let outcome = listener.listen(&consumer, &shutdown).await;
    control.state().consumer = None;
    consumer.close().await;
    tracing::info!("listener stopped");
    outcome
}

/// Opens the consumer, trying again on the host's reconnect schedule while the brokers cannot
/// be reached. `None`: shutdown came first.
async fn open(
    connection: &Connection,
    settings: ListenSettings,
    limits: sluice_connector::Limits,
    shutdown: &CancellationToken,
    connection_id: &str,
    host_limits: &crate::container::HostLimits,
) -> Result<Option<ListenConsumer>, String> {
    let mut attempt = 0;
    loop {
        // Opening waits up to the metadata timeout for unreachable brokers: a shutdown signal
        // must not wait for it (the blocking attempt ends on its own, its result unused).
        let opened = tokio::select! {
            opened = ListenConsumer::open(connection, settings.clone(), limits) => opened,
            () = shutdown.cancelled() => return Ok(None),
        };
        match opened {
            Ok(consumer) => return Ok(Some(consumer)),
            Err(error) if error.kind() == ErrorKind::Environment => {
                let wait = host_limits.reconnect_wait(attempt);
                attempt += 1;
                tracing::warn!(
                    %error,
                    retry_in_ms = wait.as_millis() as u64,
                    "cannot reach the brokers; check them with: sluice test-connection {connection_id}"
                );
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    () = shutdown.cancelled() => return Ok(None),
                }
            }
            Err(error) => return Err(with_fix(&error, connection_id)),
        }
    }
}

fn with_fix(error: &ConnectorError, connection_id: &str) -> String {
    match error {
        ConnectorError::UnknownTopic(_) => {
            format!("{error}: create it, or correct the listen operation's <topic>")
        }
        _ => crate::execution::with_connection_check(error, connection_id),
    }
}

/// How one partition's share of a batch ended.
struct PartitionOutcome {
    /// Set when a document could neither be processed nor dead-lettered.
    failure: Option<Stop>,
}

/// A document on its way through the retries.
struct Attempted {
    offset: i64,
    document: Document,
    attempts: u32,
    error: String,
    /// The last attempt failed as a whole execution (the outside world, typically), not with
    /// a document error.
    execution_failed: bool,
}

impl Listener {
    async fn listen(
        self,
        consumer: &ListenConsumer,
        shutdown: &CancellationToken,
    ) -> Result<(), Stop> {
        let this = Arc::new(self);
        let mut paused = false;
        while !shutdown.is_cancelled() {
            if this.control.is_paused() {
                if !paused {
                    paused = true;
                    this.control.set_status(ListenerStatus::Paused);
                    tracing::info!("listener paused");
                }
                consumer
                    .poll_paused(POLL_WAIT)
                    .await
                    .map_err(|e| Stop::connector(&e, &this.connection_id))?;
                continue;
            }
            if paused {
                consumer
                    .resume()
                    .await
                    .map_err(|e| Stop::connector(&e, &this.connection_id))?;
                paused = false;
                tracing::info!("listener resumed");
            }
            this.control.set_status(ListenerStatus::Running);
            let batch = consumer
                .poll_batch(POLL_WAIT)
                .await
                .map_err(|e| Stop::connector(&e, &this.connection_id))?;
            if batch.is_empty() {
                continue;
            }
            tracing::debug!(messages = batch.len(), "batch received");
            let work = this.clone().process_batch(batch, shutdown);
            tokio::pin!(work);
            let outcomes = tokio::select! {
                outcomes = &mut work => outcomes,
                () = tokio::time::sleep(this.keepalive_after) => {
                    this.keep_membership_while(&mut work).await
                }
            };
            let started = std::time::Instant::now();
            let committed = consumer.commit_finished().await;
            this.shared
                .host
                .metrics()
                .commit(&this.process.id, started.elapsed());
            if let Err(error) = committed {
                // The group may have moved the partitions (a rebalance during the batch): their
                // new owner reads them again from the last commit. At-least-once holds.
                tracing::warn!(%error, "commit failed; documents since the last commit will be delivered again");
            }
            if let Some(failure) = outcomes.into_iter().find_map(|o| o.failure) {
                return Err(failure);
            }
        }
        Ok(())
    }

    /// A long batch: librdkafka evicts a member that does not poll within
    /// max.poll.interval.ms, so while the batch runs the listener polls with its partitions
    /// paused (nothing new is handed over; rebalances are served, and the partitions the
    /// group revokes get their finished offsets committed). Fetching resumes afterwards.
    async fn keep_membership_while(
        &self,
        work: &mut (impl std::future::Future<Output = Vec<PartitionOutcome>> + Unpin),
    ) -> Vec<PartitionOutcome> {
        tracing::info!("a long batch: polling with paused partitions to stay in the group");
        let mut poll = Box::pin(self.consumer.poll_paused(POLL_WAIT));
        let outcomes = loop {
            tokio::select! {
                outcomes = &mut *work => {
                    // The poll in flight pauses partitions: let it end before resuming.
                    let _ = poll.await;
                    break outcomes;
                }
                polled = &mut poll => {
                    if let Err(error) = polled {
                        tracing::warn!(%error, "poll while the batch runs failed");
                    }
                    poll = Box::pin(self.consumer.poll_paused(POLL_WAIT));
                }
            }
        };
        if !self.control.is_paused() {
            if let Err(error) = self.consumer.resume().await {
                tracing::warn!(%error, "could not resume fetching after a long batch");
            }
        }
        outcomes
    }

    /// Runs one batch, its partitions side by side. After a shutdown signal, running work has
    /// the drain deadline to finish; what has not finished by then is not committed.
    async fn process_batch(
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
                        failure: Some(format!("internal error: a partition task failed: {error}").into()),
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

    async fn process_partition(
        &self,
        topic: String,
        partition: i32,
        messages: Vec<Consumed>,
        shutdown: &CancellationToken,
    ) -> PartitionOutcome {
        let offsets: Vec<i64> = messages.iter().map(|m| m.position().2).collect();
        let mut finished = BTreeSet::new();
        let mut failure = None;
        let mut pending = Vec::new();
        for message in messages {
            let offset = message.position().2;
            let document = consumed_document(message);
            match document.application_error.clone() {
                // A message over max.request.size will not fit on a retry: straight to the
                // dead-letter topic (seed 003: it fails the batch, with where it is).
                Some(error) => {
                    let attempted = Attempted {
                        offset,
                        document,
                        attempts: 1,
                        error,
                        execution_failed: false,
                    };
                    match self.dead_letter(&topic, partition, attempted).await {
                        Ok(offset) => {
                            finished.insert(offset);
                        }
                        Err(reason) => {
                            failure = Some(reason);
                            break;
                        }
                    }
                }
                None => pending.push(Attempted {
                    offset,
                    document,
                    attempts: 0,
                    error: String::new(),
                    execution_failed: false,
                }),
            }
        }
        while failure.is_none() && !pending.is_empty() {
            // Each failing document's first error, by its 0-based position in `pending`.
            let mut failed: HashMap<usize, (String, bool)> = HashMap::new();
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
                    self.shared
                        .host
                        .execute_listened(&self.process, documents)
                        .await
                };
                match &record.status {
                    ExecutionStatus::Failed(reason) => {
                        failed.extend(
                            (0..attempted.len()).map(|i| (first + i, (reason.clone(), true))),
                        );
                    }
                    _ => {
                        for error in &record.document_errors {
                            failed
                                .entry(first + error.document - 1)
                                .or_insert_with(|| (error.message.clone(), false));
                        }
                    }
                }
            }
            let mut retry = Vec::new();
            for (index, mut attempted) in pending.into_iter().enumerate() {
                attempted.attempts += 1;
                let Some((error, execution_failed)) = failed.get(&index) else {
                    finished.insert(attempted.offset);
                    continue;
                };
                attempted.error = error.clone();
                attempted.execution_failed = *execution_failed;
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
                    Err(reason) => failure = Some(reason),
                }
            }
            pending = retry;
            self.mark_finished(&topic, partition, &offsets, &finished);
            if let Some(first) = pending.first() {
                let wait = self
                    .definition
                    .retry_backoff
                    .saturating_mul(1 << (first.attempts - 1).min(16))
                    .min(MAX_RETRY_BACKOFF);
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

    /// Sends a document that keeps failing to the dead-letter topic, or explains why the
    /// listener must stop. Returns its offset once the dead-letter topic has it.
    async fn dead_letter(
        &self,
        topic: &str,
        partition: i32,
        attempted: Attempted,
    ) -> Result<i64, Stop> {
        let Attempted {
            offset,
            document,
            attempts,
            error,
            execution_failed,
        } = attempted;
        let position = format!("topic \"{topic}\" partition {partition} offset {offset}");
        let Some(producer) = &self.dead_letters else {
            tracing::error!(offset, attempts, %error, "document failed; no dead-letter topic");
            return Err(Stop {
                reason: format!(
                    "the document at {position} failed {attempts} time(s): {error}\n  no \
                     dead-letter-topic is set, so the listener stops rather than skip it; fix \
                     the cause or set <dead-letter-topic> on the listen operation, then start it \
                     again (it resumes at this document)"
                ),
                outside: execution_failed,
            });
        };
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
        ]);
        let record = ProduceRecord {
            payload: document.data.into(),
            key: document.tracked.key.clone().map(Into::into),
            topic: None,
            partition: None,
            timestamp_ms: document.tracked.timestamp,
            headers,
        };
        let dead_letter_topic = self.definition.dead_letter_topic.as_deref().unwrap_or("?");
        // Whether the dead-letter topic could take it later: its brokers were unreachable or
        // the delivery timed out, rather than a refusal that will repeat.
        let delivered = match producer.produce(vec![record], |_| {}).await {
            Err(error) => Err((error.to_string(), error.is_retriable())),
            Ok(mut results) => match results.pop().expect("one result per record") {
                Ok(at) => Ok(at),
                Err(error) => {
                    let retriable = matches!(
                        error,
                        sluice_connector::produce::ProduceError::Delivery {
                            retriable: true,
                            ..
                        }
                    );
                    Err((error.to_string(), retriable))
                }
            },
        };
        match delivered {
            Ok(at) => {
                self.shared.host.metrics().dead_letter(&self.process.id);
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
            Err((reason, outside)) => Err(Stop {
                reason: format!(
                    "the document at {position} failed {attempts} time(s) ({error}) and could \
                     not be sent to dead-letter topic \"{dead_letter_topic}\": {reason}"
                ),
                outside,
            }),
        }
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

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
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
