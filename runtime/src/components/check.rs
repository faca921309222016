//! The validation primitive: a [`Checker`] knows where one component and each of its fields
//! are written, so every check records an error located at the field it is about.

use std::path::Path;

use super::load_error::LoadError;
use super::source::{Location, ScannedComponent, SourceFile};
use super::values;

/// A reference to another component, with where it is written (for "not defined" errors).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// The referenced component's id.
    pub id: String,
    /// Where the reference is written.
    pub at: Location,
}

/// Validation state for one component: where it is, and the errors found so far.
pub(crate) struct Checker<'a> {
    file: &'a SourceFile,
    scanned: &'a ScannedComponent,
    pub id: Option<String>,
    pub errors: Vec<LoadError>,
    /// Unknown elements and attributes left out to read the rest (already reported).
    pub skipped: Vec<String>,
}

impl<'a> Checker<'a> {
    pub fn new(file: &'a SourceFile, scanned: &'a ScannedComponent) -> Self {
        Self {
            file,
            scanned,
            id: None,
            errors: Vec::new(),
            skipped: Vec::new(),
        }
    }

    pub fn file(&self) -> &'a SourceFile {
        self.file
    }

    pub fn scanned(&self) -> &'a ScannedComponent {
        self.scanned
    }

    pub fn origin(&self) -> Location {
        self.file.location(self.scanned.start())
    }

    fn base_dir(&self) -> &Path {
        self.file.path.parent().unwrap_or(Path::new("."))
    }

    /// A path written in the component, relative to the component file's folder.
    pub fn relative_path(&self, path: &str) -> std::path::PathBuf {
        self.base_dir().join(path)
    }

    pub fn error_at(&mut self, offset: usize, message: String) {
        self.errors.push(LoadError::new(
            &self.file.path,
            Some(self.file.location(offset)),
            Some((self.scanned.kind, self.id.clone())),
            message,
        ));
    }

    /// Where a field is written: an element of that name, else an attribute of the component.
    pub fn field_offset(&self, field: &str) -> usize {
        self.scanned
            .element(field)
            .or_else(|| self.scanned.attribute("", field))
            .unwrap_or(self.scanned.start())
    }

    pub fn field_location(&self, field: &str) -> Location {
        self.file.location(self.field_offset(field))
    }

    pub fn field_error(&mut self, field: &str, predicate: String) {
        self.error_at(self.field_offset(field), format!("{field} {predicate}"));
    }

    /// The field's text after `${…}` replacement, trimmed; `None` when absent or invalid.
    pub fn text(&mut self, field: &str, raw: Option<String>) -> Option<String> {
        let raw = raw?;
        match values::interpolate(raw.trim(), self.base_dir()) {
            Ok(v) => Some(v.trim().to_string()),
            Err(predicate) => {
                self.field_error(field, predicate);
                None
            }
        }
    }

    /// A required field; its absence is reported with `hint` on what to write.
    pub fn required(&mut self, field: &str, raw: Option<String>, hint: &str) -> Option<String> {
        if raw.is_none() {
            // A misspelt <topik> already says "did you mean <topic>?": that it is missing
            // follows from it and would only repeat it.
            let misspelt = self
                .skipped
                .iter()
                .any(|name| values::did_you_mean(name, [field]).is_some());
            if !misspelt {
                let at = self.scanned.start();
                self.error_at(at, format!("{field} is missing: {hint}"));
            }
            return None;
        }
        let value = self.text(field, raw)?;
        if value.is_empty() {
            self.field_error(field, format!("is empty: {hint}"));
            return None;
        }
        Some(value)
    }

    /// Parses an optional field; `None` when absent or invalid (then an error is recorded).
    pub fn parse<T>(
        &mut self,
        field: &str,
        raw: Option<String>,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        let value = self.text(field, raw)?;
        match parse(&value) {
            Ok(v) => Some(v),
            Err(predicate) => {
                self.field_error(field, predicate);
                None
            }
        }
    }

    /// The component's `id` attribute, checked; also names the component in later errors.
    pub fn component_id(&mut self, raw: Option<String>) -> Option<String> {
        let kind = self.scanned.kind.name();
        let hint = format!("give the {kind} a unique id attribute, e.g. <{kind} id=\"orders\">");
        let id = self.required("id", raw, &hint)?;
        match values::id(&id) {
            Ok(id) => {
                self.id = Some(id.clone());
                Some(id)
            }
            Err(predicate) => {
                self.field_error("id", predicate);
                None
            }
        }
    }

    pub fn reference(&mut self, field: &str, id: String) -> Reference {
        Reference {
            at: self.field_location(field),
            id,
        }
    }
}
