//! The web console of `sluice serve`, on the management API's address under `/console` (and
//! `/` for a browser): an overview of the host and its listeners, a page per listener with
//! pause, resume, restart and seek and its dead letters to replay, the execution records, the
//! processes as flows, and validation.
//!
//! Server-rendered HTML (maud: checked when it compiles, escaping what it inserts), one
//! stylesheet and one small script of our own that refreshes live parts and confirms a
//! restart; every action also works without the script. Sessions and CSRF tokens in
//! [`session`]; every page carries a Content-Security-Policy that allows no inline script.

mod dead_letters;
mod executions;
mod layout;
mod listener;
mod overview;
mod processes;
pub mod sampler;
pub mod session;
mod validate;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Form, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use maud::html;
use sluice_connector::listen::PartitionPosition;

use crate::host::api::ApiState;
use crate::host::listener::{ListenerControl, ListenerStatus};
use crate::store::Totals;
use layout::Section;
use sampler::Sampler;
use session::{Session, Sessions};

/// What the console keeps beside the API's state.
pub struct Console {
    /// The browsers' sessions.
    pub sessions: Sessions,
    /// Lag and dead letters over time.
    pub sampler: Sampler,
    /// When the host started.
    pub started: Instant,
    /// Where the host's components come from, as given.
    pub components: Vec<PathBuf>,
}

impl Console {
    /// The console of a host started now with the components under `components`.
    pub fn new(components: Vec<PathBuf>) -> Self {
        Self {
            sessions: Sessions::default(),
            sampler: Sampler::default(),
            started: Instant::now(),
            components,
        }
    }
}

/// What every state-changing console form sends: its session's CSRF token.
#[derive(serde::Deserialize)]
pub(super) struct ActionForm {
    /// Missing counts as wrong: the answer is 403, not a form error.
    #[serde(default)]
    csrf: String,
}

const STYLESHEET: &str = include_str!("assets/console.css");
const SCRIPT: &str = include_str!("assets/console.js");

/// Only this host's own stylesheet and script, no inline script or style, no framing, forms
/// only to this host.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; \
     base-uri 'none'";

/// The console's routes, behind its session check.
pub fn router(state: ApiState) -> Router<ApiState> {
    Router::new()
        .route("/console", get(overview::page))
        .route("/console/fragments/overview", get(overview::fragment))
        .route("/console/listeners/{id}", get(listener::page))
        .route("/console/fragments/listeners/{id}", get(listener::fragment))
        .route("/console/listeners/{id}/seek", post(dead_letters::seek))
        .route("/console/listeners/{id}/{verb}", post(listener::act))
        .route(
            "/console/listeners/{id}/dead-letters",
            get(dead_letters::page),
        )
        .route(
            "/console/listeners/{id}/dead-letters/replay",
            post(dead_letters::replay),
        )
        .route("/console/executions", get(executions::page))
        .route("/console/executions/{id}", get(executions::one))
        .route("/console/processes", get(processes::page))
        .route(
            "/console/validate",
            get(validate::page).post(validate::check),
        )
        .route("/console/login", get(login_page).post(login))
        .route("/console/logout", post(logout))
        .route("/console/assets/console.css", get(stylesheet))
        .route("/console/assets/console.js", get(script))
        .layer(middleware::from_fn_with_state(state, guard))
}

/// Whether a request for `/` comes from a browser (it accepts HTML): it gets the console.
pub fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"))
}

/// Finds the request's session — starting one when the host has no token, since the console
/// is then open like the API — sends a request without one to the login form, and gives every
/// answer the console's security headers.
async fn guard(State(state): State<ApiState>, mut request: Request, next: Next) -> Response {
    let path = request.uri().path();
    let public = path == "/console/login" || path.starts_with("/console/assets/");
    let sessions = &state.console.sessions;
    let mut started = None;
    let session = match sessions.of(request.headers()) {
        Some(session) => Some(session),
        None if state.token.is_none() => {
            let session = sessions.start();
            started = Some(session.clone());
            Some(session)
        }
        None => None,
    };
    match session {
        Some(session) => {
            request.extensions_mut().insert(session);
        }
        None if public => {}
        None if request.method() == Method::GET => {
            return secured(Redirect::to("/console/login").into_response(), None);
        }
        None => {
            let page = layout::page(
                "Not logged in",
                Section::Login,
                None,
                html! { p { "Log in first: " a href="/console/login" { "log in" } } },
            );
            return secured(
                (StatusCode::FORBIDDEN, Html(page.into_string())).into_response(),
                None,
            );
        }
    }
    secured(next.run(request).await, started.as_ref())
}

/// The console's security headers, and the cookie of a session that just started.
fn secured(mut response: Response, started: Option<&Session>) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Some(session) = started {
        let (name, value) = session.set_cookie();
        headers.append(name, value);
    }
    response
}

async fn stylesheet() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        STYLESHEET,
    )
        .into_response()
}

