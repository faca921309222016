//! Malformed and hostile component definitions: each gets its exact, located error, and the
//! loader never panics or hangs on any input (a bounded fuzz run of the XML loader and the
//! container.properties reader, seeded from profiles/).
//!
//! The exact errors live in tests/golden/malformed-definitions.txt (`SLUICE_BLESS=1` rewrites
//! it; read the diff before committing): one reviewable place for every message a user sees.

mod harness;

use std::path::{Path, PathBuf};

use sluice_runtime::components::Components;
use sluice_runtime::container::ContainerProperties;

/// A connection the cases can refer to.
const K: &str =
    r#"<connection id="k"><bootstrap-servers>localhost:9092</bootstrap-servers></connection>"#;
/// A produce operation on it.
const P: &str =
    r#"<operation id="p" type="produce" connection="k"><topic>orders</topic></operation>"#;

/// Each case: what it is, and the text of one component file.
fn cases() -> Vec<(&'static str, String)> {
    let huge = "a".repeat(10 * 1024 * 1024);
    let consume = |field: &str| {
        format!(
            r#"<components>{K}<operation id="c" type="consume" connection="k"><topic>orders</topic><consumer-group>g</consumer-group>{field}</operation></components>"#
        )
    };
    let listen = |field: &str| {
        format!(
            r#"<components>{K}<operation id="l" type="listen" connection="k"><consumer-group>g</consumer-group>{field}</operation></components>"#
        )
    };
    let produce = |field: &str| {
        format!(
            r#"<components>{K}<operation id="p" type="produce" connection="k">{field}</operation></components>"#
        )
    };
    let connection = |fields: &str| {
        format!(r#"<components><connection id="k">{fields}</connection></components>"#)
    };
    let secured = |fields: &str| {
        connection(&format!(
            "<bootstrap-servers>kafka.example.com:9093</bootstrap-servers>\
             <security-protocol>SASL_SSL</security-protocol>{fields}"
        ))
    };
    let process =
        |body: &str| format!(r#"<components>{K}{P}<process id="x">{body}</process></components>"#);
    vec![
        // Not component XML at all.
        ("empty file", String::new()),
        ("not XML", "orders go here".into()),
        ("unclosed element", format!("<components>{K}")),
        ("mismatched end tag", "<components><connection id=\"k\"></operation></components>".into()),
        ("wrong root element", format!("<atom>{K}</atom>")),
        ("unknown component kind", format!("<components>{K}<widget id=\"w\"/></components>")),
        (
            "entity expansion (billion laughs)",
            r#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]><components><connection id="&lol2;"/></components>"#.into(),
        ),
        // Identity and references.
        ("missing id", "<components><connection><bootstrap-servers>a:1</bootstrap-servers></connection></components>".into()),
        ("empty id", "<components><connection id=\"\"><bootstrap-servers>a:1</bootstrap-servers></connection></components>".into()),
        ("duplicate connection id", format!("<components>{K}{K}</components>")),
        ("duplicate operation id", format!("<components>{K}{P}{P}</components>")),
        ("duplicate process id", format!("<components>{K}{P}<process id=\"x\"><steps><connector operation=\"p\"/></steps></process><process id=\"x\"><steps><connector operation=\"p\"/></steps></process></components>")),
        ("operation on a connection that does not exist", format!("<components>{P}</components>")),
        ("process step naming an operation that does not exist", process("<steps><connector operation=\"send\"/></steps>")),
        ("process starting with a produce operation", process("<start operation=\"p\"/><steps><connector operation=\"p\"/></steps>")),
        ("process with nothing to do", process("")),
        ("operation without a type", format!("<components>{K}<operation id=\"p\" connection=\"k\"><topic>t</topic></operation></components>")),
        ("unknown operation type", format!("<components>{K}<operation id=\"p\" type=\"publish\" connection=\"k\"><topic>t</topic></operation></components>")),
        // Fields.
        ("unknown connection field", connection("<bootstrap-servers>a:1</bootstrap-servers><bootstrap>a:1</bootstrap>")),
        ("unknown operation field", produce("<topic>orders</topic><topics>orders</topics>")),
        ("unknown attribute", format!("<components>{K}<operation id=\"p\" type=\"produce\" connection=\"k\" retries=\"3\"><topic>t</topic></operation></components>")),
        ("field given twice", produce("<topic>orders</topic><topic>returns</topic>")),
        ("connection without bootstrap servers", connection("")),
        ("bootstrap server without a port", connection("<bootstrap-servers>kafka.example.com</bootstrap-servers>")),
        ("bootstrap server with a port out of range", connection("<bootstrap-servers>kafka.example.com:70000</bootstrap-servers>")),
        ("unknown security protocol", connection("<bootstrap-servers>a:1</bootstrap-servers><security-protocol>TLS</security-protocol>")),
        ("unknown SASL mechanism", secured("<sasl-mechanism>NTLM</sasl-mechanism><username>u</username><password>p</password>")),
        ("SASL PLAIN without a username", secured("<sasl-mechanism>PLAIN</sasl-mechanism><password>p</password>")),
        ("password from an environment variable that is not set", secured("<sasl-mechanism>PLAIN</sasl-mechanism><username>u</username><password>${env:SLUICE_TEST_SURELY_UNSET}</password>")),
        ("password from a file that does not exist", secured("<sasl-mechanism>PLAIN</sasl-mechanism><username>u</username><password>${file:/nonexistent/sluice-password}</password>")),
        ("an unknown ${…} reference", secured("<sasl-mechanism>PLAIN</sasl-mechanism><username>u</username><password>${vault:kafka}</password>")),
        ("Kerberos realm that would escape the custom library", secured("<sasl-mechanism>GSSAPI</sasl-mechanism><username>kafka-client@../../etc/passwd</username>")),
        ("Kerberos principal without a realm", secured("<sasl-mechanism>GSSAPI</sasl-mechanism><username>kafka-client</username>")),
        ("a krb5.conf path in the definition", secured("<sasl-mechanism>GSSAPI</sasl-mechanism><username>kafka-client@EXAMPLE.COM</username><krb5-conf>../../etc/krb5.conf</krb5-conf>")),
        ("unknown librdkafka property", connection("<bootstrap-servers>a:1</bootstrap-servers><properties><property name=\"linger.msec\">5</property></properties>")),
        ("librdkafka property that a field sets", connection("<bootstrap-servers>a:1</bootstrap-servers><properties><property name=\"bootstrap.servers\">b:2</property></properties>")),
        ("empty topic", produce("<topic></topic>")),
        ("topic with invalid characters", produce("<topic>orders/eu</topic>")),
        ("topic named ..", produce("<topic>..</topic>")),
        ("topic longer than 249 characters", produce(&format!("<topic>{}</topic>", "t".repeat(250)))),
        ("unknown acks", produce("<topic>orders</topic><acks>most</acks>")),
        ("unknown compression", produce("<topic>orders</topic><compression>rar</compression>")),
        ("partition that is not a number", produce("<topic>orders</topic><partition>first</partition>")),
        ("partition beyond i32", produce("<topic>orders</topic><partition>99999999999</partition>")),
        ("consume without a topic", format!("<components>{K}<operation id=\"c\" type=\"consume\" connection=\"k\"><consumer-group>g</consumer-group></operation></components>")),
        ("minimum messages negative", consume("<minimum-messages>-1</minimum-messages>")),
        ("minimum messages huge", consume("<minimum-messages>99999999999999999999</minimum-messages>")),
        ("maximum wait that is not a duration", consume("<maximum-wait>5 parsecs</maximum-wait>")),
        ("unknown offset reset", consume("<offset-reset>newest</offset-reset>")),
        ("listen max-messages zero", listen("<topic>orders</topic><max-messages>0</max-messages>")),
        ("listen dead-letter topic that it listens to", listen("<topic>orders</topic><dead-letter-topic>orders</dead-letter-topic>")),
        ("listen retry limit that is not a number", listen("<topic>orders</topic><retry-limit>many</retry-limit>")),
        ("10 MB attribute", format!("<components><connection id=\"{huge}\"><bootstrap-servers>a:1</bootstrap-servers></connection></components>")),
        ("10 MB field value", produce(&format!("<topic>{huge}</topic>"))),
    ]
}

/// Every case's errors as a user sees them, in one text.
fn report() -> String {
    let mut text = String::new();
    for (name, xml) in cases() {
        let errors = match Components::from_sources(vec![(PathBuf::from("case.xml"), xml)]) {
            Ok(_) => vec!["(loaded without error)".to_string()],
            Err(errors) => errors.0.iter().map(ToString::to_string).collect(),
        };
        text.push_str(&format!("## {name}\n"));
        for error in errors {
            text.push_str(&format!("{error}\n"));
        }
        text.push('\n');
    }
    text
}

/// The text of the golden file `path`; with SLUICE_BLESS set, `text` is written there first.
fn golden_text(path: &Path, text: &str) -> String {
    if std::env::var_os("SLUICE_BLESS").is_some() {
        std::fs::write(path, text).expect("write golden");
    }
    match std::fs::read_to_string(path) {
        Ok(expected) => expected,
        Err(e) => panic!(
            "{}: {e} (run with SLUICE_BLESS=1 to create it)",
            path.display()
        ),
    }
}

#[test]
fn each_malformed_definition_gets_its_exact_located_error() {
    let cases = cases();
    assert!(cases.len() >= 40, "{} cases", cases.len());
    let text = report();
    let golden =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/golden/malformed-definitions.txt");
    let expected = golden_text(&golden, &text);
    // Compared case by case, so that a failure names the case.
    let sections = |t: &str| -> Vec<String> { t.split("\n## ").map(str::to_string).collect() };
    for (got, want) in sections(&text).iter().zip(sections(&expected)) {
        assert_eq!(got, &want, "differs from {}", golden.display());
    }
    assert_eq!(text, expected, "differs from {}", golden.display());
    // No case loads, and no message is longer than a screenful: a huge value is not echoed.
    assert!(
        !text.contains("(loaded without error)"),
        "a malformed case loaded"
    );
    for line in text.lines() {
        assert!(
            line.len() < 600,
            "an error echoes too much: {}…",
            &line[..200]
        );
    }
    harness::reliability_row(
        "bad input",
        "malformed or hostile component definitions (tests/golden/malformed-definitions.txt)",
        cases.len(),
        "each refused with its exact error: file:line:column, component, field, valid values; \
         huge values shortened",
        None,
    );
}

/// The component files users start from: the fuzz run mutates these.
fn seed_files() -> Vec<String> {
    let profiles = Path::new(env!("CARGO_MANIFEST_DIR")).join("../profiles");
    let mut seeds = Vec::new();
    let mut folders = vec![profiles];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).expect("profiles folder") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                folders.push(path);
            } else if path
                .extension()
                .is_some_and(|e| e == "xml" || e == "properties")
            {
                seeds.push(std::fs::read_to_string(&path).expect("seed file"));
            }
        }
    }
    seeds.sort();
    assert!(seeds.len() >= 5, "profiles/ holds the seed corpus");
    seeds
}

