//! Documents: the unit of data flowing through a process, and how `sluice run` reads and
//! writes them.

use std::io::BufRead;
use std::path::Path;
use std::sync::Arc;

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sluice_connector::Header;

/// One unit of data: bytes plus the properties operations read and set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Document {
    /// The payload.
    pub data: Vec<u8>,
    /// Values operations read or set.
    pub properties: DocumentProperties,
    /// Values recorded about the document (where it was read from or written to).
    pub tracked: TrackedProperties,
    /// Set when an operation returned this document as an application error that still flows
    /// on (seed 003: a consumed message over max.request.size, which Commit Offset must still
    /// commit). Produce and set-properties pass such documents through untouched.
    pub application_error: Option<String>,
}

/// Document properties of the Kafka connector: message key and topic name (seed 003), plus
/// partition, timestamp and headers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DocumentProperties {
    /// Message key: the record key, which picks the partition. Shared (a clone is a count),
    /// as a consumed or produced document's key is also its tracked key.
    pub message_key: Option<Arc<[u8]>>,
    /// Topic name: the topic the document was read from; Produce sends to it when the
    /// operation allows dynamic topics. Shared by the documents read from one topic.
    pub topic_name: Option<Arc<str>>,
    /// Partition to produce to.
    pub partition: Option<i32>,
    /// Record timestamp, milliseconds since the epoch.
    pub timestamp: Option<i64>,
    /// Record headers, in order; names may repeat.
    pub headers: Vec<Header>,
}

/// Where a document was read from or written to (recorded, not meant to be changed).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrackedProperties {
    /// Topic, shared by the documents of an execution that read or wrote it.
    pub topic: Option<Arc<str>>,
    /// Partition.
    pub partition: Option<i32>,
    /// Offset.
    pub offset: Option<i64>,
    /// Record key, as read or written.
    pub key: Option<Arc<[u8]>>,
    /// Record timestamp, milliseconds since the epoch.
    pub timestamp: Option<i64>,
    /// Record headers, as read.
    pub headers: Vec<Header>,
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
    read_file(path, format)?.collect()
}

/// A reader of the documents of the file `path` (`Auto`: `.jsonl` and `.ndjson` files as
/// JSON lines, any other as lines).
pub fn read_file(
    path: &Path,
    format: InputFormat,
) -> Result<DocumentReader<std::io::BufReader<std::fs::File>>, InputError> {
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
    let source_name = path.display().to_string();
    let file = std::fs::File::open(path).map_err(|e| InputError {
        source_name: source_name.clone(),
        line: 0,
        message: format!("cannot be read: {e}"),
    })?;
    Ok(DocumentReader::new(
        std::io::BufReader::new(file),
        &source_name,
        format,
    ))
}

/// Reads documents in `format` (`Auto` reads lines) from `input`; `source_name` names it in
/// errors.
pub fn read_documents(
    input: impl BufRead,
    source_name: &str,
    format: InputFormat,
) -> Result<Vec<Document>, InputError> {
    DocumentReader::new(input, source_name, format).collect()
}

/// The documents of one input, read one at a time (`Auto` reads lines).
pub struct DocumentReader<R> {
    lines: std::io::Split<R>,
    /// Lines read so far.
    line: usize,
    source_name: String,
    format: InputFormat,
}

impl<R: BufRead> DocumentReader<R> {
    /// Reads `input`, named `source_name` in errors.
    pub fn new(input: R, source_name: &str, format: InputFormat) -> Self {
        Self {
            lines: input.split(b'\n'),
            line: 0,
            source_name: source_name.to_string(),
            format,
        }
    }

    /// Up to `max_documents` documents, and fewer once their payloads reach `max_bytes`:
    /// a chunk of a large input.
    pub fn chunk(
        &mut self,
        max_documents: usize,
        max_bytes: usize,
    ) -> Result<Vec<Document>, InputError> {
        let mut chunk = Vec::new();
        let mut bytes = 0;
        while chunk.len() < max_documents && bytes < max_bytes {
            let Some(document) = self.next().transpose()? else {
                break;
            };
            bytes += document.data.len();
            chunk.push(document);
        }
        Ok(chunk)
    }
}

impl<R: BufRead> Iterator for DocumentReader<R> {
    type Item = Result<Document, InputError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let line = self.lines.next()?;
            self.line += 1;
            let fail = |message: String| InputError {
                source_name: self.source_name.clone(),
                line: self.line,
                message,
            };
            let mut line = match line {
                Ok(line) => line,
                Err(e) => return Some(Err(fail(format!("cannot be read: {e}")))),
            };
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            if line.is_empty() {
                continue;
            }
            return Some(match self.format {
                InputFormat::Jsonl => from_json_line(&line).map_err(fail),
                _ => Ok(Document {
                    data: line,
                    ..Document::default()
                }),
            });
        }
    }
}

