//! `sluice run`: one execution of a process, its summary, and optionally the documents that
//! left it; step progress on a terminal.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use sluice_runtime::count;
use sluice_runtime::document::{self, InputFormat};
use sluice_runtime::host::execution::{Host, Progress};
use sluice_runtime::record::{DocumentError, ExecutionRecord, ExecutionStatus};

use super::{
    async_runtime, document_error_line, load_usable, load_warnings, prepare_kerberos, Context,
    EXIT_CLOSED_PIPE, EXIT_DOCUMENT_ERRORS, EXIT_FAILED,
};

/// Where a run's documents come from when its process has no start operation.
pub(super) struct Input {
    /// A file, a folder, or `-` for standard input.
    pub path: Option<PathBuf>,
    /// How to read it.
    pub format: InputFormat,
}

pub(super) fn run(
    context: Context,
    process: &str,
    paths: &[PathBuf],
    input: Input,
    documents_out: Option<&Path>,
) -> anyhow::Result<ExitCode> {
    let wanted = format!("process \"{process}\"");
    let loaded = load_usable(paths, &wanted, |loaded| {
        loaded.components.processes.contains_key(process)
    })?;
    let mut components = loaded.components;
    // Only the connections this process uses; an unknown process uses none, and the
    // execution below reports it.
    let used = components.connections_of(process);
    let in_use = |id: &str| used.as_ref().is_some_and(|used| used.contains(id));
    for warning in load_warnings(&components, &context.container, in_use, &[]) {
        eprintln!("warning: {warning}");
    }
    // Kept until the run ends: the host's Kerberos credential cache.
    let _tickets = prepare_kerberos(&mut components, &context.custom_library, in_use)?;
    let documents = input
        .path
        .map(|path| document::read_input(&path, input.format))
        .transpose()?;
    let records = context.open_records();
    let mut host = Host::new(components, context.container);
    // A run goes ahead without records when the database cannot be opened.
    match records {
        Ok(store) => host = host.with_records(store),
        Err(error) => tracing::warn!(%error, "this execution will not be recorded"),
    }
    let progress = TerminalProgress::new();
    let record = async_runtime()?.block_on(host.execute(process, documents, &progress))?;
    progress.finish();
    // The execution has happened and is recorded: a reader that stops reading the
    // documents (`--documents-out - | head`) still gets the summary on standard error.
    let mut closed = false;
    if let Some(path) = documents_out {
        match write_documents(path, &record) {
            Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => closed = true,
            written => written.with_context(|| format!("cannot write {}", path.display()))?,
        }
    }
    if documents_out == Some(Path::new("-")) {
        print_summary(&mut std::io::stderr(), &record)?;
    } else {
        print_summary(&mut std::io::stdout(), &record)?;
    }
    if closed {
        return Ok(ExitCode::from(EXIT_CLOSED_PIPE));
    }
    Ok(match record.status {
        ExecutionStatus::Succeeded => ExitCode::SUCCESS,
        ExecutionStatus::CompletedWithErrors => ExitCode::from(EXIT_DOCUMENT_ERRORS),
        ExecutionStatus::Failed(_) => ExitCode::from(EXIT_FAILED),
    })
}

fn write_documents(path: &Path, record: &ExecutionRecord) -> std::io::Result<()> {
    let mut out: Box<dyn Write> = if path == Path::new("-") {
        Box::new(std::io::stdout().lock())
    } else {
        Box::new(std::io::BufWriter::new(std::fs::File::create(path)?))
    };
    for doc in &record.documents_out {
        writeln!(out, "{}", document::to_json_line(doc))?;
    }
    out.flush()?;
    Ok(())
}

fn print_summary(out: &mut dyn Write, record: &ExecutionRecord) -> std::io::Result<()> {
    let took =
        humantime::format_duration(Duration::from_millis(record.duration.as_millis() as u64));
    match &record.status {
        ExecutionStatus::Failed(reason) => writeln!(
            out,
            "process {}, execution {}: failed after {took}\n  {reason}",
            record.process, record.id
        )?,
        status => writeln!(
            out,
            "process {}, execution {}: {status} in {took}",
            record.process, record.id
        )?,
    }
    writeln!(
        out,
        "documents: {} in, {} out, {}",
        record.documents_in,
        record.documents_out.len(),
        count(record.document_errors.len(), "error")
    )?;
    // Grouped by step and message, in the order each first happened: a thousand documents
    // with one cause are a few examples and a count, not a thousand lines.
    let mut groups: Vec<(&DocumentError, Vec<&DocumentError>)> = Vec::new();
    for error in &record.document_errors {
        let same = |(first, _): &&mut (&DocumentError, Vec<&DocumentError>)| {
            first.step == error.step && first.message == error.message
        };
        match groups.iter_mut().find(same) {
            Some((_, members)) => members.push(error),
            None => groups.push((error, vec![error])),
        }
    }
    for (_, members) in &groups {
        for error in members.iter().take(SHOWN_PER_ERROR) {
            let t = &error.tracked;
            let at = (t.topic.as_deref(), t.partition.map(i64::from), t.offset);
            let line = document_error_line(
                error.document as i64,
                error.step as i64,
                &error.operation,
                &error.message,
                at,
            );
            writeln!(out, "{line}")?;
        }
        if members.len() > SHOWN_PER_ERROR {
            writeln!(
                out,
                "  … and {} with this error (sluice executions {} lists each)",
                count(members.len() - SHOWN_PER_ERROR, "more document"),
                record.id
            )?;
        }
    }
    Ok(())
}

/// How many documents with the same error the summary shows before it counts the rest.
const SHOWN_PER_ERROR: usize = 3;

/// Step progress on standard error, redrawn at most every 100 ms, only on a terminal.
struct TerminalProgress {
    enabled: bool,
    last: Mutex<Option<Instant>>,
}

impl TerminalProgress {
    fn new() -> Self {
        Self {
            enabled: std::io::stderr().is_terminal(),
            last: Mutex::new(None),
        }
    }

    fn finish(&self) {
        if self.enabled && self.last.lock().is_ok_and(|l| l.is_some()) {
            eprint!("\r\x1b[K");
        }
    }
}

impl Progress for TerminalProgress {
    fn step_progress(&self, step: usize, operation: &str, done: usize, total: usize) {
        if !self.enabled {
            return;
        }
        let Ok(mut last) = self.last.lock() else {
            return;
        };
        let now = Instant::now();
        if done < total && last.is_some_and(|l| now - l < Duration::from_millis(100)) {
            return;
        }
        *last = Some(now);
        eprint!("\r\x1b[Kstep {step} ({operation}): {done}/{total} documents");
    }
}