/// One edit of a seed file.
#[derive(Debug, Clone)]
enum Mutation {
    /// Removes a span.
    Delete(usize, usize),
    /// Inserts text (markup fragments and odd characters are likelier than plain letters).
    Insert(usize, String),
    /// Copies a span to another place.
    Duplicate(usize, usize, usize),
    /// Cuts the text off.
    Truncate(usize),
}

fn mutation() -> impl proptest::strategy::Strategy<Value = Mutation> {
    use proptest::prelude::*;
    let fragment = prop_oneof![
        Just("<".to_string()),
        Just(">".to_string()),
        Just("</".to_string()),
        Just("/>".to_string()),
        Just("\"".to_string()),
        Just("&".to_string()),
        Just("&amp;".to_string()),
        Just("<![CDATA[".to_string()),
        Just("<!--".to_string()),
        Just("${".to_string()),
        Just("${env:".to_string()),
        Just("${file:/".to_string()),
        Just("}".to_string()),
        Just("=".to_string()),
        Just("\\".to_string()),
        Just("\u{0}".to_string()),
        Just("\u{feff}".to_string()),
        Just("é".to_string()),
        Just("-1".to_string()),
        Just("99999999999999999999".to_string()),
        Just("<operation id=\"p\" type=\"produce\" connection=\"k\">".to_string()),
        Just("<process id=\"x\"><start operation=\"p\"/></process>".to_string()),
        "[ -~]{0,12}",
        any::<String>(),
    ];
    prop_oneof![
        (any::<usize>(), 0usize..64).prop_map(|(at, len)| Mutation::Delete(at, len)),
        (any::<usize>(), fragment).prop_map(|(at, text)| Mutation::Insert(at, text)),
        (any::<usize>(), 0usize..128, any::<usize>())
            .prop_map(|(from, len, to)| Mutation::Duplicate(from, len, to)),
        any::<usize>().prop_map(Mutation::Truncate),
    ]
}