async fn script() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        SCRIPT,
    )
        .into_response()
}

#[derive(serde::Deserialize)]
struct LoginForm {
    token: String,
}

async fn login_page(State(state): State<ApiState>) -> Response {
    if state.token.is_none() {
        return Redirect::to("/console").into_response();
    }
    login_form(None)
}

fn login_form(problem: Option<&str>) -> Response {
    let body = html! {
        form.login method="post" action="/console/login" {
            p { "This host asks for its API token (SLUICE_API_TOKEN)." }
            @if let Some(problem) = problem {
                p.problem role="alert" { (problem) }
            }
            label for="token" { "API token" }
            input id="token" name="token" type="password" autocomplete="current-password" required;
            button type="submit" { "Log in" }
        }
    };
    let status = if problem.is_some() {
        StatusCode::UNAUTHORIZED
    } else {
        StatusCode::OK
    };
    (
        status,
        Html(layout::page("Log in", Section::Login, None, body).into_string()),
    )
        .into_response()
}

/// Exchanges the API token for a session.
async fn login(State(state): State<ApiState>, Form(form): Form<LoginForm>) -> Response {
    let Some(token) = &state.token else {
        return Redirect::to("/console").into_response();
    };
    if !crate::host::api::same(form.token.as_bytes(), token.expose().as_bytes()) {
        tracing::warn!("console login with a wrong token");
        return login_form(Some("That is not this host's token."));
    }
    let session = state.console.sessions.start();
    let mut response = Redirect::to("/console").into_response();
    let (name, value) = session.set_cookie();
    response.headers_mut().append(name, value);
    response
}

async fn logout(
    State(state): State<ApiState>,
    Extension(session): Extension<Session>,
    headers: HeaderMap,
    Form(form): Form<ActionForm>,
) -> Response {
    if !session.accepts(&form.csrf) {
        return forbidden(&session);
    }
    state.console.sessions.end(&headers);
    let mut response = Redirect::to("/console/login").into_response();
    let (name, value) = session::clear_cookie();
    response.headers_mut().append(name, value);
    response
}

/// 403 for a state change without this session's CSRF token.
fn forbidden(session: &Session) -> Response {
    let page = layout::page(
        "Refused",
        Section::Overview,
        Some(session),
        html! { p { "This request did not carry the page's CSRF token: reload the page and try again." } },
    );
    (StatusCode::FORBIDDEN, Html(page.into_string())).into_response()
}

fn not_found(session: &Session, what: &str) -> Response {
    let page = layout::page(
        "Not found",
        Section::Overview,
        Some(session),
        html! { p { (what) } p { a href="/console" { "Back to the overview" } } },
    );
    (StatusCode::NOT_FOUND, Html(page.into_string())).into_response()
}

/// A process id as one path segment of a link.
fn path_segment(id: &str) -> String {
    crate::host::api::percent_encoded(id)
}

/// What the console shows of one listener.
struct ListenerView {
    process: String,
    /// As the API names it (UNASSIGNED: running without partitions).
    state: &'static str,
    /// A failed listener's reason, or an invalid one's errors.
    detail: Vec<String>,
    partitions: Vec<PartitionPosition>,
    /// Over the partitions it holds; `None` when it holds none.
    lag: Option<i64>,
    not_deployed: Vec<String>,
    restarts: u32,
    revocations: u64,
}

async fn view(control: &Arc<ListenerControl>) -> ListenerView {
    view_with(control, control.positions().await)
}

/// [`view`] with the positions already asked (`None`: not known).
fn view_with(control: &ListenerControl, positions: Option<Vec<PartitionPosition>>) -> ListenerView {
    let status = control.status();
    let partitions = positions.unwrap_or_default();
    let state = status.shown(!partitions.is_empty());
    let detail = match &status {
        ListenerStatus::Failed(failure) => vec![failure.message.clone()],
        ListenerStatus::Stalled(reason) => vec![reason.clone()],
        ListenerStatus::Invalid(errors) => errors.clone(),
        _ => Vec::new(),
    };
    let lag = (!partitions.is_empty()).then(|| partitions.iter().filter_map(|p| p.lag).sum());
    ListenerView {
        process: control.process.clone(),
        state,
        detail,
        partitions,
        lag,
        not_deployed: control.not_deployed(),
        restarts: control.restarts(),
        revocations: control.revocations(),
    }
}

/// Per process, what its executions of the last hour add up to (empty without records).
async fn last_hour_totals(state: &ApiState) -> BTreeMap<String, Totals> {
    let Some(store) = state.shared.host().records().cloned() else {
        return BTreeMap::new();
    };
    let since = std::time::SystemTime::now()
        .checked_sub(sampler::COUNT_WINDOW)
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_millis() as i64);
    match tokio::task::spawn_blocking(move || store.totals_since(since)).await {
        Ok(Ok(totals)) => totals,
        _ => BTreeMap::new(),
    }
}
