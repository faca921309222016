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

mod batch;
mod control;
mod dead_letter;
mod seek;
pub(crate) mod watchdog;

use std::sync::Arc;
use std::time::Duration;

use sluice_connector::backoff::jittered;
use sluice_connector::listen::{ListenConsumer, ListenSettings, TopicsChanged};
use sluice_connector::produce::{Acks, ProduceSettings, Producer};
use sluice_connector::{Connection, ConnectorError, ErrorKind};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

pub use control::{ListenerControl, ListenerStatus};
pub use dead_letter::dead_letter_headers;
pub use seek::SeekRefused;

use crate::advice::UserMessage as _;
use crate::components::{ListenDefinition, OperationKind, ProcessDefinition};
use crate::document::Document;
use crate::failure::Failure;
use crate::host::execution::Host;

/// How long one poll waits for a first message before the listener looks at its shutdown
/// signal again.
const POLL_WAIT: Duration = Duration::from_millis(500);

/// Why a listener stopped on its own.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("listener \"{process}\" failed: {failure}")]
pub struct ListenerFailure {
    /// The process it runs.
    pub process: String,
    /// What happened and what to do; [`Failure::is_outside`] (brokers unreachable, say) means
    /// starting the listener again later may succeed, else it needs a fix first.
    pub failure: Failure,
}

/// A connector error that stops a listener, with what to fix.
fn stop(error: &ConnectorError, connection_id: &str) -> Failure {
    Failure::connector(error, with_fix(error, connection_id))
}

/// What every execution of every listener of one host shares.
#[derive(Clone)]
pub struct Shared {
    /// The host of the components deployed now; a reload puts another in its place. A
    /// listener's run keeps the host it started with, so that a batch never runs half on an
    /// old definition and half on a new one.
    deployed: Arc<std::sync::RwLock<Arc<Host>>>,
    /// Caps the executions running at once, across listeners.
    pub executions: Arc<Semaphore>,
    /// After a shutdown signal, how long running executions may take to finish.
    pub drain: Duration,
}

impl Shared {
    /// What the listeners of `host` share, with the host's limits.
    pub fn new(host: Host) -> Self {
        let limits = host.container().host.clone();
        Self {
            deployed: Arc::new(std::sync::RwLock::new(Arc::new(host))),
            executions: Arc::new(Semaphore::new(
                limits.max_concurrent_executions.get() as usize
            )),
            drain: limits.drain_timeout,
        }
    }

