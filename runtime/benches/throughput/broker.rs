//! The two brokers a cell can run on: tansu (a real Kafka-protocol broker, memory storage,
//! which sets a ceiling on what either client can reach) and librdkafka's mock cluster in a
//! process of its own (`--worker mock-broker`), where the broker is not the limit and client
//! overhead shows. On 2 cores the broker shares the CPU either way, so CPU per message is
//! reported beside the rates.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Mutex;

use crate::harness::{self, Broker};
use crate::matrix::Cell;

/// What the mock cluster keeps of a partition, with room for batch overhead: it keeps the newest
/// 5 MiB (or 100,000 message sets) and drops older ones (librdkafka's `rdkafka_mock.c`; no
/// setting changes it), so a reader from the earliest offset of a larger topic waits forever.
const MOCK_PARTITION_BYTES: usize = 4 << 20;

/// A broker the benchmark measures on.
pub enum BenchBroker {
    /// tansu 0.6.0, shared by the cells of a run.
    Tansu(Broker),
    /// The mock cluster, one per cell: it cannot delete topics, so a fresh one bounds its
    /// memory to one cell's messages.
    Memory(MemoryBroker),
}

/// librdkafka's mock cluster in a child process; told to create topics over its standard
/// input, since it takes no CreateTopics request.
pub struct MemoryBroker {
    child: Child,
    bootstrap: String,
    commands: Mutex<(ChildStdin, BufReader<ChildStdout>)>,
}

impl BenchBroker {
    /// A fresh in-memory broker.
    pub fn memory() -> Self {
        let mut child = Command::new(std::env::current_exe().expect("this benchmark"))
            .args(["--worker", "mock-broker"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the in-memory broker");
        let stdin = child.stdin.take().expect("its input");
        let mut stdout = BufReader::new(child.stdout.take().expect("its output"));
        let mut bootstrap = String::new();
        stdout
            .read_line(&mut bootstrap)
            .expect("the in-memory broker's address");
        Self::Memory(MemoryBroker {
            child,
            bootstrap: bootstrap.trim().to_string(),
            commands: Mutex::new((stdin, stdout)),
        })
    }

    /// `tansu` or `memory`, as the report names the column.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Tansu(_) => "tansu",
            Self::Memory(_) => "memory",
        }
    }

    pub fn bootstrap(&self) -> String {
        match self {
            Self::Tansu(broker) => broker.bootstrap(),
            Self::Memory(memory) => memory.bootstrap.clone(),
        }
    }

    pub fn pid(&self) -> u32 {
        match self {
            Self::Tansu(broker) => broker.pid(),
            Self::Memory(memory) => memory.child.id(),
        }
    }

    /// The cell as this broker can hold it: on the mock cluster, a cell that reads its topic
    /// back (consume, bridge) sends no more than its partitions keep.
    pub fn fitted(&self, cell: &Cell) -> Cell {
        let mut cell = cell.clone();
        if matches!(self, Self::Memory(_)) && !matches!(cell.workload, "produce" | "run") {
            let kept = MOCK_PARTITION_BYTES * cell.partitions as usize / cell.size.max(1);
            cell.count = cell.count.min(kept);
            if cell.workload == "consume" {
                cell.per_execution = cell.count;
            }
        }
        cell
    }

    /// Creates a topic with a unique name.
    pub fn create_topic(&self, prefix: &str, partitions: i32) -> String {
        match self {
            Self::Tansu(broker) => broker.create_topic(prefix, partitions),
            Self::Memory(memory) => {
                let name = harness::unique(prefix);
                let mut commands = memory.commands.lock().expect("the broker's commands");
                let (input, output) = &mut *commands;
                writeln!(input, "create {name} {partitions}").expect("a command");
                input.flush().expect("a command");
                let mut answer = String::new();
                output.read_line(&mut answer).expect("an answer");
                assert_eq!(answer.trim(), "ok", "creating {name}");
                name
            }
        }
    }

    /// Deletes a topic (on the mock cluster, topics go with the broker).
    pub fn delete_topic(&self, name: &str) {
        if let Self::Tansu(broker) = self {
            broker.delete_topic(name);
        }
    }
}

impl Drop for MemoryBroker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `--worker mock-broker`: serves a one-broker mock cluster, prints its address, creates the
/// topics asked for on standard input (`create NAME PARTITIONS`, answered `ok`), and ends when
/// its input closes.
pub fn serve_mock_cluster() {
    let cluster = rdkafka::mocking::MockCluster::new(1).expect("a mock cluster");
    println!("{}", cluster.bootstrap_servers());
    for line in std::io::stdin().lines() {
        let line = line.expect("a command");
        let mut words = line.split_whitespace();
        match (words.next(), words.next(), words.next()) {
            (Some("create"), Some(name), Some(partitions)) => {
                let partitions = partitions.parse().expect("partitions");
                cluster
                    .create_topic(name, partitions, 1)
                    .expect("create the topic");
                println!("ok");
            }
            _ => panic!("unknown broker command {line:?}"),
        }
    }
}
