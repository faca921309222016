//! Process executions: documents from the start flow through the steps; every document ends
//! either out of the last step or with its own document error. One file per step kind.

mod commit_offset;
mod consume;
mod produce;
mod replay;
mod set_properties;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use sluice_connector::produce::Producer;
use sluice_connector::{Connection, ConnectorError};
use tracing::Instrument;

use crate::advice::UserMessage as _;
use crate::components::{Components, OperationDefinition, OperationKind, ProcessDefinition, Step};
use crate::container::ContainerProperties;
use crate::document::Document;
use crate::failure::Failure;
use crate::record::{ExecutionRecord, ExecutionStatus, HandledMessages};
use crate::store::{ExecutionStore, Metrics, Submitted};

/// How long an execution waits for its record to be written while the database takes writes:
/// a lock taken meanwhile leaves the record waiting in memory, and the execution goes on.
const RECORD_WAIT: Duration = Duration::from_secs(2);

pub(crate) use consume::consumed_document;
pub use replay::DeadLetterReplay;

/// Where `run` reports progress: the count of documents a step has finished.
pub trait Progress: Sync {
    /// `done` of `total` documents have their result in step `step` (1-based).
    fn step_progress(&self, step: usize, operation: &str, done: usize, total: usize);
}

/// Reports nothing.
pub struct NoProgress;

impl Progress for NoProgress {
    fn step_progress(&self, _: usize, _: &str, _: usize, _: usize) {}
}

/// Each document with its 1-based position in the input (after `before` others), for its
/// error.
fn numbered(documents: Vec<Document>, before: usize) -> Vec<(usize, Document)> {
    documents
        .into_iter()
        .enumerate()
        .map(|(i, d)| (before + i + 1, d))
        .collect()
}

/// Where an execution's documents come from.
enum Source<'a> {
    /// All at once: given (`Some`), or from the start operation.
    Whole(Option<Vec<Document>>),
    /// A chunk at a time.
    Chunked(Chunked<'a>),
}

/// A large input, a chunk at a time, and where the documents that leave the process go.
pub struct Chunked<'a> {
    /// The chunks, in input order.
    pub chunks: &'a mut (dyn Iterator<Item = Vec<Document>> + Send),
    /// How many documents the chunks hold together, for progress.
    pub total: usize,
    /// Takes the documents that left the last step, a chunk's worth at a time.
    pub out: &'a mut (dyn FnMut(Vec<Document>) + Send),
}

/// A chunk's step progress as progress through the whole input.
struct ChunkProgress<'a> {
    inner: &'a dyn Progress,
    /// Documents of the chunks before this one.
    before: usize,
    total: usize,
}

impl Progress for ChunkProgress<'_> {
    fn step_progress(&self, step: usize, operation: &str, done: usize, _chunk: usize) {
        self.inner
            .step_progress(step, operation, self.before + done, self.total);
    }
}

/// Why an execution could not be started at all (nothing ran, nothing is recorded).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// No process with that id.
    #[error("process \"{id}\" is not defined{}", suggestion(.id, .defined))]
    UnknownProcess {
        /// The id asked for.
        id: String,
        /// The processes that exist.
        defined: Vec<String>,
    },
    /// The process takes documents from its start operation, and input was given too.
    #[error("process \"{0}\" starts with a consume operation and takes no --input; run it without --input")]
    UnexpectedInput(String),
    /// The process starts with a listen operation: the host runs it, not a one-off run.
    #[error("process \"{0}\" starts with a listen operation, which runs for as long as the host: start it with sluice serve")]
    Listener(String),
    /// The process cannot take its input a chunk at a time.
    #[error("process \"{0}\" takes its input whole: its steps include one that needs every document at once")]
    NotChunked(String),
    /// The process has no start operation and no input was given.
    #[error("process \"{0}\" takes its documents from --input (a file, a folder, or - for standard input)")]
    MissingInput(String),
}

/// Every series of the processes of `components`, at 0 until something happens.
fn declare(metrics: &Metrics, components: &Components) {
    let listeners = components.listener_processes();
    for id in components.processes.keys() {
        metrics.declare(id, listeners.contains(id));
    }
}

fn suggestion(id: &str, defined: &[String]) -> String {
    match crate::components::did_you_mean(id, defined.iter().map(String::as_str)) {
        Some(close) => format!("; did you mean \"{close}\"?"),
        None if defined.is_empty() => "; no process is defined in the files loaded".into(),
        None => format!("; defined processes: {}", defined.join(", ")),
    }
}

