//! The management API of `sluice serve`, shaped like Kafka Connect's REST API where it fits:
//! processes, listener status with partitions and lag, pause / resume / restart, execution
//! records, component validation, health and Prometheus metrics. Errors are JSON
//! `{"error_code": N, "message": "…"}` and never carry internals or secrets.

mod seek;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde_json::{json, Value};
use sluice_connector::Secret;
use tokio::sync::{mpsc, oneshot};

use crate::advice::UserMessage as _;
use crate::components::{Components, OperationKind, Step};
use crate::host::console::Console;
use crate::host::dead_letters::{self, DeadLetterError, DeadLetterFilter, ReplayRequest, ReplayTo};
use crate::host::deploy::{ListenerTable, ReloadRequest};
use crate::host::listener::{ListenerControl, ListenerStatus, Shared};
use crate::record::{ExecutionStatus, MessageAddress};
use crate::store::{Cursor, ExecutionStore, Filter, ListenerSample, RecordsError};

/// What every handler reaches.
#[derive(Clone)]
pub struct ApiState {
    /// The host and its limits.
    pub shared: Shared,
    /// Every listener, by process id.
    pub listeners: ListenerTable,
    /// The bearer token requests must carry, if one is set.
    pub token: Option<Arc<Secret>>,
    /// Where `POST /components/reload` asks the host to load its components again.
    pub reloads: mpsc::Sender<ReloadRequest>,
    /// The web console's sessions and samples.
    pub console: Arc<Console>,
}

/// An API error: a status and a message for the caller.
pub(crate) struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error_code": self.0.as_u16(), "message": self.1});
        (self.0, Json(body)).into_response()
    }
}

fn not_found(what: &str, id: &str) -> ApiError {
    ApiError(
        StatusCode::NOT_FOUND,
        format!("{what} \"{id}\" is not defined"),
    )
}

/// The routes, behind the token check (all but `/health`).
pub fn router(state: ApiState) -> Router {
    let guarded = Router::new()
        .route("/processes", get(processes))
        .route("/processes/{id}", get(process))
        .route("/listeners", get(listeners))
        .route("/listeners/{id}/status", get(listener_status))
        .route("/listeners/{id}/pause", put(pause))
        .route("/listeners/{id}/resume", put(resume))
        .route("/listeners/{id}/restart", post(restart))
        .route("/listeners/{id}/seek", post(seek::seek))
        .route("/listeners/{id}/dead-letters", get(dead_letters))
        .route(
            "/listeners/{id}/dead-letters/replay",
            post(replay_dead_letters),
        )
        .route("/executions", get(executions))
        .route("/executions/{id}", get(execution))
        .route("/components/validate", post(validate))
        .route("/components/reload", post(reload))
        .route("/metrics", get(metrics))
        .route_layer(middleware::from_fn_with_state(state.clone(), authorize));
    Router::new()
        .route("/health", get(health))
        .route("/", get(root))
        .merge(guarded)
        .merge(crate::host::console::router(state.clone()))
        .fallback(|| async {
            ApiError(
                StatusCode::NOT_FOUND,
                "no such endpoint: see GET /processes, /listeners, /executions, /metrics".into(),
            )
        })
        .method_not_allowed_fallback(|method: Method, uri: Uri| async move {
            ApiError(
                StatusCode::METHOD_NOT_ALLOWED,
                format!(
                    "{method} is not allowed on {}: see the README's table of requests",
                    uri.path()
                ),
            )
        })
        .with_state(state)
}

/// Checks `Authorization: Bearer TOKEN` when a token is set, in time independent of where a
/// wrong token differs.
async fn authorize(State(state): State<ApiState>, request: Request, next: Next) -> Response {
    match refused(&state, request.headers()) {
        Some(refused) => refused,
        None => next.run(request).await,
    }
}

/// The 401 for a request without the host's bearer token, when it has one.
fn refused(state: &ApiState, headers: &HeaderMap) -> Option<Response> {
    if let Some(token) = &state.token {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        if !same(given.as_bytes(), token.expose().as_bytes()) {
            let mut response = ApiError(
                StatusCode::UNAUTHORIZED,
                "missing or wrong bearer token: send Authorization: Bearer <the host's \
                 SLUICE_API_TOKEN>"
                    .into(),
            )
            .into_response();
            // RFC 6750: say which scheme the resource wants.
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"sluice\""),
            );
            return Some(response);
        }
    }
    None
}

