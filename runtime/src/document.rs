//! Documents: the unit of data flowing through a process, and how `sluice run` reads and
//! writes them.

use std::io::BufRead;
use std::path::Path;

use base64::Engine as _;
use serde::{Deserialize, Serialize};

/// One unit of data: bytes plus the properties operations read and set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Document {
    /// The payload.
    pub data: Vec<u8>,
    /// Values operations read or set (message key, topic name).
    pub properties: DocumentProperties,
    /// Values recorded about the document (where it was read from or written to).
    pub tracked: TrackedProperties,
}

/// Document properties of the Kafka connector (seed 003).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct DocumentProperties {
    /// Message key: Produce sends it as the record key, which picks the partition.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_key: Option<String>,
    /// Topic name: overrides the Produce operation's topic for this document.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub topic_name: Option<String>,
}

/// Where a document was read from or written to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct TrackedProperties {
    /// Topic.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    /// Partition.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partition: Option<i32>,
    /// Offset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<i64>,
    /// Record timestamp, milliseconds since the epoch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<i64>,
}

/// The JSON-lines envelope of one document. `data` is text (or any JSON value, sent as its
/// compact JSON text); `data-base64` carries binary payloads.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct Envelope {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    data: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    data_base64: Option<String>,
    #[serde(default, skip_serializing_if = "is_default")]
    properties: DocumentProperties,
    #[serde(default, skip_serializing_if = "is_default")]
    tracked: TrackedProperties,
}

fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}

/// How `--input` is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum InputFormat {
    /// `.jsonl`/`.ndjson` files as jsonl, anything else as lines.
    Auto,
    /// One document per line, the line's text as payload; empty lines are skipped.
    Lines,
    /// One JSON envelope per line: {"data": …, "properties": {"message-key": …, "topic-name": …}}.
    Jsonl,
}

/// A line of `--input` that is not a valid document.
#[derive(Debug, thiserror::Error)]
#[error("{source_name}:{line}: {message}")]
pub struct InputError {
    /// File name or `stdin`.
    pub source_name: String,
    /// 1-based line (0 when the whole input failed).
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// Reads the documents of `--input`: a file, `-` for standard input, or a folder (one
/// document per file, in name order).
pub fn read_input(path: &Path, format: InputFormat) -> Result<Vec<Document>, InputError> {
    let source_name = path.display().to_string();
    let fail = |line, message: String| InputError {
        source_name: source_name.clone(),
        line,
        message,
    };
    if path == Path::new("-") {
        let format = if format == InputFormat::Auto {
            InputFormat::Lines
        } else {
            format
        };
        return read_documents(std::io::stdin().lock(), "stdin", format);
    }
    if path.is_dir() {
        let mut files: Vec<_> = std::fs::read_dir(path)
            .map_err(|e| fail(0, format!("cannot be listed: {e}")))?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        return files
            .iter()
            .map(|file| {
                std::fs::read(file)
                    .map(|data| Document {
                        data,
                        ..Document::default()
                    })
                    .map_err(|e| fail(0, format!("{} cannot be read: {e}", file.display())))
            })
            .collect();
    }
    let format = match format {
        InputFormat::Auto
            if path
                .extension()
                .is_some_and(|e| e == "jsonl" || e == "ndjson") =>
        {
            InputFormat::Jsonl
        }
        InputFormat::Auto => InputFormat::Lines,
        other => other,
    };
    let file = std::fs::File::open(path).map_err(|e| fail(0, format!("cannot be read: {e}")))?;
    read_documents(std::io::BufReader::new(file), &source_name, format)
}

/// Reads documents in `format` (`Auto` reads lines) from `input`; `source_name` names it in
/// errors.
pub fn read_documents(
    input: impl BufRead,
    source_name: &str,
    format: InputFormat,
) -> Result<Vec<Document>, InputError> {
    let mut documents = Vec::new();
    for (index, line) in input.split(b'\n').enumerate() {
        let fail = |message: String| InputError {
            source_name: source_name.to_string(),
            line: index + 1,
            message,
        };
        let mut line = line.map_err(|e| fail(format!("cannot be read: {e}")))?;
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        if line.is_empty() {
            continue;
        }
        let document = match format {
            InputFormat::Jsonl => parse_envelope(&line).map_err(fail)?,
            _ => Document {
                data: line,
                ..Document::default()
            },
        };
        documents.push(document);
    }
    Ok(documents)
}

fn parse_envelope(line: &[u8]) -> Result<Document, String> {
    let envelope: Envelope = serde_json::from_slice(line).map_err(|e| {
        format!(
            "not a document envelope ({e}); expected {{\"data\": \"…\", \"properties\": \
             {{\"message-key\": \"…\", \"topic-name\": \"…\"}}}}"
        )
    })?;
    let data = match (envelope.data, envelope.data_base64) {
        (Some(_), Some(_)) => return Err("give data or data-base64, not both".into()),
        (Some(serde_json::Value::String(text)), None) => text.into_bytes(),
        (Some(value), None) => value.to_string().into_bytes(),
        (None, Some(encoded)) => base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .map_err(|e| format!("data-base64 is not base64: {e}"))?,
        (None, None) => Vec::new(),
    };
    Ok(Document {
        data,
        properties: envelope.properties,
        tracked: envelope.tracked,
    })
}

/// The JSON-lines envelope of a document, as `--documents-out` writes it: `data` when the
/// payload is UTF-8 text, `data-base64` otherwise.
pub fn to_json_line(document: &Document) -> String {
    let (data, data_base64) = match std::str::from_utf8(&document.data) {
        Ok(text) => (Some(serde_json::Value::String(text.to_string())), None),
        Err(_) => (
            None,
            Some(base64::engine::general_purpose::STANDARD.encode(&document.data)),
        ),
    };
    let envelope = Envelope {
        data,
        data_base64,
        properties: document.properties.clone(),
        tracked: document.tracked.clone(),
    };
    serde_json::to_string(&envelope).expect("an envelope of strings and numbers serializes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_skip_empty_lines_and_crlf() {
        let docs = read_documents(&b"a\r\n\nb\n"[..], "in", InputFormat::Lines).expect("valid");
        assert_eq!(
            docs.iter().map(|d| d.data.clone()).collect::<Vec<_>>(),
            [b"a".to_vec(), b"b".to_vec()]
        );
    }

    #[test]
    fn envelopes_carry_properties_and_binary_data() {
        let input = br#"{"data": "hi", "properties": {"message-key": "k1", "topic-name": "t"}}
{"data": {"n": 1}}
{"data-base64": "AP8="}
"#;
        let docs = read_documents(&input[..], "in", InputFormat::Jsonl).expect("valid");
        assert_eq!(docs[0].data, b"hi");
        assert_eq!(docs[0].properties.message_key.as_deref(), Some("k1"));
        assert_eq!(docs[0].properties.topic_name.as_deref(), Some("t"));
        assert_eq!(docs[1].data, br#"{"n":1}"#);
        assert_eq!(docs[2].data, [0, 255]);
        assert_eq!(to_json_line(&docs[2]), r#"{"data-base64":"AP8="}"#);
    }

    #[test]
    fn a_bad_envelope_names_its_line() {
        let err = read_documents(
            &b"{\"data\": \"x\"}\n{\"key\": 1}\n"[..],
            "in.jsonl",
            InputFormat::Jsonl,
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("in.jsonl:2: not a document envelope (unknown field `key`"),
            "{err}"
        );
    }
}