// ---- The JSON-lines envelope -------------------------------------------------------------
//
// {"data": "text" | any JSON value, "data-base64": "…",
//  "properties": {"message-key": B, "topic-name": "…", "partition": 0, "timestamp": 0,
//                 "headers": {"name": B | null | [B, …]}},
//  "tracked": {"topic": "…", "partition": 0, "offset": 0, "key": B, "timestamp": 0,
//              "headers": {…}},
//  "application-error": "…"}
// where B, a binary-safe value, is a string when the bytes are UTF-8, else {"base64": "…"}.

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct Envelope {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    data: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    data_base64: Option<String>,
    #[serde(default, skip_serializing_if = "PropertiesJson::is_empty")]
    properties: PropertiesJson,
    #[serde(default, skip_serializing_if = "TrackedJson::is_empty")]
    tracked: TrackedJson,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    application_error: Option<String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct PropertiesJson {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    message_key: Option<BytesJson>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    topic_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    partition: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    timestamp: Option<i64>,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    headers: Map<String, Value>,
}

impl PropertiesJson {
    fn is_empty(&self) -> bool {
        self.message_key.is_none()
            && self.topic_name.is_none()
            && self.partition.is_none()
            && self.timestamp.is_none()
            && self.headers.is_empty()
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct TrackedJson {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    topic: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    partition: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    offset: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    key: Option<BytesJson>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    timestamp: Option<i64>,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    headers: Map<String, Value>,
}

impl TrackedJson {
    fn is_empty(&self) -> bool {
        self.topic.is_none()
            && self.partition.is_none()
            && self.offset.is_none()
            && self.key.is_none()
            && self.timestamp.is_none()
            && self.headers.is_empty()
    }
}

/// Bytes in JSON: text when they are UTF-8, base64 otherwise.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
enum BytesJson {
    Text(String),
    Base64 { base64: String },
}

impl BytesJson {
    fn from_bytes(bytes: &[u8]) -> Self {
        match std::str::from_utf8(bytes) {
            Ok(text) => Self::Text(text.to_string()),
            Err(_) => Self::Base64 {
                base64: base64::engine::general_purpose::STANDARD.encode(bytes),
            },
        }
    }

    fn into_bytes(self, what: &str) -> Result<Vec<u8>, String> {
        match self {
            Self::Text(text) => Ok(text.into_bytes()),
            Self::Base64 { base64 } => base64::engine::general_purpose::STANDARD
                .decode(base64.trim())
                .map_err(|e| format!("{what} is not valid base64: {e}")),
        }
    }
}

fn headers_to_json(headers: &[Header]) -> Map<String, Value> {
    let mut map = Map::new();
    for header in headers {
        let value = match &header.value {
            Some(bytes) => {
                serde_json::to_value(BytesJson::from_bytes(bytes)).expect("strings serialize")
            }
            None => Value::Null,
        };
        // A repeated name becomes an array of its values, in order (a single value is never
        // an array, so an array always stands for a repeated name).
        match map.get_mut(&header.name) {
            Some(Value::Array(values)) => values.push(value),
            Some(existing) => {
                let first = existing.take();
                *existing = Value::Array(vec![first, value]);
            }
            None => {
                map.insert(header.name.clone(), value);
            }
        }
    }
    map
}

fn headers_from_json(map: Map<String, Value>) -> Result<Vec<Header>, String> {
    let mut headers = Vec::new();
    for (name, value) in map {
        let values = match value {
            Value::Array(values) => values,
            other => vec![other],
        };
        for value in values {
            let value = match value {
                Value::Null => None,
                other => Some(
                    serde_json::from_value::<BytesJson>(other)
                        .map_err(|_| {
                            format!(
                                "header \"{name}\" must be a string, {{\"base64\": \"…\"}}, null \
                                 or an array of those"
                            )
                        })?
                        .into_bytes(&format!("header \"{name}\""))?,
                ),
            };
            headers.push(Header {
                name: name.clone(),
                value,
            });
        }
    }
    Ok(headers)
}

fn from_json_line(line: &[u8]) -> Result<Document, String> {
    let envelope: Envelope = serde_json::from_slice(line).map_err(|e| {
        format!(
            "not a document envelope ({e}); expected {{\"data\": \"…\", \"properties\": \
             {{\"message-key\": \"…\", \"topic-name\": \"…\"}}}}"
        )
    })?;
    let data = match (envelope.data, envelope.data_base64) {
        (Some(_), Some(_)) => return Err("give data or data-base64, not both".into()),
        (Some(Value::String(text)), None) => text.into_bytes(),
        (Some(value), None) => value.to_string().into_bytes(),
        (None, Some(encoded)) => base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .map_err(|e| format!("data-base64 is not base64: {e}"))?,
        (None, None) => Vec::new(),
    };
    let p = envelope.properties;
    let t = envelope.tracked;
    Ok(Document {
        data,
        properties: DocumentProperties {
            message_key: p
                .message_key
                .map(|k| k.into_bytes("message-key").map(Arc::from))
                .transpose()?,
            topic_name: p.topic_name.map(Arc::from),
            partition: p.partition,
            timestamp: p.timestamp,
            headers: headers_from_json(p.headers)?,
        },
        tracked: TrackedProperties {
            topic: t.topic.map(Arc::from),
            partition: t.partition,
            offset: t.offset,
            key: t
                .key
                .map(|k| k.into_bytes("tracked key").map(Arc::from))
                .transpose()?,
            timestamp: t.timestamp,
            headers: headers_from_json(t.headers)?,
        },
        application_error: envelope.application_error,
    })
}

/// The JSON-lines envelope of a document, as `--documents-out` writes it (and `--input`
/// reads it back): `data` when the payload is UTF-8 text, `data-base64` otherwise.
pub fn to_json_line(document: &Document) -> String {
    let (data, data_base64) = match std::str::from_utf8(&document.data) {
        Ok(text) => (Some(Value::String(text.to_string())), None),
        Err(_) => (
            None,
            Some(base64::engine::general_purpose::STANDARD.encode(&document.data)),
        ),
    };
    let p = &document.properties;
    let t = &document.tracked;
    let envelope = Envelope {
        data,
        data_base64,
        properties: PropertiesJson {
            message_key: p.message_key.as_deref().map(BytesJson::from_bytes),
            topic_name: p.topic_name.as_deref().map(str::to_string),
            partition: p.partition,
            timestamp: p.timestamp,
            headers: headers_to_json(&p.headers),
        },
        tracked: TrackedJson {
            topic: t.topic.as_deref().map(str::to_string),
            partition: t.partition,
            offset: t.offset,
            key: t.key.as_deref().map(BytesJson::from_bytes),
            timestamp: t.timestamp,
            headers: headers_to_json(&t.headers),
        },
        application_error: document.application_error.clone(),
    };
    serde_json::to_string(&envelope).expect("an envelope of strings and numbers serializes")
}

/// Bytes as a person reads them: the text when UTF-8, else base64 with a `base64:` prefix.
pub fn show_bytes(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(text) => text.to_string(),
        Err(_) => format!(
            "base64:{}",
            base64::engine::general_purpose::STANDARD.encode(bytes)
        ),
    }
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
        let input = br#"{"data": "hi", "properties": {"message-key": "k1", "topic-name": "t", "partition": 2, "headers": {"h": "v", "bin": {"base64": "AP8="}, "twice": ["a", null]}}}
{"data": {"n": 1}}
{"data-base64": "AP8=", "properties": {"message-key": {"base64": "/w=="}}}
"#;
        let docs = read_documents(&input[..], "in", InputFormat::Jsonl).expect("valid");
        assert_eq!(docs[0].data, b"hi");
        let p = &docs[0].properties;
        assert_eq!(p.message_key.as_deref(), Some(&b"k1"[..]));
        assert_eq!(p.topic_name.as_deref(), Some("t"));
        assert_eq!(p.partition, Some(2));
        let header = |name: &str, value: Option<&[u8]>| Header {
            name: name.into(),
            value: value.map(<[u8]>::to_vec),
        };
        assert_eq!(
            p.headers,
            [
                header("h", Some(b"v")),
                header("bin", Some(&[0, 255])),
                header("twice", Some(b"a")),
                header("twice", None)
            ]
        );
        assert_eq!(docs[1].data, br#"{"n":1}"#);
        assert_eq!(docs[2].data, [0, 255]);
        assert_eq!(
            to_json_line(&docs[2]),
            r#"{"data-base64":"AP8=","properties":{"message-key":{"base64":"/w=="}}}"#
        );
        // What is written reads back the same.
        let again = read_documents(
            to_json_line(&docs[0]).as_bytes(),
            "again",
            InputFormat::Jsonl,
        )
        .expect("valid");
        assert_eq!(again[0], docs[0]);
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