/// Whether `a` and `b` are equal, in time that does not depend on where they differ.
pub(crate) fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// What this host is, as JSON (with the token, when one is set); a browser (it accepts
/// text/html) goes to the console, which has its own login.
async fn root(State(state): State<ApiState>, request: Request) -> Response {
    if crate::host::console::wants_html(request.headers()) {
        return axum::response::Redirect::to("/console").into_response();
    }
    if let Some(refused) = refused(&state, request.headers()) {
        return refused;
    }
    Json(json!({
        "name": "sluice",
        "version": env!("CARGO_PKG_VERSION"),
        "commit": env!("SLUICE_COMMIT"),
        "librdkafka": sluice_connector::librdkafka_version(),
    }))
    .into_response()
}

async fn health() -> Json<Value> {
    Json(json!({"status": "UP"}))
}

fn process_json(state: &ApiState, id: &str) -> Option<Value> {
    let host = state.shared.host();
    let components = host.components();
    let process = components.processes.get(id)?;
    let start = process.start.as_ref().map(|s| {
        let kind = components.operations.get(&s.id).map(|op| op.kind.name());
        json!({"operation": s.id, "type": kind})
    });
    let steps: Vec<Value> = process
        .steps
        .iter()
        .map(|step| match step {
            Step::Connector { operation } => json!({"connector": operation.id}),
            Step::SetProperties(properties) => json!({"set-properties": properties.len()}),
        })
        .collect();
    Some(json!({
        "id": process.id,
        "description": process.description,
        "start": start,
        "steps": steps,
        "listener": state.listeners.get(id).is_some(),
    }))
}

async fn processes(State(state): State<ApiState>) -> Json<Value> {
    let host = state.shared.host();
    Json(Value::Array(
        host.components()
            .processes
            .keys()
            .filter_map(|id| process_json(&state, id))
            .collect(),
    ))
}

async fn process(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    process_json(&state, &id)
        .map(Json)
        .ok_or_else(|| not_found("process", &id))
}

fn control(state: &ApiState, id: &str) -> Result<Arc<ListenerControl>, ApiError> {
    state.listeners.get(id).ok_or_else(|| {
        let message = if state.shared.host().components().processes.contains_key(id) {
            format!("process \"{id}\" has no listener: it does not start with a listen operation")
        } else {
            format!("listener \"{id}\" is not defined")
        };
        ApiError(StatusCode::NOT_FOUND, message)
    })
}

async fn listeners(State(state): State<ApiState>) -> Json<Value> {
    Json(Value::Array(
        state
            .listeners
            .all()
            .iter()
            .map(|c| json!({"process": c.process, "state": c.status().state()}))
            .collect(),
    ))
}

async fn listener_status(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let control = control(&state, &id)?;
    let status = control.status();
    let mut partitions = Vec::new();
    let mut pattern = None;
    if let Some(consumer) = control.consumer() {
        if let Some(topic_pattern) = &consumer.settings().pattern {
            pattern = Some((
                topic_pattern.as_str().to_string(),
                topic_pattern.refresh,
                consumer.topics(),
            ));
        }
        match consumer.positions().await {
            Ok(positions) => {
                partitions = positions
                    .into_iter()
                    .map(|p| {
                        json!({"topic": p.topic, "partition": p.partition,
                               "committed": p.committed, "end": p.end, "lag": p.lag})
                    })
                    .collect();
            }
            Err(error) => {
                tracing::warn!(error = %error.user_message(), process = %id, "partitions unknown")
            }
        }
    }
    let state_name = status.shown(!partitions.is_empty());
    let (stalls, stalls_healed) = control.stalls();
    let mut body = json!({"process": id, "state": state_name, "partitions": partitions,
                          "restarts": control.restarts(),
                          "revocations": control.revocations(),
                          "stalls": stalls, "stalls_healed": stalls_healed});
    match &status {
        ListenerStatus::Stalled(reason) => body["reason"] = json!(reason),
        ListenerStatus::Failed(failure) => {
            body["reason"] = json!(failure.message);
            body["failure_kind"] = json!(failure.kind_name());
        }
        ListenerStatus::Invalid(errors) => body["errors"] = json!(errors),
        _ => {}
    }
    if let Some((written, refresh, topics)) = pattern {
        if topics.is_empty() {
            body["note"] = json!(format!(
                "topic pattern \"{written}\" matches no topic yet; the topics are looked at \
                 again every {} s",
                refresh.as_secs()
            ));
        }
        body["topic_pattern"] = json!(written);
        body["topics"] = json!(topics);
    }
    let not_deployed = control.not_deployed();
    if !not_deployed.is_empty() {
        body["not_deployed"] = json!(not_deployed);
    }
    if let Some(operation) = listen_operation(&control) {
        body["operation"] = json!(operation);
    }
    Ok(Json(body))
}

