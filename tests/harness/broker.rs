//! The test broker: tansu 0.6.0 on a free loopback port, in a temp folder of its own, stopped
//! when dropped (its log printed if the test panics), and stopped and started again on demand.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::kafka::Kafka;
use super::{free_port, read, wait_until_listening};

/// The tansu binary: `$TANSU_BIN`, else `~/.cargo/bin/tansu`, else `tansu` on the PATH.
fn tansu_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("TANSU_BIN") {
        return PathBuf::from(path);
    }
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")));
    if let Some(candidate) = cargo_home
        .map(|h| h.join("bin/tansu"))
        .filter(|p| p.exists())
    {
        return candidate;
    }
    PathBuf::from("tansu")
}

/// How a test broker runs.
#[derive(Default)]
pub struct BrokerOptions<'a> {
    /// Advertise this port instead of the broker's own (a TLS terminator in front of it).
    pub advertised_port: Option<u16>,
    /// Advertise this host instead of 127.0.0.1 (Kerberos needs `localhost`: the service
    /// principal is kafka/localhost).
    pub advertised_host: Option<&'a str>,
    /// SCRAM users (name, password) with both SHA-256 and SHA-512 credentials; the broker then
    /// requires SASL/SCRAM authentication.
    pub scram_users: &'a [(&'a str, &'a str)],
    /// Settings the harness's own client needs to reach the advertised listener.
    pub client_settings: Vec<(String, String)>,
    /// Keeps topics and groups on disk (sqlite), so that the broker can be stopped and
    /// started again with its data.
    pub persistent: bool,
    /// Listen on this loopback port (what shipped examples name, such as 9092) instead of a
    /// free one; the broker does not start when it is taken.
    pub port: Option<u16>,
}

/// How a tansu process is started: kept, so that a restart starts it the same way.
#[derive(Clone, Debug)]
struct Launch {
    /// The loopback port it listens on.
    port: u16,
    /// The host its clients are told to connect to.
    advertised_host: String,
    /// The port its clients are told to connect to (a terminator's or gateway's, or its own).
    advertised_port: u16,
    /// `memory://tansu/`, or `sqlite://broker.db` (relative to the broker's folder).
    storage: &'static str,
    /// Whether clients must authenticate (SASL/SCRAM): `--authentication`.
    authentication: bool,
}

impl Launch {
    /// The launch `options` ask for, on `port`.
    fn of(options: &BrokerOptions<'_>, port: u16) -> Self {
        Self {
            port,
            advertised_host: options.advertised_host.unwrap_or("127.0.0.1").to_string(),
            advertised_port: options.advertised_port.unwrap_or(port),
            storage: if options.persistent || !options.scram_users.is_empty() {
                "sqlite://broker.db"
            } else {
                "memory://tansu/"
            },
            authentication: !options.scram_users.is_empty(),
        }
    }

    /// The same storage, advertising itself, without authentication: the set-up run in which
    /// tansu lets users be created.
    fn setup(&self) -> Self {
        Self {
            advertised_host: "127.0.0.1".to_string(),
            advertised_port: self.port,
            authentication: false,
            ..self.clone()
        }
    }

    /// `host:port` its clients connect to.
    fn advertised(&self) -> String {
        format!("{}:{}", self.advertised_host, self.advertised_port)
    }
}

/// A real Kafka-protocol broker: tansu 0.6.0 (in-memory storage, or sqlite when it has SCRAM
/// users or is persistent). Its client methods are those of [`Kafka`].
pub struct Broker {
    child: Child,
    launch: Launch,
    kafka: Kafka,
    log: PathBuf,
    // Dropped last: holds the log file and the storage.
    dir: tempfile::TempDir,
}

impl Broker {
    /// Starts a plain broker on a free loopback port and waits until it accepts connections.
    pub fn start() -> Self {
        Self::start_with(BrokerOptions::default())
    }