/// The runtime host's view of one set of components under one set of container properties.
pub struct Host {
    components: Components,
    container: ContainerProperties,
    records: Option<Arc<ExecutionStore>>,
    metrics: Arc<Metrics>,
    /// One producer per Produce operation, kept warm across executions: creating one costs a
    /// connection, metadata and (idempotent) a producer id from the broker, a few hundred
    /// milliseconds that would otherwise fall on every execution.
    producers: std::sync::Mutex<std::collections::HashMap<String, Arc<Producer>>>,
}

impl Host {
    /// A host for validated components.
    pub fn new(components: Components, container: ContainerProperties) -> Self {
        let metrics = Arc::<Metrics>::default();
        declare(&metrics, &components);
        Self {
            components,
            container,
            records: None,
            metrics,
            producers: Default::default(),
        }
    }

    /// A host for components loaded again (a reload): the same container properties,
    /// execution records and metrics, and producers of its own (a changed operation must not
    /// get the warm producer of its former definition).
    pub fn redeploy(&self, components: Components) -> Self {
        declare(&self.metrics, &components);
        Self {
            components,
            container: self.container.clone(),
            records: self.records.clone(),
            metrics: self.metrics.clone(),
            producers: Default::default(),
        }
    }

    /// The counters of every execution this host ran.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Records every execution in `store`.
    pub fn with_records(mut self, store: Arc<ExecutionStore>) -> Self {
        self.records = Some(store);
        self
    }

    /// Where executions are recorded, if anywhere.
    pub fn records(&self) -> Option<&Arc<ExecutionStore>> {
        self.records.as_ref()
    }

    /// Hands the record to the execution database's writer and, while the database takes
    /// writes, waits until it is written (so that it is there before the execution's offsets
    /// are committed). A database that is locked or failing never holds the execution up: its
    /// record waits in memory or is dropped, counted and logged by the writer.
    async fn store(&self, record: &mut ExecutionRecord) {
        let Some(store) = self.records.clone() else {
            return;
        };
        // The documents themselves are not recorded: copy the rest without them.
        let documents_out = record.documents_out_count();
        let documents = std::mem::take(&mut record.documents_out);
        let copy = record.clone();
        record.documents_out = documents;
        if let Submitted::Writing(written) = store.submit(copy, documents_out) {
            // A lock that begins just now: the record waits in memory, the execution goes on.
            let _ = tokio::time::timeout(RECORD_WAIT, written).await;
        }
    }

    /// The container properties this host enforces.
    pub fn container(&self) -> &ContainerProperties {
        &self.container
    }

    /// The components this host runs.
    pub fn components(&self) -> &Components {
        &self.components
    }

    /// Runs one execution of `process_id`. `input` is required exactly when the process has no
    /// start operation. Returns the execution record, failed or not.
    pub async fn execute(
        &self,
        process_id: &str,
        input: Option<Vec<Document>>,
        progress: &dyn Progress,
    ) -> Result<ExecutionRecord, StartError> {
        let process = self.components.processes.get(process_id).ok_or_else(|| {
            StartError::UnknownProcess {
                id: process_id.to_string(),
                defined: self.components.processes.keys().cloned().collect(),
            }
        })?;
        let listens = process.start.as_ref().is_some_and(|start| {
            matches!(self.operation(&start.id).kind, OperationKind::Listen(_))
        });
        if listens {
            return Err(StartError::Listener(process.id.clone()));
        }
        match (&process.start, &input) {
            (Some(_), Some(_)) => return Err(StartError::UnexpectedInput(process.id.clone())),
            (None, None) => return Err(StartError::MissingInput(process.id.clone())),
            _ => {}
        }
        Ok(self.run(process, Source::Whole(input), progress).await)
    }

    /// Whether `process_id` can take its input a chunk at a time ([`Host::execute_chunked`]):
    /// it has no start operation, and its steps treat each document on its own (set
    /// properties, Produce). Commit Offset commits the highest offset of all its documents, so
    /// a process with one takes its input whole.
    pub fn takes_input_in_chunks(&self, process_id: &str) -> bool {
        let Some(process) = self.components.processes.get(process_id) else {
            return false;
        };
        process.start.is_none()
            && process.steps.iter().all(|step| match step {
                Step::SetProperties(_) => true,
                Step::Connector { operation } => matches!(
                    self.operation(&operation.id).kind,
                    OperationKind::Produce(_)
                ),
            })
    }

