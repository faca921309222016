//! The test harness: starts real servers on loopback for black-box tests and drives the real
//! `sluice` binary. Every server binds a free port in its own temp folder and is stopped when
//! its handle drops, also on panic; a failing test prints the server's log.
#![allow(dead_code)] // each test binary uses its own part of the harness

pub mod gateway;
pub mod gssapi;
pub mod kdc;
pub mod msk_iam;
pub mod oidc;
pub mod tls;

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};

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
}

/// A real Kafka-protocol broker: tansu 0.6.0 (in-memory storage, or sqlite when it has SCRAM
/// users). Its client methods are those of [`Kafka`].
pub struct Broker {
    child: Child,
    port: u16,
    /// How it was started: (advertised host, advertised port, storage, extra arguments).
    launch: (String, u16, String, Vec<String>),
    kafka: Kafka,
    log: PathBuf,
    // Dropped last: holds the log file and the storage.
    _dir: tempfile::TempDir,
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
            let port = free_port();
            let advertised = options.advertised_port.unwrap_or(port);
            let host = options.advertised_host.unwrap_or("127.0.0.1");
            let storage = if options.persistent || !options.scram_users.is_empty() {
                "sqlite://broker.db"
            } else {
                "memory://tansu/"
            };
            let extra: &[&str] = if options.scram_users.is_empty() {
                &[]
            } else {
                &["--authentication"]
            };
            let child = if options.scram_users.is_empty() {
                spawn_tansu(dir.path(), &log, port, (host, advertised), storage, &[])
            } else {
                // tansu creates users only while authentication is off: create them, then
                // restart on the same storage with authentication required.
                let Some(mut setup) =
                    spawn_tansu(dir.path(), &log, port, ("127.0.0.1", port), storage, &[])
                else {
                    continue;
                };
                for (user, password) in options.scram_users {
                    for mechanism in ["scram256", "scram512"] {
                        let status = Command::new(tansu_binary())
                            .args(["user", "create", user, password, "--mechanism", mechanism])
                            .args(["--broker", &format!("tcp://127.0.0.1:{port}")])
                            .stdout(Stdio::null())
                            .stderr(Stdio::null())
                            .status()
                            .expect("tansu user create");
                        assert!(status.success(), "tansu user create {user} {mechanism}");
                    }
                }
                let _ = setup.kill();
                let _ = setup.wait();
                spawn_tansu(dir.path(), &log, port, (host, advertised), storage, extra)
            };
            let Some(child) = child else { continue };
            return Self {
                child,
                port,
                launch: (
                    host.to_string(),
                    advertised,
                    storage.to_string(),
                    extra.iter().map(|a| a.to_string()).collect(),
                ),
                kafka: Kafka::with_settings(
                    &format!("{host}:{advertised}"),
                    options.client_settings.clone(),
                ),
                log,
                _dir: dir,
            };
        }
        panic!("tansu did not start after 3 attempts");
    }

    /// `127.0.0.1:port` of the broker itself (not of a terminator in front of it).
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The broker's own port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The broker's process id (to measure its CPU).
    pub fn pid(&self) -> u32 {
        self.child.id()
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
        let (host, advertised, storage, extra) = &self.launch;
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        let dir = self._dir.path().to_path_buf();
        self.child = spawn_tansu(
            &dir,
            &self.log,
            self.port,
            (host, *advertised),
            storage,
            &extra,
        )
        .expect("tansu starts again on its port");
    }
}

/// Starts tansu and waits until it listens; `None` (log printed) when it exits first.
fn spawn_tansu(
    dir: &Path,
    log: &Path,
    port: u16,
    (advertised_host, advertised_port): (&str, u16),
    storage: &str,
    extra: &[&str],
) -> Option<Child> {
    let log_file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .expect("log file");
    let listener = format!("tcp://127.0.0.1:{port}");
    let advertised = format!("tcp://{advertised_host}:{advertised_port}");
    let mut child = Command::new(tansu_binary())
        .args(["broker", "--listener-url", &listener])
        .args(["--advertised-listener-url", &advertised])
        .args(["--storage-engine", storage])
        .args(extra)
        // sqlite paths are relative to the working directory.
        .current_dir(dir)
        .env("RUST_LOG", "warn")
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
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Some(child);
        }
        if child.try_wait().expect("tansu status").is_some() || Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            eprintln!("tansu did not start on port {port}:\n{}", read(log));
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

impl std::ops::Deref for Broker {
    type Target = Kafka;

    fn deref(&self) -> &Kafka {
        &self.kafka
    }
}