/// Applies the mutations at character boundaries (positions wrap around the text).
fn mutate(seed: &str, mutations: &[Mutation]) -> String {
    let mut text: Vec<char> = seed.chars().collect();
    for m in mutations {
        let at = |p: usize, text: &Vec<char>| {
            if text.is_empty() {
                0
            } else {
                p % (text.len() + 1)
            }
        };
        match m {
            Mutation::Delete(p, len) => {
                let start = at(*p, &text);
                let end = (start + len).min(text.len());
                text.drain(start..end);
            }
            Mutation::Insert(p, s) => {
                let start = at(*p, &text);
                text.splice(start..start, s.chars());
            }
            Mutation::Duplicate(from, len, to) => {
                let start = at(*from, &text);
                let span: Vec<char> = text[start..(start + len).min(text.len())].to_vec();
                let to = at(*to, &text);
                text.splice(to..to, span);
            }
            Mutation::Truncate(p) => {
                let end = at(*p, &text);
                text.truncate(end);
            }
        }
    }
    text.into_iter().collect()
}

/// Runs `check` on another thread and fails if it takes longer than `limit`: a hang in the
/// loader fails the test instead of stalling the suite.
fn within(limit: std::time::Duration, check: impl FnOnce() + Send + 'static) {
    let (done, finished) = std::sync::mpsc::channel();
    let worker = std::thread::spawn(move || {
        check();
        let _ = done.send(());
    });
    match finished.recv_timeout(limit) {
        Ok(()) => worker.join().expect("fuzz thread"),
        // The thread ended without reporting: it panicked; join returns the panic.
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
            if let Err(panic) = worker.join() {
                std::panic::resume_unwind(panic);
            }
        }
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
            panic!("the fuzz run did not finish within {limit:?}: the loader hangs on some input")
        }
    }
}

