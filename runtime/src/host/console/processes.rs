//! Processes as readable flows: the start, each step with its operation, and the connection
//! each operation uses (where it is, how it authenticates; never a secret).

use axum::extract::State;
use axum::response::{Html, IntoResponse, Response};
use axum::Extension;
use maud::{html, Markup};

use super::layout::{self, Section};
use super::session::Session;
use crate::components::{
    Components, OperationDefinition, OperationKind, PropertySource, SetProperty, Step,
};
use crate::host::api::ApiState;

pub(super) async fn page(
    State(state): State<ApiState>,
    Extension(session): Extension<Session>,
) -> Response {
    let host = state.shared.host();
    let components = host.components();
    let body = html! {
        @if components.processes.is_empty() {
            p { "No process is deployed." }
        }
        @for process in components.processes.values() {
            section.process aria-labelledby=(format!("process-{}", process.id)) {
                h2 id=(format!("process-{}", process.id)) { (process.id) }
                @if let Some(description) = &process.description {
                    p { (description) }
                }
                ol.flow {
                    li {
                        @match &process.start {
                            Some(start) => { "Start: " (operation(components, &start.id)) }
                            None => { "Start: the documents given with sluice run --input" }
                        }
                    }
                    @for step in &process.steps {
                        li {
                            @match step {
                                Step::Connector { operation: reference } => { (operation(components, &reference.id)) }
                                Step::SetProperties(properties) => {
                                    "Set properties: "
                                    @for (i, property) in properties.iter().enumerate() {
                                        @if i > 0 { ", " }
                                        code { (property.target) } " ← " (source(property))
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    Html(layout::page("Processes", Section::Processes, Some(&session), body).into_string())
        .into_response()
}

/// An operation in a flow: its type, what it reads or writes, and its connection.
fn operation(components: &Components, id: &str) -> Markup {
    let Some(op) = components.operations.get(id) else {
        return html! { code { (id) } " (not deployed)" };
    };
    html! {
        (op.kind.name()) " " code { (op.id) } " " (what(op)) " on " (connection(components, &op.connection.id))
    }
}

fn what(op: &OperationDefinition) -> String {
    match &op.kind {
        OperationKind::Produce(p) => match (&p.settings.topic, p.dynamic_topic) {
            (_, true) => "to each document's topic-name".into(),
            (Some(topic), false) => format!("to {topic}"),
            (None, false) => String::new(),
        },
        OperationKind::Consume(c) => match (&c.topic, &c.pattern) {
            (Some(topic), _) => format!("from {topic}"),
            (None, Some(pattern)) => format!("from the topics matching {}", pattern.as_str()),
            (None, None) => "from each document's topic-name".into(),
        },
        OperationKind::Listen(l) => match &l.pattern {
            Some(pattern) => format!("from the topics matching {}", pattern.as_str()),
            None => format!("from {}", l.topics.join(", ")),
        },
        OperationKind::CommitOffset(_) => "the documents' positions".into(),
    }
}

/// Where a connection goes and how it authenticates, without its secrets.
fn connection(components: &Components, id: &str) -> Markup {
    let Some(c) = components.connections.get(id) else {
        return html! { code { (id) } };
    };
    let config = &c.config;
    let sasl = config
        .sasl
        .as_ref()
        .map(|s| format!(", {}", s.mechanism.name()))
        .unwrap_or_default();
    html! {
        "connection " code { (c.id) } " (" (config.bootstrap) ", " (config.security_protocol.name()) (sasl) ")"
    }
}

fn source(property: &SetProperty) -> String {
    let source = match &property.source {
        PropertySource::Constant(value) => format!("\"{value}\""),
        PropertySource::Property(name) => format!("property {name}"),
        PropertySource::Tracked(name) => format!("tracked {name}"),
        PropertySource::Template(template) => format!("template \"{}\"", template.as_str()),
    };
    match &property.pattern {
        Some(pattern) => format!("{source}, regex \"{}\"", pattern.as_str()),
        None => source,
    }
}
