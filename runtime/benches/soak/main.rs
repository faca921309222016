//! The soak (`./dev soak [--minutes N]`, default 10): hours of service in minutes. `sluice
//! serve` runs three listeners (a bridge; a process whose step fails for every 50th document,
//! which is dead-lettered; a listener with an execution per document) on tansu with sqlite
//! storage, fed by an independent producer at a quarter of the rate these cores sustain (measured
//! first), while the harness brings chaos on a schedule: tansu killed and started again, a
//! second host joining and leaving the groups (SIGTERM, later SIGKILL), the bridge paused and
//! resumed through the API, the execution database held under an exclusive lock by another
//! process. Every 10 s it samples each host's RSS, open file descriptors and threads from
//! /proc; independent readers account for every input message downstream or in the
//! dead-letter topic and time its arrival. docs/SOAK.md gets the figures and a verdict.
//!
//! `--rate N` skips the calibration and soaks at N messages/s (for a quick look at one
//! question; the report says the rate was given, not measured). `--worker lock-db PATH
//! SECONDS` is how it holds the database locked from another process.
//!
//! For a look at host 1's memory (how host/memory.rs was found): `SLUICE_SOAK_SMAPS=DIR`
//! copies its /proc smaps into DIR at every sample, and `SLUICE_SOAK_HOST1_ENV="K=V;K=V"` adds
//! to its environment only, for a heap profiler's preload, e.g. heaptrack's:
//! `LD_PRELOAD=/usr/lib/heaptrack/libheaptrack_preload.so;DUMP_HEAPTRACK_OUTPUT=FIFO` with
//! `/usr/lib/heaptrack/libexec/heaptrack_interpret < FIFO | zstd > host1.zst` reading it.

#[path = "../../../tests/harness/mod.rs"]
mod harness;

mod feed;
mod plot;
mod probe;
mod report;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use harness::api::Api;
use harness::workspace::Serving;
use harness::{Broker, BrokerOptions, Workspace};
use serde_json::Value;

use feed::{Feed, Reader};
use probe::{CpuClock, GroupProbe};
use report::{Accounting, Event, GroupSample, Report, Sample};

const INPUT_PARTITIONS: i32 = 3;
/// The row bound the soak sets, well below what it writes, to see that it holds; low enough
/// that the database is full (the end of the memory's warm-up, see report.rs) within about
/// two minutes at 10/s, before the first chaos event of a 25-minute soak.
const MAX_RECORDS: u64 = 2000;
/// How long each calibration rate is sent, in seconds: long enough for a queue that grows
/// slowly to show (15 s steps passed 160/s, and 80/s then fell behind for minutes).
pub const CALIBRATION_STEP: f64 = 45.0;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--worker") {
        return lock_database(&args[1..]);
    }
    let minutes: f64 = args
        .iter()
        .position(|a| a == "--minutes")
        .and_then(|i| args.get(i + 1))
        .map(|m| m.parse().expect("--minutes N"))
        .unwrap_or(10.0);
    let rate: Option<f64> = args
        .iter()
        .position(|a| a == "--rate")
        .and_then(|i| args.get(i + 1))
        .map(|r| r.parse().expect("--rate N (messages/s)"));
    if minutes < 10.0 {
        // The schedule is in fractions of the soak: a broker restart and the next event can
        // come 17 s apart in 4 minutes, sooner than three listeners settle after it.
        eprintln!(
            "soak: under 10 minutes the chaos events come too close together for the hosts to \
             settle between them; \"back to their level\" may fail for that alone"
        );
    }
    let report = soak(Duration::from_secs_f64(minutes * 60.0), rate);
    let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs");
    for (name, svg) in report.plots() {
        std::fs::write(docs.join(name), svg).expect(name);
    }
    let path = docs.join("SOAK.md");
    std::fs::write(&path, report.markdown()).expect("docs/SOAK.md");
    eprintln!(
        "soak: wrote {}; verdict: {}",
        path.display(),
        report.verdict()
    );
    if !report.passed() {
        std::process::exit(1);
    }
}

