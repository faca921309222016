//! The overview: the host, and every listener with its state, its last hour and its lag. The
//! listeners' table refreshes itself (a fragment fetched every few seconds).

use axum::extract::State;
use axum::response::{Html, IntoResponse, Response};
use axum::Extension;
use maud::{html, Markup};

use super::layout::{self, Section};
use super::session::Session;
use super::{view_with, ListenerView};
use crate::host::api::ApiState;
use crate::store::Totals;

pub(super) async fn page(
    State(state): State<ApiState>,
    Extension(session): Extension<Session>,
) -> Response {
    let host = state.shared.host();
    let limits = &host.container().kafka;
    let host_limits = &host.container().host;
    let console = &state.console;
    let components: Vec<String> = console
        .components
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    let body = html! {
        section aria-labelledby="host" {
            h2 id="host" { "Host" }
            dl.facts {
                dt { "Version" } dd { "sluice " (env!("CARGO_PKG_VERSION")) " (" (env!("SLUICE_COMMIT")) "), librdkafka " (sluice_connector::librdkafka_version()) }
                dt { "Up for" } dd { (layout::duration(console.started.elapsed())) }
                dt { "Components" } dd { (components.join(", ")) }
                dt { "Container limits" } dd {
                    "kafka.max.request.size " (limits.max_request_size) " bytes, kafka.max.poll.records "
                    (limits.max_poll_records) ", host.max.concurrent.executions "
                    (host_limits.max_concurrent_executions) ", host.drain.timeout.ms "
                    (host_limits.drain_timeout.as_millis())
                }
            }
        }
        section aria-labelledby="listeners" {
            h2 id="listeners" { "Listeners" }
            p.hint { "Documents and dead letters of the last hour; lag now. Refreshes by itself." }
            div data-refresh="/console/fragments/overview" {
                (listeners(&state).await)
            }
        }
    };
    Html(layout::page("Overview", Section::Overview, Some(&session), body).into_string())
        .into_response()
}

/// The listeners' table alone, for the page's refresh.
pub(super) async fn fragment(State(state): State<ApiState>) -> Html<String> {
    Html(listeners(&state).await.into_string())
}

async fn listeners(state: &ApiState) -> Markup {
    let views: Vec<ListenerView> = state
        .listeners
        .all_with_positions()
        .await
        .into_iter()
        .map(|(control, positions)| view_with(&control, positions))
        .collect();
    let totals = super::last_hour_totals(state).await;
    html! {
        @if views.is_empty() {
            p { "No listener: no process of the components starts with a listen operation." }
        } @else {
            table {
                thead { tr {
                    th scope="col" { "Listener" } th scope="col" { "State" }
                    th scope="col" class="number" { "In" } th scope="col" class="number" { "Out" }
                    th scope="col" class="number" { "Errors" } th scope="col" class="number" { "Dead letters" }
                    th scope="col" class="number" { "Lag" }
                } }
                tfoot {
                    @let all = views.iter().fold(Totals::default(), |sum, l| {
                        let t = totals.get(&l.process).copied().unwrap_or_default();
                        Totals {
                            executions: sum.executions + t.executions,
                            documents_in: sum.documents_in + t.documents_in,
                            documents_out: sum.documents_out + t.documents_out,
                            document_errors: sum.document_errors + t.document_errors,
                        }
                    });
                    @let dead_letters: u64 = views.iter().map(|l| state.console.sampler.dead_letters_in_window(&l.process)).sum();
                    @let lag: i64 = views.iter().filter_map(|l| l.lag).sum();
                    tr {
                        th scope="row" colspan="2" { "Total" }
                        td class="number" { (all.documents_in) }
                        td class="number" { (all.documents_out) }
                        td class="number" { (all.document_errors) }
                        td class="number" { (dead_letters) }
                        td class="number" { (lag) }
                    }
                }
                tbody {
                    @for listener in &views {
                        @let t = totals.get(&listener.process).copied().unwrap_or(Totals::default());
                        tr {
                            td { a href=(format!("/console/listeners/{}", super::path_segment(&listener.process))) { (listener.process) } }
                            td {
                                (layout::state_badge(listener.state))
                                @for line in &listener.detail {
                                    div.detail { (line) }
                                }
                            }
                            td class="number" { (t.documents_in) }
                            td class="number" { (t.documents_out) }
                            td class="number" { (t.document_errors) }
                            td class="number" { (state.console.sampler.dead_letters_in_window(&listener.process)) }
                            td class="number" { (listener.lag.map_or("—".to_string(), |l| l.to_string())) }
                        }
                    }
                }
            }
        }
    }
}
