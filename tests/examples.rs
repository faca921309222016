//! Every example we ship runs as written: the command blocks of the Markdown files, the
//! examples of `sluice --help` and of each command's help, and the commands in the comments of
//! the component files under profiles/. Each is marked with how it is checked — in Markdown by
//! a `<!-- example: … -->` line before the block, elsewhere in [`MARKS`] below — and an
//! unmarked example fails this test, so that examples cannot rot.
//!
//! The examples run in a folder holding a copy of profiles/ and custom-libs/, with `sluice`
//! first on the PATH, in the order they are found; those that need a broker on
//! `localhost:9092` (what profiles/connections/local.xml names) get a tansu there, with the
//! topics the example profiles say must exist.

mod harness;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use harness::{wait_for, Broker, BrokerOptions, Serving, Workspace};

/// How an example is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Check {
    /// Needs no broker (validation, help, the execution records).
    NoBroker,
    /// Runs on the embedded broker.
    Embedded,
    /// Runs against tansu on localhost:9092.
    Tansu,
    /// Runs while this `sluice serve` example runs beside it (a feed for a host's listener).
    WithHost(&'static str),
    /// Not run here, for the reason given.
    NotRun(&'static str),
}

/// The marks of examples that are not in Markdown: each with how it is checked and the exit
/// status it ends with. An example of a help text or a component file that is not here fails
/// the test.
const MARKS: &[(&str, Check, i32)] = &[
    ("sluice demo", Check::Embedded, 0),
    ("sluice validate profiles/demo", Check::NoBroker, 0),
    (
        "sluice validate profiles/connections/local.xml profiles/examples/orders.xml",
        Check::NoBroker,
        0,
    ),
    (
        "sluice validate profiles/demo --container-properties profiles/container.properties \
         --custom-library custom-libs/",
        Check::NoBroker,
        0,
    ),
    (
        "sluice run demo-send-orders --components profiles/demo --input profiles/demo/orders.jsonl",
        Check::Embedded,
        0,
    ),
    (
        "printf 'a\\nb\\n' | sluice run demo-send-orders --components profiles/demo --input -",
        Check::Embedded,
        0,
    ),
    (
        "sluice run example-receive-orders --components profiles/connections --components \
         profiles/examples --documents-out - | head -3",
        Check::Tansu,
        0,
    ),
    (
        "sluice serve --components profiles/demo --embedded-port 19092",
        Check::Embedded,
        0,
    ),
    (
        "sluice serve --components profiles/demo --watch --api off",
        Check::Embedded,
        0,
    ),
    (
        "RUST_LOG=sluice=info sluice serve --components profiles/connections/local.xml \
         --components profiles/examples",
        Check::Tansu,
        0,
    ),
    ("sluice executions", Check::NoBroker, 0),
    ("sluice executions --status failed", Check::NoBroker, 0),
    (
        "sluice executions --process demo-send-orders --status failed",
        Check::NoBroker,
        0,
    ),
    (
        "sluice executions --message demo-orders/0/0",
        Check::NoBroker,
        0,
    ),
    (
        "sluice dead-letters list example-listen-forward-orders --components \
         profiles/connections --components profiles/examples",
        Check::Tansu,
        0,
    ),
    (
        "sluice dead-letters list example-listen-forward-orders --since 2h --error-contains \
         'does not exist' --components profiles/connections --components profiles/examples",
        Check::Tansu,
        0,
    ),
    (
        "sluice listeners seek example-listen-forward-orders --to-timestamp 2026-11-30T10:00:00Z",
        Check::WithHost("sluice serve --components profiles/connections --components profiles/examples"),
        0,
    ),
    (
        "sluice listeners seek example-listen-forward-orders --to-timestamp 2h --api 127.0.0.1:8083",
        Check::WithHost("sluice serve --components profiles/connections --components profiles/examples"),
        0,
    ),
    (
        "sluice listeners seek example-listen-forward-orders --to-latest",
        Check::WithHost("sluice serve --components profiles/connections --components profiles/examples"),
        0,
    ),
    (
        "sluice dead-letters replay example-listen-forward-orders --dry-run --components \
         profiles/connections --components profiles/examples",
        Check::Tansu,
        0,
    ),
    (
        "sluice dead-letters replay example-listen-forward-orders --to process \
         --error-contains 'does not exist' --components profiles/connections --components \
         profiles/examples",
        Check::Tansu,
        0,
    ),
    // An id nobody recorded: the command says so, with status 1.
    (
        "sluice executions 019a3c5e-7d41-7c2e-9f0a-2b4c6d8e0f12",
        Check::NoBroker,
        1,
    ),
    (
        "sluice test-connection local-kafka --components profiles/connections",
        Check::Tansu,
        0,
    ),
    (
        "sluice test-connection embedded-kafka --components profiles/connections",
        Check::Embedded,
        0,
    ),
    (
        "sluice test-connection local-kafka --topic orders --components profiles/connections",
        Check::Tansu,
        0,
    ),
    (
        "sluice run feed-orders --components profiles/demo-feed --input profiles/demo/orders.jsonl",
        Check::WithHost("sluice serve --components profiles/demo --embedded-port 19092"),
        0,
    ),
    (
        "kafka-topics.sh --create --topic orders --partitions 3",
        Check::NotRun("Apache Kafka's own tool, not installed here; this test creates the topic"),
        0,
    ),
    (
        "kafka-topics.sh --create --topic orders-by-customer --partitions 3",
        Check::NotRun("Apache Kafka's own tool, not installed here; this test creates the topic"),
        0,
    ),
    (
        "kafka-topics.sh --create --topic orders-dead-letters --partitions 1",
        Check::NotRun("Apache Kafka's own tool, not installed here; this test creates the topic"),
        0,
    ),
];

/// The topics the example profiles say must exist, with their partitions.
const EXAMPLE_TOPICS: [(&str, i32); 3] = [
    ("orders", 3),
    ("orders-by-customer", 3),
    ("orders-dead-letters", 1),
];

/// One example, where it was found and how it is checked.
#[derive(Debug)]
struct Example {
    command: String,
    source: String,
    check: Check,
    exit: i32,
}

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The command blocks (```sh) of a Markdown file, each marked on the line before it.
fn markdown_examples(path: &Path, unmarked: &mut Vec<String>) -> Vec<Example> {
    let text = std::fs::read_to_string(path).expect("markdown");
    let name = path.strip_prefix(repository()).unwrap_or(path).display();
    let lines: Vec<&str> = text.lines().collect();
    let mut examples = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let fence = lines[i].trim_start();
        let is_command_block = ["```sh", "```bash", "```console", "```shell"]
            .iter()
            .any(|f| fence.trim_end() == *f);
        if !is_command_block {
            i += 1;
            continue;
        }
        let mark = i
            .checked_sub(1)
            .and_then(|before| lines[before].trim().strip_prefix("<!-- example: "))
            .and_then(|rest| rest.strip_suffix(" -->"));
        let check = mark.and_then(markdown_check);
        let block_line = i + 1;
        i += 1;
        while i < lines.len() && !lines[i].trim_start().starts_with("```") {
            let command = lines[i].split(" #").next().unwrap_or_default().trim();
            if !command.is_empty() {
                match check {
                    Some(check) => examples.push(Example {
                        command: command.to_string(),
                        source: format!("{name}:{}", i + 1),
                        check,
                        exit: 0,
                    }),
                    None => unmarked.push(format!(
                        "{name}:{block_line}: a command block without a valid \
                         `<!-- example: … -->` line before it (no broker | embedded broker | \
                         tansu on localhost:9092 | not run here: REASON), got {mark:?}"
                    )),
                }
            }
            i += 1;
        }
        i += 1;
    }
    examples
}

