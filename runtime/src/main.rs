//! `sluice`: the runtime host's command line.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use sluice_runtime::components::Components;
use sluice_runtime::container::ContainerProperties;
use sluice_runtime::count;
use sluice_runtime::doctor;
use sluice_runtime::document::{self, InputFormat};
use sluice_runtime::execution::{ExecutionRecord, ExecutionStatus, Host, Progress};

/// Exit codes, documented in `sluice run --help`.
const EXIT_FAILED: u8 = 1;
const EXIT_DOCUMENT_ERRORS: u8 = 3;

#[derive(Parser)]
#[command(
    name = "sluice",
    version,
    about = "A process-runtime host with a Kafka connector",
    long_about = "Sluice runs integration processes described as XML components: connections \
                  (where Kafka is), operations (Produce, Consume) and processes (a start and \
                  steps). Logs go to standard error; filter them with RUST_LOG, e.g. \
                  RUST_LOG=sluice=debug.",
    after_help = "Examples:\n  \
                  sluice demo\n  \
                  sluice validate profiles/demo\n  \
                  sluice run send-orders --components my-components/ --input orders.jsonl\n  \
                  sluice serve --components my-components/\n  \
                  sluice executions --status failed\n  \
                  sluice test-connection local-kafka --components profiles/connections"
)]
struct Cli {
    /// Container properties file (Java-properties syntax) with the host's limits, such as
    /// kafka.max.request.size and kafka.max.poll.records. Default: ./container.properties when
    /// it exists.
    #[arg(long, global = true, value_name = "PATH")]
    container_properties: Option<PathBuf>,

    /// The custom library folder: krb5.conf and {REALM}.keytab for Kerberos connections
    #[arg(long, global = true, value_name = "DIR", default_value = sluice_runtime::kerberos::DEFAULT_CUSTOM_LIBRARY)]
    custom_library: PathBuf,

    /// The execution database (SQLite) where run and serve record every execution
    #[arg(
        long,
        global = true,
        value_name = "PATH",
        default_value = "sluice-executions.db",
        env = "SLUICE_EXECUTIONS_DB"
    )]
    executions_db: PathBuf,

    #[command(subcommand)]
    command: Command,
}

