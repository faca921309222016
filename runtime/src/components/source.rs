//! A first pass over a component file with quick-xml's reader: it finds each component's byte
//! range and the position of every element and attribute inside it, because quick-xml's serde
//! errors carry no position and validation errors must name `line:column`.

use std::fmt;
use std::path::{Path, PathBuf};

use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

/// A place in a component file, as users see it: `file:line:column` (1-based, columns in
/// characters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The file, as the user named it (relative paths stay relative).
    pub file: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.column)
    }
}

/// A component file's text with a line index.
#[derive(Debug)]
pub(crate) struct SourceFile {
    pub path: PathBuf,
    pub text: String,
    line_starts: Vec<usize>,
}

impl SourceFile {
    pub fn new(path: &Path, text: String) -> Self {
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Self {
            path: path.to_path_buf(),
            text,
            line_starts,
        }
    }

    pub fn location(&self, offset: usize) -> Location {
        let offset = offset.min(self.text.len());
        let line = self.line_starts.partition_point(|&start| start <= offset);
        let line_start = self.line_starts[line - 1];
        let column = self
            .text
            .get(line_start..offset)
            .map_or(offset - line_start, |s| s.chars().count())
            + 1;
        Location {
            file: self.path.clone(),
            line,
            column,
        }
    }
}

/// The three kinds of component.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ComponentKind {
    /// `<connection>`
    Connection,
    /// `<operation>`
    Operation,
    /// `<process>`
    Process,
}

impl ComponentKind {
    fn from_element(name: &str) -> Option<Self> {
        match name {
            "connection" => Some(Self::Connection),
            "operation" => Some(Self::Operation),
            "process" => Some(Self::Process),
            _ => None,
        }
    }

    /// The element name, also how errors name the kind.
    pub fn name(self) -> &'static str {
        match self {
            Self::Connection => "connection",
            Self::Operation => "operation",
            Self::Process => "process",
        }
    }
}

/// One element inside a component: its path below the component element (`""` for the
/// component element itself, `"steps/connector"` for a step) and where its tag starts.
#[derive(Debug)]
pub(crate) struct Tag {
    pub path: String,
    pub start: usize,
    /// Attribute names with the offset where each name starts.
    pub attributes: Vec<(String, usize)>,
}

/// A component found by the scan.
#[derive(Debug)]
pub(crate) struct ScannedComponent {
    pub kind: ComponentKind,
    /// Byte range of the component element, start tag to end tag.
    pub range: std::ops::Range<usize>,
    /// The `id` attribute as written, if any.
    pub id: Option<String>,
    /// The `type` attribute as written, if any (operations).
    pub type_attribute: Option<String>,
    /// Every element of the component, the component element first, in document order.
    pub tags: Vec<Tag>,
}

impl ScannedComponent {
    pub fn start(&self) -> usize {
        self.range.start
    }

    /// Where the first element at `path` starts.
    pub fn element(&self, path: &str) -> Option<usize> {
        self.tags.iter().find(|t| t.path == path).map(|t| t.start)
    }

    /// Where the `n`-th (0-based) element at `path` starts.
    pub fn nth_element(&self, path: &str, n: usize) -> Option<usize> {
        self.tags
            .iter()
            .filter(|t| t.path == path)
            .nth(n)
            .map(|t| t.start)
    }

    /// Where attribute `name` of the `n`-th (0-based) element at `path` starts.
    pub fn nth_attribute(&self, path: &str, n: usize, name: &str) -> Option<usize> {
        self.tags
            .iter()
            .filter(|t| t.path == path)
            .nth(n)
            .and_then(|t| t.attributes.iter().find(|(a, _)| a == name).map(|a| a.1))
    }

    /// The `n`-th (0-based) child element of the element at `parent`, whatever its name.
    pub fn nth_child(&self, parent: &str, n: usize) -> Option<&Tag> {
        self.tags
            .iter()
            .filter(|t| {
                t.path
                    .strip_prefix(parent)
                    .and_then(|rest| rest.strip_prefix('/'))
                    .is_some_and(|name| !name.contains('/'))
            })
            .nth(n)
    }

    /// Where attribute `name` of the first element at `path` starts.
    pub fn attribute(&self, path: &str, name: &str) -> Option<usize> {
        self.tags
            .iter()
            .filter(|t| t.path == path)
            .find_map(|t| t.attributes.iter().find(|(n, _)| n == name).map(|a| a.1))
    }
}

/// A file that is not well-formed, or not shaped like a component file.
#[derive(Debug)]
pub(crate) struct ScanError {
    pub offset: usize,
    pub message: String,
}

const ROOT_HINT: &str = "a component file holds <components> with <connection>, <operation> \
                         and <process> elements inside, or a single one of those as its root";

