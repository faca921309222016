//! Executions: newest first, filtered by process and status, a page at a time (the same
//! cursor as the JSON API's); those that handled one Kafka message; one execution with the
//! offsets it read and wrote and every document error with where its document came from.

use axum::extract::{Path, Query, State};
use axum::response::{Html, IntoResponse, Response};
use axum::Extension;
use maud::{html, Markup};

use super::layout::{self, Section};
use super::not_found;
use super::session::Session;
use crate::host::api::ApiState;
use crate::record::{ExecutionStatus, MessageAddress};
use crate::store::{
    Cursor, Filter, MessageHandling, StoredDocumentError, StoredExecution, StoredMessageRange,
};

/// Executions per page.
const PAGE: usize = 25;

#[derive(serde::Deserialize, Default)]
pub(super) struct ExecutionsQuery {
    process: Option<String>,
    status: Option<String>,
    before: Option<String>,
    /// `TOPIC/PARTITION/OFFSET`: the executions that handled that message instead.
    message: Option<String>,
}

/// The recorded executions `filter` selects; `None` when the host records none or the
/// records cannot be read (logged).
pub(super) async fn list(state: &ApiState, filter: Filter) -> Option<Vec<StoredExecution>> {
    let store = state.shared.host().records().cloned()?;
    match tokio::task::spawn_blocking(move || store.list(&filter)).await {
        Ok(Ok(list)) => Some(list),
        Ok(Err(error)) => {
            tracing::error!(%error, "execution records unavailable");
            None
        }
        Err(error) => {
            tracing::error!(%error, "execution records unavailable");
            None
        }
    }
}

/// What looking a message up found: the executions that handled it, or why there is no
/// answer.
async fn handlers(state: &ApiState, message: &str) -> Result<Vec<MessageHandling>, String> {
    let address: MessageAddress = message.trim().parse()?;
    let unavailable = "This host records no executions, or the records cannot be read (see the \
                       host's log).";
    let store = state.shared.host().records().cloned().ok_or(unavailable)?;
    let found = tokio::task::spawn_blocking(move || {
        store.handled(&address.topic, address.partition, address.offset)
    })
    .await;
    match found {
        Ok(Ok(handled)) => Ok(handled),
        Ok(Err(error)) => {
            tracing::error!(%error, "execution records unavailable");
            Err(unavailable.into())
        }
        Err(error) => {
            tracing::error!(%error, "execution records unavailable");
            Err(unavailable.into())
        }
    }
}

/// The executions that handled one message, oldest first.
fn handlers_table(message: &str, found: &Result<Vec<MessageHandling>, String>) -> Markup {
    html! {
        section aria-labelledby="handled" {
            h2 id="handled" { "Executions that handled " code { (message) } }
            @match found {
                Err(problem) => p.problem { (problem) }
                Ok(handled) if handled.is_empty() => p {
                    "No recorded execution read or wrote this message (records older than \
                     host.executions.retention.days are removed)."
                }
                Ok(handled) => table {
                    thead { tr {
                        th scope="col" { "Started" } th scope="col" { "Process" } th scope="col" { "Role" }
                        th scope="col" class="number" { "Attempt" } th scope="col" { "Status" }
                        th scope="col" { "Document's error" }
                    } }
                    tbody {
                        @for h in handled {
                            @let e = &h.execution;
                            tr {
                                td { a href=(format!("/console/executions/{}", super::path_segment(&e.id))) { (layout::time(e.started_ms)) } }
                                td { (e.process) }
                                td { (h.role) }
                                td class="number" { @if let Some(attempt) = h.attempt { (attempt) } @else { "—" } }
                                td { (layout::status_badge(&e.status)) }
                                td.detail { @if let Some(error) = &h.error { (error) } @else { "—" } }
                            }
                        }
                    }
                }
            }
        }
    }
}

