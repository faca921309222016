//! Validate: paste component XML and see the located errors, as `POST /components/validate`
//! answers them.

use std::path::PathBuf;

use axum::extract::{Form, State};
use axum::response::{Html, IntoResponse, Response};
use axum::Extension;
use maud::{html, Markup};

use super::forbidden;
use super::layout::{self, Section};
use super::session::Session;
use crate::components::Components;
use crate::host::api::ApiState;

#[derive(serde::Deserialize)]
pub(super) struct ValidateForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    xml: String,
}

pub(super) async fn page(Extension(session): Extension<Session>) -> Response {
    render(&session, "", None)
}

pub(super) async fn check(
    State(_state): State<ApiState>,
    Extension(session): Extension<Session>,
    Form(form): Form<ValidateForm>,
) -> Response {
    if !session.accepts(&form.csrf) {
        return forbidden(&session);
    }
    // As the API: ${env:…} and ${file:…} would read the host's secrets into the messages.
    let verdict = if form.xml.contains("${env:") || form.xml.contains("${file:") {
        Err(vec![
            "the console does not resolve ${env:…} or ${file:…}, whose values stay on \
                  the host; validate such files with sluice validate there"
                .to_string(),
        ])
    } else {
        Components::from_sources(vec![(PathBuf::from("pasted.xml"), form.xml.clone())])
            .map_err(|errors| errors.0.iter().map(ToString::to_string).collect())
    };
    render(&session, &form.xml, Some(verdict))
}

fn render(
    session: &Session,
    xml: &str,
    verdict: Option<Result<Components, Vec<String>>>,
) -> Response {
    let body = html! {
        form.validate method="post" action="/console/validate" {
            input type="hidden" name="csrf" value=(session.csrf);
            label for="xml" { "Component XML" }
            textarea id="xml" name="xml" rows="16" spellcheck="false" { (xml) }
            button type="submit" { "Validate" }
        }
        @if let Some(verdict) = verdict {
            section aria-labelledby="verdict" aria-live="polite" {
                h2 id="verdict" { "Result" }
                (result(&verdict))
            }
        }
    };
    Html(layout::page("Validate", Section::Validate, Some(session), body).into_string())
        .into_response()
}

fn result(verdict: &Result<Components, Vec<String>>) -> Markup {
    match verdict {
        Ok(components) => html! {
            p { (layout::status_badge("succeeded")) " valid: "
                (components.connections.len()) " connections, "
                (components.operations.len()) " operations, "
                (components.processes.len()) " processes" }
        },
        Err(errors) => html! {
            p { (layout::status_badge("failed")) " " (crate::count(errors.len(), "error")) ":" }
            ul.errors { @for error in errors { li.detail { (error) } } }
        },
    }
}
