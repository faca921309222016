//! Process executions: documents from the start flow through the steps; every document ends
//! either out of the last step or with its own document error.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use sluice_connector::commit_offset::{self, CommitRequest};
use sluice_connector::consume::{self, ConsumeSettings, Consumed};
use sluice_connector::produce::Producer;
use sluice_connector::{Connection, ConnectorError, Header, ProduceRecord};
use tracing::Instrument;

use crate::components::{
    CommitOffsetDefinition, Components, ConsumeDefinition, OperationDefinition, OperationKind,
    ProcessDefinition, ProduceDefinition, PropertyName, PropertySource, SetProperty, Step,
    TrackedName,
};
use crate::container::ContainerProperties;
use crate::document::{Document, DocumentProperties, TrackedProperties};
use crate::metrics::Metrics;
use crate::records::ExecutionStore;

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
    /// 1-based step where it failed; 0: the process's start operation.
    pub step: usize,
    /// The operation that failed it (`set-properties` for that step).
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

impl ExecutionRecord {
    /// Records one document's error; the document leaves the flow unless the caller keeps it.
    fn document_error(
        &mut self,
        document: usize,
        step: usize,
        operation: &str,
        message: String,
        tracked: TrackedProperties,
    ) {
        self.document_errors.push(DocumentError {
            document,
            step,
            operation: operation.to_string(),
            message,
            tracked,
        });
    }
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
    /// The process starts with a listen operation: the host runs it, not a one-off run.
    #[error("process \"{0}\" starts with a listen operation, which runs for as long as the host: start it with sluice serve")]
    Listener(String),
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
        Self {
            components,
            container,
            records: None,
            metrics: Arc::default(),
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

    /// Writes the record on the blocking pool. A database failure is logged, not fatal: the
    /// execution itself has happened and its outcome is reported either way.
    async fn store(&self, record: &mut ExecutionRecord) {
        let Some(store) = self.records.clone() else {
            return;
        };
        // The documents themselves are not recorded: copy the rest without them.
        let documents = std::mem::take(&mut record.documents_out);
        let documents_out = documents.len();
        let copy = record.clone();
        record.documents_out = documents;
        match tokio::task::spawn_blocking(move || store.record(&copy, documents_out)).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::error!(%error, "execution not recorded"),
            Err(error) => tracing::error!(%error, "execution not recorded"),
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
        let id = uuid::Uuid::now_v7();
        // At ERROR level so that the span is never filtered out: its fields must reach the
        // warnings and errors logged inside it under the default filter (warn).
        let span = tracing::error_span!("execution", process = %process.id, execution_id = %id);
        Ok(self
            .run(id, process, input, progress)
            .instrument(span)
            .await)
    }

    /// Runs one execution of a listener's process on the documents its listen operation
    /// received. `process` must exist (the listener was started for it).
    pub async fn execute_listened(
        &self,
        process: &ProcessDefinition,
        documents: Vec<Document>,
    ) -> ExecutionRecord {
        let id = uuid::Uuid::now_v7();
        // At ERROR level so that the span is never filtered out: its fields must reach the
        // warnings and errors logged inside it under the default filter (warn).
        let span = tracing::error_span!("execution", process = %process.id, execution_id = %id);
        self.run(id, process, Some(documents), &NoProgress)
            .instrument(span)
            .await
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
    ) -> Result<(), String> {
        let documents = match (&process.start, input) {
            (_, Some(documents)) => documents,
            (Some(start), None) => {
                let op = self.operation(&start.id);
                let OperationKind::Consume(def) = &op.kind else {
                    unreachable!("a process start is a consume operation (checked at load)");
                };
                let topic = def
                    .topic
                    .as_deref()
                    .expect("a start has a topic (checked at load)");
                self.consume(op, def, topic).await.map_err(|e| {
                    format!("start operation \"{}\": {}", op.id, with_next_step(op, &e))
                })?
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
        if let Some(start) = &process.start {
            for (position, document) in &flowing {
                if let Some(message) = &document.application_error {
                    let tracked = document.tracked.clone();
                    record.document_error(*position, 0, &start.id, message.clone(), tracked);
                }
            }
        }
        for (index, step) in process.steps.iter().enumerate() {
            let step_number = index + 1;
            flowing = match step {
                Step::SetProperties(properties) => {
                    set_properties(properties, step_number, flowing, record)
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
                        format!(
                            "step {step_number} (operation \"{}\"): {}",
                            op.id,
                            with_next_step(op, &e)
                        )
                    })?
                }
            };
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

    /// The operation's consumer group, else its connection's (one exists: checked at load).
    fn consumer_group(&self, own: &Option<String>, connection: &Connection) -> String {
        own.clone()
            .or_else(|| connection.config().default_consumer_group.clone())
            .expect("an operation that needs a consumer group has one (checked at load)")
    }

    async fn consume(
        &self,
        op: &OperationDefinition,
        def: &ConsumeDefinition,
        topic: &str,
    ) -> Result<Vec<Document>, ConnectorError> {
        let connection = self.connection(op)?;
        let settings = ConsumeSettings {
            topic: topic.to_string(),
            consumer_group: self.consumer_group(&def.consumer_group, &connection),
            minimum_messages: def.minimum_messages,
            max_wait: def.maximum_wait,
            offset_reset: def.offset_reset,
            autocommit: def.autocommit,
            partitions: def.partitions.clone(),
            client_id: def.client_id.clone(),
        };
        let outcome = consume::consume(&connection, settings, self.container.kafka).await?;
        tracing::info!(
            operation = %op.id,
            topic,
            documents = outcome.records.len(),
            polls = outcome.polls,
            "consumed"
        );
        Ok(outcome.records.into_iter().map(consumed_document).collect())
    }

    /// Consume as a step: one Consume per input document, of the topic the document names
    /// (with dynamic-topic) or the operation's. The messages read replace the input document
    /// and keep its position; a topic that does not exist is that document's error (seed 003).
    async fn consume_step(
        &self,
        op: &OperationDefinition,
        def: &ConsumeDefinition,
        step: usize,
        documents: Vec<(usize, Document)>,
        record: &mut ExecutionRecord,
    ) -> Result<Vec<(usize, Document)>, ConnectorError> {
        let mut out = Vec::new();
        for (position, document) in documents {
            if document.application_error.is_some() {
                out.push((position, document));
                continue;
            }
            let mut fail = |message: String| {
                record.document_error(position, step, &op.id, message, document.tracked.clone())
            };
            let named = document
                .properties
                .topic_name
                .as_ref()
                .filter(|_| def.dynamic_topic);
            let Some(topic) = named.or(def.topic.as_ref()) else {
                fail(
                    "no topic: the document has no topic-name property and the operation no topic"
                        .into(),
                );
                continue;
            };
            if crate::components::valid_topic(topic).is_err() {
                fail(format!("topic-name \"{topic}\" is not a Kafka topic name"));
                continue;
            }
            match self.consume(op, def, topic).await {
                Ok(consumed) => {
                    for document in consumed {
                        if let Some(message) = &document.application_error {
                            let tracked = document.tracked.clone();
                            record.document_error(position, step, &op.id, message.clone(), tracked);
                        }
                        out.push((position, document));
                    }
                }
                Err(
                    error @ (ConnectorError::UnknownTopic(_) | ConnectorError::UnknownPartition(_)),
                ) => fail(error.to_string()),
                Err(error) => return Err(error),
            }
        }
        Ok(out)
    }

    async fn produce(
        &self,
        op: &OperationDefinition,
        def: &ProduceDefinition,
        step: usize,
        documents: Vec<(usize, Document)>,
        progress: &dyn Progress,
        record: &mut ExecutionRecord,
    ) -> Result<Vec<(usize, Document)>, ConnectorError> {
        // Documents that carry an application error pass through without being sent.
        let (documents, passing): (Vec<_>, Vec<_>) = documents
            .into_iter()
            .partition(|(_, d)| d.application_error.is_none());
        let producer = self.producer(op, def)?;
        let records = documents
            .iter()
            .map(|(_, d)| produce_record(def, d))
            .collect();
        let total = documents.len();
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
        let mut delivered = passing;
        for ((position, mut document), result) in documents.into_iter().zip(results) {
            match result {
                Ok(at) => {
                    tracing::debug!(topic = %at.topic, partition = at.partition, offset = at.offset, "delivered");
                    document.tracked = TrackedProperties {
                        topic: Some(at.topic),
                        partition: Some(at.partition),
                        // acks=0: the broker reports no offset.
                        offset: (at.offset >= 0).then_some(at.offset),
                        key: document.properties.message_key.clone(),
                        timestamp: document.properties.timestamp,
                        headers: Vec::new(),
                    };
                    delivered.push((position, document));
                }
                Err(error) => {
                    tracing::warn!(document = position, %error, "document failed");
                    // A consumed document keeps where it came from (the error names the topic
                    // it was going to); any other is tracked by that target topic.
                    let tracked = if document.tracked.topic.is_some() {
                        document.tracked
                    } else {
                        TrackedProperties {
                            topic: topic_override(def, &document)
                                .or_else(|| def.settings.topic.clone()),
                            ..TrackedProperties::default()
                        }
                    };
                    record.document_error(position, step, &op.id, error.to_string(), tracked);
                }
            }
        }
        delivered.sort_by_key(|(position, _)| *position);
        Ok(delivered)
    }

    async fn commit(
        &self,
        op: &OperationDefinition,
        def: &CommitOffsetDefinition,
        step: usize,
        documents: Vec<(usize, Document)>,
        record: &mut ExecutionRecord,
    ) -> Result<Vec<(usize, Document)>, ConnectorError> {
        let connection = self.connection(op)?;
        let group = self.consumer_group(&def.consumer_group, &connection);
        let mut requests = Vec::new();
        let mut requested = Vec::new();
        for (position, document) in documents {
            match commit_request(&document) {
                Ok(request) => {
                    requests.push(request);
                    requested.push((position, document));
                }
                Err(message) => {
                    record.document_error(position, step, &op.id, message, document.tracked)
                }
            }
        }
        let results = commit_offset::commit_offsets(&connection, &group, requests).await?;
        let mut committed = Vec::new();
        for ((position, document), result) in requested.into_iter().zip(results) {
            match result {
                Ok(_) => committed.push((position, document)),
                Err(error) => {
                    let message = error.to_string();
                    record.document_error(position, step, &op.id, message, document.tracked)
                }
            }
        }
        Ok(committed)
    }
}

/// An operation's failure, and where brokers could not be reached, the command that checks
/// the connection part by part (resolution, ports, TLS, SASL, Kerberos, clocks).
fn with_next_step(op: &OperationDefinition, error: &ConnectorError) -> String {
    with_connection_check(error, &op.connection.id)
}

/// A connector failure, followed for unreachable brokers by the test-connection command for
/// `connection_id`.
pub(crate) fn with_connection_check(error: &ConnectorError, connection_id: &str) -> String {
    match error {
        ConnectorError::Unreachable(_) => format!(
            "{error}\n  check the connection part by part: sluice test-connection {connection_id}"
        ),
        _ => error.to_string(),
    }
}

/// A consumed message as a document. Topic name is set (seed 003), partition is not: it would
/// pin a later Produce to the same partition number in another topic. Where the message came
/// from is in the tracked properties.
pub(crate) fn consumed_document(consumed: Consumed) -> Document {
    match consumed {
        Consumed::Record(r) => Document {
            properties: DocumentProperties {
                message_key: r.key.clone(),
                topic_name: Some(r.topic.clone()),
                headers: r.headers.clone(),
                ..DocumentProperties::default()
            },
            tracked: TrackedProperties {
                topic: Some(r.topic),
                partition: Some(r.partition),
                offset: Some(r.offset),
                key: r.key,
                timestamp: r.timestamp_ms,
                headers: r.headers,
            },
            data: r.payload,
            application_error: None,
        },
        Consumed::TooLarge {
            topic,
            partition,
            offset,
            size,
            max,
        } => Document {
            tracked: TrackedProperties {
                topic: Some(topic),
                partition: Some(partition),
                offset: Some(offset),
                ..TrackedProperties::default()
            },
            application_error: Some(format!(
                "message is {size} bytes; max.request.size is {max} bytes"
            )),
            ..Document::default()
        },
    }
}

/// The topic a document names for itself, when the operation lets documents choose.
fn topic_override(def: &ProduceDefinition, document: &Document) -> Option<String> {
    document
        .properties
        .topic_name
        .clone()
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
        topic: topic_override(def, document),
        partition: properties.partition.or(def.partition),
        timestamp_ms: properties.timestamp,
        headers,
    }
}

/// The commit a document asks for: from its tracked properties when it came from a Consume,
/// else from the platform's JSON layout in its data.
fn commit_request(document: &Document) -> Result<CommitRequest, String> {
    let t = &document.tracked;
    if let (Some(topic), Some(partition), Some(offset)) = (&t.topic, t.partition, t.offset) {
        return Ok(CommitRequest {
            topic: topic.clone(),
            partition,
            offset,
            metadata: None,
        });
    }
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct CommitDocument {
        topic: String,
        partition: i32,
        offset: i64,
        #[serde(default)]
        metadata: Option<String>,
    }
    let parsed: CommitDocument = serde_json::from_slice(&document.data).map_err(|e| {
        format!(
            "not a commit document ({e}): expected {{\"topic\": \"…\", \"partition\": 0, \
             \"offset\": 0, \"metadata\": \"…\"}} or a document from a consume operation"
        )
    })?;
    Ok(CommitRequest {
        topic: parsed.topic,
        partition: parsed.partition,
        offset: parsed.offset,
        metadata: parsed.metadata,
    })
}

/// Applies a set-properties step to every document; a document whose property cannot be set
/// gets an error and leaves the flow.
fn set_properties(
    properties: &[SetProperty],
    step: usize,
    documents: Vec<(usize, Document)>,
    record: &mut ExecutionRecord,
) -> Vec<(usize, Document)> {
    let mut out = Vec::with_capacity(documents.len());
    'documents: for (position, mut document) in documents {
        if document.application_error.is_none() {
            for property in properties {
                if let Err(message) = set_property(property, &mut document) {
                    let tracked = document.tracked;
                    record.document_error(position, step, "set-properties", message, tracked);
                    continue 'documents;
                }
            }
        }
        out.push((position, document));
    }
    out
}

fn set_property(property: &SetProperty, document: &mut Document) -> Result<(), String> {
    let value: Option<Vec<u8>> = match &property.source {
        PropertySource::Constant(value) => Some(value.clone().into_bytes()),
        PropertySource::Property(name) => read_property(&document.properties, name),
        PropertySource::Tracked(name) => read_tracked(&document.tracked, name),
    };
    let source = || match &property.source {
        PropertySource::Constant(_) => "the constant".to_string(),
        PropertySource::Property(name) => format!("property {name}"),
        PropertySource::Tracked(name) => format!("tracked property {name}"),
    };
    let Some(value) = value else {
        return if property.optional {
            Ok(())
        } else {
            Err(format!(
                "cannot set {}: the document has no {} (mark the property optional=\"true\" to \
                 skip such documents' value)",
                property.target,
                source()
            ))
        };
    };
    let text = || String::from_utf8_lossy(&value).into_owned();
    let invalid = |what: &str| {
        format!(
            "cannot set {}: \"{}\" (from {}) {what}",
            property.target,
            text(),
            source()
        )
    };
    let p = &mut document.properties;
    match &property.target {
        PropertyName::MessageKey => p.message_key = Some(value.clone()),
        PropertyName::TopicName => {
            let topic = text();
            if crate::components::valid_topic(&topic).is_err() {
                return Err(invalid("is not a Kafka topic name"));
            }
            p.topic_name = Some(topic);
        }
        PropertyName::Partition => {
            p.partition = Some(
                text()
                    .trim()
                    .parse::<i32>()
                    .ok()
                    .filter(|n| *n >= 0)
                    .ok_or_else(|| invalid("is not a partition number (a whole number ≥ 0)"))?,
            )
        }
        PropertyName::Timestamp => {
            p.timestamp = Some(
                text()
                    .trim()
                    .parse::<i64>()
                    .map_err(|_| invalid("is not a timestamp (milliseconds since the epoch)"))?,
            )
        }
        PropertyName::Header(name) => {
            p.headers.retain(|h| &h.name != name);
            p.headers.push(Header {
                name: name.clone(),
                value: Some(value.clone()),
            });
        }
    }
    Ok(())
}

fn read_property(p: &DocumentProperties, name: &PropertyName) -> Option<Vec<u8>> {
    match name {
        PropertyName::MessageKey => p.message_key.clone(),
        PropertyName::TopicName => p.topic_name.clone().map(String::into_bytes),
        PropertyName::Partition => p.partition.map(|n| n.to_string().into_bytes()),
        PropertyName::Timestamp => p.timestamp.map(|n| n.to_string().into_bytes()),
        PropertyName::Header(header) => header_value(&p.headers, header),
    }
}

fn read_tracked(t: &TrackedProperties, name: &TrackedName) -> Option<Vec<u8>> {
    match name {
        TrackedName::Topic => t.topic.clone().map(String::into_bytes),
        TrackedName::Partition => t.partition.map(|n| n.to_string().into_bytes()),
        TrackedName::Offset => t.offset.map(|n| n.to_string().into_bytes()),
        TrackedName::Key => t.key.clone(),
        TrackedName::Timestamp => t.timestamp.map(|n| n.to_string().into_bytes()),
        TrackedName::Header(header) => header_value(&t.headers, header),
    }
}

/// The last value of a header (Kafka's convention for repeated headers); a null value counts
/// as absent.
fn header_value(headers: &[Header], name: &str) -> Option<Vec<u8>> {
    headers
        .iter()
        .rev()
        .find(|h| h.name == name)
        .and_then(|h| h.value.clone())
}