    /// The host of the components deployed now.
    pub fn host(&self) -> Arc<Host> {
        self.deployed
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Puts `host` in place: runs that start from now on use it.
    pub fn deploy(&self, host: Arc<Host>) {
        *self
            .deployed
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = host;
    }
}

/// One listener: its process, its Listen operation and where it writes dead letters.
struct Listener {
    shared: Shared,
    /// The host this run started with.
    host: Arc<Host>,
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
        .map_err(|failure| ListenerFailure {
            process: process.to_string(),
            failure,
        })
}

async fn run_listener(
    shared: Shared,
    control: Arc<ListenerControl>,
    process_id: &str,
    shutdown: CancellationToken,
) -> Result<(), Failure> {
    let host = control.deployed().ok_or_else(|| {
        Failure::internal(format!(
            "listener \"{process_id}\" started without its components"
        ))
    })?;
    let components = host.components();
    let process = components.processes[process_id].clone();
    // Both were checked when the components were loaded: a failure here is ours.
    let start = process.start.as_ref().ok_or_else(|| {
        Failure::internal(format!("process \"{process_id}\" has no start operation"))
    })?;
    let operation = &components.operations[&start.id];
    let OperationKind::Listen(definition) = &operation.kind else {
        return Err(Failure::internal(format!(
            "process \"{process_id}\" starts with a {} operation, not a listen operation",
            operation.kind.name()
        )));
    };
    let connection_id = &operation.connection.id;
    let connection = Connection::open(components.connections[connection_id].config.clone())
        .map_err(|e| Failure::from_connector(&e))?;
    let limits = host.container().kafka;
    let dead_letters = dead_letter_producer(&connection, definition, limits)?;
    let settings = listen_settings(&connection, definition);
    host.warm_producers(process_id);
    let host_limits = &host.container().host;
    let Some(consumer) = open(
        &connection,
        settings,
        limits,
        &shutdown,
        connection_id,
        host_limits,
    )
    .await?
    else {
        return Ok(());
    };
    tracing::info!(
        topics = %definition.shown(),
        group = %consumer.settings().consumer_group,
        "listening"
    );
    control.state().consumer = Some(consumer.clone());
    let listener = Listener {
        shared,
        host: host.clone(),
        control: control.clone(),
        consumer: consumer.clone(),
        keepalive_after: max_poll_interval(&connection) / 3,
        connection_id: connection_id.clone(),
        process,
        definition: definition.clone(),
        dead_letters,
    };
    let outcome = listener.listen(&consumer, &shutdown).await;
    control.end_run(&consumer);
    if control.stalling() {
        // Its brokers may be the ones that froze: leaving the group (and committing what the
        // revocation finds finished) must not hold the restart up.
        tokio::spawn(consumer.close());
    } else {
        consumer.close().await;
    }
    tracing::info!("listener stopped");
    outcome
}

/// What the listen operation asks of its consumer.
fn listen_settings(connection: &Connection, definition: &ListenDefinition) -> ListenSettings {
    ListenSettings {
        topics: definition.topics.clone(),
        pattern: definition.pattern.clone(),
        consumer_group: definition
            .consumer_group
            .clone()
            .or_else(|| connection.config().default_consumer_group.clone())
            .expect("a listen operation has a consumer group (checked at load)"),
        offset_reset: definition.offset_reset,
        partitions: definition.partitions.clone(),
        client_id: definition.client_id.clone(),
        max_messages: definition.max_messages,
    }
}

/// The producer of the dead-letter topic, when the operation names one.
fn dead_letter_producer(
    connection: &Connection,
    definition: &ListenDefinition,
    limits: sluice_connector::Limits,
) -> Result<Option<Producer>, Failure> {
    let Some(topic) = &definition.dead_letter_topic else {
        return Ok(None);
    };
    let settings = ProduceSettings {
        topic: Some(topic.clone()),
        acks: Acks::All,
        compression: Default::default(),
        delivery_timeout: ProduceSettings::DEFAULT_DELIVERY_TIMEOUT,
    };
    // A dead letter is the document plus its context headers: room for those on top of the
    // largest document the host accepts.
    let limits = sluice_connector::Limits {
        max_request_size: limits.max_request_size + dead_letter::DEAD_LETTER_ALLOWANCE,
        ..limits
    };
    Producer::new(connection, settings, limits)
        .map(Some)
        .map_err(|e| {
            let message = format!("dead-letter topic \"{topic}\": {}", e.user_message());
            Failure::connector(&e, message)
        })
}

/// librdkafka's default max.poll.interval.ms, unless the connection sets its own.
fn max_poll_interval(connection: &Connection) -> Duration {
    let ms = connection
        .config()
        .properties
        .iter()
        .find(|(name, _)| name == "max.poll.interval.ms")
        .and_then(|(_, value)| value.parse::<u64>().ok())
        .unwrap_or(300_000);
    Duration::from_millis(ms)
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
) -> Result<Option<ListenConsumer>, Failure> {
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
                let wait = jittered(host_limits.reconnect_wait(attempt));
                attempt += 1;
                tracing::warn!(
                    error = %error.user_message(),
                    retry_in_ms = wait.as_millis() as u64,
                    "cannot reach the brokers; check them with: sluice test-connection {connection_id}"
                );
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    () = shutdown.cancelled() => return Ok(None),
                }
            }
            Err(error) => return Err(stop(&error, connection_id)),
        }
    }
}

fn with_fix(error: &ConnectorError, connection_id: &str) -> String {
    match error {
        ConnectorError::UnknownTopic(_) => {
            format!(
                "{}: create it, or correct the listen operation's <topic>",
                error.user_message()
            )
        }
        _ => crate::host::execution::with_connection_check(error, connection_id),
    }
}

/// How one partition's share of a batch ended.
struct PartitionOutcome {
    /// Set when a document could neither be processed nor dead-lettered.
    failure: Option<Failure>,
}

/// A document on its way through the retries.
struct Attempted {
    offset: i64,
    document: Document,
    attempts: u32,
    error: String,
    /// Whose fault the last attempt's error was: a document error's is the document's (user);
    /// a whole execution's failure has its own kind (the outside world, typically).
    kind: ErrorKind,
}

