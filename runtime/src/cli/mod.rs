//! The `sluice` command line: one file per subcommand, each turning its arguments into calls
//! on the runtime library and its outcome into output and an exit status. What several
//! subcommands share (loading components and container properties, Kerberos, the async
//! runtime, the execution database) lives here.
//!
//! May use everything in the library; nothing in the library uses it.

/// `println!` that returns the error instead of panicking when standard output is closed
/// (`sluice executions | head -1`): the command ends quietly, see [`dispatch`].
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*)?
    }};
}

mod args;
mod dead_letters;
mod demo;
mod executions;
mod listeners;
mod run;
mod serve;
mod test_connection;
mod validate;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use sluice_runtime::components::{Components, LoadError, Loaded};
use sluice_runtime::connection::kerberos;
use sluice_runtime::container::ContainerProperties;
use sluice_runtime::count;
use sluice_runtime::store::ExecutionStore;

use args::Command;
pub use args::{Cli, LogFormat};

/// Exit codes, documented in `sluice run --help`.
const EXIT_FAILED: u8 = 1;
const EXIT_DOCUMENT_ERRORS: u8 = 3;
/// The reader of standard output went away (`| head`): what a shell reports for a command
/// ended by SIGPIPE, 128 + 13.
const EXIT_CLOSED_PIPE: u8 = 141;

/// Runs the command; an error that ends it is printed as `error: …` with exit status 1.
pub fn dispatch(cli: Cli) -> ExitCode {
    match command(cli) {
        Ok(code) => code,
        Err(error) if is_closed_pipe(&error) => ExitCode::from(EXIT_CLOSED_PIPE),
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(EXIT_FAILED)
        }
    }
}

/// Whether `error` is standard output's reader having gone away: nothing to report, the
/// reader asked for no more.
fn is_closed_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// Logs to standard error, filtered by RUST_LOG (default: warnings and errors), as text or
/// as one JSON object per line.
pub fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(false)
            .with_span_list(true)
            .init(),
    }
}

/// What every subcommand but validate starts from.
struct Context {
    container: ContainerProperties,
    /// The container properties file read (or the default one that would have been), with
    /// its content then (`None`: there was none).
    container_file: (PathBuf, Option<Vec<u8>>),
    custom_library: PathBuf,
    executions_db: PathBuf,
}

impl Context {
    /// The execution database, opened (or created) with the container's retention.
    fn open_records(&self) -> anyhow::Result<Arc<ExecutionStore>> {
        let host = &self.container.host;
        Ok(Arc::new(
            ExecutionStore::open(&self.executions_db, host.executions_retention)?
                .keeping_at_most(host.executions_max_records),
        ))
    }
}

/// How long a command that ends waits for its execution records to be written (the database
/// may be locked by another process for a while).
const RECORDS_FLUSH: std::time::Duration = std::time::Duration::from_secs(10);

/// Waits for the execution records still on their way; says how many never reached the
/// database.
fn flush_records(store: &ExecutionStore) {
    let left = store.flush(RECORDS_FLUSH);
    if left > 0 {
        eprintln!(
            "warning: {} could not be written to the execution database (it stayed locked or \
             failed; the log says why)",
            count(left as usize, "execution record")
        );
    }
}

fn command(cli: Cli) -> anyhow::Result<ExitCode> {
    if let Command::Validate { paths } = &cli.command {
        return validate::validate(
            paths,
            cli.container_properties.as_deref(),
            cli.custom_library.as_deref(),
        );
    }
    if let Command::Listeners(command) = cli.command {
        return listeners::listeners(command);
    }
    let container_file = cli
        .container_properties
        .clone()
        .unwrap_or_else(|| PathBuf::from(ContainerProperties::DEFAULT_FILE));
    let container_text = std::fs::read(&container_file).ok();
    let context = Context {
        container: load_container_properties(cli.container_properties.as_deref())?,
        container_file: (container_file, container_text),
        custom_library: cli
            .custom_library
            .unwrap_or_else(|| PathBuf::from(kerberos::DEFAULT_CUSTOM_LIBRARY)),
        executions_db: cli.executions_db,
    };
    match cli.command {
        Command::Validate { .. } | Command::Listeners(_) => unreachable!("handled above"),
        Command::Executions {
            id,
            message,
            process,
            status,
            limit,
        } => executions::executions(&context, id, message, process, status, limit),
        Command::DeadLetters(command) => dead_letters::dead_letters(context, command),
        Command::Demo => demo::demo(context.container),
        Command::TestConnection {
            connection,
            topic,
            write,
            components,
        } => test_connection::test_connection(
            &context,
            &connection,
            topic.map(|topic| (topic, write)),
            &components.paths,
        ),
        Command::Serve {
            components,
            api,
            watch,
            embedded_port,
        } => serve::serve(
            context,
            &components.paths,
            serve::Options {
                api,
                watch,
                embedded_port,
            },
        ),
        Command::Run {
            process,
            components,
            input,
            input_format,
            documents_out,
        } => run::run(
            context,
            &process,
            &components.paths,
            run::Input {
                path: input,
                format: input_format,
            },
            documents_out.as_deref(),
        ),
    }
}

