//! The command line's shape: global options, and each subcommand with its help and examples.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use sluice_runtime::document::InputFormat;
use sluice_runtime::host::dead_letters::ReplayTo;
use sluice_runtime::record::{ExecutionStatus, MessageAddress};

#[derive(Parser)]
#[command(
    name = "sluice",
    version,
    about = "A process-runtime host with a Kafka connector",
    long_about = "Sluice runs integration processes described as XML components: connections \
                  (where Kafka is), operations (Produce, Consume) and processes (a start and \
                  steps). Logs go to standard error; filter them with RUST_LOG, e.g. \
                  RUST_LOG=sluice=debug (librdkafka's own lines: RUST_LOG=librdkafka=info), \
                  and write them as JSON with --log-format json.",
    after_help = "Examples:\n  \
                  sluice demo\n  \
                  sluice validate profiles/demo\n  \
                  sluice run demo-send-orders --components profiles/demo --input \
                  profiles/demo/orders.jsonl\n  \
                  sluice serve --components profiles/demo --embedded-port 19092\n  \
                  sluice executions --status failed\n  \
                  sluice test-connection local-kafka --components profiles/connections"
)]
pub struct Cli {
    /// Container properties file (Java-properties syntax) with the host's limits, such as
    /// kafka.max.request.size and kafka.max.poll.records. Default: ./container.properties when
    /// it exists.
    #[arg(long, global = true, value_name = "PATH")]
    pub container_properties: Option<PathBuf>,

    /// The custom library folder: krb5.conf and {REALM}.keytab for Kerberos connections
    /// [default: custom-libs]
    #[arg(long, global = true, value_name = "DIR")]
    pub custom_library: Option<PathBuf>,

    /// The execution database (SQLite) where run and serve record every execution
    #[arg(
        long,
        global = true,
        value_name = "PATH",
        default_value = "sluice-executions.db",
        env = "SLUICE_EXECUTIONS_DB"
    )]
    pub executions_db: PathBuf,

    /// How log lines are written to standard error: text for people, json for a log
    /// collector (one object per line, with the same fields)
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "text",
        env = "SLUICE_LOG_FORMAT"
    )]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Command,
}

/// `--log-format`.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum LogFormat {
    /// One readable line per event.
    Text,
    /// One JSON object per event: timestamp, level, target, fields (message included) and
    /// the spans it happened in (process, execution_id, topic, partition …).
    Json,
}

/// Where a command finds its components.
#[derive(clap::Args)]
pub struct ComponentPaths {
    /// Component files or folders to load (all of them are validated)
    #[arg(
        long = "components",
        value_name = "DIR|FILE",
        default_value = "components",
        env = "SLUICE_COMPONENTS"
    )]
    pub paths: Vec<PathBuf>,
}