    /// Runs one execution of `process_id` over a large input a chunk at a time: each chunk
    /// goes through every step before the next is read, so memory holds one chunk, not the
    /// input. Documents keep their positions in the whole input; those that leave the last
    /// step go to `chunked.out`, and the record counts them. A failure ends the execution
    /// with the chunks not yet read left unread. The process must take its input in chunks
    /// ([`Host::takes_input_in_chunks`]).
    pub async fn execute_chunked(
        &self,
        process_id: &str,
        chunked: Chunked<'_>,
        progress: &dyn Progress,
    ) -> Result<ExecutionRecord, StartError> {
        if !self.takes_input_in_chunks(process_id) {
            return Err(match self.components.processes.get(process_id) {
                None => StartError::UnknownProcess {
                    id: process_id.to_string(),
                    defined: self.components.processes.keys().cloned().collect(),
                },
                Some(process) => StartError::NotChunked(process.id.clone()),
            });
        }
        let process = &self.components.processes[process_id];
        Ok(self.run(process, Source::Chunked(chunked), progress).await)
    }

    /// Runs one execution of a listener's process on the documents its listen operation
    /// received. `process` must exist (the listener was started for it).
    pub async fn execute_listened(
        &self,
        process: &ProcessDefinition,
        documents: Vec<Document>,
    ) -> ExecutionRecord {
        self.run(process, Source::Whole(Some(documents)), &NoProgress)
            .await
    }

    async fn run(
        &self,
        process: &ProcessDefinition,
        source: Source<'_>,
        progress: &dyn Progress,
    ) -> ExecutionRecord {
        self.run_replaying(process, source, progress, &[]).await
    }

    /// [`Host::run`] of documents that are the dead letters at `replayed` (one each, in
    /// order): those that come through without an error are recorded as replayed.
    async fn run_replaying(
        &self,
        process: &ProcessDefinition,
        source: Source<'_>,
        progress: &dyn Progress,
        replayed: &[(Arc<str>, i32, i64)],
    ) -> ExecutionRecord {
        let id = uuid::Uuid::now_v7();
        // At ERROR level so that the span is never filtered out: its fields must reach the
        // warnings and errors logged inside it under the default filter (warn).
        let span = tracing::error_span!("execution", process = %process.id, execution_id = %id);
        self.run_in(id, process, source, progress, replayed)
            .instrument(span)
            .await
    }

    async fn run_in(
        &self,
        id: uuid::Uuid,
        process: &ProcessDefinition,
        source: Source<'_>,
        progress: &dyn Progress,
        replayed: &[(Arc<str>, i32, i64)],
    ) -> ExecutionRecord {
        let started = SystemTime::now();
        let clock = Instant::now();
        let mut record = ExecutionRecord {
            id,
            process: process.id.clone(),
            started,
            duration: Duration::ZERO,
            status: ExecutionStatus::Succeeded,
            documents_in: 0,
            documents_out: Vec::new(),
            documents_handed_on: 0,
            document_errors: Vec::new(),
            messages: HandledMessages::default(),
        };
        tracing::info!("execution started");
        let outcome = match source {
            Source::Whole(input) => self.flow(process, input, progress, &mut record).await,
            Source::Chunked(chunked) => {
                self.flow_chunks(process, chunked, progress, &mut record)
                    .await
            }
        };
        record.duration = clock.elapsed();
        if outcome.is_ok() {
            record.note_replayed(replayed);
        }
        record.status = match outcome {
            Err(failure) => ExecutionStatus::Failed(failure),
            Ok(()) if record.document_errors.is_empty() => ExecutionStatus::Succeeded,
            Ok(()) => ExecutionStatus::CompletedWithErrors,
        };
        let reason = match &record.status {
            ExecutionStatus::Failed(failure) => Some(failure.message.as_str()),
            _ => None,
        };
        tracing::info!(
            status = record.status.name(),
            reason,
            documents_in = record.documents_in,
            documents_out = record.documents_out_count(),
            document_errors = record.document_errors.len(),
            "execution ended"
        );
        self.metrics.execution(&record);
        self.store(&mut record).await;
        record
    }

