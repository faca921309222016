//! `sluice test-connection`: the doctor's checks of one connection, each with what to fix.

use std::path::PathBuf;
use std::process::ExitCode;

use sluice_runtime::connection::{doctor, kerberos};
use sluice_runtime::count;

use super::{async_runtime, load_usable, Context, EXIT_FAILED};

pub(super) fn test_connection(
    context: &Context,
    connection: &str,
    topic: Option<(String, bool)>,
    paths: &[PathBuf],
) -> anyhow::Result<ExitCode> {
    let wanted = format!("connection \"{connection}\"");
    let loaded = load_usable(paths, &wanted, |loaded| {
        loaded.components.connections.contains_key(connection)
    })?;
    let mut components = loaded.components;
    let Some(definition) = components.connections.get(connection) else {
        let defined: Vec<&str> = components.connections.keys().map(String::as_str).collect();
        anyhow::bail!(
            "connection \"{connection}\" is not defined; defined connections: {}",
            defined.join(", ")
        );
    };
    let transport = definition.config.bootstrap.to_string();
    out!(
        "Testing connection \"{connection}\" ({transport}, {})",
        definition.config.security_protocol.name()
    );
    // Only this connection's Kerberos matters here (the cache lives until the end).
    let prepared = kerberos::prepare(&mut components, &context.custom_library, |id| {
        id == connection
    });
    let config = components.connections[connection].config.clone();
    let mut checks = doctor::kerberos_checks(&config, &prepared);
    checks.extend(doctor::aws_iam_checks(&config));
    if prepared.is_ok() {
        let runtime = async_runtime()?;
        checks.extend(runtime.block_on(doctor::network_checks(&config)));
        let reached = checks.iter().all(|c| c.verdict != doctor::Verdict::Fail);
        match topic {
            Some((topic, write)) if reached => {
                checks.extend(runtime.block_on(doctor::topic_checks(&config, &topic, write)));
            }
            Some((topic, _)) => checks.push(doctor::Check {
                verdict: doctor::Verdict::Fail,
                what: format!("topic \"{topic}\" not checked: the connection does not work"),
                fix: Some("fix the checks above first".into()),
            }),
            None => {}
        }
    }
    report(&checks)
}

/// Prints each check with its mark and fix; fails when any check failed.
fn report(checks: &[doctor::Check]) -> anyhow::Result<ExitCode> {
    let mut failed = 0;
    for check in checks {
        let mark = match check.verdict {
            doctor::Verdict::Pass => "✓",
            doctor::Verdict::Warn => "!",
            doctor::Verdict::Fail => {
                failed += 1;
                "✗"
            }
        };
        out!("  {mark} {}", check.what);
        if let Some(fix) = &check.fix {
            out!("      {fix}");
        }
    }
    if failed == 0 {
        out!("all checks passed");
        Ok(ExitCode::SUCCESS)
    } else {
        out!("{} failed", count(failed, "check"));
        Ok(ExitCode::from(EXIT_FAILED))
    }
}