/// A Markdown block's mark as a check.
fn markdown_check(mark: &str) -> Option<Check> {
    match mark {
        "no broker" => Some(Check::NoBroker),
        "embedded broker" => Some(Check::Embedded),
        "tansu on localhost:9092" => Some(Check::Tansu),
        reason => reason
            .strip_prefix("not run here: ")
            .filter(|r| !r.is_empty())
            .map(|_| Check::NotRun("marked in the Markdown file")),
    }
}

/// `sluice COMMAND --help`.
fn help_of(command: &str) -> String {
    let mut args: Vec<&str> = command.split_whitespace().collect();
    args.push("--help");
    let output = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(&args)
        .output()
        .expect("sluice --help");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// `command` and every command under it, as its help lists them (so that a new command's
/// examples cannot go unchecked).
fn commands(command: &str) -> Vec<String> {
    let mut all = vec![command.to_string()];
    let help = help_of(command);
    let listed = help
        .lines()
        .skip_while(|l| *l != "Commands:")
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(|name| format!("{command} {name}").trim().to_string())
        .collect::<Vec<_>>();
    for sub in listed {
        all.extend(commands(&sub));
    }
    all
}

/// The examples of `sluice --help` and each command's help: the indented lines after
/// "Examples:", a wrapped one joined again.
fn help_examples() -> Vec<(String, String)> {
    let mut examples = Vec::new();
    for command in commands("") {
        let help = help_of(&command);
        let mut in_examples = false;
        let mut found: Vec<String> = Vec::new();
        for line in help.lines() {
            if line.starts_with("Example") && line.ends_with(':') {
                in_examples = true;
                continue;
            }
            if !in_examples {
                continue;
            }
            let Some(text) = line.strip_prefix("  ") else {
                in_examples = false;
                continue;
            };
            let text = text.trim();
            let starts_an_example = text.starts_with("sluice ")
                || text.starts_with("printf ")
                || text.split_once('=').is_some_and(|(name, _)| {
                    !name.is_empty() && name.chars().all(|c| c.is_ascii_uppercase() || c == '_')
                });
            match found.last_mut() {
                Some(last) if !starts_an_example => {
                    last.push(' ');
                    last.push_str(text);
                }
                _ => found.push(text.to_string()),
            }
        }
        let source = format!("sluice {command} --help").replace("  ", " ");
        examples.extend(found.into_iter().map(|e| (e, source.clone())));
    }
    examples
}

/// The commands in the comments of the component files under profiles/: comment lines that
/// start with `sluice ` or name a tool (`….sh `).
fn profile_examples() -> Vec<(String, String)> {
    let mut examples = Vec::new();
    let mut files = Vec::new();
    collect_xml(&repository().join("profiles"), &mut files);
    for file in files {
        let text = std::fs::read_to_string(&file).expect("profile");
        let name = file
            .strip_prefix(repository())
            .unwrap_or(&file)
            .display()
            .to_string();
        let mut in_comment = false;
        for (number, line) in text.lines().enumerate() {
            let mut rest = line;
            if !in_comment {
                match rest.find("<!--") {
                    Some(at) => {
                        in_comment = true;
                        rest = &rest[at + 4..];
                    }
                    None => continue,
                }
            }
            if let Some(end) = rest.find("-->") {
                in_comment = false;
                rest = &rest[..end];
            }
            let text = rest.trim();
            let tool = text
                .split_whitespace()
                .next()
                .is_some_and(|word| word.ends_with(".sh"));
            if text.starts_with("sluice ") || tool {
                examples.push((text.to_string(), format!("{name}:{}", number + 1)));
            }
        }
    }
    examples
}

fn collect_xml(dir: &Path, files: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").path())
        .collect();
    entries.sort();
    for entry in entries {
        if entry.is_dir() {
            collect_xml(&entry, files);
        } else if entry.extension().is_some_and(|e| e == "xml") {
            files.push(entry);
        }
    }
}

/// Every example, marked; the unmarked ones as messages.
fn every_example() -> (Vec<Example>, Vec<String>) {
    let mut unmarked = Vec::new();
    let mut examples = Vec::new();
    for markdown in [
        "README.md",
        "profiles/README.md",
        "profiles/tls/README.md",
        "custom-libs/README.md",
    ] {
        examples.extend(markdown_examples(
            &repository().join(markdown),
            &mut unmarked,
        ));
    }
    for (command, source) in help_examples().into_iter().chain(profile_examples()) {
        match MARKS.iter().find(|(marked, _, _)| *marked == command) {
            Some((_, check, exit)) => examples.push(Example {
                command,
                source,
                check: *check,
                exit: *exit,
            }),
            None => unmarked.push(format!(
                "{source}: `{command}` is not marked: add it to MARKS in tests/examples.rs with \
                 how it is checked"
            )),
        }
    }
    (examples, unmarked)
}

/// A folder with what the examples name: profiles/ and custom-libs/ as shipped.
fn example_folder() -> Workspace {
    let ws = Workspace::new();
    for folder in ["profiles", "custom-libs"] {
        copy_tree(&repository().join(folder), &ws.path().join(folder));
    }
    ws
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// `PATH` with the `sluice` under test first.
fn path_with_sluice() -> String {
    let binary = Path::new(env!("CARGO_BIN_EXE_sluice"));
    let dir = binary.parent().expect("the binary's folder");
    format!(
        "{}:{}",
        dir.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

/// How long one example may take.
const EXAMPLE_TIME: Duration = Duration::from_secs(120);

/// Runs a one-off example through the shell in `folder`; returns its exit status and output.
fn run_once(folder: &Path, command: &str) -> (Option<i32>, String) {
    let child = Command::new("sh")
        .arg("-c")
        .arg(command)
        .current_dir(folder)
        .env("PATH", path_with_sluice())
        .env_remove("SLUICE_COMPONENTS")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sh");
    let output = child.wait_with_output().expect("the example's output");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.code(), text)
}

/// Starts a `sluice serve` example (its leading `NAME=value` words are its environment) and
/// waits until it has started its listeners.
fn start_host(ws: &Workspace, command: &str) -> Serving {
    let mut words = command.split_whitespace().peekable();
    while let Some((name, value)) = words.peek().and_then(|w| w.split_once('=')) {
        ws.set_env(name, value);
        words.next();
    }
    assert_eq!(words.next(), Some("sluice"), "{command}");
    let args: Vec<&str> = words.collect();
    let serving = ws.sluice_spawn(&args);
    wait_for(
        &format!("`{command}` to start"),
        Duration::from_secs(60),
        || {
            let err = serving.stderr();
            (err.contains("stop with Ctrl-C or SIGTERM") || err.contains("error:")).then_some(())
        },
    );
    assert!(
        !serving.stderr().contains("error:"),
        "`{command}`:\n{}",
        serving.stderr()
    );
    serving
}

/// Runs one example; panics with what it printed when it does not end as marked.
fn check_example(ws: &Workspace, example: &Example) {
    let Example {
        command,
        source,
        check,
        exit,
    } = example;
    if let Check::WithHost(host) = check {
        let mut serving = start_host(ws, host);
        let (code, output) = run_once(ws.path(), command);
        assert_eq!(code, Some(*exit), "{source}: `{command}`:\n{output}");
        serving.stop("TERM", EXAMPLE_TIME);
        return;
    }
    if command.contains("sluice serve") {
        let mut serving = start_host(ws, command);
        serving.stop("TERM", EXAMPLE_TIME);
        return;
    }
    let (code, output) = run_once(ws.path(), command);
    assert_eq!(code, Some(*exit), "{source}: `{command}`:\n{output}");
    assert!(
        !output.contains("panicked"),
        "{source}: `{command}`:\n{output}"
    );
}

#[test]
fn every_example_is_marked_and_runs_as_written() {
    let (examples, unmarked) = every_example();
    assert!(
        unmarked.is_empty(),
        "unmarked examples:\n{}",
        unmarked.join("\n")
    );
    let ws = example_folder();
    let needs_tansu = examples.iter().any(|e| e.check == Check::Tansu);
    // The broker local.xml names, with the topics the examples say must exist.
    let broker = needs_tansu.then(|| {
        let broker = Broker::start_with(BrokerOptions {
            port: Some(9092),
            ..BrokerOptions::default()
        });
        for (topic, partitions) in EXAMPLE_TOPICS {
            broker.create_topic_named(topic, partitions);
        }
        broker
    });
    // The profiles README sends the demo orders before the receive example reads them.
    let mut ran = BTreeSet::new();
    let mut not_run = 0;
    for example in &examples {
        if let Check::NotRun(_) = example.check {
            not_run += 1;
            continue;
        }
        // The same command found in several places runs once.
        if ran.insert(example.command.clone()) {
            check_example(&ws, example);
        }
    }
    drop(broker);
    harness::reliability_row(
        "examples",
        "every command block of the Markdown files, example of the help texts and command in \
         the profiles' comments",
        ran.len(),
        &format!(
            "each runs as written and ends with its marked status ({not_run} marked not run, \
             with the reason)"
        ),
        None,
    );
}
