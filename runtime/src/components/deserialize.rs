//! Reading files and components: the `*.xml` files under a path, and one component into its
//! raw struct, with serde's messages rewritten to name the element or attribute and where it
//! is written.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

use super::check::Checker;
use super::operation::OperationType;
use super::source::{ComponentKind, ScannedComponent};
use super::values;

/// Reads one component into its raw struct; serde's messages are rewritten to name the
/// element or attribute and located where it is written.
pub(super) fn deserialize<T: DeserializeOwned>(checker: &mut Checker<'_>) -> Option<T> {
    let text = &checker.file().text[checker.scanned().range.clone()];
    match quick_xml::de::from_str::<T>(text) {
        Ok(raw) => Some(raw),
        Err(e) => {
            let (offset, message) = explain_de_error(checker.scanned(), &e.to_string());
            checker.error_at(offset, message);
            None
        }
    }
}

/// Turns serde's "unknown field `x`, expected one of `a`, `b`" and friends into our messages.
fn explain_de_error(scanned: &ScannedComponent, message: &str) -> (usize, String) {
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
            scanned
                .tags
                .iter()
                .find_map(|t| t.attributes.iter().find(|(a, _)| a == n).map(|a| a.1))
        } else {
            scanned
                .tags
                .iter()
                .find(|t| t.path.rsplit('/').next() == Some(n))
                .map(|t| t.start)
        }
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
    if message.starts_with("unknown field") {
        let offset = offset_of(bare).unwrap_or(scanned.start());
        let label = format!("valid {sort}s here");
        (
            offset,
            format!("unknown {sort} {}; {}", show(bare), valid(&label)),
        )
    } else if message.starts_with("unknown variant") {
        let offset = offset_of(bare).unwrap_or(scanned.start());
        (
            offset,
            format!("unknown step <{bare}>; {}", valid("steps available")),
        )
    } else if message.starts_with("duplicate field") {
        let offset = scanned
            .tags
            .iter()
            .filter(|t| t.path.rsplit('/').next() == Some(bare))
            .nth(1)
            .map_or(scanned.start(), |t| t.start);
        (
            offset,
            format!("{sort} {} is given twice; give it once", show(bare)),
        )
    } else {
        (scanned.start(), format!("cannot be read: {message}"))
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
