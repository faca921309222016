//! The test harness: starts real servers on loopback for black-box tests and drives the real
//! `sluice` binary. Every server binds a free port in its own temp folder and is stopped when
//! its handle drops, also on panic; a failing test prints the server's log.
//!
//! - [`broker`]: tansu, started, stopped and restarted;
//! - [`kafka`]: an independent rdkafka client that sets tests up and checks what landed;
//! - [`workspace`]: a folder of components and the `sluice` command runs in it;
//! - [`components`]: the component XML tests share;
//! - [`flows`]: what several tests do alike (send and read back, a listener under `serve`);
//! - [`api`]: a client of a host's management API;
//! - [`browser`]: a headless Chromium through WebDriver, for the web console;
//! - [`gateway`], [`gssapi`], [`kdc`], [`msk_iam`], [`oidc`], [`tls`], [`http`]: the
//!   security servers in front of the broker.
#![allow(dead_code)] // each test binary uses its own part of the harness

pub mod api;
pub mod broker;
pub mod browser;
pub mod components;
pub mod flows;
pub mod gateway;
pub mod gssapi;
pub mod http;
pub mod kafka;
pub mod kdc;
pub mod msk_iam;
pub mod oidc;
pub mod tls;
pub mod workspace;

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

// What most tests use, at the top: each test binary uses its own part of it.
#[allow(unused_imports)]
pub use broker::{Broker, BrokerOptions};
#[allow(unused_imports)]
pub use components::{components, routing_listener, with_connection_properties};
#[allow(unused_imports)]
pub use kafka::{Kafka, Record};
#[allow(unused_imports)]
pub use workspace::{
    assert_contains, assert_exit, assert_hidden, sluice_in, stderr, stdout, Serving, Stream,
    Workspace,
};

/// Polls `condition` until it returns `Some`, or panics with `what` after `timeout`.
pub fn wait_for<T>(what: &str, timeout: Duration, mut condition: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = condition() {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until `child` accepts connections on loopback `port`: `true` once it does, `false`
/// when it exits first or `timeout` passes (the caller stops it and shows its log).
pub fn wait_until_listening(child: &mut Child, port: u16, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        if child.try_wait().expect("child status").is_some() || Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Starts `command` (its standard streams closed) and waits until it accepts connections on
/// loopback `port`; panics with `log`'s text (the program's own log) when it does not within
/// `timeout`. `what` names the program and the package that has it.
pub fn spawn_listening(
    command: &mut Command,
    port: u16,
    timeout: Duration,
    what: &str,
    log: &Path,
) -> Child {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    if !wait_until_listening(&mut child, port, timeout) {
        let _ = child.kill();
        let _ = child.wait();
        panic!("{what} did not start on port {port}:\n{}", read(log));
    }
    child
}

/// Records one verified row of docs/RELIABILITY.md: a fault or input class, the case, how
/// many cases it covered, what happened, and documents in and out (where documents flow).
/// Call it after the test's assertions: a row means the behaviour was checked in this run.
/// `./dev test` turns the rows into the document.
pub fn reliability_row(
    class: &str,
    case: &str,
    cases: usize,
    outcome: &str,
    documents: Option<(usize, usize)>,
) {
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/reliability");
    std::fs::create_dir_all(&folder).expect("target/reliability");
    let (documents_in, documents_out) = documents
        .map_or(("—".to_string(), "—".to_string()), |(i, o)| {
            (i.to_string(), o.to_string())
        });
    let clean = |text: &str| text.replace(['\t', '\n', '|'], " ");
    let line = format!(
        "{}\t{}\t{cases}\t{}\t{documents_in}\t{documents_out}\n",
        clean(class),
        clean(case),
        clean(outcome)
    );
    // One short append per row: rows of test binaries running side by side do not interleave.
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(folder.join("rows.tsv"))
        .and_then(|mut file| file.write_all(line.as_bytes()))
        .expect("write a reliability row");
}

/// A name no other test run uses: topics and groups of one broker never collide.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::now_v7().simple())
}

pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

pub(crate) fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| format!("(cannot read: {e})"))
}
