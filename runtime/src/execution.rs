//! Process executions: documents from the start flow through the steps; every document ends
//! either out of the last step or with its own document error.

use std::time::{Duration, Instant, SystemTime};

use sluice_connector::consume::{self, ConsumeSettings};
use sluice_connector::produce::Producer;
use sluice_connector::{Connection, ConnectorError, ProduceRecord};
use tracing::Instrument;

use crate::components::{Components, OperationDefinition, OperationKind, ProcessDefinition, Step};
use crate::container::ContainerProperties;
use crate::document::{Document, TrackedProperties};

/// How an execution ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecutionStatus {
    /// Every document went through every step.
    Succeeded,
    /// It ran to the end, but some documents have errors (application errors).
    CompletedWithErrors,
    /// It stopped: the reason says why (a failure, not a document's error).
    Failed(String),
}

impl std::fmt::Display for ExecutionStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Succeeded => f.write_str("succeeded"),
            Self::CompletedWithErrors => f.write_str("completed with document errors"),
            Self::Failed(reason) => write!(f, "failed: {reason}"),
        }
    }
}

/// An error that belongs to one document; the other documents go on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentError {
    /// 1-based position of the document among the execution's documents in.
    pub document: usize,
    /// 1-based step where it failed.
    pub step: usize,
    /// The operation that failed it.
    pub operation: String,
    /// What happened.
    pub message: String,
    /// Where the document came from or was going.
    pub tracked: TrackedProperties,
}

/// What one process execution did.
#[derive(Debug, Clone)]
pub struct ExecutionRecord {
    /// Unique, time-ordered id.
    pub id: uuid::Uuid,
    /// The process.
    pub process: String,
    /// When it started.
    pub started: SystemTime,
    /// How long it ran.
    pub duration: Duration,
    /// How it ended.
    pub status: ExecutionStatus,
    /// Documents that entered the process.
    pub documents_in: usize,
    /// Documents that left the last step.
    pub documents_out: Vec<Document>,
    /// One entry per document that failed.
    pub document_errors: Vec<DocumentError>,
}

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
    /// The process has no start operation and no input was given.
    #[error("process \"{0}\" takes its documents from --input (a file, a folder, or - for standard input)")]
    MissingInput(String),
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
}

impl Host {
    /// A host for validated components.
    pub fn new(components: Components, container: ContainerProperties) -> Self {
        Self {
            components,
            container,
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
        match (&process.start, &input) {
            (Some(_), Some(_)) => return Err(StartError::UnexpectedInput(process.id.clone())),
            (None, None) => return Err(StartError::MissingInput(process.id.clone())),
            _ => {}
        }
        let id = uuid::Uuid::now_v7();
        let span = tracing::info_span!("execution", process = %process.id, execution_id = %id);
        Ok(self
            .run(id, process, input, progress)
            .instrument(span)
            .await)
    }

    async fn run(
        &self,
        id: uuid::Uuid,
        process: &ProcessDefinition,
        input: Option<Vec<Document>>,
        progress: &dyn Progress,
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
            document_errors: Vec::new(),
        };
        tracing::info!("execution started");
        let outcome = self.flow(process, input, progress, &mut record).await;
        record.duration = clock.elapsed();
        record.status = match outcome {
            Err(reason) => ExecutionStatus::Failed(reason),
            Ok(()) if record.document_errors.is_empty() => ExecutionStatus::Succeeded,
            Ok(()) => ExecutionStatus::CompletedWithErrors,
        };
        tracing::info!(
            status = %record.status,
            documents_in = record.documents_in,
            documents_out = record.documents_out.len(),
            document_errors = record.document_errors.len(),
            "execution ended"
        );
        record
    }

