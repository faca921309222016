//! `sluice`: the runtime host's command line. It parses the arguments and hands the command
//! to its module under `cli/`.

mod cli;

use std::process::ExitCode;

use clap::Parser as _;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    cli::init_logging(cli.log_format);
    cli::dispatch(cli)
}
