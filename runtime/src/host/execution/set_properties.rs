//! The set-properties step: document properties set from constants, other properties,
//! headers or tracked properties; a document whose property cannot be set gets an error.

use sluice_connector::Header;

use crate::components::{
    PropertyName, PropertySource, SetProperty, Template, TemplatePart, TrackedName,
};
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
    let source = || describe(&property.source);
    let skip = |why: String| {
        if property.optional {
            Ok(())
        } else {
            Err(format!(
                "cannot set {}: {why} (mark the property optional=\"true\" to skip such \
                 documents' value)",
                property.target
            ))
        }
    };
    let value = match source_value(&property.source, document) {
        Ok(value) => value,
        Err(missing) => return skip(format!("the document has no {missing}")),
    };
    let value = match &property.pattern {
        None => value,
        Some(pattern) => match pattern.extract(&value) {
            Some(part) => part.to_vec(),
            None => {
                return skip(format!(
                    "\"{}\" (from {}) does not match regex \"{}\"",
                    String::from_utf8_lossy(&value),
                    source(),
                    pattern.as_str()
                ))
            }
        },
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
        PropertyName::MessageKey => p.message_key = Some(value.as_slice().into()),
        PropertyName::TopicName => {
            let topic = text();
            if crate::components::valid_topic(&topic).is_err() {
                return Err(invalid("is not a Kafka topic name"));
            }
            p.topic_name = Some(topic.into());
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

/// The source's value, or what the document lacks for it.
fn source_value(source: &PropertySource, document: &Document) -> Result<Vec<u8>, String> {
    let missing = || describe(source);
    match source {
        PropertySource::Constant(value) => Ok(value.clone().into_bytes()),
        PropertySource::Property(name) => {
            read_property(&document.properties, name).ok_or_else(missing)
        }
        PropertySource::Tracked(name) => read_tracked(&document.tracked, name).ok_or_else(missing),
        PropertySource::Template(template) => render(template, document),
    }
}

/// A template with the document's values in place, or the first value it lacks.
fn render(template: &Template, document: &Document) -> Result<Vec<u8>, String> {
    let mut value = Vec::new();
    for part in template.parts() {
        let piece = match part {
            TemplatePart::Text(text) => {
                value.extend_from_slice(text.as_bytes());
                continue;
            }
            TemplatePart::Property(name) => {
                read_property(&document.properties, name).ok_or_else(|| format!("property {name}"))
            }
            TemplatePart::Tracked(name) => read_tracked(&document.tracked, name)
                .ok_or_else(|| format!("tracked property {name}")),
        };
        match piece {
            Ok(piece) => value.extend_from_slice(&piece),
            Err(wanted) => return Err(format!("{wanted} (in template \"{}\")", template.as_str())),
        }
    }
    Ok(value)
}

/// Where a value comes from, for messages.
fn describe(source: &PropertySource) -> String {
    match source {
        PropertySource::Constant(_) => "the constant".to_string(),
        PropertySource::Property(name) => format!("property {name}"),
        PropertySource::Tracked(name) => format!("tracked property {name}"),
        PropertySource::Template(template) => format!("template \"{}\"", template.as_str()),
    }
}

fn read_property(p: &DocumentProperties, name: &PropertyName) -> Option<Vec<u8>> {
    match name {
        PropertyName::MessageKey => p.message_key.as_deref().map(<[u8]>::to_vec),
        PropertyName::TopicName => p.topic_name.as_deref().map(|t| t.as_bytes().to_vec()),
        PropertyName::Partition => p.partition.map(|n| n.to_string().into_bytes()),
        PropertyName::Timestamp => p.timestamp.map(|n| n.to_string().into_bytes()),
        PropertyName::Header(header) => header_value(&p.headers, header),
    }
}

fn read_tracked(t: &TrackedProperties, name: &TrackedName) -> Option<Vec<u8>> {
    match name {
        TrackedName::Topic => t.topic.as_deref().map(|t| t.as_bytes().to_vec()),
        TrackedName::Partition => t.partition.map(|n| n.to_string().into_bytes()),
        TrackedName::Offset => t.offset.map(|n| n.to_string().into_bytes()),
        TrackedName::Key => t.key.as_deref().map(<[u8]>::to_vec),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::components::ValuePattern;

    fn keyed(key: &[u8]) -> Document {
        Document {
            tracked: TrackedProperties {
                key: Some(key.into()),
                offset: Some(41),
                ..TrackedProperties::default()
            },
            ..Document::default()
        }
    }

    #[test]
    fn a_binary_key_is_taken_by_its_bytes() {
        let property = SetProperty {
            target: PropertyName::MessageKey,
            source: PropertySource::Tracked(TrackedName::Key),
            pattern: Some(ValuePattern::parse(r"(?-u)^(.+)\xFE").expect("valid")),
            optional: false,
        };
        let mut document = keyed(&[0x00, 0xff, 0xfe, b'x']);
        set_property(&property, &mut document).expect("matches");
        assert_eq!(
            document.properties.message_key.as_deref(),
            Some(&[0x00, 0xff][..])
        );
    }

    #[test]
    fn a_template_without_its_value_is_the_documents_error_unless_optional() {
        let template = Template::parse("{tracked:offset}-{header:tenant}").expect("valid");
        let mut property = SetProperty {
            target: PropertyName::MessageKey,
            source: PropertySource::Template(template),
            pattern: None,
            optional: false,
        };
        let mut document = keyed(b"k");
        assert_eq!(
            set_property(&property, &mut document).unwrap_err(),
            "cannot set message-key: the document has no property header:tenant (in template \
             \"{tracked:offset}-{header:tenant}\") (mark the property optional=\"true\" to skip \
             such documents' value)"
        );
        property.optional = true;
        set_property(&property, &mut document).expect("optional");
        assert_eq!(document.properties.message_key, None);
        document.properties.headers.push(Header {
            name: "tenant".into(),
            value: Some(b"acme".to_vec()),
        });
        set_property(&property, &mut document).expect("complete");
        assert_eq!(
            document.properties.message_key.as_deref(),
            Some(&b"41-acme"[..])
        );
    }
}