/// An independent client (rdkafka, not Sluice) of a cluster, to set up and check tests.
pub struct Kafka {
    bootstrap: String,
    settings: Vec<(String, String)>,
}

impl Kafka {
    pub fn new(bootstrap: &str) -> Self {
        Self::with_settings(bootstrap, Vec::new())
    }

    /// A client with extra librdkafka settings (TLS, SASL).
    pub fn with_settings(bootstrap: &str, settings: Vec<(String, String)>) -> Self {
        Self {
            bootstrap: bootstrap.to_string(),
            settings,
        }
    }

    fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.bootstrap);
        for (name, value) in &self.settings {
            config.set(name, value);
        }
        config
    }

    /// Creates a topic with a unique name and waits until its metadata is visible.
    pub fn create_topic(&self, prefix: &str, partitions: i32) -> String {
        let name = unique(prefix);
        let admin: AdminClient<DefaultClientContext> =
            self.client_config().create().expect("admin client");
        let results = futures::executor::block_on(admin.create_topics(
            &[NewTopic::new(&name, partitions, TopicReplication::Fixed(1))],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
        ))
        .expect("create_topics");
        for result in results {
            result.unwrap_or_else(|(topic, e)| panic!("creating topic {topic}: {e}"));
        }
        let consumer: BaseConsumer = self.client_config().create().expect("consumer");
        wait_for("the new topic's metadata", Duration::from_secs(10), || {
            let metadata = consumer
                .fetch_metadata(Some(&name), Duration::from_secs(5))
                .ok()?;
            let topic = metadata.topics().iter().find(|t| t.name() == name)?;
            (topic.error().is_none() && topic.partitions().len() == partitions as usize)
                .then_some(())
        });
        name
    }

    /// Waits until a topic holds `count` distinct payloads (duplicates allowed: at-least-once)
    /// and returns them.
    pub fn wait_for_payloads(
        &self,
        topic: &str,
        count: usize,
    ) -> std::collections::BTreeSet<String> {
        let mut seen = std::collections::BTreeSet::new();
        wait_for(
            &format!("{count} distinct documents in {topic}"),
            Duration::from_secs(60),
            || {
                seen = self
                    .read_some(topic)
                    .into_iter()
                    .map(|r| r.payload)
                    .collect();
                (seen.len() == count).then_some(())
            },
        );
        seen
    }

    /// Deletes a topic (its data goes with it).
    pub fn delete_topic(&self, name: &str) {
        let admin: AdminClient<DefaultClientContext> =
            self.client_config().create().expect("admin client");
        let results = futures::executor::block_on(admin.delete_topics(
            &[name],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
        ))
        .expect("delete_topics");
        for result in results {
            result.unwrap_or_else(|(topic, e)| panic!("deleting topic {topic}: {e}"));
        }
    }

    /// Produces records with an independent client (not Sluice's), waiting for each delivery.
    pub fn produce(&self, topic: &str, records: &[(Option<&str>, &str)]) {
        let producer: FutureProducer = self.client_config().create().expect("producer");
        futures::executor::block_on(async {
            for (key, payload) in records {
                let mut record = FutureRecord::to(topic).payload(*payload);
                if let Some(key) = key {
                    record = record.key(*key);
                }
                producer
                    .send(record, Duration::from_secs(10))
                    .await
                    .unwrap_or_else(|(e, _)| panic!("producing to {topic}: {e}"));
            }
        });
    }

    /// Produces one record to an explicit partition, with headers, with an independent client.
    pub fn produce_one(
        &self,
        topic: &str,
        partition: i32,
        key: Option<&str>,
        payload: &[u8],
        headers: &[(&str, &str)],
    ) {
        let producer: FutureProducer = self.client_config().create().expect("producer");
        let mut owned = rdkafka::message::OwnedHeaders::new();
        for (name, value) in headers {
            owned = owned.insert(rdkafka::message::Header {
                key: name,
                value: Some(*value),
            });
        }
        let mut record = FutureRecord::to(topic)
            .payload(payload)
            .partition(partition)
            .headers(owned);
        if let Some(key) = key {
            record = record.key(key);
        }
        futures::executor::block_on(producer.send(record, Duration::from_secs(10)))
            .unwrap_or_else(|(e, _)| panic!("producing to {topic}: {e}"));
    }

    /// Where a new member of `group` starts reading each partition of `topic`: subscribes
    /// like any consumer of the group and records the first offset it gets per partition,
    /// until it has one for each of `partitions`.
    pub fn group_starts_at(&self, group: &str, topic: &str, partitions: i32) -> Vec<i64> {
        let consumer: BaseConsumer = self
            .client_config()
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .create()
            .expect("consumer");
        consumer.subscribe(&[topic]).expect("subscribe");
        let mut first = vec![None; partitions as usize];
        wait_for(
            "a record from every partition",
            Duration::from_secs(30),
            || {
                if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
                    first[m.partition() as usize].get_or_insert(m.offset());
                }
                first.iter().all(Option::is_some).then_some(())
            },
        );
        first.into_iter().map(|o| o.expect("checked")).collect()
    }

    /// The metadata stored with a group's committed offset of one partition.
    pub fn committed_metadata(&self, group: &str, topic: &str, partition: i32) -> String {
        self.committed_entries(group, topic, partition + 1)
            .swap_remove(partition as usize)
            .1
    }

    /// Whatever a topic holds now (read from the beginning until nothing more comes for a
    /// moment), for checks that allow duplicates.
    pub fn read_some(&self, topic: &str) -> Vec<Record> {
        self.read(topic, None)
    }

    /// Reads a topic from the beginning with an independent consumer until `expected` records
    /// are in (or panics after a deadline), then checks nothing more arrives.
    pub fn read_all(&self, topic: &str, expected: usize) -> Vec<Record> {
        self.read(topic, Some(expected))
    }

    fn read(&self, topic: &str, expected: Option<usize>) -> Vec<Record> {
        let consumer: BaseConsumer = self
            .client_config()
            .set("group.id", unique("harness-reader"))
            .set("enable.auto.commit", "false")
            .create()
            .expect("consumer");
        let metadata = consumer
            .fetch_metadata(Some(topic), Duration::from_secs(10))
            .expect("metadata");
        let partitions = metadata.topics()[0].partitions().len() as i32;
        let mut assignment = TopicPartitionList::new();
        for p in 0..partitions {
            assignment
                .add_partition_offset(topic, p, Offset::Beginning)
                .expect("assignment");
        }
        consumer.assign(&assignment).expect("assign");
        drop(assignment);
        let mut records = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        // Without an expected count: until a quiet moment after the first record (or none).
        let mut quiet_since = Instant::now();
        while Instant::now() < deadline
            && match expected {
                Some(expected) => records.len() < expected,
                None => quiet_since.elapsed() < Duration::from_millis(1500),
            }
        {
            if let Some(message) = consumer.poll(Duration::from_millis(100)) {
                quiet_since = Instant::now();
                let m = message.expect("consume");
                records.push(Record {
                    partition: m.partition(),
                    offset: m.offset(),
                    timestamp: m.timestamp().to_millis(),
                    key: m.key().map(|k| String::from_utf8_lossy(k).into_owned()),
                    payload: String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned(),
                    headers: m
                        .headers()
                        .map(|h| {
                            h.iter()
                                .map(|h| {
                                    let value =
                                        h.value.map(|v| String::from_utf8_lossy(v).into_owned());
                                    (h.key.to_string(), value)
                                })
                                .collect()
                        })
                        .unwrap_or_default(),
                });
            }
        }
        let Some(expected) = expected else {
            return records;
        };
        assert_eq!(
            records.len(),
            expected,
            "records in topic {topic}: {records:#?}"
        );
        // Nothing beyond what was expected: a short drain of what is already fetched.
        if let Some(Ok(extra)) = consumer.poll(Duration::from_millis(500)) {
            panic!(
                "an unexpected extra record at offset {} in {topic}",
                extra.offset()
            );
        }
        records
    }

    /// The offsets a consumer group has committed on a topic, per partition (`None`: none).
    pub fn committed(&self, group: &str, topic: &str, partitions: i32) -> Vec<Option<i64>> {
        self.committed_entries(group, topic, partitions)
            .into_iter()
            .map(|(offset, _)| offset)
            .collect()
    }

    /// Committed offset and metadata of partitions 0..`partitions` of `topic` for `group`.
    fn committed_entries(
        &self,
        group: &str,
        topic: &str,
        partitions: i32,
    ) -> Vec<(Option<i64>, String)> {
        let consumer: BaseConsumer = self
            .client_config()
            .set("group.id", group)
            .create()
            .expect("consumer");
        let mut list = TopicPartitionList::new();
        for p in 0..partitions {
            list.add_partition(topic, p);
        }
        let committed = consumer
            .committed_offsets(list, Duration::from_secs(10))
            .expect("committed offsets");
        let entries = (0..partitions)
            .map(|p| match committed.find_partition(topic, p) {
                Some(e) => {
                    let offset = match e.offset() {
                        Offset::Offset(o) => Some(o),
                        _ => None,
                    };
                    (offset, e.metadata().to_string())
                }
                None => (None, String::new()),
            })
            .collect();
        // Lists from committed() must be gone before the consumer is destroyed.
        drop(committed);
        entries
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!(
                "---- tansu log ({}) ----\n{}",
                self.log.display(),
                read(&self.log)
            );
        }
    }
}