/// Finds the components of a file.
pub(crate) fn scan(text: &str) -> Result<Vec<ScannedComponent>, ScanError> {
    let mut reader = Reader::from_str(text);
    reader.config_mut().trim_text(true);
    let mut scan = Scan::default();
    loop {
        let before = reader.buffer_position() as usize;
        let event = reader.read_event().map_err(|e| ScanError {
            offset: (reader.error_position() as usize).max(before.min(text.len())),
            message: format!("not well-formed XML: {e}"),
        })?;
        let end = reader.buffer_position() as usize;
        match event {
            Event::Start(ref tag) => scan.start_tag(tag, end, false)?,
            Event::Empty(ref tag) => scan.start_tag(tag, end, true)?,
            Event::End(_) => scan.end_tag(end),
            Event::Text(ref text_event) if scan.between_components() => {
                return Err(unexpected_text(text_event, before));
            }
            Event::Eof => break,
            _ => {}
        }
    }
    scan.finish(text.len())
}

/// What the scan knows between two events of the reader.
#[derive(Default)]
struct Scan {
    /// The components read to their end tag.
    components: Vec<ScannedComponent>,
    /// Element names from the root down to the current element.
    open: Vec<String>,
    /// Depth at which the component being read starts (0 for a single-component file).
    component_depth: Option<usize>,
    /// The component being read.
    current: Option<ScannedComponent>,
    /// Whether the root element has started (a second one is an error).
    saw_root: bool,
}

impl Scan {
    /// A start tag, or with `empty` a self-closing one, whose text ends at `end`.
    fn start_tag(
        &mut self,
        tag: &BytesStart<'_>,
        end: usize,
        empty: bool,
    ) -> Result<(), ScanError> {
        // The tag's text is `<` + content + (`/`)`>`, ending where the reader stands.
        let start = end - tag.len() - if empty { 3 } else { 2 };
        let name = String::from_utf8_lossy(tag.name().as_ref()).into_owned();
        let depth = self.open.len();
        if depth == 0 && self.saw_root {
            return Err(ScanError {
                offset: start,
                message: format!("a second root element <{name}>: {ROOT_HINT}"),
            });
        }
        self.saw_root = true;
        let starts_component = self.component_starting(&name, depth, start)?;
        if let Some(kind) = starts_component {
            self.component_depth = Some(depth);
            self.current = Some(ScannedComponent {
                kind,
                range: start..start,
                id: attribute_value(tag, "id"),
                type_attribute: attribute_value(tag, "type"),
                tags: Vec::new(),
            });
        }
        self.record_tag(tag, &name, depth, start);
        if !empty {
            self.open.push(name);
        } else if starts_component.is_some() {
            self.close_component(end);
        }
        Ok(())
    }

    /// The kind of component the element `<name>` at `depth` starts, if it starts one: the
    /// root element, or a child of a `<components>` root. An error when such an element names
    /// no kind of component.
    fn component_starting(
        &self,
        name: &str,
        depth: usize,
        start: usize,
    ) -> Result<Option<ComponentKind>, ScanError> {
        let in_container = self.open.first().is_some_and(|root| root == "components");
        let starts_component = match depth {
            0 if name == "components" => false,
            0 => true,
            1 if in_container => true,
            _ => false,
        };
        if !starts_component {
            return Ok(None);
        }
        match ComponentKind::from_element(name) {
            Some(kind) => Ok(Some(kind)),
            None => Err(ScanError {
                offset: start,
                message: if depth == 0 {
                    format!("unexpected root element <{name}>: {ROOT_HINT}")
                } else {
                    format!(
                        "unknown component <{name}>: expected <connection>, <operation> or \
                         <process>"
                    )
                },
            }),
        }
    }

    /// Records an element of the component being read (if any): its path below the component
    /// element, where it starts and where its attributes start.
    fn record_tag(&mut self, tag: &BytesStart<'_>, name: &str, depth: usize, start: usize) {
        let (Some(component), Some(cdepth)) = (self.current.as_mut(), self.component_depth) else {
            return;
        };
        let path = self
            .open
            .iter()
            .skip(cdepth + 1)
            .map(String::as_str)
            .chain((depth > cdepth).then_some(name))
            .collect::<Vec<_>>()
            .join("/");
        component.tags.push(Tag {
            path,
            start,
            attributes: attribute_offsets(tag, start),
        });
    }

    /// An end tag whose text ends at `end`; it may close the component being read.
    fn end_tag(&mut self, end: usize) {
        self.open.pop();
        if self.component_depth == Some(self.open.len()) {
            self.close_component(end);
        }
    }

    /// The component being read ends at `end`.
    fn close_component(&mut self, end: usize) {
        if let Some(mut component) = self.current.take() {
            component.range.end = end;
            self.components.push(component);
        }
    }