/// `--worker lock-db PATH SECONDS`: takes the database's write lock, holds it, lets go.
fn lock_database(args: &[String]) {
    let [mode, path, seconds] = args else {
        panic!("--worker lock-db PATH SECONDS");
    };
    assert_eq!(mode, "lock-db");
    let connection = rusqlite::Connection::open(path).expect("open the execution database");
    connection
        .execute_batch("BEGIN EXCLUSIVE")
        .expect("lock the execution database");
    println!("locked");
    std::thread::sleep(Duration::from_secs(seconds.parse().expect("seconds")));
    connection.execute_batch("COMMIT").expect("unlock");
}

/// The topics of one soak.
struct Topics {
    input: String,
    bridge: String,
    failing: String,
    each: String,
    dead: String,
}

fn components(broker: &Broker, topics: &Topics) -> String {
    let connection = |id: &str| {
        format!(
            r#"<connection id="{id}"><bootstrap-servers>{}</bootstrap-servers><consumer-group>soak-{id}</consumer-group>
    <properties><property name="session.timeout.ms">6000</property><property name="heartbeat.interval.ms">1000</property></properties></connection>"#,
            broker.bootstrap()
        )
    };
    let Topics {
        input,
        bridge,
        // The failing listener's target comes with each message (header route).
        failing: _,
        each,
        dead,
    } = topics;
    format!(
        r#"<components>
  {}
  {}
  {}
  <operation id="bridge-in" type="listen" connection="bridge"><topic>{input}</topic><offset-reset>earliest</offset-reset></operation>
  <operation id="bridge-out" type="produce" connection="bridge"><topic>{bridge}</topic></operation>
  <process id="bridge"><start operation="bridge-in"/><steps><connector operation="bridge-out"/></steps></process>
  <operation id="failing-in" type="listen" connection="failing"><topic>{input}</topic><offset-reset>earliest</offset-reset>
    <retry-limit>1</retry-limit><retry-backoff>200ms</retry-backoff><dead-letter-topic>{dead}</dead-letter-topic></operation>
  <operation id="failing-out" type="produce" connection="failing"><dynamic-topic>true</dynamic-topic></operation>
  <process id="failing"><start operation="failing-in"/><steps>
    <set-properties><property name="topic-name" from-header="route"/></set-properties>
    <connector operation="failing-out"/></steps></process>
  <operation id="each-in" type="listen" connection="each"><topic>{input}</topic><offset-reset>earliest</offset-reset><execution-per>document</execution-per></operation>
  <operation id="each-out" type="produce" connection="each"><topic>{each}</topic></operation>
  <process id="each"><start operation="each-in"/><steps><connector operation="each-out"/></steps></process>
</components>"#,
        connection("bridge"),
        connection("failing"),
        connection("each"),
    )
}

/// A running host: its process, API and the samples taken of it.
struct Host {
    serving: Serving,
    api: Api,
    name: &'static str,
}

impl Host {
    fn start(ws: &Workspace, name: &'static str) -> Self {
        let serving = ws.sluice_spawn(&["serve", "--api", "127.0.0.1:0"]);
        let api = Api::of(&serving, None);
        Self { serving, api, name }
    }

    fn pid(&self) -> u32 {
        self.serving.pid()
    }

    /// Revocations of all three listeners.
    fn revocations(&self) -> u64 {
        self.statuses().iter().map(revocations).sum()
    }

    /// The status of each of the three listeners (`Null` for one that did not answer): one
    /// call each, since a status asks the broker for the partitions' positions.
    fn statuses(&self) -> [Value; 3] {
        LISTENERS.map(|listener| {
            match self
                .api
                .call("GET", &format!("/listeners/{listener}/status"), None, None)
            {
                (200, body) => serde_json::from_str(&body).unwrap_or(Value::Null),
                _ => Value::Null,
            }
        })
    }

