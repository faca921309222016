//! A folder of component files and inputs for one test, the real `sluice` binary run in it
//! (to its end, or long-running like `serve`), and checks of what it printed.

use std::cell::{Cell, RefCell};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use super::{read, wait_for};

/// A folder of component files and inputs for one test.
pub struct Workspace {
    pub dir: tempfile::TempDir,
    /// Environment variables every `sluice` run of this workspace gets (tests run in parallel
    /// threads of one process, so they must not change the process's own environment).
    env: RefCell<Vec<(String, String)>>,
    /// How many long-running commands were started (their output files are numbered).
    spawned: Cell<usize>,
    /// Secrets this workspace's runs know (and their base64): while there are any, every run
    /// logs at TRACE and none of them may appear in its output.
    secrets: RefCell<Vec<String>>,
}

/// A running `sluice` (e.g. `serve`), killed when dropped; its output is printed if the test
/// panics while it runs.
pub struct Serving {
    child: Option<Child>,
    out: PathBuf,
    err: PathBuf,
    /// Checked against its output once it has exited.
    secrets: Vec<String>,
}

/// One of the two output streams of a run.
#[derive(Clone, Copy, Debug)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    /// This stream of `output`, as text.
    pub fn of(self, output: &Output) -> String {
        match self {
            Self::Stdout => stdout(output),
            Self::Stderr => stderr(output),
        }
    }
}

/// Panics if `output` holds any of `secrets`, naming what leaked where (not the secret).
#[track_caller]
fn assert_no_secret(secrets: &[String], what: &str, output: &str) {
    for (index, secret) in secrets.iter().enumerate() {
        assert!(
            !output.contains(secret.as_str()),
            "{what}: secret #{index} (or its base64) appears in sluice's output at TRACE level"
        );
    }
}

impl Serving {
    /// What it has written to standard error so far.
    pub fn stderr(&self) -> String {
        read(&self.err)
    }

    /// Its process id (to read its resources from /proc).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Sends `signal` (`TERM`, `INT`, `KILL`) to it.
    pub fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().expect("running").id().to_string();
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &pid])
            .status()
            .expect("kill");
        assert!(status.success(), "kill -{signal} {pid}");
    }

    /// Waits for it to exit (panics after `timeout`) and returns its exit code (`None`: killed
    /// by a signal).
    pub fn wait(&mut self, timeout: Duration) -> Option<i32> {
        let child = self.child.as_mut().expect("running");
        let status = wait_for("sluice to exit", timeout, || {
            child.try_wait().expect("sluice status")
        });
        self.child = None;
        let output = read(&self.out) + &read(&self.err);
        assert_no_secret(&self.secrets, "a long-running sluice", &output);
        status.code()
    }

    /// Sends `signal` (`TERM` or `INT`) and asserts that it exits with 0 within `timeout`: it
    /// stopped cleanly.
    #[track_caller]
    pub fn stop(&mut self, signal: &str, timeout: Duration) {
        self.signal(signal);
        assert_eq!(self.wait(timeout), Some(0), "{}", self.stderr());
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!(
                "---- sluice stdout ----\n{}\n---- sluice stderr ----\n{}",
                read(&self.out),
                read(&self.err)
            );
        }
    }
}

impl Default for Workspace {
    fn default() -> Self {
        Self::new()
    }
}

