//! One listener: its state, partitions and lag (with a chart of the last minutes), pause,
//! resume, restart and seek, its recent executions and its dead letters.

use axum::extract::{Form, Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::Extension;
use maud::{html, Markup};

use super::layout::{self, Section};
use super::session::Session;
use super::{forbidden, not_found, view, ActionForm};
use crate::components::OperationKind;
use crate::host::api::ApiState;
use crate::store::Filter;

pub(super) async fn page(
    State(state): State<ApiState>,
    Extension(session): Extension<Session>,
    Path(id): Path<String>,
) -> Response {
    let Some(control) = state.listeners.get(&id) else {
        return not_found(&session, &format!("listener \"{id}\" is not defined"));
    };
    let recent = super::executions::list(
        &state,
        Filter {
            process: Some(id.clone()),
            limit: 10,
            ..Filter::default()
        },
    )
    .await;
    let dead_letter_topic = control.deployed().and_then(|host| {
        let components = host.components();
        let start = components.processes.get(&id)?.start.as_ref()?;
        match &components.operations.get(&start.id)?.kind {
            OperationKind::Listen(listen) => listen.dead_letter_topic.clone(),
            _ => None,
        }
    });
    let dead_letters = state.shared.host().metrics().dead_letters_of(&id);
    let fragment_url = format!("/console/fragments/listeners/{}", super::path_segment(&id));
    let action = |verb: &str| format!("/console/listeners/{}/{verb}", super::path_segment(&id));
    let body = html! {
        div data-refresh=(fragment_url) {
            (live(&state, &control).await)
        }
        section aria-labelledby="actions" {
            h2 id="actions" { "Actions" }
            div.actions {
                form method="post" action=(action("pause")) {
                    input type="hidden" name="csrf" value=(session.csrf);
                    button type="submit" { "Pause" }
                }
                form method="post" action=(action("resume")) {
                    input type="hidden" name="csrf" value=(session.csrf);
                    button type="submit" { "Resume" }
                }
                form method="post" action=(action("restart")) data-confirm=(format!("Restart listener {id}? Its running documents finish first.")) {
                    input type="hidden" name="csrf" value=(session.csrf);
                    button type="submit" { "Restart" }
                }
            }
            h3 { "Move its partitions" }
            p { "Its group goes on from there, without a restart (as " code { "sluice listeners seek" } " does)." }
            (super::dead_letters::seek_form(&id, &session.csrf))
        }
        section aria-labelledby="dead-letters" {
            h2 id="dead-letters" { "Dead letters" }
            p {
                @match &dead_letter_topic {
                    Some(topic) => { "Topic " code { (topic) } ": " (dead_letters) " since the host started, "
                        (state.console.sampler.dead_letters_in_window(&id)) " in the last hour. "
                        a href=(format!("/console/listeners/{}/dead-letters", super::path_segment(&id))) { "List and replay them" } }
                    None => { "No dead-letter topic: a document that still fails after its retries stops the listener." }
                }
            }
        }
        section aria-labelledby="recent" {
            h2 id="recent" { "Recent executions" }
            (super::executions::table(&recent.unwrap_or_default()))
            p { a href=(format!("/console/executions?process={}", crate::host::api::percent_encoded(&id))) { "All executions of " (id) } }
        }
    };
    let title = format!("Listener {id}");
    Html(layout::page(&title, Section::Overview, Some(&session), body).into_string())
        .into_response()
}

/// The part of the page that changes by itself: state, partitions, lag chart.
pub(super) async fn fragment(State(state): State<ApiState>, Path(id): Path<String>) -> Response {
    match state.listeners.get(&id) {
        Some(control) => Html(live(&state, &control).await.into_string()).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn live(
    state: &ApiState,
    control: &std::sync::Arc<crate::host::listener::ListenerControl>,
) -> Markup {
    let listener = view(control).await;
    // The samples, and the lag the table shows now as the latest point.
    let mut samples = state.console.sampler.lag(&listener.process);
    samples.extend(listener.lag.map(|lag| (0.0, lag)));
    html! {
        section aria-labelledby="state" {
            h2 id="state" { "State" }
            p {
                (layout::state_badge(listener.state))
                " restarts: " (listener.restarts) ", revocations: " (listener.revocations)
            }
            @for line in &listener.detail {
                p.detail { (line) }
            }
            @if !listener.not_deployed.is_empty() {
                p { "The components last loaded are not what runs:" }
                ul { @for line in &listener.not_deployed { li.detail { (line) } } }
            }
        }
        section aria-labelledby="partitions" {
            h2 id="partitions" { "Partitions" }
            @if listener.partitions.is_empty() {
                p { "None: the group gave this host no partition, or the listener is not running." }
            } @else {
                table {
                    thead { tr {
                        th scope="col" { "Topic" } th scope="col" class="number" { "Partition" }
                        th scope="col" class="number" { "Committed" } th scope="col" class="number" { "End" }
                        th scope="col" class="number" { "Lag" }
                    } }
                    tbody {
                        @for p in &listener.partitions {
                            tr {
                                td { (p.topic) } td class="number" { (p.partition) }
                                td class="number" { (p.committed.map_or("—".to_string(), |c| c.to_string())) }
                                td class="number" { (p.end.map_or("—".to_string(), |e| e.to_string())) }
                                td class="number" { (p.lag.map_or("—".to_string(), |l| l.to_string())) }
                            }
                        }
                    }
                }
            }
        }
        section aria-labelledby="lag" {
            h2 id="lag" { "Lag, last 15 minutes" }
            (chart(&samples))
        }
    }
}

/// The total lag over time as an SVG line: x is minutes ago (15 at the left), y the lag.
fn chart(samples: &[(f64, i64)]) -> Markup {
    const WIDTH: f64 = 600.0;
    const HEIGHT: f64 = 120.0;
    let span = super::sampler::LAG_HISTORY.as_secs_f64();
    let highest = samples
        .iter()
        .map(|(_, lag)| *lag)
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let points: Vec<String> = samples
        .iter()
        .map(|(ago, lag)| {
            let x = WIDTH * (1.0 - ago / span);
            let y = HEIGHT - HEIGHT * (*lag as f64 / highest);
            format!("{x:.1},{y:.1}")
        })
        .collect();
    let latest = samples.last().map_or(0, |(_, lag)| *lag);
    html! {
        figure.chart {
            svg viewBox=(format!("0 0 {WIDTH} {HEIGHT}")) role="img"
                aria-label=(format!("Lag over the last 15 minutes, highest {highest:.0}, now {latest}")) {
                line x1="0" y1=(HEIGHT) x2=(WIDTH) y2=(HEIGHT) class="axis" {}
                @if !points.is_empty() {
                    polyline points=(points.join(" ")) class="lag" {}
                }
            }
            figcaption {
                @if samples.is_empty() {
                    "No samples yet (one every 5 s while the listener holds partitions)."
                } @else {
                    "Highest " (highest as i64) ", now " (latest) " messages."
                }
            }
        }
    }
}

/// Pause, resume or restart, from the listener page's forms.
pub(super) async fn act(
    State(state): State<ApiState>,
    Extension(session): Extension<Session>,
    Path((id, verb)): Path<(String, String)>,
    Form(form): Form<ActionForm>,
) -> Response {
    if !session.accepts(&form.csrf) {
        return forbidden(&session);
    }
    let Some(control) = state.listeners.get(&id) else {
        return not_found(&session, &format!("listener \"{id}\" is not defined"));
    };
    match verb.as_str() {
        "pause" | "resume" => {
            // The change is made either way; a failure to save it for the next start is
            // logged by set_paused.
            let _ = crate::host::api::set_paused(&state, &id, verb == "pause").await;
        }
        "restart" => control.request_restart(),
        _ => return not_found(&session, &format!("no action \"{verb}\"")),
    }
    Redirect::to(&format!("/console/listeners/{}", super::path_segment(&id))).into_response()
}