    fn metric(&self, name: &str) -> f64 {
        let (_, text) = self.api.call("GET", "/metrics", None, None);
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or(0.0)
    }
}

const LISTENERS: [&str; 3] = ["bridge", "failing", "each"];

fn revocations(status: &Value) -> u64 {
    status["revocations"].as_u64().unwrap_or(0)
}

/// The lag of the partitions a listener's status shows (those assigned on its host).
fn lag(status: &Value) -> i64 {
    status["partitions"]
        .as_array()
        .map_or(0, |ps| ps.iter().filter_map(|p| p["lag"].as_i64()).sum())
}

fn partitions(status: &Value) -> usize {
    status["partitions"].as_array().map_or(0, Vec::len)
}

/// The rows of the execution database, read while the hosts write it (`None` while another
/// process holds it locked).
fn execution_rows(database: &Path) -> Option<i64> {
    let connection =
        rusqlite::Connection::open_with_flags(database, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .ok()?;
    connection.busy_timeout(Duration::from_millis(200)).ok()?;
    connection
        .query_row("SELECT count(*) FROM executions", [], |r| r.get(0))
        .ok()
}

/// What /proc says of a process: resident memory (KiB), open file descriptors, threads.
fn proc_sample(pid: u32) -> Option<(u64, usize, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
    };
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count();
    Some((field("VmRSS:")?, fds, field("Threads:")?))
}

/// What the chaos schedule does, at which fraction of the soak.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Chaos {
    KillBroker,
    SecondHostJoins,
    SecondHostTerm,
    SecondHostKill,
    PauseBridge,
    ResumeBridge,
    LockDatabase,
}

impl Chaos {
    fn name(self) -> &'static str {
        match self {
            Self::KillBroker => "KillBroker",
            Self::SecondHostJoins => "SecondHostJoins",
            Self::SecondHostTerm => "SecondHostTerm",
            Self::SecondHostKill => "SecondHostKill",
            Self::PauseBridge => "PauseBridge",
            Self::ResumeBridge => "ResumeBridge",
            Self::LockDatabase => "LockDatabase",
        }
    }
}

const SCHEDULE: [(f64, Chaos); 10] = [
    (0.15, Chaos::SecondHostJoins),
    (0.25, Chaos::KillBroker),
    (0.33, Chaos::SecondHostTerm),
    (0.40, Chaos::PauseBridge),
    (0.45, Chaos::ResumeBridge),
    (0.48, Chaos::SecondHostJoins),
    (0.55, Chaos::KillBroker),
    (0.62, Chaos::LockDatabase),
    (0.72, Chaos::SecondHostKill),
    (0.85, Chaos::KillBroker),
];

/// How long the database stays locked, and the broker down.
pub const LOCK_SECONDS: u64 = 45;
const BROKER_DOWN: Duration = Duration::from_secs(5);

