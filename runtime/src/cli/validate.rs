//! `sluice validate`: loads component files and prints every error with file:line:column,
//! then the container properties' and (with `--custom-library`) Kerberos' problems.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use sluice_runtime::components::{Components, Loaded};
use sluice_runtime::connection::kerberos;
use sluice_runtime::container::ContainerProperties;
use sluice_runtime::count;

use super::{load_warnings, EXIT_FAILED};

pub(super) fn validate(
    paths: &[PathBuf],
    container_properties: Option<&Path>,
    custom_library: Option<&Path>,
) -> anyhow::Result<ExitCode> {
    let Loaded {
        components, errors, ..
    } = Components::load_runnable(paths);
    let mut problems: Vec<String> = errors.iter().map(ToString::to_string).collect();
    let container = container(container_properties, &mut problems);
    if let Some(library) = custom_library {
        problems.extend(kerberos::check(&components, library, |_| true));
    }
    let listeners = components.listener_processes();
    for warning in load_warnings(&components, &container, |_| true, &listeners) {
        eprintln!("warning: {warning}");
    }
    if !problems.is_empty() {
        for problem in &problems {
            out!("{problem}");
        }
        eprintln!("{}", count(problems.len(), "error"));
        return Ok(ExitCode::from(EXIT_FAILED));
    }
    out!(
        "valid: {}, {}, {} in {}",
        count(components.connections.len(), "connection"),
        count(components.operations.len(), "operation"),
        count(components.processes.len(), "process"),
        count(components.files.len(), "file"),
    );
    for process in components.processes.values() {
        match &process.description {
            Some(d) => out!("  process {}: {d}", process.id),
            None => out!("  process {}", process.id),
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The container properties `explicit`ly named, else ./container.properties when it exists;
/// their errors join `problems`, their warnings are printed. The defaults when there are
/// none or they are invalid.
fn container(explicit: Option<&Path>, problems: &mut Vec<String>) -> ContainerProperties {
    let default = Path::new(ContainerProperties::DEFAULT_FILE);
    let path = match explicit {
        Some(path) => path,
        None if default.exists() => default,
        None => return ContainerProperties::default(),
    };
    match ContainerProperties::load(path) {
        Ok((properties, warnings)) => {
            for warning in warnings {
                eprintln!("warning: {warning}");
            }
            properties
        }
        Err(errors) => {
            problems.extend(errors.0.iter().map(ToString::to_string));
            ContainerProperties::default()
        }
    }
}