pub(super) async fn page(
    State(state): State<ApiState>,
    Extension(session): Extension<Session>,
    Query(query): Query<ExecutionsQuery>,
) -> Response {
    let non_empty = |v: Option<String>| v.filter(|v| !v.is_empty());
    let message = non_empty(query.message);
    let handled = match &message {
        Some(message) => Some(handlers(&state, message).await),
        None => None,
    };
    let process = non_empty(query.process);
    let status = non_empty(query.status).filter(|s| ExecutionStatus::NAMES.contains(&s.as_str()));
    let before = query
        .before
        .as_deref()
        .and_then(|c| c.parse::<Cursor>().ok());
    let filter = Filter {
        process: process.clone(),
        status: status.clone(),
        limit: PAGE,
        before,
    };
    let processes: Vec<String> = state
        .shared
        .host()
        .components()
        .processes
        .keys()
        .cloned()
        .collect();
    let executions = list(&state, filter.clone()).await;
    let next = executions
        .as_ref()
        .and_then(|list| list.last().filter(|_| list.len() == PAGE))
        .map(|last| {
            format!(
                "/console{}",
                crate::host::api::next_page(&filter, &Cursor::after(last))
            )
        });
    let body = html! {
        form.filters method="get" action="/console/executions" {
            label for="process" { "Process" }
            select id="process" name="process" {
                option value="" { "every process" }
                @for p in &processes {
                    option value=(p) selected[process.as_deref() == Some(p.as_str())] { (p) }
                }
            }
            label for="status" { "Status" }
            select id="status" name="status" {
                option value="" { "every status" }
                @for s in ExecutionStatus::NAMES {
                    option value=(s) selected[status.as_deref() == Some(*s)] { (s) }
                }
            }
            button type="submit" { "Show" }
        }
        form.filters.message method="get" action="/console/executions" {
            label for="message" { "Message" }
            input id="message" name="message" type="text" placeholder="TOPIC/PARTITION/OFFSET"
                value=(message.as_deref().unwrap_or_default());
            button type="submit" { "Find" }
        }
        @if let (Some(message), Some(found)) = (&message, &handled) {
            (handlers_table(message, found))
        }
        @match &executions {
            None => p { "This host records no executions, or the records cannot be read (see the host's log)." }
            Some(list) => {
                (table(list))
                @if let Some(next) = &next {
                    p { a href=(next) rel="next" { "Older executions" } }
                }
            }
        }
    };
    Html(layout::page("Executions", Section::Executions, Some(&session), body).into_string())
        .into_response()
}

/// Executions as a table, each linking to its page.
pub(super) fn table(executions: &[StoredExecution]) -> Markup {
    html! {
        @if executions.is_empty() {
            p { "No execution recorded that matches." }
        } @else {
            table {
                thead { tr {
                    th scope="col" { "Started" } th scope="col" { "Process" } th scope="col" { "Status" }
                    th scope="col" class="number" { "Took" } th scope="col" class="number" { "In" }
                    th scope="col" class="number" { "Out" } th scope="col" class="number" { "Errors" }
                } }
                tbody {
                    @for e in executions {
                        tr {
                            td { a href=(format!("/console/executions/{}", super::path_segment(&e.id))) { (layout::time(e.started_ms)) } }
                            td { (e.process) }
                            td { (layout::status_badge(&e.status)) }
                            td class="number" { (e.duration_ms) " ms" }
                            td class="number" { (e.documents_in) }
                            td class="number" { (e.documents_out) }
                            td class="number" { (e.document_errors) }
                        }
                    }
                }
            }
        }
    }
}

pub(super) async fn one(
    State(state): State<ApiState>,
    Extension(session): Extension<Session>,
    Path(id): Path<String>,
) -> Response {
    let Some(store) = state.shared.host().records().cloned() else {
        return not_found(&session, "this host records no executions");
    };
    let key = id.clone();
    let found = tokio::task::spawn_blocking(move || {
        let found = store.get(&key)?;
        Ok::<_, crate::store::RecordsError>(match found {
            Some(found) => Some((found, store.messages(&key)?)),
            None => None,
        })
    })
    .await;
    let Ok(Ok(Some(((execution, errors), messages)))) = found else {
        return not_found(&session, &format!("execution \"{id}\" is not recorded"));
    };
    let body = details(&execution, &errors, &messages);
    let title = format!("Execution of {}", execution.process);
    Html(layout::page(&title, Section::Executions, Some(&session), body).into_string())
        .into_response()
}

fn details(
    e: &StoredExecution,
    errors: &[StoredDocumentError],
    messages: &[StoredMessageRange],
) -> Markup {
    html! {
        dl.facts {
            dt { "Execution" } dd { code { (e.id) } }
            dt { "Process" } dd { (e.process) }
            dt { "Started" } dd { (layout::time(e.started_ms)) ", took " (e.duration_ms) " ms" }
            dt { "Status" } dd { (layout::status_badge(&e.status)) }
            @if let Some(failure) = &e.failure {
                dt { "Failure" } dd.detail { (failure) }
            }
            dt { "Documents" } dd { (e.documents_in) " in, " (e.documents_out) " out, " (e.document_errors) " with errors" }
            @for (role, label) in [("read", "Read"), ("written", "Wrote")] {
                @let ranges: Vec<_> = messages.iter().filter(|r| r.role == role).collect();
                @if !ranges.is_empty() {
                    dt { (label) }
                    dd { @for (i, range) in ranges.iter().enumerate() { @if i > 0 { ", " } (range) } }
                }
            }
        }
        @if !errors.is_empty() {
            h2 { "Document errors" }
            table {
                thead { tr {
                    th scope="col" class="number" { "Document" } th scope="col" { "Step" }
                    th scope="col" { "Error" } th scope="col" { "From" }
                } }
                tbody {
                    @for error in errors {
                        tr {
                            td class="number" { (error.document) }
                            td { @if error.step == 0 { "start" } @else { "step " (error.step) } " (" (error.operation) ")" }
                            td.detail { (error.message) }
                            td {
                                @if let (Some(topic), Some(partition), Some(offset)) = (&error.topic, error.partition, error.offset) {
                                    "topic " (topic) ", partition " (partition) ", offset " (offset)
                                } @else { "—" }
                            }
                        }
                    }
                }
            }
        }
    }
}
