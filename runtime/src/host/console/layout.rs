//! The frame every console page shares: head, navigation, logout, and small pieces (state
//! badges, durations, times) the pages use alike. maud escapes everything it inserts.

use std::time::Duration;

use maud::{html, Markup, DOCTYPE};

use super::session::Session;

/// The console's sections, for the navigation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Overview,
    Executions,
    Processes,
    Validate,
    Login,
}

/// A whole page: `title`, the navigation with `section` current, and `body`.
pub fn page(title: &str, section: Section, session: Option<&Session>, body: Markup) -> Markup {
    let link = |href: &str, label: &str, this: Section| {
        html! {
            @if this == section {
                a href=(href) aria-current="page" { (label) }
            } @else {
                a href=(href) { (label) }
            }
        }
    };
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Sluice" }
                link rel="stylesheet" href="/console/assets/console.css";
                script src="/console/assets/console.js" defer {}
            }
            body {
                header {
                    nav aria-label="Console" {
                        span.brand { "Sluice" }
                        @if section != Section::Login {
                            (link("/console", "Overview", Section::Overview))
                            (link("/console/executions", "Executions", Section::Executions))
                            (link("/console/processes", "Processes", Section::Processes))
                            (link("/console/validate", "Validate", Section::Validate))
                        }
                    }
                    @if let Some(session) = session {
                        form.logout method="post" action="/console/logout" {
                            input type="hidden" name="csrf" value=(session.csrf);
                            button type="submit" { "Log out" }
                        }
                    }
                }
                main id="main" {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

/// A listener's state as a badge; the class colours it.
pub fn state_badge(state: &str) -> Markup {
    let class = match state {
        "RUNNING" => "state ok",
        "PAUSED" | "UNASSIGNED" | "STARTING" => "state warn",
        "FAILED" | "INVALID" | "STALLED" => "state bad",
        _ => "state",
    };
    html! { span class=(class) { (state) } }
}

/// `3 h 12 min`, `4 min 5 s`, `12 s`.
pub fn duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min {} s", s / 60, s % 60),
        _ => format!("{} h {} min", s / 3600, (s % 3600) / 60),
    }
}

/// Milliseconds since the epoch as `2026-12-01 06:31:03 UTC`.
pub fn time(ms: i64) -> String {
    format!("{} UTC", crate::utc_time(ms))
}

/// An execution status as a badge.
pub fn status_badge(status: &str) -> Markup {
    let class = match status {
        "succeeded" => "state ok",
        "completed-with-errors" => "state warn",
        "failed" => "state bad",
        _ => "state",
    };
    html! { span class=(class) { (status) } }
}
