//! A listener's dead letters (read from its dead-letter topic, as `sluice dead-letters list`
//! shows them) with a replay form, and the seek form's answer: the console's side of what
//! `sluice dead-letters` and `sluice listeners seek` do.

use axum::extract::{Form, Path, State};
use axum::response::{Html, IntoResponse, Response};
use axum::Extension;
use maud::{html, Markup};
use sluice_connector::listen::SeekTarget;

use super::layout::{self, Section};
use super::session::Session;
use super::{forbidden, not_found};
use crate::host::api::ApiState;
use crate::host::dead_letters::{self, DeadLetterFilter, ReplayRequest, ReplayTo};

/// `GET /console/listeners/ID/dead-letters`.
pub(super) async fn page(
    State(state): State<ApiState>,
    Extension(session): Extension<Session>,
    Path(id): Path<String>,
) -> Response {
    if state.listeners.get(&id).is_none() {
        return not_found(&session, &format!("listener \"{id}\" is not defined"));
    }
    let host = state.shared.host();
    let listed = dead_letters::dead_letters(&host, &id, &DeadLetterFilter::default()).await;
    let replay_url = format!(
        "/console/listeners/{}/dead-letters/replay",
        super::path_segment(&id)
    );
    let body = html! {
        p { a href=(listener_url(&id)) { "Listener " (id) } }
        @match &listed {
            Err(error) => p.problem { (error.to_string()) },
            Ok((topic, letters)) => {
                section aria-labelledby="letters" {
                    h2 id="letters" { "In " code { (topic) } }
                    @if letters.is_empty() {
                        p { "None." }
                    } @else {
                        table {
                            thead { tr {
                                th scope="col" { "Dead letter" } th scope="col" { "From" }
                                th scope="col" { "Error" } th scope="col" class="number" { "Attempts" }
                                th scope="col" { "When" } th scope="col" { "Replayed by" }
                            } }
                            tbody {
                                @for letter in letters {
                                    tr {
                                        td { (letter.address()) }
                                        td { (letter.source_address().unwrap_or_else(|| "—".into())) }
                                        td.detail {
                                            (letter.error.clone().unwrap_or_default())
                                            @if let Some(why) = letter.not_replayable() {
                                                br; "Not replayable: " (why)
                                            }
                                        }
                                        td class="number" { (letter.attempts.map_or("—".into(), |a| a.to_string())) }
                                        td { (letter.dead_lettered_ms.map_or("—".into(), layout::time)) }
                                        td {
                                            @match &letter.replayed_by {
                                                Some(by) => a href=(format!("/console/executions/{}", super::path_segment(by))) { (by) },
                                                None => "—",
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                @if !letters.is_empty() {
                    section aria-labelledby="replay" {
                        h2 id="replay" { "Replay" }
                        form.replay method="post" action=(replay_url)
                            data-confirm=(format!("Replay the dead letters of listener {id}?")) {
                            input type="hidden" name="csrf" value=(session.csrf);
                            fieldset {
                                legend { "Where to" }
                                label { input type="radio" name="to" value="source" checked; " Back to the topic and partition each came from (the listener receives them again)" }
                                label { input type="radio" name="to" value="process"; " Through the listener's process, here" }
                            }
                            label { input type="checkbox" name="again" value="true"; " Also those replayed before" }
                            button type="submit" { "Replay" }
                        }
                    }
                }
            }
        }
    };
    let title = format!("Dead letters of {id}");
    Html(layout::page(&title, Section::Overview, Some(&session), body).into_string())
        .into_response()
}

#[derive(serde::Deserialize)]
pub(super) struct ReplayForm {
    #[serde(default)]
    csrf: String,
    to: ReplayTo,
    #[serde(default)]
    again: bool,
}

/// `POST /console/listeners/ID/dead-letters/replay`: replays, and shows what happened to each.
pub(super) async fn replay(
    State(state): State<ApiState>,
    Extension(session): Extension<Session>,
    Path(id): Path<String>,
    Form(form): Form<ReplayForm>,
) -> Response {
    if !session.accepts(&form.csrf) {
        return forbidden(&session);
    }
    let request = ReplayRequest {
        to: form.to,
        filter: DeadLetterFilter::default(),
        dry_run: false,
        again: form.again,
    };
    let host = state.shared.host();
    let outcome = dead_letters::replay(&host, &id, &request).await;
    let list = |title: &str, label: &str, rows: &[(String, String)]| -> Markup {
        html! {
            @if !rows.is_empty() {
                h3 { (title) " (" (rows.len()) ")" }
                table {
                    thead { tr { th scope="col" { "Dead letter" } th scope="col" { (label) } } }
                    tbody { @for (letter, what) in rows { tr { td { (letter) } td.detail { (what) } } } }
                }
            }
        }
    };
    let body = html! {
        p { a href=(listener_url(&id)) { "Listener " (id) } }
        section aria-labelledby="outcome" {
            h2 id="outcome" { "Replay" }
            @match &outcome {
                Err(error) => p.problem { (error.to_string()) },
                Ok(outcome) => {
                    p {
                        (outcome.replayed.len()) " replayed, " (outcome.skipped.len()) " skipped, "
                        (outcome.failed.len()) " failed."
                        @if let Some((execution, status)) = &outcome.execution {
                            " Execution "
                            a href=(format!("/console/executions/{}", super::path_segment(execution))) { (execution) }
                            " " (layout::status_badge(status))
                        }
                    }
                    (list("Replayed", "To", &outcome.replayed))
                    (list("Skipped", "Why", &outcome.skipped))
                    (list("Failed", "Error", &outcome.failed))
                }
            }
        }
    };
    let title = format!("Replay of {id}");
    Html(layout::page(&title, Section::Overview, Some(&session), body).into_string())
        .into_response()
}

fn listener_url(id: &str) -> String {
    format!("/console/listeners/{}", super::path_segment(id))
}

#[derive(serde::Deserialize)]
pub(super) struct SeekForm {
    #[serde(default)]
    csrf: String,
    /// `timestamp`, `earliest` or `latest`.
    to: String,
    #[serde(default)]
    timestamp: String,
}

/// The listener page's seek form: `earliest`, `latest`, or a time.
pub(super) fn seek_form(id: &str, csrf: &str) -> Markup {
    html! {
        form.seek method="post" action=(format!("{}/seek", listener_url(id)))
            data-confirm=(format!("Move listener {id}? Its group goes on from there.")) {
            input type="hidden" name="csrf" value=(csrf);
            label for="seek-to" { "To" }
            select id="seek-to" name="to" {
                option value="timestamp" { "the first message at or after" }
                option value="earliest" { "the earliest message kept" }
                option value="latest" { "the end (skip what is not processed)" }
            }
            input id="seek-time" type="text" name="timestamp" placeholder="2026-11-30T10:00:00Z or 2h"
                aria-label="Time, or how long ago";
            button type="submit" { "Seek" }
        }
    }
}

/// `POST /console/listeners/ID/seek`: moves the listener, and shows where each partition went.
pub(super) async fn seek(
    State(state): State<ApiState>,
    Extension(session): Extension<Session>,
    Path(id): Path<String>,
    Form(form): Form<SeekForm>,
) -> Response {
    if !session.accepts(&form.csrf) {
        return forbidden(&session);
    }
    let Some(control) = state.listeners.get(&id) else {
        return not_found(&session, &format!("listener \"{id}\" is not defined"));
    };
    let target = match form.to.as_str() {
        "earliest" => Ok(SeekTarget::Earliest),
        "latest" => Ok(SeekTarget::Latest),
        _ => dead_letters::since_ms(form.timestamp.trim()).map(SeekTarget::Timestamp),
    };
    let moved = match target {
        Ok(target) => control.seek(target).await.map_err(|e| e.to_string()),
        Err(why) => Err(why),
    };
    let body = html! {
        p { a href=(listener_url(&id)) { "Listener " (id) } }
        section aria-labelledby="moved" {
            h2 id="moved" { "Seek" }
            @match &moved {
                Err(why) => p.problem { (why) },
                Ok(moves) => {
                    table {
                        thead { tr {
                            th scope="col" { "Topic" } th scope="col" class="number" { "Partition" }
                            th scope="col" class="number" { "Committed before" } th scope="col" class="number" { "Now" }
                        } }
                        tbody {
                            @for m in moves {
                                tr {
                                    td { (m.topic) } td class="number" { (m.partition) }
                                    td class="number" { (m.from.map_or("—".into(), |f| f.to_string())) }
                                    td class="number" { (m.to) }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    let title = format!("Seek of {id}");
    Html(layout::page(&title, Section::Overview, Some(&session), body).into_string())
        .into_response()
}