impl Listener {
    async fn listen(
        self,
        consumer: &ListenConsumer,
        shutdown: &CancellationToken,
    ) -> Result<(), Failure> {
        let this = Arc::new(self);
        let mut paused = false;
        let mut looked = std::time::Instant::now();
        this.report_pattern_topics(None);
        while !shutdown.is_cancelled() {
            if consumer.refresh_due(looked) {
                looked = std::time::Instant::now();
                match consumer.refresh_topics().await {
                    Ok(Some(change)) => this.report_pattern_topics(Some(&change)),
                    Ok(None) => {}
                    Err(error) => tracing::warn!(
                        error = %error.user_message(),
                        "could not look for the topic pattern's topics; trying again at the next refresh"
                    ),
                }
            }
            // Between two batches: nothing received is in flight, everything finished is
            // committed. A paused listener seeks too (it reads from there once resumed).
            let seek = if this.control.seek_pending() {
                this.control.take_seek(consumer.holds_partitions().await)
            } else {
                None
            };
            if let Some((target, reply)) = seek {
                let moved = consumer.seek(target).await;
                if let Ok(moves) = &moved {
                    this.control
                        .forget_received(moves.iter().map(|m| (m.topic.clone(), m.partition)));
                    for m in moves {
                        tracing::info!(
                            topic = %m.topic,
                            partition = m.partition,
                            offset = m.to,
                            from = ?m.from,
                            "listener moved by a seek"
                        );
                    }
                }
                reply.send(moved);
            }
            if this.control.is_paused() {
                if !paused {
                    paused = true;
                    this.control.set_status(ListenerStatus::Paused);
                    tracing::info!("listener paused");
                }
                consumer
                    .poll_paused(POLL_WAIT)
                    .await
                    .map_err(|e| stop(&e, &this.connection_id))?;
                continue;
            }
            if paused {
                consumer
                    .resume()
                    .await
                    .map_err(|e| stop(&e, &this.connection_id))?;
                paused = false;
                tracing::info!("listener resumed");
            }
            this.control.set_status(ListenerStatus::Running);
            let batch = consumer
                .poll_batch(POLL_WAIT)
                .await
                .map_err(|e| stop(&e, &this.connection_id))?;
            if batch.is_empty() {
                continue;
            }
            tracing::debug!(messages = batch.len(), "batch received");
            let again = this.control.redelivered(&batch);
            if again > 0 {
                this.host.metrics().redeliveries(&this.process.id, again);
                tracing::info!(
                    documents = again,
                    "documents received again: they were not committed before a restart or rebalance"
                );
            }
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
            this.host
                .metrics()
                .commit(&this.process.id, started.elapsed());
            if let Err(error) = committed {
                // The group may have moved the partitions (a rebalance during the batch): their
                // new owner reads them again from the last commit. At-least-once holds.
                tracing::warn!(error = %error.user_message(), "commit failed; documents since the last commit will be delivered again");
            }
            if let Some(failure) = outcomes.into_iter().find_map(|o| o.failure) {
                return Err(failure);
            }
        }
        Ok(())
    }

    /// Logs what a topic pattern reads now: at the start (`None`) and after each change.
    fn report_pattern_topics(&self, change: Option<&TopicsChanged>) {
        let Some(pattern) = &self.definition.pattern else {
            return;
        };
        let topics = self.consumer.topics();
        if let Some(change) = change {
            tracing::info!(
                pattern = pattern.as_str(),
                added = %change.added.join(","),
                removed = %change.removed.join(","),
                topics = %topics.join(","),
                "the topic pattern's topics changed; the group rebalances"
            );
        }
        if topics.is_empty() {
            tracing::warn!(
                pattern = pattern.as_str(),
                refresh_s = pattern.refresh.as_secs(),
                "the topic pattern matches no topic yet; looking again every refresh"
            );
        } else if change.is_none() {
            tracing::info!(pattern = pattern.as_str(), topics = %topics.join(","), "the topic pattern matches");
        }
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
                        tracing::warn!(error = %error.user_message(), "poll while the batch runs failed");
                    }
                    poll = Box::pin(self.consumer.poll_paused(POLL_WAIT));
                }
            }
        };
        if !self.control.is_paused() {
            if let Err(error) = self.consumer.resume().await {
                tracing::warn!(error = %error.user_message(), "could not resume fetching after a long batch");
            }
        }
        outcomes
    }
}