    async fn flow(
        &self,
        process: &ProcessDefinition,
        input: Option<Vec<Document>>,
        progress: &dyn Progress,
        record: &mut ExecutionRecord,
    ) -> Result<(), String> {
        let documents = match (&process.start, input) {
            (_, Some(documents)) => documents,
            (Some(start), None) => {
                let op = self.operation(&start.id);
                self.consume(op)
                    .await
                    .map_err(|e| format!("start operation \"{}\": {e}", op.id))?
            }
            (None, None) => Vec::new(),
        };
        record.documents_in = documents.len();
        // Each document keeps its 1-based position in, for its error.
        let mut flowing: Vec<(usize, Document)> = documents
            .into_iter()
            .enumerate()
            .map(|(i, d)| (i + 1, d))
            .collect();
        for (index, step) in process.steps.iter().enumerate() {
            let Step::Connector { operation } = step;
            let op = self.operation(&operation.id);
            let step_number = index + 1;
            flowing = self
                .produce(op, step_number, flowing, progress, record)
                .await
                .map_err(|e| format!("step {step_number} (operation \"{}\"): {e}", op.id))?;
        }
        record.documents_out = flowing.into_iter().map(|(_, d)| d).collect();
        Ok(())
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

    async fn consume(&self, op: &OperationDefinition) -> Result<Vec<Document>, ConnectorError> {
        let OperationKind::Consume(def) = &op.kind else {
            unreachable!("a process start is a consume operation (checked at load)");
        };
        let connection = self.connection(op)?;
        let consumer_group = def
            .consumer_group
            .clone()
            .or_else(|| connection.config().default_consumer_group.clone())
            .expect("a consume operation has a consumer group (checked at load)");
        let settings = ConsumeSettings {
            topic: def.topic.clone(),
            consumer_group,
            minimum_messages: def.minimum_messages,
            max_wait: def.maximum_wait,
            offset_reset: def.offset_reset,
            autocommit: def.autocommit,
        };
        let outcome = consume::consume(&connection, settings, self.container.kafka).await?;
        tracing::info!(
            operation = %op.id,
            topic = %def.topic,
            documents = outcome.records.len(),
            polls = outcome.polls,
            "consumed"
        );
        Ok(outcome
            .records
            .into_iter()
            .map(|r| Document {
                data: r.payload,
                // Topic name stays unset: it would redirect a later Produce step back to the
                // source topic. Where the document came from is in its tracked properties.
                properties: crate::document::DocumentProperties {
                    message_key: r.key.map(|k| String::from_utf8_lossy(&k).into_owned()),
                    topic_name: None,
                },
                tracked: TrackedProperties {
                    topic: Some(r.topic),
                    partition: Some(r.partition),
                    offset: Some(r.offset),
                    timestamp: r.timestamp_ms,
                },
            })
            .collect())
    }

    async fn produce(
        &self,
        op: &OperationDefinition,
        step: usize,
        documents: Vec<(usize, Document)>,
        progress: &dyn Progress,
        record: &mut ExecutionRecord,
    ) -> Result<Vec<(usize, Document)>, ConnectorError> {
        let OperationKind::Produce(settings) = &op.kind else {
            unreachable!("a connector step is a produce operation (checked at load)");
        };
        let connection = self.connection(op)?;
        let producer = Producer::new(&connection, settings.clone(), self.container.kafka)?;
        let records = documents
            .iter()
            .map(|(_, d)| ProduceRecord {
                payload: d.data.clone(),
                key: d.properties.message_key.clone().map(String::into_bytes),
                topic: d.properties.topic_name.clone(),
                headers: Vec::new(),
            })
            .collect();
        let total = documents.len();
        let results = producer
            .produce(records, |done| {
                progress.step_progress(step, &op.id, done, total)
            })
            .await?;
        let mut delivered = Vec::with_capacity(total);
        for ((position, mut document), result) in documents.into_iter().zip(results) {
            match result {
                Ok(at) => {
                    tracing::debug!(topic = %at.topic, partition = at.partition, offset = at.offset, "delivered");
                    document.tracked = TrackedProperties {
                        topic: Some(at.topic),
                        partition: Some(at.partition),
                        offset: Some(at.offset),
                        timestamp: None,
                    };
                    delivered.push((position, document));
                }
                Err(error) => {
                    tracing::warn!(document = position, %error, "document failed");
                    record.document_errors.push(DocumentError {
                        document: position,
                        step,
                        operation: op.id.clone(),
                        message: error.to_string(),
                        tracked: TrackedProperties {
                            topic: Some(
                                document
                                    .properties
                                    .topic_name
                                    .clone()
                                    .unwrap_or_else(|| settings.topic.clone()),
                            ),
                            ..TrackedProperties::default()
                        },
                    });
                }
            }
        }
        Ok(delivered)
    }
}
