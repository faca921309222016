//! Reading files and components: the `*.xml` files under a path, and one component into its
//! raw struct, with serde's messages rewritten to name the element or attribute and where it
//! is written.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

use super::check::Checker;
use super::operation::OperationType;
use super::source::{ComponentKind, ScannedComponent};
use super::values;

/// How many unknown or repeated elements and attributes one component may have before the
/// rest of it is not read: each costs another pass over the component.
const MOST_SKIPPED: usize = 50;

/// Reads one component into its raw struct; serde's messages are rewritten to name the
/// element or attribute and located where it is written. An unknown or repeated element or
/// attribute is reported and then left out, and the component read again, so that one pass
/// reports it together with the errors of the other fields (not one after the other fix).
pub(super) fn deserialize<T: DeserializeOwned>(checker: &mut Checker<'_>) -> Option<T> {
    let range = checker.scanned().range.clone();
    let mut text = checker.file().text[range.clone()].to_string();
    for _ in 0..MOST_SKIPPED {
        let error = match quick_xml::de::from_str::<T>(&text) {
            Ok(raw) => return Some(raw),
            Err(e) => e.to_string(),
        };
        // What is left out is blanked with spaces, so every offset stays where it was.
        let live = |offset: usize| {
            text.as_bytes().get(offset - range.start) == Some(&b'<')
                || text
                    .as_bytes()
                    .get(offset - range.start)
                    .is_some_and(u8::is_ascii_alphabetic)
        };
        let (offset, message, skip) = explain_de_error(checker.scanned(), &error, live);
        checker.error_at(offset, message);
        if let Some(name) = error.split('`').nth(1) {
            checker
                .skipped
                .push(name.trim_start_matches('@').to_string());
        }
        let skipped = skip.and_then(|skip| {
            let start = offset - range.start;
            let end = match skip {
                Skip::Element => element_end(&text, start)?,
                Skip::Attribute => attribute_end(&text, start)?,
            };
            Some(start..end)
        })?;
        let blank = " ".repeat(skipped.len());
        text.replace_range(skipped, &blank);
    }
    None
}

/// What of the component can be left out to read the rest.
enum Skip {
    /// The element that starts at the error's offset, with everything in it.
    Element,
    /// The attribute whose name starts at the error's offset, with its value.
    Attribute,
}

/// Where the element that starts at `start` (its `<`) ends, just after its end tag.
fn element_end(text: &str, start: usize) -> Option<usize> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(text.get(start..)?);
    let mut depth = 0usize;
    loop {
        match reader.read_event().ok()? {
            Event::Start(_) => depth += 1,
            Event::End(_) => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    break;
                }
            }
            Event::Empty(_) if depth == 0 => break,
            Event::Eof => return None,
            _ => {}
        }
    }
    Some(start + reader.buffer_position() as usize)
}

/// Where the attribute whose name starts at `start` ends, just after its closing quote.
fn attribute_end(text: &str, start: usize) -> Option<usize> {
    let rest = text.get(start..)?;
    let equals = rest.find('=')?;
    let after = rest[equals + 1..].trim_start();
    let quote = after.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let opened = rest.len() - after.len() + 1;
    let closed = rest[opened..].find(quote)?;
    Some(start + opened + closed + 1)
}

/// Turns serde's "unknown field `x`, expected one of `a`, `b`" and friends into our messages,
/// with what to leave out to read the rest. `live` says whether the tag or attribute at an
/// offset is still there (not left out by an earlier pass).
fn explain_de_error(
    scanned: &ScannedComponent,
    message: &str,
    live: impl Fn(usize) -> bool,
) -> (usize, String, Option<Skip>) {
    let ticked: Vec<&str> = message.split('`').skip(1).step_by(2).collect();
    let name = ticked.first().copied().unwrap_or_default();
    let is_attribute = name.starts_with('@');
    let bare = name.trim_start_matches('@');
    // Elements of other operation types are valid XML-wise but not worth suggesting.
    let type_fields = match scanned.kind {
        ComponentKind::Operation => scanned
            .type_attribute
            .as_deref()
            .and_then(OperationType::from_name)
            .map(OperationType::fields),
        _ => None,
    };
    // serde lists the expected names after the offending one; offer those of the same sort.
    let expected: Vec<&str> = ticked
        .iter()
        .skip(1)
        .filter(|n| n.starts_with('@') == is_attribute && **n != "@xmlns" && **n != "$value")
        .map(|n| n.trim_start_matches('@'))
        .filter(|n| is_attribute || type_fields.as_ref().is_none_or(|fields| fields.contains(n)))
        .collect();
    let show = |n: &str| {
        if is_attribute {
            n.to_string()
        } else {
            format!("<{n}>")
        }
    };
    let offset_of = |n: &str| {
        if is_attribute {
            scanned.tags.iter().find_map(|t| {
                t.attributes
                    .iter()
                    .find(|(a, at)| a == n && live(*at))
                    .map(|a| a.1)
            })
        } else {
            scanned
                .tags
                .iter()
                .find(|t| t.path.rsplit('/').next() == Some(n) && live(t.start))
                .map(|t| t.start)
        }
    };
    let skip = if is_attribute {
        Skip::Attribute
    } else {
        Skip::Element
    };
    let valid = |label: &str| {
        let names: Vec<String> = expected.iter().map(|n| show(n)).collect();
        let listed = if names.is_empty() {
            "none".to_string()
        } else {
            names.join(", ")
        };
        match values::did_you_mean(bare, expected.iter().copied()) {
            Some(close) => format!("did you mean {}? ({label}: {listed})", show(close)),
            None => format!("{label}: {listed}"),
        }
    };
    let sort = if is_attribute { "attribute" } else { "element" };
    // Without a place to leave out, the component is not read further.
    let located = |offset: Option<usize>| match offset {
        Some(offset) => (offset, Some(skip)),
        None => (scanned.start(), None),
    };
    if message.starts_with("unknown field") {
        let (offset, skip) = located(offset_of(bare));
        let label = format!("valid {sort}s here");
        let message = format!("unknown {sort} {}; {}", show(bare), valid(&label));
        (offset, message, skip)
    } else if message.starts_with("unknown variant") {
        let (offset, skip) = located(offset_of(bare));
        let message = format!("unknown step <{bare}>; {}", valid("steps available"));
        (offset, message, skip)
    } else if message.starts_with("duplicate field") {
        let second = scanned
            .tags
            .iter()
            .filter(|t| t.path.rsplit('/').next() == Some(bare) && live(t.start))
            .nth(1)
            .map(|t| t.start);
        let (offset, skip) = located(second);
        let message = format!("{sort} {} is given twice; give it once", show(bare));
        (offset, message, skip)
    } else {
        let message = format!("cannot be read: {message}");
        (scanned.start(), message, None)
    }
}

/// The `*.xml` files at `path`: the file itself, or those under a folder, recursively.
pub(super) fn xml_files(path: &Path) -> Result<Vec<PathBuf>, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot be read: {e}"))?;
    if meta.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(path)
        .map_err(|e| format!("cannot be listed: {e}"))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            !p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    entries.sort();
    for entry in entries {
        if entry.is_dir() {
            files.extend(xml_files(&entry)?);
        } else if entry.extension().is_some_and(|e| e == "xml") {
            files.push(entry);
        }
    }
    Ok(files)
}
