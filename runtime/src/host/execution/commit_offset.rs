//! The Commit Offset step: each document names a position (from a Consume's tracked
//! properties, or the platform's JSON layout), and gets its own success or error.

use sluice_connector::commit_offset::{self, CommitRequest};
use sluice_connector::ConnectorError;

use super::Host;
use crate::advice::UserMessage as _;
use crate::components::{CommitOffsetDefinition, OperationDefinition};
use crate::document::Document;
use crate::record::ExecutionRecord;

impl Host {
    pub(super) async fn commit(
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
                    let message = error.user_message();
                    record.document_error(position, step, &op.id, message, document.tracked)
                }
            }
        }
        Ok(committed)
    }
}

/// The commit a document asks for: from its tracked properties when it came from a Consume,
/// else from the platform's JSON layout in its data.
fn commit_request(document: &Document) -> Result<CommitRequest, String> {
    let t = &document.tracked;
    if let (Some(topic), Some(partition), Some(offset)) = (&t.topic, t.partition, t.offset) {
        return Ok(CommitRequest {
            topic: topic.to_string(),
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
