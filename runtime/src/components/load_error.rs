//! Load errors: each located at file:line:column with the component it is in, and shortened
//! so that a huge value in a file never becomes a huge message.

use std::fmt;
use std::path::{Path, PathBuf};

use super::source::{ComponentKind, Location};

/// One problem found while loading components, located as precisely as we can.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError {
    /// The file.
    pub file: PathBuf,
    /// Line and column, when the problem is at a place in the file.
    pub at: Option<Location>,
    /// The component, when the problem is inside one (its id, once known).
    pub component: Option<(ComponentKind, Option<String>)>,
    /// What is wrong and what would be valid.
    pub message: String,
}

impl LoadError {
    pub(crate) fn new(
        file: &Path,
        at: Option<Location>,
        component: Option<(ComponentKind, Option<String>)>,
        message: String,
    ) -> Self {
        Self {
            file: file.to_path_buf(),
            at,
            component: component.map(|(kind, id)| (kind, id.map(|id| shortened(&id)))),
            message: shortened_quotes(&message),
        }
    }
}

/// Longest value an error message repeats whole; longer ones are cut (a 10 MB attribute must
/// not become a 10 MB message).
const SHOWN_VALUE_MAX: usize = 80;

fn shortened(value: &str) -> String {
    let length = value.chars().count();
    if length <= SHOWN_VALUE_MAX {
        return value.to_string();
    }
    let head: String = value.chars().take(SHOWN_VALUE_MAX - 20).collect();
    format!("{head}… ({length} characters)")
}

/// Shortens every double-quoted value in a message.
fn shortened_quotes(message: &str) -> String {
    if message.len() <= SHOWN_VALUE_MAX * 4 {
        return message.to_string();
    }
    let mut out = String::with_capacity(SHOWN_VALUE_MAX * 8);
    for (i, part) in message.split('"').enumerate() {
        if i > 0 {
            out.push('"');
        }
        // Odd parts are inside quotes.
        if i % 2 == 1 {
            out.push_str(&shortened(part));
        } else {
            out.push_str(part);
        }
    }
    // Long unquoted names (an element or attribute name) are cut too.
    if out.chars().count() > SHOWN_VALUE_MAX * 12 {
        out = out.chars().take(SHOWN_VALUE_MAX * 12).collect::<String>() + "…";
    }
    out
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.at {
            Some(at) => write!(f, "{at}: ")?,
            None => write!(f, "{}: ", self.file.display())?,
        }
        match &self.component {
            Some((kind, Some(id))) => write!(f, "{} \"{id}\": ", kind.name())?,
            Some((kind, None)) => write!(f, "{}: ", kind.name())?,
            None => {}
        }
        f.write_str(&self.message)
    }
}

/// Every problem found in a set of component files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadErrors(pub Vec<LoadError>);

impl fmt::Display for LoadErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for LoadErrors {}
