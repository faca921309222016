//! `sluice validate`: loads component files and prints every error with file:line:column.

use std::path::PathBuf;
use std::process::ExitCode;

use sluice_runtime::components::Components;
use sluice_runtime::count;

use super::EXIT_FAILED;

pub(super) fn validate(paths: &[PathBuf]) -> ExitCode {
    match Components::load(paths) {
        Ok(components) => {
            println!(
                "valid: {}, {}, {} in {}",
                count(components.connections.len(), "connection"),
                count(components.operations.len(), "operation"),
                count(components.processes.len(), "process"),
                count(components.files.len(), "file"),
            );
            for process in components.processes.values() {
                match &process.description {
                    Some(d) => println!("  process {}: {d}", process.id),
                    None => println!("  process {}", process.id),
                }
            }
            ExitCode::SUCCESS
        }
        Err(errors) => {
            for e in &errors.0 {
                println!("{e}");
            }
            eprintln!("{}", count(errors.0.len(), "error"));
            ExitCode::from(EXIT_FAILED)
        }
    }
}