    async fn flow(
        &self,
        process: &ProcessDefinition,
        input: Option<Vec<Document>>,
        progress: &dyn Progress,
        record: &mut ExecutionRecord,
    ) -> Result<(), Failure> {
        let documents = match (&process.start, input) {
            (_, Some(documents)) => documents,
            (Some(start), None) => {
                let op = self.operation(&start.id);
                let OperationKind::Consume(def) = &op.kind else {
                    unreachable!("a process start is a consume operation (checked at load)");
                };
                // A start has a topic or a pattern (checked at load): None is the pattern.
                self.consume(op, def, def.topic.as_deref())
                    .await
                    .map_err(|e| {
                        with_next_step(op, &e).within(format_args!("start operation \"{}\"", op.id))
                    })?
            }
            (None, None) => Vec::new(),
        };
        record.documents_in = documents.len();
        record.messages.note_read(&documents);
        let flowing = numbered(documents, 0);
        if let Some(start) = &process.start {
            for (position, document) in &flowing {
                if let Some(message) = &document.application_error {
                    let tracked = document.tracked.clone();
                    record.document_error(*position, 0, &start.id, message.clone(), tracked);
                }
            }
        }
        record.documents_out = self.steps(process, flowing, progress, record).await?;
        Ok(())
    }

    /// The chunks of a large input through the steps, one after another.
    async fn flow_chunks(
        &self,
        process: &ProcessDefinition,
        chunked: Chunked<'_>,
        progress: &dyn Progress,
        record: &mut ExecutionRecord,
    ) -> Result<(), Failure> {
        for chunk in &mut *chunked.chunks {
            let before = record.documents_in;
            record.documents_in += chunk.len();
            record.messages.note_read(&chunk);
            let progress = ChunkProgress {
                inner: progress,
                before,
                total: chunked.total,
            };
            let out = self
                .steps(process, numbered(chunk, before), &progress, record)
                .await?;
            record.documents_handed_on += out.len();
            (chunked.out)(out);
        }
        Ok(())
    }

    /// The documents through the process's steps; returns those that leave the last one.
    async fn steps(
        &self,
        process: &ProcessDefinition,
        mut flowing: Vec<(usize, Document)>,
        progress: &dyn Progress,
        record: &mut ExecutionRecord,
    ) -> Result<Vec<Document>, Failure> {
        for (index, step) in process.steps.iter().enumerate() {
            let step_number = index + 1;
            flowing = match step {
                Step::SetProperties(properties) => {
                    set_properties::set_properties(properties, step_number, flowing, record)
                }
                Step::Connector { operation } => {
                    let op = self.operation(&operation.id);
                    let outcome = match &op.kind {
                        OperationKind::Produce(def) => {
                            self.produce(op, def, step_number, flowing, progress, record)
                                .await
                        }
                        OperationKind::CommitOffset(def) => {
                            self.commit(op, def, step_number, flowing, record).await
                        }
                        OperationKind::Consume(def) => {
                            self.consume_step(op, def, step_number, flowing, record)
                                .await
                        }
                        OperationKind::Listen(_) => {
                            unreachable!("a listen operation is never a step (checked at load)")
                        }
                    };
                    outcome.map_err(|e| {
                        with_next_step(op, &e)
                            .within(format_args!("step {step_number} (operation \"{}\")", op.id))
                    })?
                }
            };
        }
        Ok(flowing.into_iter().map(|(_, d)| d).collect())
    }

    fn operation(&self, id: &str) -> &OperationDefinition {
        // References were resolved when the components were loaded.
        &self.components.operations[id]
    }

    fn connection(&self, op: &OperationDefinition) -> Result<Connection, ConnectorError> {
        Connection::open(
            self.components.connections[&op.connection.id]
                .config
                .clone(),
        )
    }
}

/// An operation's failure, and where brokers could not be reached, the command that checks
/// the connection part by part (resolution, ports, TLS, SASL, Kerberos, clocks).
fn with_next_step(op: &OperationDefinition, error: &ConnectorError) -> Failure {
    Failure::connector(error, with_connection_check(error, &op.connection.id))
}

/// A connector failure, followed for unreachable brokers by the test-connection command for
/// `connection_id`.
pub(crate) fn with_connection_check(error: &ConnectorError, connection_id: &str) -> String {
    match error {
        ConnectorError::Unreachable(_) => format!(
            "{}\n  check the connection part by part: sluice test-connection {connection_id}",
            error.user_message()
        ),
        _ => error.user_message(),
    }
}