#[derive(Subcommand)]
pub enum Command {
    /// Load and check component files; print every error with file:line:column
    #[command(
        after_help = "Every error in one pass, sorted by file, line and column. Also checks the \
                            container properties (--container-properties, default \
                            ./container.properties when it exists) and, with --custom-library, \
                            the Kerberos files (krb5.conf, {REALM}.keytab) the connections need. \
                            Warns about listeners that share a consumer group and about \
                            container properties above what a connection's service accepts.\n\n\
                            Exit status: 0 when everything is valid, 1 otherwise.\n\n\
                            Examples:\n  \
                            sluice validate profiles/demo\n  \
                            sluice validate profiles/connections/local.xml \
                            profiles/examples/orders.xml\n  \
                            sluice validate profiles/demo --container-properties \
                            profiles/container.properties --custom-library custom-libs/"
    )]
    Validate {
        /// Component files, or folders searched recursively for *.xml files
        #[arg(
            value_name = "DIR|FILE",
            default_value = "components",
            env = "SLUICE_COMPONENTS"
        )]
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
                            could not start, 141 when standard output was closed before \
                            everything was written (| head; the summary still goes to \
                            standard error).\n\n\
                            Examples:\n  \
                            sluice run demo-send-orders --components profiles/demo --input \
                            profiles/demo/orders.jsonl\n  \
                            printf 'a\\nb\\n' | sluice run demo-send-orders --components \
                            profiles/demo --input -\n  \
                            sluice run example-receive-orders --components profiles/connections \
                            --components profiles/examples --documents-out - | head -3"
    )]
    Run {
        /// The process id
        process: String,
        #[command(flatten)]
        components: ComponentPaths,
        /// Documents for a process without a start operation: a file, a folder, or - for stdin
        ///
        /// A file is checked whole first (a bad line refuses the run before anything is sent),
        /// then goes through the steps 16,384 documents (or 16 MiB) at a time, so a large file
        /// needs no more memory than a chunk. Standard input, a folder, and a process with a
        /// Commit Offset step are read whole.
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
                            sluice test-connection embedded-kafka --components \
                            profiles/connections\n  \
                            sluice test-connection local-kafka --topic orders --components \
                            profiles/connections"
    )]
    TestConnection {
        /// The connection id
        connection: String,
        /// Also check this topic: that it exists, that this identity may describe and read it
        /// (each partition answers a fetch of its first batch), with its partitions and end
        /// offsets
        #[arg(long, value_name = "TOPIC")]
        topic: Option<String>,
        /// With --topic: also produce one probe message (header sluice.probe) as a Produce
        /// operation would and read it back. The topic keeps it: its consumers will see it
        #[arg(long, requires = "topic")]
        write: bool,
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
                            The management API (--api, default 127.0.0.1:8083): GET /, /health, \
                            /processes, /listeners, /listeners/ID/status, /executions, \
                            /executions/ID, /metrics; PUT /listeners/ID/pause and resume; POST \
                            /listeners/ID/restart, /components/validate and \
                            /components/reload. With SLUICE_API_TOKEN set, every request but \
                            /health needs Authorization: Bearer <token>.\n\n\
                            The web console is on the same address: open it in a browser \
                            (http://127.0.0.1:8083/ by default). With SLUICE_API_TOKEN set, it \
                            asks for the token once and keeps a session.\n\n\
                            A listener whose own components are invalid does not start and \
                            shows as INVALID with its errors; the others run.\n\n\
                            Deploy without a restart: on SIGHUP, POST /components/reload or \
                            (with --watch) a change of a component file, the host loads the \
                            components again. A changed listener finishes its documents, \
                            commits and starts again with its new definition; an unchanged one \
                            keeps running untouched; a new one starts; a removed one stops and \
                            leaves its consumer group. An invalid change leaves the running \
                            version in place and says why. The container properties and \
                            Kerberos (krb5.conf, the principal) apply only after a restart of \
                            the host.\n\n\
                            Exit status: 0 after a clean stop, 1 when a listener failed or is \
                            invalid, or none could start (with --api off, the host also ends \
                            once every listener has failed or is invalid).\n\n\
                            Examples:\n  \
                            sluice serve --components profiles/demo --embedded-port 19092\n  \
                            sluice serve --components profiles/demo --watch --api off\n  \
                            RUST_LOG=sluice=info sluice serve --components \
                            profiles/connections/local.xml --components profiles/examples"
    )]
    Serve {
        #[command(flatten)]
        components: ComponentPaths,
        /// Where the management API listens, IP:PORT or HOST:PORT (port 0: any free port,
        /// printed at start), or off. Requests need `Authorization: Bearer …` when
        /// SLUICE_API_TOKEN is set
        #[arg(long, value_name = "ADDRESS|off", default_value = "127.0.0.1:8083")]
        api: String,
        /// Load the components again when a component file changes (checked twice a second,
        /// deployed once the files have been quiet for 300 ms)
        #[arg(long)]
        watch: bool,
        /// Where other processes reach the embedded broker (127.0.0.1:PORT), when the
        /// components use it: `sluice run` with a connection to that address can feed the
        /// listeners. Default: a random port, printed at start
        #[arg(long, value_name = "PORT")]
        embedded_port: Option<u16>,
    },

    /// List the recorded executions, newest first, show one with its document errors, or
    /// find those that handled a Kafka message
    #[command(
        after_help = "Executions are recorded by sluice run and sluice serve in the execution \
                            database (--executions-db, default ./sluice-executions.db) and kept \
                            for host.executions.retention.days (container property, default \
                            30). Each record keeps the offsets its execution read and wrote, \
                            per topic-partition, which --message looks up.\n\n\
                            Examples:\n  \
                            sluice executions\n  \
                            sluice executions --process demo-send-orders --status failed\n  \
                            sluice executions 019a3c5e-7d41-7c2e-9f0a-2b4c6d8e0f12\n  \
                            sluice executions --message demo-orders/0/0"
    )]
    Executions {
        /// Show this execution, with its document errors
        #[arg(conflicts_with = "message")]
        id: Option<String>,
        /// The executions that read or wrote this Kafka message (TOPIC/PARTITION/OFFSET), oldest
        /// first, each with its status, the attempt (a listener retries a failed document in a
        /// new execution) and the document's error there
        #[arg(long, value_name = "TOPIC/PARTITION/OFFSET")]
        message: Option<MessageAddress>,
        /// Only this process's executions
        #[arg(long)]
        process: Option<String>,
        /// Only executions with this status
        #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(ExecutionStatus::NAMES))]
        status: Option<String>,
        /// At most this many
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },

    /// List a listener's dead letters, or replay them
    #[command(subcommand)]
    DeadLetters(DeadLettersCommand),

    /// Act on the listeners of a running host, through its management API
    #[command(subcommand)]
    Listeners(ListenersCommand),

    /// Produce a few keyed documents and consume them back, on the embedded broker
    #[command(
        after_help = "Needs nothing installed or running: the embedded broker is \
                            librdkafka's in-process mock cluster.\n\nExample:\n  sluice demo"
    )]
    Demo,
}