/// Where a command finds its components.
#[derive(clap::Args)]
struct ComponentPaths {
    /// Component files or folders to load (all of them are validated)
    #[arg(
        long = "components",
        value_name = "DIR|FILE",
        default_value = "components",
        env = "SLUICE_COMPONENTS"
    )]
    paths: Vec<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Load and check component files; print every error with file:line:column
    #[command(
        after_help = "Exit status: 0 when everything is valid, 1 otherwise.\n\n\
                            Examples:\n  \
                            sluice validate profiles/demo\n  \
                            sluice validate orders.xml connections.xml"
    )]
    Validate {
        /// Component files, or folders searched recursively for *.xml files
        #[arg(required = true, value_name = "DIR|FILE")]
        paths: Vec<PathBuf>,
    },

    /// Run one execution of a process and print its summary
    #[command(
        after_help = "Documents come from the process's start (a consume operation) or \
                            from --input:\n  \
                            lines   one document per line (empty lines skipped)\n  \
                            jsonl   one JSON envelope per line: {\"data\": \"…\", \"properties\": \
                            {\"message-key\": \"…\", \"topic-name\": \"…\"}}; \"data\" may be any \
                            JSON value, \"data-base64\" carries binary payloads\n  \
                            a folder: one document per file, in name order\n\n\
                            Exit status: 0 when every document succeeded, 3 when the execution \
                            completed but some documents have errors, 1 when it failed or \
                            could not start.\n\n\
                            Examples:\n  \
                            sluice run demo-send-orders --components profiles/demo --input \
                            profiles/demo/orders.jsonl\n  \
                            printf 'a\\nb\\n' | sluice run send-orders --input -\n  \
                            sluice run receive-orders --documents-out - | jq .data"
    )]
    Run {
        /// The process id
        process: String,
        #[command(flatten)]
        components: ComponentPaths,
        /// Documents for a process without a start operation: a file, a folder, or - for stdin
        #[arg(long, value_name = "FILE|DIR|-")]
        input: Option<PathBuf>,
        /// How to read --input (auto: *.jsonl and *.ndjson as jsonl, anything else as lines)
        #[arg(long, value_enum, default_value = "auto")]
        input_format: InputFormat,
        /// Write the documents that leave the process as JSON lines to a file, or - for
        /// standard output (the summary then goes to standard error)
        #[arg(long, value_name = "FILE|-")]
        documents_out: Option<PathBuf>,
    },

    /// Check a connection: name resolution, TCP, TLS and SASL handshakes, Kerberos files and
    /// tickets, metadata; each check with what to fix
    #[command(
        after_help = "Exit status: 0 when every check passes (warnings allowed), 1 \
                            otherwise. Secrets are never shown.\n\n\
                            Examples:\n  \
                            sluice test-connection local-kafka --components profiles/connections\n  \
                            sluice test-connection scram-kafka --components my-components/"
    )]
    TestConnection {
        /// The connection id
        connection: String,
        #[command(flatten)]
        components: ComponentPaths,
    },

    /// Run every process that starts with a listen operation until SIGINT or SIGTERM
    #[command(
        after_help = "Each batch a listener receives runs its process, one execution per \
                            partition; a failing document is retried, then sent to the listen \
                            operation's dead-letter topic. Offsets are committed once every \
                            document up to them has finished.\n\n\
                            On SIGINT/SIGTERM the listeners stop fetching, running executions \
                            get host.drain.timeout.ms (container property, default 30000) to \
                            finish, finished work is committed and the consumer groups are left \
                            cleanly. A second signal exits at once.\n\n\
                            The management API (--api, default 127.0.0.1:8083): GET /health, \
                            /processes, /listeners, /listeners/ID/status, /executions, \
                            /executions/ID, /metrics; PUT /listeners/ID/pause and resume; POST \
                            /listeners/ID/restart and /components/validate. With \
                            SLUICE_API_TOKEN set, every request but /health needs \
                            Authorization: Bearer <token>.\n\n\
                            Exit status: 0 after a clean stop, 1 when a listener failed or none \
                            could start (with --api off, the host also ends once every listener \
                            has failed).\n\n\
                            Examples:\n  \
                            sluice serve --components my-components/\n  \
                            RUST_LOG=sluice=info sluice serve --components \
                            profiles/connections/local.xml --components profiles/examples"
    )]
    Serve {
        #[command(flatten)]
        components: ComponentPaths,
        /// Where the management API listens (port 0: any free port, printed at start), or off.
        /// Requests need `Authorization: Bearer …` when SLUICE_API_TOKEN is set
        #[arg(long, value_name = "ADDRESS|off", default_value = "127.0.0.1:8083")]
        api: String,
    },

    /// List the recorded executions, newest first, or show one with its document errors
    #[command(
        after_help = "Executions are recorded by sluice run and sluice serve in the execution \
                            database (--executions-db, default ./sluice-executions.db) and kept \
                            for host.executions.retention.days (container property, default \
                            30).\n\n\
                            Examples:\n  \
                            sluice executions\n  \
                            sluice executions --process send-orders --status failed\n  \
                            sluice executions 019a3c5e-7d41-7c2e-9f0a-2b4c6d8e0f12"
    )]
    Executions {
        /// Show this execution, with its document errors
        id: Option<String>,
        /// Only this process's executions
        #[arg(long)]
        process: Option<String>,
        /// Only executions with this status
        #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(sluice_runtime::records::STATUSES))]
        status: Option<String>,
        /// At most this many
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },

    /// Produce a few keyed documents and consume them back, on the embedded broker
    #[command(
        after_help = "Needs nothing installed or running: the embedded broker is \
                            librdkafka's in-process mock cluster.\n\nExample:\n  sluice demo"
    )]
    Demo,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    match run(cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(EXIT_FAILED)
        }
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    if let Command::Validate { paths } = &cli.command {
        return Ok(validate(paths));
    }
    let container = load_container_properties(cli.container_properties.as_deref())?;
    // Everything that must happen on a single thread (reading the environment, setting
    // KRB5_CONFIG for Kerberos) is done before the async runtime starts its threads.
    let runtime = || {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .context("cannot start the async runtime")
    };
    let retention = container.host.executions_retention;
    let open_records = || {
        sluice_runtime::records::ExecutionStore::open(&cli.executions_db, retention)
            .map(std::sync::Arc::new)
    };
    match cli.command {
        Command::Validate { .. } => unreachable!("handled above"),
        Command::Executions {
            id,
            process,
            status,
            limit,
        } => {
            if !cli.executions_db.exists() {
                anyhow::bail!(
                    "no execution database at {}: executions are recorded there by sluice run \
                     and sluice serve started in this folder (or give --executions-db)",
                    cli.executions_db.display()
                );
            }
            let store = open_records()?;
            match id {
                Some(id) => show_execution(&store, &id),
                None => list_executions(
                    &store,
                    &sluice_runtime::records::Filter {
                        process,
                        status,
                        limit,
                    },
                ),
            }
        }
        Command::Demo => {
            runtime()?.block_on(sluice_runtime::demo::run(container, &mut std::io::stdout()))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::TestConnection {
            connection,
            components,
        } => {
            let mut components = load_components(&components.paths)?;
            let Some(definition) = components.connections.get(&connection) else {
                let defined: Vec<&str> =
                    components.connections.keys().map(String::as_str).collect();
                anyhow::bail!(
                    "connection \"{connection}\" is not defined; defined connections: {}",
                    defined.join(", ")
                );
            };
            let transport = match &definition.config.bootstrap {
                sluice_connector::Bootstrap::Embedded => "embedded".to_string(),
                sluice_connector::Bootstrap::Servers(s) => s.join(","),
            };
            println!(
                "Testing connection \"{connection}\" ({transport}, {})",
                definition.config.security_protocol.name()
            );
            // Only this connection's Kerberos matters here (the cache lives until the end).
            let prepared =
                sluice_runtime::kerberos::prepare(&mut components, &cli.custom_library, |id| {
                    id == connection
                });
            let config = components.connections[&connection].config.clone();
            let mut checks = doctor::kerberos_checks(&config, &prepared);
            checks.extend(doctor::aws_iam_checks(&config));
            if prepared.is_ok() {
                checks.extend(runtime()?.block_on(doctor::network_checks(&config)));
            }
            let mut failed = 0;
            for check in &checks {
                let mark = match check.verdict {
                    doctor::Verdict::Pass => "✓",
                    doctor::Verdict::Warn => "!",
                    doctor::Verdict::Fail => {
                        failed += 1;
                        "✗"
                    }
                };
                println!("  {mark} {}", check.what);
                if let Some(fix) = &check.fix {
                    println!("      {fix}");
                }
            }
            if failed == 0 {
                println!("all checks passed");
                Ok(ExitCode::SUCCESS)
            } else {
                println!("{} failed", count(failed, "check"));
                Ok(ExitCode::from(EXIT_FAILED))
            }
        }
        Command::Serve { components, api } => {
            let api = match api.as_str() {
                "off" => None,
                address => Some(address.parse::<std::net::SocketAddr>().map_err(|_| {
                    anyhow::anyhow!(
                        "--api must be an address such as 127.0.0.1:8083 (or off), got \"{address}\""
                    )
                })?),
            };
            let api_token = std::env::var("SLUICE_API_TOKEN")
                .ok()
                .filter(|t| !t.is_empty())
                .map(sluice_connector::Secret::new);
            let mut components = load_components(&components.paths)?;
            let listeners = components.listener_processes();
            if listeners.is_empty() {
                anyhow::bail!(
                    "no process in the components starts with a listen operation, so there is \
                     nothing to serve; give a process <start operation=\"…\"/> naming an \
                     operation of type=\"listen\" (sluice run runs the others)"
                );
            }
            let used: std::collections::BTreeSet<String> = listeners
                .iter()
                .filter_map(|p| components.connections_of(p))
                .flatten()
                .collect();
            // Kept until the host stops: the host's Kerberos credential cache.
            let _tickets =
                prepare_kerberos(&mut components, &cli.custom_library, |id| used.contains(id))?;
            let host = Host::new(components, container).with_records(open_records()?);
            let runtime = runtime()?;
            let options = sluice_runtime::serve::ServeOptions { api, api_token };
            let failed =
                runtime.block_on(sluice_runtime::serve::serve(host, listeners, options))?;
            // A listener still connecting holds a blocking thread until librdkafka's metadata
            // wait ends; its work is abandoned, so the host need not wait for it.
            runtime.shutdown_timeout(Duration::from_secs(1));
            Ok(if failed == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(EXIT_FAILED)
            })
        }
        Command::Run {
            process,
            components,
            input,
            input_format,
            documents_out,
        } => {
            let mut components = load_components(&components.paths)?;
            // Only the connections this process uses; an unknown process uses none, and the
            // execution below reports it.
            let used = components.connections_of(&process);
            let in_use = |id: &str| used.as_ref().is_some_and(|used| used.contains(id));
            // Kept until the run ends: the host's Kerberos credential cache.
            let _tickets = prepare_kerberos(&mut components, &cli.custom_library, in_use)?;
            let input = input
                .map(|path| document::read_input(&path, input_format))
                .transpose()?;
            let mut host = Host::new(components, container);
            // A run goes ahead without records when the database cannot be opened.
            match open_records() {
                Ok(store) => host = host.with_records(store),
                Err(error) => tracing::warn!(%error, "this execution will not be recorded"),
            }
            let progress = TerminalProgress::new();
            let record = runtime()?.block_on(host.execute(&process, input, &progress))?;
            progress.finish();
            let summary_to_stderr = documents_out.as_deref() == Some(Path::new("-"));
            if let Some(path) = &documents_out {
                write_documents(path, &record)?;
            }
            if summary_to_stderr {
                print_summary(&mut std::io::stderr(), &record)?;
            } else {
                print_summary(&mut std::io::stdout(), &record)?;
            }
            Ok(match record.status {
                ExecutionStatus::Succeeded => ExitCode::SUCCESS,
                ExecutionStatus::CompletedWithErrors => ExitCode::from(EXIT_DOCUMENT_ERRORS),
                ExecutionStatus::Failed(_) => ExitCode::from(EXIT_FAILED),
            })
        }
    }
}

