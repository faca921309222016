//! The soak's view from outside the hosts: what each listener's consumer group has committed
//! on every input partition against the partition's end, and what the broker process costs.
//! A partition whose lag grows while its committed offset stands still is one that no member
//! reads, whoever the group thinks holds it.

use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};

/// How long one look may wait for the broker (it may be the one just killed).
const LOOK: Duration = Duration::from_secs(2);

/// Asks the broker for the groups' commits and the input's ends; lenient: a broker that does
/// not answer gives `None`.
pub struct GroupProbe {
    groups: Vec<(&'static str, BaseConsumer)>,
    topic: String,
    partitions: i32,
}

impl GroupProbe {
    /// `groups`: (listener, consumer group) pairs.
    pub fn new(
        bootstrap: &str,
        topic: &str,
        partitions: i32,
        groups: &[(&'static str, String)],
    ) -> Self {
        let groups = groups
            .iter()
            .map(|(listener, group)| {
                let consumer: BaseConsumer = ClientConfig::new()
                    .set("bootstrap.servers", bootstrap)
                    // Only to read this group's commits: never subscribes, never commits.
                    .set("group.id", group)
                    .set("enable.auto.commit", "false")
                    .create()
                    .expect("a probe consumer");
                (*listener, consumer)
            })
            .collect();
        Self {
            groups,
            topic: topic.to_string(),
            partitions,
        }
    }

    /// Each group's lag per partition (end minus committed; the end when nothing is
    /// committed), `None` for a partition the broker did not answer about.
    pub fn lags(&self) -> Vec<(&'static str, Vec<Option<i64>>)> {
        let Some((_, probe)) = self.groups.first() else {
            return Vec::new();
        };
        let ends: Vec<Option<i64>> = (0..self.partitions)
            .map(|p| {
                probe
                    .fetch_watermarks(&self.topic, p, LOOK)
                    .ok()
                    .map(|(_, high)| high)
            })
            .collect();
        let mut list = TopicPartitionList::new();
        for p in 0..self.partitions {
            list.add_partition(&self.topic, p);
        }
        self.groups
            .iter()
            .map(|(listener, consumer)| {
                let committed = consumer.committed_offsets(list.clone(), LOOK).ok();
                let lags = (0..self.partitions)
                    .map(|p| {
                        let end = ends[p as usize]?;
                        let committed = committed.as_ref()?.find_partition(&self.topic, p)?;
                        Some(match committed.offset() {
                            Offset::Offset(c) => (end - c).max(0),
                            _ => end,
                        })
                    })
                    .collect();
                (*listener, lags)
            })
            .collect()
    }
}

/// A process's CPU time from /proc, to turn into a share of one core between two looks.
pub struct CpuClock {
    pid: u32,
    last: Option<(Instant, f64)>,
}

impl CpuClock {
    pub fn new(pid: u32) -> Self {
        Self { pid, last: None }
    }

    /// Follows a process that was started again.
    pub fn follow(&mut self, pid: u32) {
        if pid != self.pid {
            self.pid = pid;
            self.last = None;
        }
    }

    /// The share of one core (%) the process used since the last call; `None` the first time.
    pub fn percent(&mut self) -> Option<f64> {
        let seconds = cpu_seconds(self.pid)?;
        let now = Instant::now();
        let share = self.last.map(|(then, before)| {
            (seconds - before) / now.duration_since(then).as_secs_f64().max(0.001) * 100.0
        });
        self.last = Some((now, seconds));
        share
    }
}

/// User plus system CPU time of a process, in seconds (clock ticks of 1/100 s on Linux).
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

/// Resident memory of a process, KiB.
pub fn rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}