/// The listen operation of the definition the listener runs.
fn listen_operation(control: &ListenerControl) -> Option<String> {
    let host = control.deployed()?;
    let components = host.components();
    let start = components.processes.get(&control.process)?.start.as_ref()?;
    matches!(
        components.operations.get(&start.id)?.kind,
        OperationKind::Listen(_)
    )
    .then(|| start.id.clone())
}

pub(crate) async fn set_paused(
    state: &ApiState,
    id: &str,
    paused: bool,
) -> Result<Response, ApiError> {
    let control = control(state, id)?;
    control.set_paused(paused);
    if let Some(store) = state.shared.host().records().cloned() {
        let process = id.to_string();
        let saved = tokio::task::spawn_blocking(move || store.set_paused(&process, paused)).await;
        if !matches!(saved, Ok(Ok(()))) {
            tracing::error!(process = id, paused, "the pause could not be saved");
            return Err(ApiError(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the listener changed, but the change could not be saved for the next start \
                 (see the host's log)"
                    .into(),
            ));
        }
    }
    Ok(StatusCode::ACCEPTED.into_response())
}

async fn pause(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    set_paused(&state, &id, true).await
}

async fn resume(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    set_paused(&state, &id, false).await
}

async fn restart(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let control = control(&state, &id)?;
    if let ListenerStatus::Invalid(errors) = control.status() {
        return Err(ApiError(
            StatusCode::CONFLICT,
            format!(
                "listener \"{id}\" cannot start: its components are invalid ({}); fix them \
                 (GET /listeners/{id}/status or sluice validate lists them) and reload them \
                 with POST /components/reload",
                crate::count(errors.len(), "error")
            ),
        ));
    }
    control.request_restart();
    Ok(StatusCode::ACCEPTED.into_response())
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct DeadLettersQuery {
    /// An RFC 3339 time, or how long ago (`2h`).
    since: Option<String>,
    error_contains: Option<String>,
}

impl DeadLettersQuery {
    fn filter(&self) -> Result<DeadLetterFilter, ApiError> {
        let since_ms = self
            .since
            .as_deref()
            .map(dead_letters::since_ms)
            .transpose()
            .map_err(|e| ApiError(StatusCode::BAD_REQUEST, format!("since: {e}")))?;
        Ok(DeadLetterFilter {
            since_ms,
            error_contains: self.error_contains.clone().filter(|t| !t.is_empty()),
        })
    }
}

fn dead_letter_error(error: DeadLetterError) -> ApiError {
    let status = match &error {
        DeadLetterError::UnknownListener { .. } => StatusCode::NOT_FOUND,
        DeadLetterError::NoDeadLetterTopic(_) | DeadLetterError::NoRecords => StatusCode::CONFLICT,
        DeadLetterError::Unreadable { .. } => StatusCode::BAD_GATEWAY,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    ApiError(status, error.to_string())
}

/// `GET /listeners/ID/dead-letters?since=…&error_contains=…`: the listener's dead letters.
async fn dead_letters(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    query: Result<Query<DeadLettersQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(query) = query.map_err(|rejection| {
        ApiError(
            StatusCode::BAD_REQUEST,
            format!(
                "the query string is not valid ({}): use since=TIME|AGO and error_contains=TEXT",
                rejection.body_text()
            ),
        )
    })?;
    let filter = query.filter()?;
    let host = state.shared.host();
    let (topic, letters) = dead_letters::dead_letters(&host, &id, &filter)
        .await
        .map_err(dead_letter_error)?;
    let letters: Vec<Value> = letters.iter().map(|l| l.to_json()).collect();
    Ok(Json(
        json!({"dead_letter_topic": topic, "dead_letters": letters}),
    ))
}

/// The body of `POST /listeners/ID/dead-letters/replay`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplayBody {
    #[serde(default = "replay_to_source")]
    to: ReplayTo,
    since: Option<String>,
    error_contains: Option<String>,
    #[serde(default)]
    dry_run: bool,
    #[serde(default)]
    again: bool,
}

fn replay_to_source() -> ReplayTo {
    ReplayTo::Source
}

/// `POST /listeners/ID/dead-letters/replay`, JSON `{"to": "source"|"process", "since": …,
/// "error_contains": …, "dry_run": false, "again": false}` (all optional).
async fn replay_dead_letters(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let body: ReplayBody = if body.iter().all(u8::is_ascii_whitespace) {
        serde_json::from_str("{}")
    } else {
        serde_json::from_slice(&body)
    }
    .map_err(|e| {
        ApiError(
            StatusCode::BAD_REQUEST,
            format!(
                "the body is not a replay request ({e}): JSON with to (source or process), \
                 since, error_contains, dry_run and again, each optional"
            ),
        )
    })?;
    let request = ReplayRequest {
        to: body.to,
        filter: DeadLettersQuery {
            since: body.since,
            error_contains: body.error_contains,
        }
        .filter()?,
        dry_run: body.dry_run,
        again: body.again,
    };
    let host = state.shared.host();
    let outcome = dead_letters::replay(&host, &id, &request)
        .await
        .map_err(dead_letter_error)?;
    Ok(Json(outcome.to_json(request.dry_run)))
}

#[derive(serde::Deserialize)]
struct ExecutionsQuery {
    process: Option<String>,
    status: Option<String>,
    limit: Option<usize>,
    /// The cursor of the page before (its `Link: <…>; rel="next"` header gives it).
    before: Option<String>,
    /// `TOPIC/PARTITION/OFFSET`: the executions that read or wrote that message instead.
    message: Option<String>,
}

fn store(state: &ApiState) -> Result<Arc<ExecutionStore>, ApiError> {
    state.shared.host().records().cloned().ok_or_else(|| {
        ApiError(
            StatusCode::SERVICE_UNAVAILABLE,
            "this host records no executions".into(),
        )
    })
}

fn records_failed(error: impl std::fmt::Display) -> ApiError {
    tracing::error!(%error, "execution records unavailable");
    ApiError(
        StatusCode::INTERNAL_SERVER_ERROR,
        "the execution records cannot be read (see the host's log)".into(),
    )
}

/// `GET /executions`: newest first, a page of `limit` (default 100); when there may be more,
/// a `Link: </executions?…&before=CURSOR>; rel="next"` header (RFC 8288) names the next page.
async fn executions(
    State(state): State<ApiState>,
    query: Result<Query<ExecutionsQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|rejection| {
        ApiError(
            StatusCode::BAD_REQUEST,
            format!(
                "the query string is not valid ({}): use process=ID, status={}, limit=N and \
                 before=CURSOR, or message=TOPIC/PARTITION/OFFSET",
                rejection.body_text(),
                ExecutionStatus::NAMES.join("|")
            ),
        )
    })?;
    let before = query
        .before
        .as_deref()
        .map(str::parse::<Cursor>)
        .transpose()
        .map_err(|e| ApiError(StatusCode::BAD_REQUEST, format!("before: {e}")))?;
    if let Some(status) = &query.status {
        if !ExecutionStatus::NAMES.contains(&status.as_str()) {
            return Err(ApiError(
                StatusCode::BAD_REQUEST,
                format!(
                    "status must be one of {}, got \"{status}\"",
                    ExecutionStatus::NAMES.join(", ")
                ),
            ));
        }
    }
    if let Some(message) = &query.message {
        let message: MessageAddress = message
            .parse()
            .map_err(|e| ApiError(StatusCode::BAD_REQUEST, format!("message: {e}")))?;
        if query.before.is_some() {
            return Err(ApiError(
                StatusCode::BAD_REQUEST,
                "message= gives every execution that handled the message, in one answer: it \
                 takes no before="
                    .into(),
            ));
        }
        let store = store(&state)?;
        let handled = tokio::task::spawn_blocking(move || {
            store.handled(&message.topic, message.partition, message.offset)
        })
        .await
        .map_err(records_failed)?
        .map_err(records_failed)?;
        let handled: Vec<_> = handled
            .into_iter()
            .filter(|h| {
                query
                    .process
                    .as_ref()
                    .is_none_or(|p| &h.execution.process == p)
            })
            .filter(|h| {
                query
                    .status
                    .as_ref()
                    .is_none_or(|s| &h.execution.status == s)
            })
            .collect();
        return Ok(Json(json!(handled)).into_response());
    }
    let filter = Filter {
        process: query.process,
        status: query.status,
        limit: query.limit.unwrap_or(100).clamp(1, 10_000),
        before,
    };
    let store = store(&state)?;
    let (list, filter) = tokio::task::spawn_blocking(move || (store.list(&filter), filter))
        .await
        .map_err(records_failed)?;
    let list = list.map_err(records_failed)?;
    let mut response = Json(json!(list)).into_response();
    // A full page: there may be more after its last one.
    if let Some(last) = list.last().filter(|_| list.len() == filter.limit) {
        let next = next_page(&filter, &Cursor::after(last));
        if let Ok(link) = HeaderValue::from_str(&format!("<{next}>; rel=\"next\"")) {
            response.headers_mut().insert(header::LINK, link);
        }
    }
    Ok(response)
}

/// The path and query of the page after `cursor` under `filter`.
pub(crate) fn next_page(filter: &Filter, cursor: &Cursor) -> String {
    let mut query = vec![
        format!("limit={}", filter.limit),
        format!("before={cursor}"),
    ];
    if let Some(process) = &filter.process {
        query.push(format!("process={}", percent_encoded(process)));
    }
    if let Some(status) = &filter.status {
        query.push(format!("status={}", percent_encoded(status)));
    }
    format!("/executions?{}", query.join("&"))
}

/// A query value with everything but unreserved characters percent-encoded.
pub(crate) fn percent_encoded(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

async fn execution(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let store = store(&state)?;
    let key = id.clone();
    let found = tokio::task::spawn_blocking(move || {
        let found = store.get(&key)?;
        Ok::<_, RecordsError>(found.map(|found| (found, store.messages(&key))))
    })
    .await
    .map_err(records_failed)?
    .map_err(records_failed)?;
    let ((execution, errors), messages) = found.ok_or_else(|| {
        ApiError(
            StatusCode::NOT_FOUND,
            format!("execution \"{id}\" is not recorded"),
        )
    })?;
    let mut body = json!(execution);
    body["document_errors_list"] = json!(errors);
    body["messages"] = json!(messages.map_err(records_failed)?);
    Ok(Json(body))
}

/// `POST /components/validate`: component XML as the body (`application/xml`), or JSON
/// `{"files": {"name.xml": "<components>…"}}`; answers with the errors `sluice validate` gives.
async fn validate(headers: HeaderMap, body: Bytes) -> Result<Json<Value>, ApiError> {
    let json_body = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let sources: Vec<(PathBuf, String)> = if json_body {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Files {
            files: BTreeMap<String, String>,
        }
        let files: Files = serde_json::from_slice(&body).map_err(|e| {
            ApiError(
                StatusCode::BAD_REQUEST,
                format!("the body is not {{\"files\": {{\"name.xml\": \"<components>…\"}}}}: {e}"),
            )
        })?;
        files
            .files
            .into_iter()
            .map(|(name, text)| (PathBuf::from(name), text))
            .collect()
    } else {
        let text = String::from_utf8(body.to_vec())
            .map_err(|_| ApiError(StatusCode::BAD_REQUEST, "the body is not UTF-8 text".into()))?;
        vec![(PathBuf::from("request.xml"), text)]
    };
    // ${env:…} and ${file:…} would read the host's environment and files: their values (often
    // secrets) could come back in error messages.
    if sources
        .iter()
        .any(|(_, text)| text.contains("${env:") || text.contains("${file:"))
    {
        return Err(ApiError(
            StatusCode::BAD_REQUEST,
            "the API does not resolve ${env:…} or ${file:…}, whose values stay on the host; \
             validate such files with sluice validate there"
                .into(),
        ));
    }
    Ok(Json(match Components::from_sources(sources) {
        Ok(components) => json!({
            "valid": true,
            "connections": components.connections.len(),
            "operations": components.operations.len(),
            "processes": components.processes.len(),
        }),
        Err(errors) => json!({
            "valid": false,
            "errors": errors.0.iter().map(ToString::to_string).collect::<Vec<_>>(),
        }),
    }))
}

/// `POST /components/reload`: the host loads its component folders again and deploys what
/// changed; answers with what it did, listener by listener.
async fn reload(State(state): State<ApiState>) -> Result<Json<Value>, ApiError> {
    let (reply, report) = oneshot::channel();
    let request = ReloadRequest {
        by: "the API",
        reply: Some(reply),
    };
    let stopping = || {
        ApiError(
            StatusCode::SERVICE_UNAVAILABLE,
            "the host is stopping; start it again to load the components".into(),
        )
    };
    state.reloads.send(request).await.map_err(|_| stopping())?;
    let report = report.await.map_err(|_| stopping())?;
    Ok(Json(json!(report)))
}

async fn metrics(State(state): State<ApiState>) -> Response {
    let mut listeners = Vec::new();
    for (control, positions) in state.listeners.all_with_positions().await {
        let status = control.status();
        let mut sample = ListenerSample {
            process: control.process.clone(),
            state: status.state(),
            revocations: control.revocations(),
            lags: Vec::new(),
        };
        if let Some(positions) = positions {
            sample.state = status.shown(!positions.is_empty());
            sample.lags = positions
                .into_iter()
                .filter_map(|p| Some((p.topic, p.partition, p.lag?)))
                .collect();
        }
        listeners.push(sample);
    }
    let records = state.shared.host().records().map(|store| store.backlog());
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state
            .shared
            .host()
            .metrics()
            .render(&listeners, ListenerStatus::STATES, records),
    )
        .into_response()
}