fn list_executions(
    store: &sluice_runtime::records::ExecutionStore,
    filter: &sluice_runtime::records::Filter,
) -> anyhow::Result<ExitCode> {
    let executions = store.list(filter)?;
    if executions.is_empty() {
        println!("no executions recorded that match");
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<36}  {:<24}  {:<20}  {:>9}  {:>6}  {:>6}  {:>6}  status",
        "execution", "process", "started (UTC)", "took", "in", "out", "errors"
    );
    for e in executions {
        println!(
            "{:<36}  {:<24}  {:<20}  {:>9}  {:>6}  {:>6}  {:>6}  {}",
            e.id,
            e.process,
            started(e.started_ms),
            format!("{} ms", e.duration_ms),
            e.documents_in,
            e.documents_out,
            e.document_errors,
            e.status
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn show_execution(
    store: &sluice_runtime::records::ExecutionStore,
    id: &str,
) -> anyhow::Result<ExitCode> {
    let Some((e, errors)) = store.get(id)? else {
        anyhow::bail!(
            "execution {id} is not recorded (sluice executions lists the recorded ones; records \
             older than host.executions.retention.days are removed)"
        );
    };
    println!("execution {}", e.id);
    println!("process   {}", e.process);
    println!(
        "started   {} UTC, took {} ms",
        started(e.started_ms),
        e.duration_ms
    );
    println!("status    {}", e.status);
    if let Some(failure) = &e.failure {
        println!("failure   {failure}");
    }
    println!(
        "documents {} in, {} out, {}",
        e.documents_in,
        e.documents_out,
        count(e.document_errors as usize, "error")
    );
    for error in errors {
        let at = (error.topic.as_deref(), error.partition, error.offset);
        let line = document_error_line(
            error.document,
            error.step,
            &error.operation,
            &error.message,
            at,
        );
        println!("{line}");
    }
    Ok(ExitCode::SUCCESS)
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

/// `2026-11-22 12:34:56` for milliseconds since the epoch.
fn started(ms: i64) -> String {
    let time = std::time::UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    humantime::format_rfc3339_seconds(time)
        .to_string()
        .replace('T', " ")
        .trim_end_matches('Z')
        .to_string()
}

/// Kerberos for the connections `in_use` (before any thread starts); each problem printed.
fn prepare_kerberos(
    components: &mut Components,
    custom_library: &Path,
    in_use: impl Fn(&str) -> bool,
) -> anyhow::Result<Option<sluice_runtime::kerberos::CredentialCache>> {
    sluice_runtime::kerberos::prepare(components, custom_library, in_use).or_else(|problems| {
        for problem in &problems {
            eprintln!("{problem}");
        }
        anyhow::bail!(
            "Kerberos is not ready ({})",
            count(problems.len(), "problem")
        )
    })
}

fn load_components(paths: &[PathBuf]) -> anyhow::Result<Components> {
    Components::load(paths).or_else(|errors| {
        for e in &errors.0 {
            eprintln!("{e}");
        }
        anyhow::bail!(
            "{} in the components; fix them (sluice validate shows them too)",
            count(errors.0.len(), "error")
        )
    })
}

fn validate(paths: &[PathBuf]) -> ExitCode {
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

fn write_documents(path: &Path, record: &ExecutionRecord) -> anyhow::Result<()> {
    let mut out: Box<dyn Write> = if path == Path::new("-") {
        Box::new(std::io::stdout().lock())
    } else {
        Box::new(std::io::BufWriter::new(
            std::fs::File::create(path)
                .with_context(|| format!("cannot create {}", path.display()))?,
        ))
    };
    for doc in &record.documents_out {
        writeln!(out, "{}", document::to_json_line(doc))?;
    }
    out.flush()?;
    Ok(())
}

fn print_summary(out: &mut dyn Write, record: &ExecutionRecord) -> std::io::Result<()> {
    let took =
        humantime::format_duration(Duration::from_millis(record.duration.as_millis() as u64));
    match &record.status {
        ExecutionStatus::Failed(reason) => writeln!(
            out,
            "process {}, execution {}: failed after {took}\n  {reason}",
            record.process, record.id
        )?,
        status => writeln!(
            out,
            "process {}, execution {}: {status} in {took}",
            record.process, record.id
        )?,
    }
    writeln!(
        out,
        "documents: {} in, {} out, {}",
        record.documents_in,
        record.documents_out.len(),
        count(record.document_errors.len(), "error")
    )?;
    for error in &record.document_errors {
        let t = &error.tracked;
        let at = (t.topic.as_deref(), t.partition.map(i64::from), t.offset);
        let line = document_error_line(
            error.document as i64,
            error.step as i64,
            &error.operation,
            &error.message,
            at,
        );
        writeln!(out, "{line}")?;
    }
    Ok(())
}

/// Step progress on standard error, redrawn at most every 100 ms, only on a terminal.
struct TerminalProgress {
    enabled: bool,
    last: Mutex<Option<Instant>>,
}

impl TerminalProgress {
    fn new() -> Self {
        Self {
            enabled: std::io::stderr().is_terminal(),
            last: Mutex::new(None),
        }
    }

    fn finish(&self) {
        if self.enabled && self.last.lock().is_ok_and(|l| l.is_some()) {
            eprint!("\r\x1b[K");
        }
    }
}

impl Progress for TerminalProgress {
    fn step_progress(&self, step: usize, operation: &str, done: usize, total: usize) {
        if !self.enabled {
            return;
        }
        let Ok(mut last) = self.last.lock() else {
            return;
        };
        let now = Instant::now();
        if done < total && last.is_some_and(|l| now - l < Duration::from_millis(100)) {
            return;
        }
        *last = Some(now);
        eprint!("\r\x1b[Kstep {step} ({operation}): {done}/{total} documents");
    }
}
