//! `sluice executions`: the recorded executions, newest first, or one with its document
//! errors.

use std::process::ExitCode;

use sluice_runtime::record::MessageAddress;
use sluice_runtime::store::{ExecutionStore, Filter};
use sluice_runtime::{count, utc_time};

use super::{document_error_line, Context};

pub(super) fn executions(
    context: &Context,
    id: Option<String>,
    message: Option<MessageAddress>,
    process: Option<String>,
    status: Option<String>,
    limit: usize,
) -> anyhow::Result<ExitCode> {
    if !context.executions_db.exists() {
        anyhow::bail!(
            "no execution database at {}: executions are recorded there by sluice run \
             and sluice serve started in this folder (or give --executions-db)",
            context.executions_db.display()
        );
    }
    let store = context.open_records()?;
    if let Some(message) = message {
        return message_handlers(&store, &message, process.as_deref(), status.as_deref());
    }
    match id {
        Some(id) => show_execution(&store, &id),
        None => list_executions(
            &store,
            &Filter {
                process,
                status,
                limit,
                before: None,
            },
        ),
    }
}

fn list_executions(store: &ExecutionStore, filter: &Filter) -> anyhow::Result<ExitCode> {
    let executions = store.list(filter)?;
    if executions.is_empty() {
        out!("no executions recorded that match");
        return Ok(ExitCode::SUCCESS);
    }
    out!(
        "{:<36}  {:<24}  {:<20}  {:>9}  {:>6}  {:>6}  {:>6}  status",
        "execution",
        "process",
        "started (UTC)",
        "took",
        "in",
        "out",
        "errors"
    );
    for e in executions {
        out!(
            "{:<36}  {:<24}  {:<20}  {:>9}  {:>6}  {:>6}  {:>6}  {}",
            e.id,
            e.process,
            utc_time(e.started_ms),
            format!("{} ms", e.duration_ms),
            e.documents_in,
            e.documents_out,
            e.document_errors,
            e.status
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn show_execution(store: &ExecutionStore, id: &str) -> anyhow::Result<ExitCode> {
    let Some((e, errors)) = store.get(id)? else {
        anyhow::bail!(
            "execution {id} is not recorded (sluice executions lists the recorded ones; records \
             older than host.executions.retention.days are removed)"
        );
    };
    out!("execution {}", e.id);
    out!("process   {}", e.process);
    out!(
        "started   {} UTC, took {} ms",
        utc_time(e.started_ms),
        e.duration_ms
    );
    out!("status    {}", e.status);
    if let Some(failure) = &e.failure {
        out!("failure   {failure}");
    }
    out!(
        "documents {} in, {} out, {}",
        e.documents_in,
        e.documents_out,
        count(e.document_errors as usize, "error")
    );
    for range in store.messages(id)? {
        out!("{:<9} {range}", range.role);
    }
    for error in errors {
        let at = (error.topic.as_deref(), error.partition, error.offset);
        let line = document_error_line(
            error.document,
            error.step,
            &error.operation,
            &error.message,
            at,
        );
        out!("{line}");
    }
    Ok(ExitCode::SUCCESS)
}

fn message_handlers(
    store: &ExecutionStore,
    message: &MessageAddress,
    process: Option<&str>,
    status: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let handled: Vec<_> = store
        .handled(&message.topic, message.partition, message.offset)?
        .into_iter()
        .filter(|h| process.is_none_or(|p| h.execution.process == p))
        .filter(|h| status.is_none_or(|s| h.execution.status == s))
        .collect();
    if handled.is_empty() {
        out!(
            "no recorded execution read or wrote {message} (records older than \
             host.executions.retention.days are removed)"
        );
        return Ok(ExitCode::SUCCESS);
    }
    out!(
        "{:<36}  {:<24}  {:<20}  {:<7}  {:>7}  {:<21}  error",
        "execution",
        "process",
        "started (UTC)",
        "role",
        "attempt",
        "status"
    );
    for h in handled {
        let e = &h.execution;
        out!(
            "{:<36}  {:<24}  {:<20}  {:<7}  {:>7}  {:<21}  {}",
            e.id,
            e.process,
            utc_time(e.started_ms),
            h.role,
            h.attempt.map_or_else(|| "-".to_string(), |a| a.to_string()),
            e.status,
            // A failed execution's failure, when the document has no error of its own.
            h.error
                .as_deref()
                .or(e.failure.as_deref())
                .unwrap_or("-")
                .lines()
                .next()
                .unwrap_or("-")
        );
    }
    Ok(ExitCode::SUCCESS)
}