    /// Inside the root element but outside any component, where only elements belong.
    fn between_components(&self) -> bool {
        self.current.is_none() && !self.open.is_empty()
    }

    /// The components found, once the reader reached the end of the text (`len` bytes): an
    /// error when an element is still open or there was none.
    fn finish(self, len: usize) -> Result<Vec<ScannedComponent>, ScanError> {
        // quick-xml ends quietly at the end of the text even inside elements: a file cut short
        // (a copy interrupted, an editor's partial save) must not load as whatever it holds.
        if let Some(innermost) = self.open.last() {
            let closing: String = self
                .open
                .iter()
                .rev()
                .map(|name| format!("</{name}>"))
                .collect();
            return Err(ScanError {
                offset: len,
                message: format!(
                    "the file ends inside <{innermost}>: is it complete? Close what is open with {closing}"
                ),
            });
        }
        if !self.saw_root {
            return Err(ScanError {
                offset: 0,
                message: format!("the file has no elements: {ROOT_HINT}"),
            });
        }
        Ok(self.components)
    }
}

/// Text between components, shown by its first 20 characters.
fn unexpected_text(text: &[u8], offset: usize) -> ScanError {
    let shown = String::from_utf8_lossy(text)
        .chars()
        .take(20)
        .collect::<String>();
    ScanError {
        offset,
        message: format!("unexpected text \"{shown}\" between components: {ROOT_HINT}"),
    }
}

fn attribute_value(tag: &BytesStart<'_>, name: &str) -> Option<String> {
    tag.attributes()
        .with_checks(false)
        .flatten()
        .find(|a| a.key.as_ref() == name.as_bytes())
        .and_then(|a| a.unescape_value().ok().map(|v| v.into_owned()))
}

/// Attribute names and where they start: quick-xml's attribute iterator does not report
/// positions, so find each `name=` in the tag's own text.
fn attribute_offsets(tag: &BytesStart<'_>, tag_start: usize) -> Vec<(String, usize)> {
    let raw: &[u8] = tag;
    let mut found = Vec::new();
    let mut i = tag.name().as_ref().len();
    while i < raw.len() {
        if raw[i].is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let name_start = i;
        while i < raw.len() && raw[i] != b'=' && !raw[i].is_ascii_whitespace() {
            i += 1;
        }
        let name = String::from_utf8_lossy(&raw[name_start..i]).into_owned();
        while i < raw.len() && (raw[i] == b'=' || raw[i].is_ascii_whitespace()) {
            i += 1;
        }
        if i < raw.len() && (raw[i] == b'"' || raw[i] == b'\'') {
            let quote = raw[i];
            i += 1;
            while i < raw.len() && raw[i] != quote {
                i += 1;
            }
            i += 1;
        }
        if !name.is_empty() && name != "/" {
            // +1 for the `<` before the tag's content.
            found.push((name, tag_start + 1 + name_start));
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_components_and_their_elements() {
        let text = "<components>\n  <connection id=\"c\">\n    <client-id>x</client-id>\n  \
                    </connection>\n  <process id=\"p\"><steps><connector operation=\"o\"/></steps></process>\n</components>\n";
        let found = scan(text).expect("valid");
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].kind, ComponentKind::Connection);
        assert_eq!(found[0].id.as_deref(), Some("c"));
        let file = SourceFile::new(Path::new("f.xml"), text.to_string());
        let at = found[0].element("client-id").expect("client-id");
        assert_eq!(file.location(at).to_string(), "f.xml:3:5");
        assert_eq!(
            file.location(found[0].attribute("", "id").expect("id"))
                .to_string(),
            "f.xml:2:15"
        );
        let step = found[1].nth_child("steps", 0).expect("step");
        assert_eq!(step.path, "steps/connector");
        assert_eq!(&text[found[1].range.clone()][..9], "<process ");
        assert!(text[found[1].range.clone()].ends_with("</process>"));
    }

    #[test]
    fn a_single_component_may_be_the_root() {
        let found = scan("<operation id=\"o\" type=\"produce\"/>").expect("valid");
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].range, 0..34);
    }

    #[test]
    fn rejects_unknown_components_with_position() {
        let err = scan("<components>\n <widget/>\n</components>").unwrap_err();
        assert_eq!(err.offset, 14);
        assert_eq!(
            err.message,
            "unknown component <widget>: expected <connection>, <operation> or <process>"
        );
    }

    #[test]
    fn reports_malformed_xml() {
        let err = scan("<components>\n<connection id=\"c\">\n</components>").unwrap_err();
        assert!(
            err.message.starts_with("not well-formed XML"),
            "{}",
            err.message
        );
    }
}