/// How many mutated files each fuzz test tries: bounded for CI, more with SLUICE_FUZZ_CASES.
fn fuzz_cases() -> u32 {
    std::env::var("SLUICE_FUZZ_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(2_000)
}

/// Loads each mutation of `seeds` with `load`, which returns every message the loader gave
/// (errors and warnings): none may panic or hang, and each message must start with `file`,
/// the name the text was loaded under.
fn fuzz(seeds: Vec<String>, file: &'static str, load: fn(&str) -> Vec<String>) {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};
    within(std::time::Duration::from_secs(600), move || {
        let mut runner = TestRunner::new(Config {
            cases: fuzz_cases(),
            failure_persistence: None,
            ..Config::default()
        });
        let strategy = (0..seeds.len(), proptest::collection::vec(mutation(), 1..6));
        runner
            .run(&strategy, |(seed, mutations)| {
                for message in load(&mutate(&seeds[seed], &mutations)) {
                    prop_assert!(
                        message.starts_with(file),
                        "a message that does not say where: {message}"
                    );
                }
                Ok(())
            })
            .unwrap_or_else(|failure| panic!("{failure}"));
    });
}

/// The messages of the errors a loader returned: there is at least one.
fn messages(errors: &[impl ToString]) -> Vec<String> {
    assert!(!errors.is_empty(), "an error without messages");
    errors.iter().map(ToString::to_string).collect()
}

#[test]
fn the_component_loader_never_panics_and_locates_every_error() {
    let seeds = seed_files()
        .into_iter()
        .filter(|s| s.contains("<components"))
        .collect();
    fuzz(seeds, "fuzzed.xml", |text| {
        match Components::from_sources(vec![(PathBuf::from("fuzzed.xml"), text.to_string())]) {
            Ok(_) => Vec::new(),
            Err(errors) => messages(&errors.0),
        }
    });
    harness::reliability_row(
        "bad input (fuzzed)",
        "component files: profiles/ mutated (spans cut, copied, markup and odd characters inserted)",
        fuzz_cases() as usize,
        "no panic, no hang; every error located in its file",
        None,
    );
}

#[test]
fn the_container_properties_reader_never_panics_and_locates_every_error() {
    let seeds = seed_files()
        .into_iter()
        .filter(|s| !s.contains("<components"))
        .chain([
            "kafka.max.request.size=1048576\nkafka.max.poll.records=500\n".to_string(),
            "com.boomi.connector.kafka.max.poll.records = 3\nhost.max.concurrent.executions: 4\n"
                .to_string(),
        ])
        .collect();
    fuzz(
        seeds,
        "fuzzed.properties",
        |text| match ContainerProperties::parse(Path::new("fuzzed.properties"), text.as_bytes()) {
            Ok((_, warnings)) => warnings.iter().map(ToString::to_string).collect(),
            Err(errors) => messages(&errors.0),
        },
    );
    harness::reliability_row(
        "bad input (fuzzed)",
        "container.properties: profiles/ and samples mutated",
        fuzz_cases() as usize,
        "no panic, no hang; every error and warning located in its file",
        None,
    );
}