/// One record as the independent consumer saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub partition: i32,
    pub offset: i64,
    pub timestamp: Option<i64>,
    pub key: Option<String>,
    pub payload: String,
    pub headers: Vec<(String, Option<String>)>,
}

impl Record {
    /// The value of header `name` (the last one if repeated).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| v.as_deref())
    }
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

/// Answers an HTTP request with `status` and a JSON body, and closes the connection (the test
/// endpoints serve one request per connection).
pub fn reply_json(stream: &mut impl std::io::Write, status: &str, json: &str) {
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{json}",
        json.len()
    );
}

/// Components: connection "tansu" to `broker` with default consumer group `group`, then
/// `body`.
pub fn components(broker: &Broker, group: &str, body: &str) -> String {
    format!(
        r#"<components>
  <connection id="tansu">
    <bootstrap-servers>{}</bootstrap-servers>
    <consumer-group>{group}</consumer-group>
  </connection>
{body}
</components>
"#,
        broker.bootstrap()
    )
}

/// Components: a listener (operation "receive", process "route") on `source` whose process
/// routes each document to the topic its `route` header names; `listen` holds the listen
/// operation's further fields.
pub fn routing_listener(broker: &Broker, group: &str, source: &str, listen: &str) -> String {
    components(
        broker,
        group,
        &format!(
            r#"<operation id="receive" type="listen" connection="tansu">
  <topic>{source}</topic><offset-reset>earliest</offset-reset>{listen}
</operation>
<operation id="send" type="produce" connection="tansu"><dynamic-topic>true</dynamic-topic></operation>
<process id="route">
  <description>Routes by header.</description>
  <start operation="receive"/>
  <steps>
    <set-properties><property name="topic-name" from-header="route"/></set-properties>
    <connector operation="send"/>
  </steps>
</process>"#
        ),
    )
}

