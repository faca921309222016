//! `sluice listeners seek`: asks a running host, through its management API, to move one of
//! its listeners. Only a member of a live consumer group can move the group, so this command
//! holds no Kafka client of its own.

use std::process::ExitCode;
use std::time::Duration;

use serde_json::{json, Value};

use super::args::ListenersCommand;

/// How long the host may take to answer: a seek waits up to a minute for the listener's
/// batch in hand, then a few requests to the brokers.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(120);

pub(super) fn listeners(command: ListenersCommand) -> anyhow::Result<ExitCode> {
    match command {
        ListenersCommand::Seek {
            listener,
            to_offset,
            to_timestamp,
            to_earliest,
            to_latest,
            api,
        } => {
            let body = if !to_offset.is_empty() {
                let offsets: Vec<Value> = to_offset
                    .iter()
                    .map(
                        |o| json!({"topic": o.topic, "partition": o.partition, "offset": o.offset}),
                    )
                    .collect();
                json!({ "to_offsets": offsets })
            } else if let Some(time) = to_timestamp {
                json!({ "to_timestamp": time })
            } else {
                json!({ "to_earliest": to_earliest, "to_latest": to_latest })
            };
            let base = base_url(&api);
            let answer = post(&base, &format!("/listeners/{listener}/seek"), &body)?;
            print_moves(&listener, &answer);
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The API's base URL from `--api` as `sluice serve` takes it (HOST:PORT), or a URL.
fn base_url(api: &str) -> String {
    let api = api.trim_end_matches('/');
    if api.starts_with("http://") || api.starts_with("https://") {
        api.to_string()
    } else {
        format!("http://{api}")
    }
}

/// POSTs `body` to the host's API; its JSON answer, or the API's own message as the error.
fn post(base: &str, path: &str, body: &Value) -> anyhow::Result<Value> {
    let agent = ureq::AgentBuilder::new()
        .timeout_connect(Duration::from_secs(5))
        .timeout(ANSWER_TIMEOUT)
        .build();
    let mut request = agent
        .post(&format!("{base}{path}"))
        .set("Content-Type", "application/json");
    if let Some(token) = std::env::var("SLUICE_API_TOKEN")
        .ok()
        .filter(|t| !t.is_empty())
    {
        request = request.set("Authorization", &format!("Bearer {token}"));
    }
    match request.send_string(&body.to_string()) {
        Ok(response) => {
            let text = response.into_string()?;
            Ok(serde_json::from_str(&text)?)
        }
        Err(ureq::Error::Status(status, response)) => {
            let message = response
                .into_string()
                .ok()
                .and_then(|text: String| serde_json::from_str::<Value>(&text).ok())
                .and_then(|v| v["message"].as_str().map(str::to_string))
                .unwrap_or_else(|| format!("the API answered {status}"));
            let hint = match status {
                401 => " (set SLUICE_API_TOKEN to the host's token)",
                _ => "",
            };
            anyhow::bail!("{message}{hint}")
        }
        Err(ureq::Error::Transport(transport)) => anyhow::bail!(
            "cannot reach the management API at {base}: {transport}; is sluice serve running \
             there (its --api address)? Give it with --api ADDRESS"
        ),
    }
}

/// One line per partition moved: from where to where, and what that means for the listener.
fn print_moves(listener: &str, answer: &Value) {
    let partitions = answer["partitions"].as_array().cloned().unwrap_or_default();
    println!(
        "moved listener \"{listener}\": {}",
        sluice_runtime::count(partitions.len(), "partition")
    );
    for p in &partitions {
        let to = p["to"].as_i64().unwrap_or_default();
        let (from, effect) = match p["from"].as_i64() {
            Some(from) if from > to => (
                from.to_string(),
                format!(
                    "{} processed again",
                    sluice_runtime::count((from - to) as usize, "message")
                ),
            ),
            Some(from) if from < to => (
                from.to_string(),
                format!(
                    "{} skipped",
                    sluice_runtime::count((to - from) as usize, "message")
                ),
            ),
            Some(from) => (from.to_string(), "unchanged".into()),
            None => ("nothing committed".into(), "first commit".into()),
        };
        println!(
            "  {}/{}: {from} -> {to} ({effect})",
            p["topic"].as_str().unwrap_or_default(),
            p["partition"]
        );
    }
}
