//! The set-properties step: document properties set from constants, other properties,
//! headers or tracked properties; a document whose property cannot be set gets an error.

use sluice_connector::Header;

use crate::components::{PropertyName, PropertySource, SetProperty, TrackedName};
use crate::document::{Document, DocumentProperties, TrackedProperties};
use crate::record::ExecutionRecord;

/// Applies a set-properties step to every document; a document whose property cannot be set
/// gets an error and leaves the flow.
pub(super) fn set_properties(
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