/// The async runtime. Everything that must happen on a single thread (reading the
/// environment, setting KRB5_CONFIG for Kerberos) is done before it starts its threads.
fn async_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Kerberos for the connections `in_use` (before any thread starts); each problem printed.
fn prepare_kerberos(
    components: &mut Components,
    custom_library: &Path,
    in_use: impl Fn(&str) -> bool,
) -> anyhow::Result<Option<kerberos::CredentialCache>> {
    kerberos::prepare(components, custom_library, in_use).or_else(|problems| {
        for problem in &problems {
            eprintln!("{problem}");
        }
        anyhow::bail!(
            "Kerberos is not ready ({})",
            count(problems.len(), "problem")
        )
    })
}

/// The components under `paths` that can run, when what `wanted` names can: errors in
/// components it does not use become one warning line. Otherwise every error is printed and
/// the command stops.
fn load_usable(
    paths: &[PathBuf],
    wanted: &str,
    usable: impl Fn(&Loaded) -> bool,
) -> anyhow::Result<Loaded> {
    let loaded = Components::load_runnable(paths);
    if loaded.is_valid() {
        return Ok(loaded);
    }
    if usable(&loaded) {
        eprintln!(
            "warning: {} in components that {wanted} does not use; sluice validate lists them",
            count(loaded.errors.len(), "error")
        );
        return Ok(loaded);
    }
    stop_on_errors(&loaded.errors)
}

/// What to warn about when components meet the container properties: connections `in_use`
/// whose managed service accepts smaller messages than the container properties' own
/// kafka.max.request.size (the service's limit applies), and, among `listeners`, those that
/// share a consumer group.
fn load_warnings(
    components: &Components,
    container: &ContainerProperties,
    in_use: impl Fn(&str) -> bool,
    listeners: &[String],
) -> Vec<String> {
    let mut warnings = Vec::new();
    // Only a value the owner chose: the default is above every service's limit by design,
    // and the service's limit applying to it is what the preset is for.
    if container.is_set(ContainerProperties::MAX_REQUEST_SIZE) {
        let host = container.kafka.max_request_size;
        for connection in components.connections.values().filter(|c| in_use(&c.id)) {
            let Some(limit) = connection.config.service_limit else {
                continue;
            };
            if limit.max_request_size < host {
                warnings.push(format!(
                    "connection \"{}\" ({}) accepts messages up to {} bytes, and the container \
                     properties set kafka.max.request.size to {host}: {} bytes apply to this \
                     connection",
                    connection.id, limit.service, limit.max_request_size, limit.max_request_size
                ));
            }
        }
    }
    warnings.extend(components.shared_consumer_groups(listeners));
    warnings
}

/// Prints every load error and stops the command.
fn stop_on_errors<T>(errors: &[LoadError]) -> anyhow::Result<T> {
    for e in errors {
        eprintln!("{e}");
    }
    anyhow::bail!(
        "{} in the components; fix them (sluice validate shows them too)",
        count(errors.len(), "error")
    )
}

fn load_container_properties(explicit: Option<&Path>) -> anyhow::Result<ContainerProperties> {
    let default = Path::new(ContainerProperties::DEFAULT_FILE);
    let path = match explicit {
        Some(path) => path,
        None if default.exists() => default,
        None => return Ok(ContainerProperties::default()),
    };
    let (properties, warnings) = ContainerProperties::load(path)?;
    for warning in warnings {
        eprintln!("warning: {warning}");
    }
    tracing::debug!(?properties, file = %path.display(), "container properties");
    Ok(properties)
}

/// `  document 2, step 1 (send): message [topic t, partition 0, offset 4]`: one document
/// error as `run` prints it and `executions` shows it again; step 0 is the start.
fn document_error_line(
    document: i64,
    step: i64,
    operation: &str,
    message: &str,
    (topic, partition, offset): (Option<&str>, Option<i64>, Option<i64>),
) -> String {
    let step = match step {
        0 => "start".to_string(),
        n => format!("step {n}"),
    };
    let at = match (topic, partition, offset) {
        (Some(topic), Some(partition), Some(offset)) => {
            format!(" [topic {topic}, partition {partition}, offset {offset}]")
        }
        _ => String::new(),
    };
    format!("  document {document}, {step} ({operation}): {message}{at}")
}