/// `sluice dead-letters …`
#[derive(Subcommand)]
pub enum DeadLettersCommand {
    /// The dead letters in a listener's dead-letter topic, with where each came from, why it
    /// failed, and whether it was replayed
    #[command(
        after_help = "Reads the whole dead-letter topic as it is now, without a consumer \
                            group (nothing is committed). Needs the components that define the \
                            listener; replays are looked up in the execution database.\n\n\
                            Examples:\n  \
                            sluice dead-letters list example-listen-forward-orders --components \
                            profiles/connections --components profiles/examples\n  \
                            sluice dead-letters list example-listen-forward-orders --since 2h \
                            --error-contains 'does not exist' --components profiles/connections \
                            --components profiles/examples"
    )]
    List {
        /// The listener (its process id)
        listener: String,
        #[command(flatten)]
        components: ComponentPaths,
        #[command(flatten)]
        filter: DeadLetterFilterArgs,
    },
    /// Replay a listener's dead letters: byte for byte back to the topic and partition each
    /// came from (marked with header sluice.replay.of), or through the listener's process
    #[command(
        after_help = "A replay is recorded as an execution of the listener's process that \
                            names the dead letters it replayed: a dead letter replayed before is \
                            skipped unless --again. A dead letter of a message over \
                            max.request.size holds no payload: it is listed, never replayed.\n\n\
                            Exit status: 0 when every dead letter taken was replayed (or \
                            skipped), 3 when some failed, 1 when the replay could not run.\n\n\
                            Examples:\n  \
                            sluice dead-letters replay example-listen-forward-orders --dry-run \
                            --components profiles/connections --components profiles/examples\n  \
                            sluice dead-letters replay example-listen-forward-orders --to process \
                            --error-contains 'does not exist' --components profiles/connections \
                            --components profiles/examples"
    )]
    Replay {
        /// The listener (its process id)
        listener: String,
        #[command(flatten)]
        components: ComponentPaths,
        #[command(flatten)]
        filter: DeadLetterFilterArgs,
        /// Where the dead letters go: back to their source topic and partition (the listener
        /// receives them again), or through the listener's process directly
        #[arg(long, value_enum, default_value = "source")]
        to: ReplayTo,
        /// Say what would be replayed; replay nothing
        #[arg(long)]
        dry_run: bool,
        /// Replay dead letters that were replayed before, too
        #[arg(long)]
        again: bool,
    },
}

