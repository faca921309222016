//! `sluice dead-letters list|replay`: a listener's dead letters, read back from its
//! dead-letter topic with the components that define it, and replayed from here.

use std::path::PathBuf;
use std::process::ExitCode;

use sluice_runtime::connection::kerberos::CredentialCache;
use sluice_runtime::host::dead_letters::{
    self, DeadLetterFilter, ReplayOutcome, ReplayRequest, ReplayTo,
};
use sluice_runtime::host::execution::Host;
use sluice_runtime::{count, utc_time};

use super::args::{DeadLetterFilterArgs, DeadLettersCommand};
use super::{
    async_runtime, load_usable, load_warnings, prepare_kerberos, Context, EXIT_DOCUMENT_ERRORS,
};

pub(super) fn dead_letters(
    context: Context,
    command: DeadLettersCommand,
) -> anyhow::Result<ExitCode> {
    match command {
        DeadLettersCommand::List {
            listener,
            components,
            filter,
        } => {
            let (host, _tickets) = host(context, &listener, &components.paths)?;
            list(&host, &listener, &filter.into())
        }
        DeadLettersCommand::Replay {
            listener,
            components,
            filter,
            to,
            dry_run,
            again,
        } => {
            let (host, _tickets) = host(context, &listener, &components.paths)?;
            let request = ReplayRequest {
                to,
                filter: filter.into(),
                dry_run,
                again,
            };
            replay(&host, &listener, &request)
        }
    }
}

impl From<DeadLetterFilterArgs> for DeadLetterFilter {
    fn from(args: DeadLetterFilterArgs) -> Self {
        Self {
            since_ms: args.since,
            error_contains: args.error_contains,
        }
    }
}

/// A host of the components that define `listener`, recording into the execution database,
/// and the Kerberos credential cache its connection uses (to keep until the command ends).
fn host(
    context: Context,
    listener: &str,
    paths: &[PathBuf],
) -> anyhow::Result<(Host, Option<CredentialCache>)> {
    let wanted = format!("listener \"{listener}\"");
    let loaded = load_usable(paths, &wanted, |loaded| {
        loaded.components.processes.contains_key(listener)
    })?;
    let mut components = loaded.components;
    let used = components.connections_of(listener);
    let in_use = |id: &str| used.as_ref().is_some_and(|used| used.contains(id));
    for warning in load_warnings(&components, &context.container, in_use, &[]) {
        eprintln!("warning: {warning}");
    }
    let tickets = prepare_kerberos(&mut components, &context.custom_library, in_use)?;
    let records = context.open_records()?;
    let host = Host::new(components, context.container).with_records(records);
    Ok((host, tickets))
}

fn list(host: &Host, listener: &str, filter: &DeadLetterFilter) -> anyhow::Result<ExitCode> {
    let (topic, letters) =
        async_runtime()?.block_on(dead_letters::dead_letters(host, listener, filter))?;
    if letters.is_empty() {
        out!("no dead letters in {topic} that match");
        return Ok(ExitCode::SUCCESS);
    }
    out!(
        "{:<32}  {:<20}  {:<32}  {:>8}  {:<36}  error",
        "dead letter",
        "dead-lettered (UTC)",
        "from",
        "attempts",
        "replayed by"
    );
    for letter in &letters {
        out!(
            "{:<32}  {:<20}  {:<32}  {:>8}  {:<36}  {}",
            letter.address(),
            letter.dead_lettered_ms.map_or_else(|| "-".into(), utc_time),
            letter.source_address().unwrap_or_else(|| "-".into()),
            letter
                .attempts
                .map_or_else(|| "-".into(), |a| a.to_string()),
            letter.replayed_by.as_deref().unwrap_or("-"),
            letter
                .error
                .as_deref()
                .and_then(|e| e.lines().next())
                .unwrap_or("-")
        );
    }
    for letter in &letters {
        if let Some(why) = letter.not_replayable() {
            out!("{}: not replayable: {why}", letter.address());
        }
    }
    out!("{} in {topic}", count(letters.len(), "dead letter"));
    Ok(ExitCode::SUCCESS)
}

fn replay(host: &Host, listener: &str, request: &ReplayRequest) -> anyhow::Result<ExitCode> {
    let outcome = async_runtime()?.block_on(dead_letters::replay(host, listener, request))?;
    let ReplayOutcome {
        replayed,
        skipped,
        failed,
        execution,
    } = &outcome;
    let verb = if request.dry_run {
        "would replay"
    } else {
        "replayed"
    };
    for (letter, to) in replayed {
        out!("{verb} {letter} -> {to}");
    }
    for (letter, why) in skipped {
        out!("skipped {letter}: {why}");
    }
    for (letter, error) in failed {
        out!("failed {letter}: {error}");
    }
    let target = match request.to {
        ReplayTo::Source => "their source",
        ReplayTo::Process => "the process",
    };
    let summary = format!(
        "{} to {target}, {} skipped, {} failed",
        count(replayed.len(), "dead letter"),
        skipped.len(),
        failed.len()
    );
    match execution {
        Some((id, status)) => out!("{verb} {summary}; execution {id}: {status}"),
        None => out!("{verb} {summary}"),
    }
    Ok(if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_DOCUMENT_ERRORS)
    })
}