impl Workspace {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("temp dir"),
            env: Default::default(),
            spawned: Default::default(),
            secrets: Default::default(),
        }
    }

    /// A new workspace whose components are `xml` (in components/c.xml).
    pub fn with_components(xml: &str) -> Self {
        let ws = Self::new();
        ws.write_components(xml);
        ws
    }

    /// Writes the components file, components/c.xml.
    pub fn write_components(&self, xml: &str) -> PathBuf {
        self.write("components/c.xml", xml)
    }

    /// From now on every `sluice` run of this workspace logs at TRACE, and its output (both
    /// streams, and the files of long-running ones once they exit) must not hold any of
    /// `secrets`, nor their base64 (what SASL PLAIN or a careless encoder would print).
    pub fn hold_secrets(&self, secrets: &[&[u8]]) {
        use base64::Engine as _;
        let mut held = self.secrets.borrow_mut();
        for secret in secrets {
            if let Ok(text) = std::str::from_utf8(secret) {
                held.push(text.to_string());
            }
            held.push(base64::engine::general_purpose::STANDARD.encode(secret));
        }
    }

    /// The log filter of this workspace's runs.
    fn log_level(&self) -> &'static str {
        if self.secrets.borrow().is_empty() {
            "sluice=debug,warn"
        } else {
            "trace"
        }
    }

    /// Checks a finished run against the secrets held.
    #[track_caller]
    fn checked(&self, args: &[&str], output: Output) -> Output {
        let text = format!("{}{}", stdout(&output), stderr(&output));
        assert_no_secret(&self.secrets.borrow(), &format!("sluice {args:?}"), &text);
        output
    }

    /// Sets `name` for every later `sluice` run of this workspace.
    pub fn set_env(&self, name: &str, value: &str) {
        self.env.borrow_mut().push((name.into(), value.into()));
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `name` (relative) with `text`; returns its path.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::File::create(&path)
            .and_then(|mut f| f.write_all(text.as_bytes()))
            .expect("write");
        path
    }

    /// The documents a run wrote with `--documents-out NAME`, one JSON envelope each.
    pub fn documents_out(&self, name: &str) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.path().join(name))
            .expect("documents-out file")
            .lines()
            .map(|l| serde_json::from_str(l).expect("a JSON line"))
            .collect()
    }

    /// The `data` of each document in `--documents-out NAME` (`null` where it has none).
    pub fn documents_data(&self, name: &str) -> Vec<serde_json::Value> {
        self.documents_out(name)
            .iter()
            .map(|d| d["data"].clone())
            .collect()
    }

    /// Runs `sluice` in this folder.
    #[track_caller]
    pub fn sluice(&self, args: &[&str]) -> Output {
        self.run(args, None)
    }

    /// Runs `sluice args`, asserts that it exits with `code` and that its `stream` holds each
    /// of `expected` (showing the stream when not), and returns its output.
    #[track_caller]
    pub fn sluice_expect(
        &self,
        args: &[&str],
        code: i32,
        stream: Stream,
        expected: &[&str],
    ) -> Output {
        let output = self.sluice(args);
        assert_exit(&output, code);
        assert_contains(&stream.of(&output), expected);
        output
    }

    /// Runs `sluice` in this folder with every log at TRACE level (for secret-leak checks).
    #[track_caller]
    pub fn sluice_traced(&self, args: &[&str]) -> Output {
        let output = sluice_command(self.path(), args, "trace", &self.env.borrow())
            .stdin(Stdio::null())
            .output()
            .expect("run sluice");
        self.checked(args, output)
    }

    /// Starts `sluice serve` (or any long-running command) in this folder; its output goes to
    /// files in the folder, printed if the test fails.
    pub fn sluice_spawn(&self, args: &[&str]) -> Serving {
        let n = self.spawned.get() + 1;
        self.spawned.set(n);
        let (out, err) = (
            self.path().join(format!("serve-{n}.out")),
            self.path().join(format!("serve-{n}.err")),
        );
        let child = sluice_command(self.path(), args, self.log_level(), &self.env.borrow())
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out).expect("stdout file"))
            .stderr(std::fs::File::create(&err).expect("stderr file"))
            .spawn()
            .expect("start sluice");
        Serving {
            child: Some(child),
            out,
            err,
            secrets: self.secrets.borrow().clone(),
        }
    }

    /// Runs `sluice` in this folder with a standard output nobody reads: a pipe whose reader
    /// has gone (`sluice … | head` once head has what it wants). Returns the exit code and
    /// standard error.
    pub fn sluice_into_closed_pipe(&self, args: &[&str]) -> (Option<i32>, String) {
        let (reader, writer) = os_pipe::pipe().expect("a pipe");
        drop(reader);
        let output = sluice_command(self.path(), args, self.log_level(), &self.env.borrow())
            .stdin(Stdio::null())
            .stdout(writer)
            .stderr(Stdio::piped())
            .output()
            .expect("run sluice");
        (output.status.code(), stderr(&output))
    }

    /// Runs `sluice` in this folder with `stdin` as standard input.
    #[track_caller]
    pub fn sluice_with_stdin(&self, args: &[&str], stdin: &str) -> Output {
        self.run(args, Some(stdin))
    }

    #[track_caller]
    fn run(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let output = sluice_run(
            self.path(),
            args,
            stdin,
            self.log_level(),
            &self.env.borrow(),
        );
        self.checked(args, output)
    }
}

/// Environment variables through which the AWS SDK would find credentials or a region: AWS
/// credentials come only from what a test gives, and instance metadata is never asked (it is
/// not on loopback).
const AWS_VARIABLES: [&str; 13] = [
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    "AWS_EC2_METADATA_SERVICE_ENDPOINT",
];

/// The real `sluice` binary, run in `dir` with `args`, logs filtered by `rust_log`, and `env`
/// on top of an environment cleared of the machine's own Kerberos and AWS settings.
fn sluice_command(dir: &Path, args: &[&str], rust_log: &str, env: &[(String, String)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sluice"));
    command
        .args(args)
        .current_dir(dir)
        .env("RUST_LOG", rust_log)
        .env_remove("SLUICE_COMPONENTS")
        // Sluice must find Kerberos in its custom library, not in the test's environment.
        .env_remove("KRB5_CONFIG")
        .env_remove("KRB5_KTNAME")
        .env_remove("KRB5CCNAME");
    for name in AWS_VARIABLES {
        command.env_remove(name);
    }
    command
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            dir.join("no-aws-credentials"),
        )
        .env("AWS_CONFIG_FILE", dir.join("no-aws-config"))
        .env("AWS_EC2_METADATA_DISABLED", "true");
    command.envs(env.iter().map(|(k, v)| (k, v)));
    command
}

/// Runs the real `sluice` binary in `dir`, logging at debug so failures explain themselves.
pub fn sluice_in(dir: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    sluice_run(dir, args, stdin, "sluice=debug,warn", &[])
}

fn sluice_run(
    dir: &Path,
    args: &[&str],
    stdin: Option<&str>,
    rust_log: &str,
    env: &[(String, String)],
) -> Output {
    let mut child = sluice_command(dir, args, rust_log, env)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run sluice");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write stdin");
    }
    child.wait_with_output().expect("sluice output")
}

/// Standard output as text.
pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Standard error as text.
pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Asserts the exit code, showing both streams when it differs.
#[track_caller]
pub fn assert_exit(output: &Output, code: i32) {
    assert_eq!(
        output.status.code(),
        Some(code),
        "exit status\n--- stdout ---\n{}\n--- stderr ---\n{}",
        stdout(output),
        stderr(output)
    );
}

/// Asserts that `text` holds each of `expected`, showing `text` when one is missing.
#[track_caller]
pub fn assert_contains(text: &str, expected: &[&str]) {
    for expected in expected {
        assert!(text.contains(expected), "missing {expected:?} in\n{text}");
    }
}

/// Asserts that neither output stream of a run holds `secret`.
#[track_caller]
pub fn assert_hidden(output: &Output, secret: &str) {
    assert!(
        !stdout(output).contains(secret) && !stderr(output).contains(secret),
        "a secret appears in sluice's output"
    );
}