/// `sluice listeners …`
#[derive(Subcommand)]
pub enum ListenersCommand {
    /// Move a running listener's partitions: its consumer group goes on from there, without a
    /// restart and without leaving the group
    #[command(
        group(clap::ArgGroup::new("to").required(true)),
        after_help = "The running host does it (only a member of a live consumer group can move \
                      it): the listener finishes the batch in hand, commits the new positions \
                      for its group, seeks there and goes on; a paused listener stays paused. It \
                      moves the partitions this host's member holds; where several hosts share \
                      the group, seek on each. --to-offset names partitions this host holds \
                      (GET /listeners/ID/status lists them), such as --to-offset \
                      orders:0:120,orders:1:98. The API token comes from SLUICE_API_TOKEN.\n\n\
                      Examples:\n  \
                      sluice listeners seek example-listen-forward-orders --to-timestamp \
                      2026-11-30T10:00:00Z\n  \
                      sluice listeners seek example-listen-forward-orders --to-timestamp 2h \
                      --api 127.0.0.1:8083\n  \
                      sluice listeners seek example-listen-forward-orders --to-latest"
    )]
    Seek {
        /// The listener (its process id)
        listener: String,
        /// These next offsets (the first message processed again), each TOPIC:PARTITION:OFFSET
        #[arg(long, value_name = "TOPIC:PARTITION:OFFSET,…", value_delimiter = ',', group = "to", value_parser = parse_seek_offset)]
        to_offset: Vec<SeekOffset>,
        /// On every partition: the first message at or after this time (2026-11-30T10:00:00Z)
        /// or this long ago (2h, 30min), by the messages' timestamps
        #[arg(long, value_name = "TIME|AGO", group = "to")]
        to_timestamp: Option<String>,
        /// On every partition: the first message it still keeps
        #[arg(long, group = "to")]
        to_earliest: bool,
        /// On every partition: its end (skip everything not processed yet)
        #[arg(long, group = "to")]
        to_latest: bool,
        /// The running host's management API (sluice serve --api)
        #[arg(long, value_name = "ADDRESS", default_value = "127.0.0.1:8083")]
        api: String,
    },
}

/// One `--to-offset` position.
#[derive(Debug, Clone)]
pub struct SeekOffset {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
}

fn parse_seek_offset(text: &str) -> Result<SeekOffset, String> {
    let wrong = || {
        format!("\"{text}\" is not TOPIC:PARTITION:OFFSET (e.g. orders:0:120; several separated by commas)")
    };
    let mut parts = text.rsplitn(3, ':');
    let (Some(offset), Some(partition), Some(topic)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(wrong());
    };
    let partition = partition
        .parse()
        .ok()
        .filter(|p: &i32| *p >= 0)
        .ok_or_else(wrong)?;
    let offset = offset
        .parse()
        .ok()
        .filter(|o: &i64| *o >= 0)
        .ok_or_else(wrong)?;
    if topic.is_empty() {
        return Err(wrong());
    }
    Ok(SeekOffset {
        topic: topic.to_string(),
        partition,
        offset,
    })
}

/// Which dead letters a dead-letters command takes.
#[derive(clap::Args)]
pub struct DeadLetterFilterArgs {
    /// Only those dead-lettered since then: a time (2026-11-30T10:00:00Z) or a while ago (2h,
    /// 30min, 1day)
    #[arg(long, value_name = "TIME|AGO", value_parser = sluice_runtime::host::dead_letters::since_ms)]
    pub since: Option<i64>,
    /// Only those whose error contains this text (case-insensitive)
    #[arg(long, value_name = "TEXT")]
    pub error_contains: Option<String>,
}