/// `components` (from [`components`]) with librdkafka `properties` on connection "tansu".
pub fn with_connection_properties(components: &str, properties: &[(&str, &str)]) -> String {
    let properties: String = properties
        .iter()
        .map(|(name, value)| format!("<property name=\"{name}\">{value}</property>"))
        .collect();
    components.replacen(
        "</consumer-group>",
        &format!("</consumer-group>\n    <properties>{properties}</properties>"),
        1,
    )
}

/// A folder of component files and inputs for one test.
pub struct Workspace {
    pub dir: tempfile::TempDir,
    /// Environment variables every `sluice` run of this workspace gets (tests run in parallel
    /// threads of one process, so they must not change the process's own environment).
    env: std::cell::RefCell<Vec<(String, String)>>,
    /// How many long-running commands were started (their output files are numbered).
    spawned: std::cell::Cell<usize>,
    /// Secrets this workspace's runs know (and their base64): while there are any, every run
    /// logs at TRACE and none of them may appear in its output.
    secrets: std::cell::RefCell<Vec<String>>,
}

/// A running `sluice` (e.g. `serve`), killed when dropped; its output is printed if the test
/// panics while it runs.
pub struct Serving {
    child: Option<std::process::Child>,
    out: PathBuf,
    err: PathBuf,
    /// Checked against its output once it has exited.
    secrets: Vec<String>,
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

impl Workspace {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("temp dir"),
            env: Default::default(),
            spawned: Default::default(),
            secrets: Default::default(),
        }
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

    /// Runs `sluice` in this folder.
    #[track_caller]
    pub fn sluice(&self, args: &[&str]) -> Output {
        let output = sluice_run(
            self.path(),
            args,
            None,
            self.log_level(),
            &self.env.borrow(),
        );
        self.checked(args, output)
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

    /// Runs `sluice` in this folder with `stdin` as standard input.
    #[track_caller]
    pub fn sluice_with_stdin(&self, args: &[&str], stdin: &str) -> Output {
        let output = sluice_run(
            self.path(),
            args,
            Some(stdin),
            self.log_level(),
            &self.env.borrow(),
        );
        self.checked(args, output)
    }
}

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
    // AWS credentials come only from what a test gives; instance metadata is never asked
    // (it is not on loopback).
    for name in [
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
    ] {
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