fn soak(length: Duration, given_rate: Option<f64>) -> Report {
    let mut broker = Broker::start_with(BrokerOptions {
        persistent: true,
        ..BrokerOptions::default()
    });
    let topics = Topics {
        input: broker.create_topic("soak-in", INPUT_PARTITIONS),
        bridge: broker.create_topic("soak-bridge", 1),
        failing: broker.create_topic("soak-failing", 1),
        each: broker.create_topic("soak-each", 1),
        dead: broker.create_topic("soak-dead", 1),
    };
    let ws = Workspace::with_components(&components(&broker, &topics));
    ws.write(
        "container.properties",
        &format!(
            "host.executions.max.records={MAX_RECORDS}\nhost.reconnect.backoff.ms=1000,2000,5000\n\
             host.drain.timeout.ms=10000\nhost.stall.timeout.ms=60000\n"
        ),
    );
    // Warnings only: the debug lines of hours of traffic would fill the disk.
    ws.set_env("RUST_LOG", "warn");
    // Environment for host 1 only (a heap profiler's preload; see the top of this file); the
    // second host gets the variables emptied.
    let host1_env: Vec<(String, String)> = std::env::var("SLUICE_SOAK_HOST1_ENV")
        .unwrap_or_default()
        .split(';')
        .filter_map(|kv| {
            kv.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
        })
        .collect();
    for (k, v) in &host1_env {
        ws.set_env(k, v);
    }
    let mut first = Host::start(&ws, "host 1");
    for (k, _) in &host1_env {
        ws.set_env(k, "");
    }
    for listener in ["bridge", "failing", "each"] {
        first
            .api
            .wait_until_running(listener, INPUT_PARTITIONS as usize);
    }
    let bootstrap = broker.bootstrap();
    let mut readers = [
        Reader::start(&bootstrap, &topics.bridge, 1),
        Reader::start(&bootstrap, &topics.failing, 1),
        Reader::start(&bootstrap, &topics.each, 1),
        Reader::start(&bootstrap, &topics.dead, 1),
        // What the broker kept of the input: a message it acknowledged and then lost (killed
        // before its storage held it) is the broker's loss, not Sluice's.
        Reader::start(&bootstrap, &topics.input, INPUT_PARTITIONS),
    ];
    let mut feed = Feed::new(&bootstrap, &topics.input, INPUT_PARTITIONS, &topics.failing);

    // What these cores (and tansu's sqlite storage) sustain: steady rates, doubling, each for
    // a while; a rate is sustained when the broker took every message and all three
    // listeners passed them on within a few seconds of the last. A burst would overstate it:
    // under a backlog every batch is full, while steady traffic comes a message at a time.
    let caught_up = |readers: &[Reader; 5], n: usize| {
        readers[0].distinct() >= n
            && readers[2].distinct() >= n
            && readers[1].distinct() + readers[3].distinct() >= n
    };
    let mut sustained = 0.0;
    let mut step_rate = 10.0;
    while given_rate.is_none() {
        feed.run(
            step_rate,
            &AtomicBool::new(false),
            Some((step_rate * CALIBRATION_STEP) as u64),
        );
        // A queue the broker cannot empty within a moment: the feed itself fell behind.
        feed.finish(Duration::from_secs(2));
        let sent = feed.sent.delivered.lock().expect("sent").len();
        let settled = Instant::now();
        while settled.elapsed() < Duration::from_secs(5) && !caught_up(&readers, sent) {
            std::thread::sleep(Duration::from_millis(100));
        }
        let kept_up = sent as u64 == feed.sent.sent() && caught_up(&readers, sent);
        eprintln!(
            "soak: calibration at {step_rate:.0}/s: {}",
            if kept_up { "kept up" } else { "fell behind" }
        );
        if !kept_up || step_rate >= 1000.0 {
            break;
        }
        sustained = step_rate;
        step_rate *= 2.0;
    }
    // What the last step left behind passes before the soak begins.
    let sent = feed.sent.delivered.lock().expect("sent").len();
    harness::wait_for("the calibration to pass", Duration::from_secs(600), || {
        caught_up(&readers, sent).then_some(())
    });
    // A quarter, not the half the issue asks for: tansu's sqlite storage slows as it grows.
    // At half (20/s), its CPU went from 65 % of a core to 99 % within 5 minutes with no chaos
    // to blame, and the input topic's own latency (send until readable) from 150 ms to 45 s:
    // the soak then measured a saturated broker, not Sluice.
    let rate = given_rate.unwrap_or((sustained / 4.0_f64).max(5.0));
    match given_rate {
        None => eprintln!("soak: these cores sustain {sustained:.0} messages/s through the three listeners; soaking at {rate:.0}/s for {} s", length.as_secs()),
        Some(_) => eprintln!("soak: at the given {rate:.0}/s for {} s (no calibration)", length.as_secs()),
    }

    let stop = AtomicBool::new(false);
    let mut samples: Vec<Sample> = Vec::new();
    let mut group_samples: Vec<GroupSample> = Vec::new();
    let groups = GroupProbe::new(
        &bootstrap,
        &topics.input,
        INPUT_PARTITIONS,
        &LISTENERS.map(|l| (l, format!("soak-{l}"))),
    );
    let mut broker_cpu = CpuClock::new(broker.pid());
    let mut events: Vec<Event> = Vec::new();
    let database = ws.path().join("sluice-executions.db");
    let began_ms = feed::now_ms();
    let soak_started = Instant::now();
    std::thread::scope(|scope| {
        let feeding = scope.spawn(|| feed.run(rate, &stop, None));
        let mut second: Option<Host> = None;
        let mut next_event = 0;
        let mut next_sample = Instant::now();
        let mut lock: Option<std::process::Child> = None;
        while soak_started.elapsed() < length {
            let at = soak_started.elapsed().as_secs_f64() / length.as_secs_f64();
            if next_event < SCHEDULE.len() && at >= SCHEDULE[next_event].0 {
                let chaos = SCHEDULE[next_event].1;
                next_event += 1;
                let t = soak_started.elapsed();
                let at_ms = feed::now_ms();
                let before = first.revocations();
                let detail = match chaos {
                    Chaos::KillBroker => {
                        broker.stop();
                        std::thread::sleep(BROKER_DOWN);
                        broker.restart();
                        format!("SIGKILL, started again after {} s", BROKER_DOWN.as_secs())
                    }
                    Chaos::SecondHostJoins => {
                        second = Some(Host::start(&ws, "host 2"));
                        "a second host starts the same listeners".into()
                    }
                    Chaos::SecondHostTerm => {
                        if let Some(mut host) = second.take() {
                            host.serving.signal("TERM");
                            let _ = host.serving.wait(Duration::from_secs(60));
                        }
                        "the second host gets SIGTERM and leaves".into()
                    }
                    Chaos::SecondHostKill => {
                        if let Some(mut host) = second.take() {
                            host.serving.signal("KILL");
                            let _ = host.serving.wait(Duration::from_secs(60));
                        }
                        "the second host gets SIGKILL".into()
                    }
                    Chaos::PauseBridge => {
                        let (status, _) =
                            first.api.call("PUT", "/listeners/bridge/pause", None, None);
                        format!("PUT /listeners/bridge/pause: {status}")
                    }
                    Chaos::ResumeBridge => {
                        let (status, _) =
                            first
                                .api
                                .call("PUT", "/listeners/bridge/resume", None, None);
                        format!("PUT /listeners/bridge/resume: {status}")
                    }
                    Chaos::LockDatabase => {
                        let mut child =
                            std::process::Command::new(std::env::current_exe().expect("the soak"))
                                .args(["--worker", "lock-db"])
                                .arg(&database)
                                .arg(LOCK_SECONDS.to_string())
                                .stdout(std::process::Stdio::piped())
                                .spawn()
                                .expect("the locking process");
                        let mut line = String::new();
                        let mut out =
                            std::io::BufReader::new(child.stdout.take().expect("its output"));
                        std::io::BufRead::read_line(&mut out, &mut line).expect("it says locked");
                        lock = Some(child);
                        format!("another process holds the execution database's write lock for {LOCK_SECONDS} s")
                    }
                };
                events.push(Event {
                    at: t,
                    at_ms,
                    chaos: chaos.name(),
                    detail,
                    revocations_before: before,
                    effect: String::new(),
                    seen: false,
                });
            }
            if Instant::now() >= next_sample {
                next_sample += Duration::from_secs(10);
                if let Ok(dir) = std::env::var("SLUICE_SOAK_SMAPS") {
                    let _ = std::fs::copy(
                        format!("/proc/{}/smaps", first.pid()),
                        format!("{dir}/{:05}.txt", soak_started.elapsed().as_secs()),
                    );
                }
                for host in std::iter::once(&first).chain(second.as_ref()) {
                    let rows = (host.name == first.name)
                        .then(|| execution_rows(&database))
                        .flatten();
                    if let Some((rss_kb, fds, threads)) = proc_sample(host.pid()) {
                        // When /proc was read: the API calls after it may wait on a broker
                        // that is down for seconds.
                        let at = soak_started.elapsed();
                        let statuses = host.statuses();
                        samples.push(Sample {
                            at,
                            host: host.name,
                            rss_kb,
                            fds,
                            threads,
                            records_waiting: host.metric("sluice_execution_records_waiting"),
                            records_dropped: host.metric("sluice_execution_records_dropped_total"),
                            bridge_lag: lag(&statuses[0]),
                            rows,
                            partitions: statuses.each_ref().map(partitions),
                            revocations: statuses.iter().map(revocations).sum(),
                        });
                    }
                }
                broker_cpu.follow(broker.pid());
                group_samples.push(GroupSample {
                    at: soak_started.elapsed(),
                    broker_cpu: broker_cpu.percent(),
                    broker_rss_kb: probe::rss_kb(broker.pid()),
                    lags: groups.lags(),
                });
            }
            if let Some(child) = &mut lock {
                if child.try_wait().ok().flatten().is_some() {
                    lock = None;
                }
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        stop.store(true, Ordering::Relaxed);
        feeding.join().expect("the feed");
        if let Some(mut host) = second.take() {
            host.serving.signal("TERM");
            let _ = host.serving.wait(Duration::from_secs(60));
        }
        if let Some(mut child) = lock.take() {
            let _ = child.wait();
        }
    });
    feed.finish(Duration::from_secs(120));
    let delivered: Vec<u64> = feed.sent.delivered.lock().expect("sent").clone();
    // Everything sent has had time to pass: until each output holds every number, or 5 min.
    let drain = Instant::now();
    let expected = delivered
        .iter()
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    while drain.elapsed() < Duration::from_secs(300) && !caught_up(&readers, expected) {
        std::thread::sleep(Duration::from_millis(500));
    }
    // The watchdog's restarts over the soak (a rejoin for partitions no member held counts).
    let stalls = LISTENERS.map(|l| {
        (
            l,
            first.metric(&format!("sluice_listener_stalls_total{{process=\"{l}\"}}")),
        )
    });
    first.serving.signal("TERM");
    let exit = first.serving.wait(Duration::from_secs(120));
    for reader in &mut readers {
        reader.stop();
    }
    let rows: i64 = rusqlite::Connection::open(&database)
        .and_then(|c| c.query_row("SELECT count(*) FROM executions", [], |r| r.get(0)))
        .unwrap_or(-1);
    let [bridge, failing, each, dead, input] =
        readers.map(|r| std::mem::take(&mut *r.seen.lock().expect("seen")));
    let kept: Vec<u64> = input.counts.keys().copied().collect();
    let mut accounting = Accounting::of(&kept, &bridge, &failing, &each, &dead);
    accounting.broker_lost = delivered
        .iter()
        .filter(|s| !input.counts.contains_key(s))
        .count();
    accounting.input_duplicates = input.total() - input.counts.len() as u64;
    let mut report = Report {
        length,
        sustained: given_rate.is_none().then_some(sustained),
        rate,
        began_ms,
        samples,
        events,
        accounting,
        latencies: [
            ("bridge", bridge.arrivals),
            ("each", each.arrivals),
            ("input", input.arrivals),
        ],
        group_samples,
        stalls,
        rows,
        max_records: MAX_RECORDS,
        failed_sends: feed.sent.failed.load(Ordering::Relaxed),
        exit,
        machine: machine(),
    };
    report.judge_events();
    report
}

/// The machine, for the report: its CPU model and cores.
fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name")?.split(':').nth(1))
        .unwrap_or("unknown CPU")
        .trim()
        .to_string();
    let cores = cpuinfo
        .lines()
        .filter(|l| l.starts_with("processor"))
        .count();
    format!("{model}, {cores} cores")
}
