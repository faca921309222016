//! `sluice run`: one execution of a process, its summary, and optionally the documents that
//! left it; step progress on a terminal.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use sluice_runtime::count;
use sluice_runtime::document::{self, Document, InputFormat};
use sluice_runtime::host::execution::{Chunked, Host, Progress};
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
    let records = context.open_records();
    let mut host = Host::new(components, context.container);
    // A run goes ahead without records when the database cannot be opened.
    match records {
        Ok(store) => host = host.with_records(store),
        Err(error) => tracing::warn!(%error, "this execution will not be recorded"),
    }
    let progress = TerminalProgress::new();
    let (record, written) = match input.path {
        Some(path) if path.is_file() && host.takes_input_in_chunks(process) => run_in_chunks(
            &host,
            process,
            &path,
            input.format,
            documents_out,
            &progress,
        )?,
        path => {
            let documents = path
                .map(|path| document::read_input(&path, input.format))
                .transpose()?;
            let record = async_runtime()?.block_on(host.execute(process, documents, &progress))?;
            let written = documents_out.map(|path| {
                open_documents_out(path).and_then(|mut out| {
                    write_documents(&mut out, &record.documents_out)?;
                    out.flush()
                })
            });
            (record, written)
        }
    };
    progress.finish();
    if let Some(store) = host.records() {
        super::flush_records(store);
    }
    // The execution has happened and is recorded: a reader that stops reading the
    // documents (`--documents-out - | head`) still gets the summary on standard error.
    let mut closed = false;
    if let Some(path) = documents_out {
        match written.unwrap_or(Ok(())) {
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

/// Documents a chunk of a large input holds at most: a chunk goes through every step before
/// the next is read, so memory holds one chunk's documents (and librdkafka's copies of them),
/// not the input; each chunk's end waits for its deliveries, a pause small beside the time
/// its documents take.
const CHUNK_DOCUMENTS: usize = 16_384;
/// Payload bytes a chunk holds at most (it ends at the document that reaches them).
const CHUNK_BYTES: usize = 16 << 20;

/// A run over an input file, a chunk at a time, writing the documents that leave the process
/// as each chunk ends. Returns the record and how writing the documents out went.
fn run_in_chunks(
    host: &Host,
    process: &str,
    path: &Path,
    format: InputFormat,
    documents_out: Option<&Path>,
    progress: &TerminalProgress,
) -> anyhow::Result<(ExecutionRecord, Option<std::io::Result<()>>)> {
    // A first pass reads every document and keeps none: a bad line refuses the run before
    // anything is sent, as it does for an input read whole.
    let mut total = 0;
    for document in document::read_file(path, format)? {
        document?;
        total += 1;
    }
    let mut reader = document::read_file(path, format)?;
    // Only if the file changed between the two passes.
    let mut read_error = None;
    let mut chunks = std::iter::from_fn(|| match reader.chunk(CHUNK_DOCUMENTS, CHUNK_BYTES) {
        Ok(chunk) if chunk.is_empty() => None,
        Ok(chunk) => Some(chunk),
        Err(error) => {
            read_error = Some(error);
            None
        }
    });
    let mut out = documents_out.map(open_documents_out).transpose()?;
    let mut write_error = None;
    let mut hand_on = |documents: Vec<Document>| {
        if let (Some(out), None) = (out.as_mut(), &write_error) {
            if let Err(error) = write_documents(out, &documents) {
                write_error = Some(error);
            }
        }
    };
    let chunked = Chunked {
        chunks: &mut chunks,
        total,
        out: &mut hand_on,
    };
    let record = async_runtime()?.block_on(host.execute_chunked(process, chunked, progress))?;
    if let Some(error) = read_error {
        return Err(anyhow::Error::new(error).context(format!(
            "{} changed while it was read; the execution stopped there ({})",
            path.display(),
            record.id
        )));
    }
    let written = out.map(|mut out| match write_error {
        Some(error) => Err(error),
        None => out.flush(),
    });
    Ok((record, written))
}

/// Where `--documents-out` goes: a file, or `-` for standard output.
fn open_documents_out(path: &Path) -> std::io::Result<Box<dyn Write + Send>> {
    Ok(if path == Path::new("-") {
        Box::new(std::io::BufWriter::new(std::io::stdout()))
    } else {
        Box::new(std::io::BufWriter::new(std::fs::File::create(path)?))
    })
}

fn write_documents(out: &mut dyn Write, documents: &[Document]) -> std::io::Result<()> {
    for doc in documents {
        writeln!(out, "{}", document::to_json_line(doc))?;
    }
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
        record.documents_out_count(),
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