    /// Starts a broker as `options` say.
    pub fn start_with(options: BrokerOptions<'_>) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let log = dir.path().join("tansu.log");
        // The port is free when we ask; another process may take it before tansu binds, so a
        // broker that exits at start is retried on a new port.
        for _attempt in 0..3 {
            let launch = Launch::of(&options, options.port.unwrap_or_else(free_port));
            let Some(child) = start_tansu(dir.path(), &log, &launch, options.scram_users) else {
                continue;
            };
            return Self {
                child,
                kafka: Kafka::with_settings(&launch.advertised(), options.client_settings.clone()),
                launch,
                log,
                dir,
            };
        }
        panic!("tansu did not start after 3 attempts");
    }

    /// `127.0.0.1:port` of the broker itself (not of a terminator in front of it).
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.launch.port)
    }

    /// The broker's own port.
    pub fn port(&self) -> u16 {
        self.launch.port
    }

    /// The broker's process id (to measure its CPU).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the broker has logged so far.
    pub fn log(&self) -> String {
        read(&self.log)
    }

    /// Stops the broker process (clients see it go away).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the broker again on the same port, with the same storage (a `persistent` broker
    /// keeps its topics and groups).
    pub fn restart(&mut self) {
        self.stop();
        self.child = spawn_tansu(self.dir.path(), &self.log, &self.launch)
            .expect("tansu starts again on its port");
    }
}

impl std::ops::Deref for Broker {
    type Target = Kafka;

    fn deref(&self) -> &Kafka {
        &self.kafka
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            eprintln!(
                "---- tansu log ({}) ----\n{}",
                self.log.display(),
                read(&self.log)
            );
        }
    }
}

/// Starts tansu as `launch` says, with `scram_users` created first; `None` when it exits at
/// start.
fn start_tansu(
    dir: &Path,
    log: &Path,
    launch: &Launch,
    scram_users: &[(&str, &str)],
) -> Option<Child> {
    if scram_users.is_empty() {
        return spawn_tansu(dir, log, launch);
    }
    // tansu creates users only while authentication is off: create them, then restart on
    // the same storage with authentication required.
    let mut setup = spawn_tansu(dir, log, &launch.setup())?;
    for (user, password) in scram_users {
        for mechanism in ["scram256", "scram512"] {
            let status = Command::new(tansu_binary())
                .args(["user", "create", user, password, "--mechanism", mechanism])
                .args(["--broker", &format!("tcp://127.0.0.1:{}", launch.port)])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .expect("tansu user create");
            assert!(status.success(), "tansu user create {user} {mechanism}");
        }
    }
    let _ = setup.kill();
    let _ = setup.wait();
    spawn_tansu(dir, log, launch)
}

/// Starts tansu in `dir` and waits until it listens; `None` (log printed) when it exits first.
fn spawn_tansu(dir: &Path, log: &Path, launch: &Launch) -> Option<Child> {
    let log_file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .expect("log file");
    let mut command = Command::new(tansu_binary());
    command
        .args(["broker", "--listener-url"])
        .arg(format!("tcp://127.0.0.1:{}", launch.port))
        .arg("--advertised-listener-url")
        .arg(format!("tcp://{}", launch.advertised()))
        .args(["--storage-engine", launch.storage]);
    if launch.authentication {
        command.arg("--authentication");
    }
    let mut child = command
        // sqlite paths are relative to the working directory.
        .current_dir(dir)
        // SLUICE_TEST_TANSU_LOG=info (or debug) shows the group coordinator's decisions when a
        // test about groups needs explaining; warnings only by default.
        .env(
            "RUST_LOG",
            std::env::var("SLUICE_TEST_TANSU_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .stdout(log_file.try_clone().expect("log file"))
        .stderr(log_file)
        .stdin(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot start tansu ({e}): run ./dev test, which installs tansu 0.6.0, or set \
                 TANSU_BIN to its path"
            )
        });
    if wait_until_listening(&mut child, launch.port, Duration::from_secs(20)) {
        return Some(child);
    }
    let _ = child.kill();
    let _ = child.wait();
    eprintln!(
        "tansu did not start on port {}:\n{}",
        launch.port,
        read(log)
    );
    None
}
