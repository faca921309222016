//! What a soak found, judged and written as docs/SOAK.md: the configuration, each chaos event
//! with its time and the effect it had (an event without one fails the verdict: it was not
//! tested), the resource series, latency per minute, and the accounting of every message.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use crate::feed::{Seen, FAILING_EVERY};
use crate::plot::{Chart, Series};
use crate::CALIBRATION_STEP;

/// One look at a host, every 10 s.
pub struct Sample {
    pub at: Duration,
    pub host: &'static str,
    pub rss_kb: u64,
    pub fds: usize,
    pub threads: u64,
    pub records_waiting: f64,
    pub records_dropped: f64,
    pub bridge_lag: i64,
    /// Rows in the execution database (host 1's samples; `None`: locked, or another host's).
    pub rows: Option<i64>,
    /// Partitions assigned on this host to the bridge, failing and each listeners.
    pub partitions: [usize; 3],
    pub revocations: u64,
}

/// One look from outside the hosts, every 10 s: the broker process and each listener
/// group's lag per input partition (from the group's commits; `None`: no answer).
pub struct GroupSample {
    pub at: Duration,
    /// tansu's share of one core since the last look, %.
    pub broker_cpu: Option<f64>,
    pub broker_rss_kb: Option<u64>,
    pub lags: Vec<(&'static str, Vec<Option<i64>>)>,
}

/// One chaos event and what it did.
pub struct Event {
    pub at: Duration,
    /// When it happened, ms since the epoch.
    pub at_ms: i64,
    pub chaos: &'static str,
    pub detail: String,
    pub revocations_before: u64,
    pub effect: String,
    pub seen: bool,
}

/// Every message the broker took, accounted for downstream.
#[derive(Default)]
pub struct Accounting {
    pub sent: usize,
    /// Per output: (name, expected, distinct arrived, lost, duplicates).
    pub outputs: Vec<(&'static str, usize, usize, usize, u64)>,
    /// Failing listener: messages that should have been dead-lettered and went elsewhere, or
    /// the other way round.
    pub misrouted: usize,
    /// Acknowledged by the broker, then not in the input topic (the broker lost them).
    pub broker_lost: usize,
    /// Messages the feed's resends put into the input twice.
    pub input_duplicates: u64,
}

impl Accounting {
    pub fn of(sent: &[u64], bridge: &Seen, failing: &Seen, each: &Seen, dead: &Seen) -> Self {
        let mut outputs = Vec::new();
        let mut account = |name, seen: &Seen| {
            let lost = sent.iter().filter(|s| !seen.counts.contains_key(s)).count();
            let duplicates = seen.total() - seen.counts.len() as u64;
            outputs.push((name, sent.len(), seen.counts.len(), lost, duplicates));
        };
        account("bridge", bridge);
        account("each", each);
        let mut both = Seen::default();
        for (seq, n) in failing.counts.iter().chain(&dead.counts) {
            *both.counts.entry(*seq).or_default() += n;
        }
        account("failing + dead letters", &both);
        let misrouted = dead
            .counts
            .keys()
            .filter(|s| *s % FAILING_EVERY != FAILING_EVERY - 1)
            .count()
            + failing
                .counts
                .keys()
                .filter(|s| *s % FAILING_EVERY == FAILING_EVERY - 1)
                .count();
        Self {
            sent: sent.len(),
            outputs,
            misrouted,
            ..Self::default()
        }
    }

    fn lost(&self) -> usize {
        self.outputs.iter().map(|o| o.3).sum()
    }
}

pub struct Report {
    pub length: Duration,
    /// The rate calibration found sustained; `None` when `--rate` gave the soak's rate.
    pub sustained: Option<f64>,
    pub rate: f64,
    /// When the soak proper began, ms since the epoch (the calibration came before).
    pub began_ms: i64,
    pub samples: Vec<Sample>,
    pub events: Vec<Event>,
    pub accounting: Accounting,
    /// Send to arrival in the bridge's and the each listener's outputs, and in the input
    /// topic itself (the broker's share of every other latency).
    pub latencies: [(&'static str, Vec<(i64, f64)>); 3],
    pub group_samples: Vec<GroupSample>,
    /// Host 1's stall-watchdog restarts per listener at the end.
    pub stalls: [(&'static str, f64); 3],
    pub rows: i64,
    pub max_records: u64,
    pub failed_sends: u64,
    pub exit: Option<i32>,
    pub machine: String,
}

/// A host's resident memory (KiB), open file descriptors and threads.
type Level = (u64, usize, u64);

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn sorted(mut values: Vec<f64>) -> Vec<f64> {
    values.sort_by(f64::total_cmp);
    values
}

/// One minute of the soak by when its messages were sent.
struct LatencyMinute {
    minute: i64,
    /// (p50, p99) in ms for the input topic, the bridge's output and the each listener's.
    percentiles: [(f64, f64); 3],
    /// Messages sent in that minute that reached the bridge's output.
    messages: usize,
}

impl Report {
    /// The most rows any look found in the execution database.
    fn most_rows(&self) -> i64 {
        self.samples
            .iter()
            .filter_map(|s| s.rows)
            .max()
            .unwrap_or(0)
    }

    /// The samples of host 1 in `[from, to)`.
    fn first_host(&self, from: Duration, to: Duration) -> impl Iterator<Item = &Sample> {
        self.samples
            .iter()
            .filter(move |s| s.host == "host 1" && s.at >= from && s.at < to)
    }

    /// The bridge's latencies of messages sent in `[from_ms, to_ms)`.
    fn bridge_latencies(&self, from_ms: i64, to_ms: i64) -> Vec<f64> {
        sorted(
            self.latencies[0]
                .1
                .iter()
                .filter(|(sent, _)| (from_ms..to_ms).contains(sent))
                .map(|(_, l)| *l)
                .collect(),
        )
    }

    /// p50 and p99 per minute sent, for the table and the chart.
    fn latency_minutes(&self) -> Vec<LatencyMinute> {
        let per_minute = |arrivals: &[(i64, f64)]| -> BTreeMap<i64, Vec<f64>> {
            let mut minutes: BTreeMap<i64, Vec<f64>> = BTreeMap::new();
            for (sent, latency) in arrivals {
                if *sent >= self.began_ms {
                    minutes
                        .entry((sent - self.began_ms) / 60_000)
                        .or_default()
                        .push(*latency);
                }
            }
            minutes
        };
        let bridge = per_minute(&self.latencies[0].1);
        let each = per_minute(&self.latencies[1].1);
        let input = per_minute(&self.latencies[2].1);
        let of = |minutes: &BTreeMap<i64, Vec<f64>>, minute| {
            let values = sorted(minutes.get(minute).cloned().unwrap_or_default());
            (percentile(&values, 0.5), percentile(&values, 0.99))
        };
        bridge
            .iter()
            .map(|(minute, values)| LatencyMinute {
                minute: *minute,
                percentiles: [of(&input, minute), of(&bridge, minute), of(&each, minute)],
                messages: values.len(),
            })
            .collect()
    }

    /// The charts beside docs/SOAK.md: (file name, SVG).
    pub fn plots(&self) -> Vec<(&'static str, String)> {
        let marks: Vec<(f64, String)> = self
            .events
            .iter()
            .map(|e| (e.at.as_secs_f64() / 60.0, e.chaos.to_string()))
            .collect();
        let minutes = self.latency_minutes();
        let mut latency = Vec::new();
        for (i, (name, colour)) in [
            ("input", "#777777"),
            ("bridge", "#1f6fb4"),
            ("each", "#d9730d"),
        ]
        .into_iter()
        .enumerate()
        {
            for (dashed, quantile) in [(false, "p50"), (true, "p99")] {
                latency.push(Series {
                    name: format!("{name} {quantile}"),
                    colour,
                    dashed,
                    points: minutes
                        .iter()
                        .map(|m| {
                            let (p50, p99) = m.percentiles[i];
                            // At the middle of its minute.
                            (m.minute as f64 + 0.5, if dashed { p99 } else { p50 })
                        })
                        .collect(),
                });
            }
        }
        let host = |name: &str, what: fn(&Sample) -> f64| -> Vec<(f64, f64)> {
            self.samples
                .iter()
                .filter(|s| s.host == name)
                .map(|s| (s.at.as_secs_f64() / 60.0, what(s)))
                .collect()
        };
        let memory = vec![Series {
            name: "host 1 RSS".into(),
            colour: "#1f6fb4",
            dashed: false,
            points: host("host 1", |s| s.rss_kb as f64 / 1024.0),
        }];
        let handles = vec![
            Series {
                name: "host 1 file descriptors".into(),
                colour: "#1f6fb4",
                dashed: false,
                points: host("host 1", |s| s.fds as f64),
            },
            Series {
                name: "host 1 threads".into(),
                colour: "#d9730d",
                dashed: false,
                points: host("host 1", |s| s.threads as f64),
            },
        ];
        let chart = |title: String, y_label, log_y, series| Chart {
            title,
            x_label: "minutes into the soak",
            y_label,
            log_y,
            series,
            marks: marks.clone(),
        };
        vec![
            (
                "soak-latency.svg",
                chart(
                    "Send to output per minute sent (p50 solid, p99 dashed)".into(),
                    "latency",
                    true,
                    latency,
                )
                .svg(),
            ),
            (
                "soak-memory.svg",
                chart("Host 1 resident memory".into(), "MB", false, memory).svg(),
            ),
            (
                "soak-handles.svg",
                chart(
                    "Host 1 file descriptors and threads".into(),
                    "count",
                    false,
                    handles,
                )
                .svg(),
            ),
        ]
    }

    /// Looks for each event's effect in the figures.
    pub fn judge_events(&mut self) {
        // The baseline: the bridge's latency before the first event, after a warm-up (the
        // first seconds still carry the calibration's tail: a p99 of 16 s in the third soak).
        let first_event_ms = self.events.first().map_or(i64::MAX, |e| e.at_ms);
        let baseline = percentile(
            &self.bridge_latencies(self.began_ms + 30_000, first_event_ms),
            0.99,
        );
        let window = Duration::from_secs(60);
        let mut effects = Vec::new();
        for (i, event) in self.events.iter().enumerate() {
            let until = self
                .events
                .get(i + 1)
                .map_or(event.at + window, |next| next.at.min(event.at + window));
            let after: Vec<&Sample> = self.first_host(event.at, event.at + window).collect();
            let (effect, seen) = match event.chaos {
                "KillBroker" => {
                    let delayed = self.bridge_latencies(event.at_ms - 1000, event.at_ms + 10_000);
                    let worst = delayed.last().copied().unwrap_or(0.0);
                    (
                        format!(
                            "messages sent around it reached the bridge's output after up to {worst:.0} ms (p99 before the first event: {baseline:.0} ms)"
                        ),
                        worst > (2.0 * baseline).max(1000.0),
                    )
                }
                "SecondHostJoins" | "SecondHostTerm" | "SecondHostKill" => {
                    let most = after.iter().map(|s| s.revocations).max().unwrap_or(0);
                    (
                        format!(
                            "host 1's listeners lost partitions to rebalances: revocations {} → {most}",
                            event.revocations_before
                        ),
                        most > event.revocations_before,
                    )
                }
                "PauseBridge" => {
                    let during: Vec<&Sample> = self.first_host(event.at, until).collect();
                    let lag = during.iter().map(|s| s.bridge_lag).max().unwrap_or(0);
                    (
                        format!("the bridge's lag grew to {lag} while paused"),
                        lag > 0,
                    )
                }
                "ResumeBridge" => {
                    // The lag the pause built up, against the lowest within a minute after.
                    let paused_at = i
                        .checked_sub(1)
                        .map_or(Duration::ZERO, |p| self.events[p].at);
                    let peak = self
                        .first_host(paused_at, event.at + Duration::from_secs(10))
                        .map(|s| s.bridge_lag)
                        .max()
                        .unwrap_or(0);
                    let low = after.iter().map(|s| s.bridge_lag).min().unwrap_or(i64::MAX);
                    (
                        format!("the bridge's lag went from {peak} (paused) down to {low} within a minute"),
                        peak > 0 && low < peak / 2,
                    )
                }
                "LockDatabase" => {
                    let during: Vec<&Sample> = self
                        .first_host(
                            event.at,
                            event.at + Duration::from_secs(crate::LOCK_SECONDS),
                        )
                        .collect();
                    let waiting = during.iter().map(|s| s.records_waiting).fold(0.0, f64::max);
                    let later: Vec<&Sample> = self
                        .first_host(
                            event.at + Duration::from_secs(crate::LOCK_SECONDS + 20),
                            self.length + Duration::from_secs(3600),
                        )
                        .collect();
                    let after_lock = later.first().map_or(-1.0, |s| s.records_waiting);
                    let dropped = self
                        .samples
                        .iter()
                        .map(|s| s.records_dropped)
                        .fold(0.0, f64::max);
                    (
                        format!(
                            "up to {waiting:.0} execution records waited in memory; {after_lock:.0} waiting 20 s after the lock went; {dropped:.0} dropped"
                        ),
                        // Back to the few records a write has in hand at any moment.
                        waiting > 0.0 && after_lock >= 0.0 && after_lock < waiting / 10.0,
                    )
                }
                _ => (String::new(), false),
            };
            effects.push((effect, seen));
        }
        for (event, (effect, seen)) in self.events.iter_mut().zip(effects) {
            event.effect = effect;
            event.seen = seen;
        }
    }

    /// When host 1 first saw the execution database hold its row bound: the end of the
    /// memory's warm-up. Until then SQLite's page cache grows with the database (a heap
    /// profile of a soak showed it rising to 2 MB, SQLite's default bound, while everything
    /// else stayed level).
    fn database_full_at(&self) -> Option<Duration> {
        self.first_host(Duration::ZERO, self.length)
            .find(|s| s.rows.is_some_and(|r| r >= self.max_records as i64))
            .map(|s| s.at)
    }

    /// Resident memory, descriptors and threads of host 1 after the warm-up: (baseline, end).
    /// Descriptors and threads are level from the first seconds, so their baseline is before
    /// the first event; resident memory's is the minute after the execution database first
    /// held its row bound (before the first event when it never did).
    fn levels(&self) -> Option<(Level, Level)> {
        let first_event = self.events.first()?.at;
        let warm: Vec<&Sample> = self
            .first_host(Duration::from_secs(20), first_event)
            .collect();
        let memory_warm: Vec<&Sample> = match self.database_full_at() {
            Some(full) => self
                .first_host(full, full + Duration::from_secs(60))
                .collect(),
            None => warm.clone(),
        };
        let all: Vec<&Sample> = self.first_host(Duration::ZERO, self.length * 2).collect();
        let end = &all[all.len().saturating_sub(5)..];
        let median = |samples: &[&Sample], f: &dyn Fn(&Sample) -> u64| -> u64 {
            let mut v: Vec<u64> = samples.iter().map(|s| f(s)).collect();
            v.sort_unstable();
            v.get(v.len() / 2).copied().unwrap_or(0)
        };
        if warm.is_empty() || memory_warm.is_empty() || end.is_empty() {
            return None;
        }
        Some((
            (
                median(&memory_warm, &|s| s.rss_kb),
                median(&warm, &|s| s.fds as u64) as usize,
                median(&warm, &|s| s.threads),
            ),
            (
                median(end, &|s| s.rss_kb),
                median(end, &|s| s.fds as u64) as usize,
                median(end, &|s| s.threads),
            ),
        ))
    }

    /// Each check of the verdict: (what, passed).
    fn checks(&self) -> Vec<(String, bool)> {
        let mut checks = vec![(
            format!(
                "no message missing at the end (lost, or not through 5 min after the feed \
                 stopped): {} missing over {} outputs",
                self.accounting.lost(),
                self.accounting.outputs.len()
            ),
            self.accounting.lost() == 0 && self.accounting.sent > 0,
        )];
        checks.push((
            format!(
                "every 50th message dead-lettered, no other: {} misrouted",
                self.accounting.misrouted
            ),
            self.accounting.misrouted == 0,
        ));
        for event in &self.events {
            checks.push((
                format!("{} at {} s had an effect", event.chaos, event.at.as_secs()),
                event.seen,
            ));
        }
        match self.levels() {
            Some(((rss0, fds0, threads0), (rss1, fds1, threads1))) => {
                let ratio = rss1 as f64 / rss0.max(1) as f64;
                checks.push((
                    format!(
                        "resident memory flat after the warm-up ({}): {:.1} → {:.1} MB ({:+.0} %)",
                        match self.database_full_at() {
                            Some(at) => format!(
                                "until the execution database first held its {} rows, at {} s",
                                self.max_records,
                                at.as_secs()
                            ),
                            None => "the execution database never held its row bound: \
                                     until the first event"
                                .to_string(),
                        },
                        rss0 as f64 / 1024.0,
                        rss1 as f64 / 1024.0,
                        (ratio - 1.0) * 100.0
                    ),
                    (0.9..=1.1).contains(&ratio),
                ));
                checks.push((
                    format!("file descriptors back to their level: {fds0} → {fds1}"),
                    fds1 <= fds0 + fds0 / 10 + 2,
                ));
                // After each event: some look before the next one (or the end) at the level.
                // A leak stays up in every later look; a listener being made again at the one
                // look before a next event that came soon is not a leak.
                let back = |level: u64, now: u64| now <= level + level / 10 + 2;
                let unsettled: Vec<String> = self
                    .events
                    .iter()
                    .enumerate()
                    .filter_map(|(i, event)| {
                        let next = self.events.get(i + 1).map_or(self.length, |n| n.at);
                        let settled = |s: &&Sample| {
                            back(fds0 as u64, s.fds as u64) && back(threads0, s.threads)
                        };
                        let looks: Vec<&Sample> = self.first_host(event.at, next).collect();
                        let last = looks.last()?;
                        (!looks.iter().any(settled)).then(|| {
                            format!(
                                "{} at {} s: {} FDs, {} threads",
                                event.chaos,
                                event.at.as_secs(),
                                last.fds,
                                last.threads
                            )
                        })
                    })
                    .collect();
                checks.push((
                    if unsettled.is_empty() {
                        "file descriptors and threads back to their level before each next event"
                            .to_string()
                    } else {
                        format!("not back to their level: {}", unsettled.join("; "))
                    },
                    unsettled.is_empty(),
                ));
                checks.push((
                    format!("threads back to their level: {threads0} → {threads1}"),
                    threads1 <= threads0 + threads0 / 10 + 2,
                ));
            }
            None => checks.push(("resource levels: too few samples".into(), false)),
        }
        checks.push((
            format!(
                "execution records within their bound: {} rows at the end, at most {} in any \
                 look, bound {}",
                self.rows,
                self.most_rows(),
                self.max_records
            ),
            (0..=self.max_records as i64).contains(&self.rows)
                && self.most_rows() <= self.max_records as i64,
        ));
        checks.push((
            format!("host 1 stopped cleanly: exit status {:?}", self.exit),
            self.exit == Some(0),
        ));
        checks
    }

    pub fn passed(&self) -> bool {
        self.checks().iter().all(|(_, ok)| *ok)
    }

    pub fn verdict(&self) -> &'static str {
        if self.passed() {
            "PASS"
        } else {
            "FAIL"
        }
    }

    pub fn markdown(&self) -> String {
        let mut md = String::new();
        let _ = writeln!(
            md,
            "# Soak: {} minutes of service under chaos\n",
            self.length.as_secs() / 60
        );
        let _ = writeln!(
            md,
            "Written by `./dev soak --minutes {}` ({}). Verdict: **{}**.\n",
            self.length.as_secs_f64() / 60.0,
            self.machine,
            self.verdict()
        );
        md.push_str("## Configuration\n\n");
        let _ = writeln!(
            md,
            "- `sluice serve` (host 1) with three listeners on one input topic of 3 partitions, each in its own consumer group: **bridge** (to a topic), **failing** (routed by a header; every {FAILING_EVERY}th message names a topic that does not exist, fails, is retried once and dead-lettered), **each** (`execution-per=document`). Session timeout 6 s; container properties `host.executions.max.records={}`, `host.reconnect.backoff.ms=1000,2000,5000`.",
            self.max_records
        );
        md.push_str("- tansu 0.6.0 with sqlite storage. An independent producer sends numbered messages, one per batch, no compression; independent readers account for them in the outputs and time their arrival (the reader's clock, fetches answered within 100 ms).\n");
        let _ = match self.sustained {
            Some(sustained) => writeln!(
                md,
                "- Calibration: steady rates from 10/s, doubling, {CALIBRATION_STEP:.0} s each; all three listeners kept up with **{sustained:.0} messages/s**. The soak sends at a quarter of that, **{:.0}/s** (tansu's sqlite storage slows as it grows: at half, the broker alone saturated a core within 5 minutes).",
                self.rate
            ),
            None => writeln!(
                md,
                "- No calibration: the soak sent at **{:.0}/s**, given with `--rate`.",
                self.rate
            ),
        };
        let _ = writeln!(
            md,
            "- The producer's deliveries that failed (not Sluice's): {}.\n",
            self.failed_sends
        );
        md.push_str("## Verdict\n\n| check | passed |\n| --- | --- |\n");
        for (what, ok) in self.checks() {
            let _ = writeln!(md, "| {what} | {} |", if ok { "yes" } else { "**no**" });
        }
        md.push_str("\n## Chaos events\n\n| at (s) | event | what | effect | seen |\n| ---: | --- | --- | --- | --- |\n");
        for e in &self.events {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} |",
                e.at.as_secs(),
                e.chaos,
                e.detail,
                e.effect,
                if e.seen { "yes" } else { "**no**" }
            );
        }
        md.push_str("\n## Accounting\n\n| output | expected | arrived (distinct) | missing | duplicates |\n| --- | ---: | ---: | ---: | ---: |\n");
        for (name, expected, distinct, lost, duplicates) in &self.accounting.outputs {
            let _ = writeln!(
                md,
                "| {name} | {expected} | {distinct} | {lost} | {duplicates} |"
            );
        }
        let _ = writeln!(
            md,
            "\nExpected: the distinct messages the input topic holds at the end. Acknowledged by tansu but not in the input (lost by the broker on a SIGKILL, not by Sluice): {}. Put into the input twice by the feed's resends: {}.",
            self.accounting.broker_lost, self.accounting.input_duplicates
        );
        let _ = writeln!(
            md,
            "\nThe stall watchdog restarted host 1's listeners (a stuck partition of its own, or a rejoin for partitions no member of the group held): {}.",
            self.stalls
                .iter()
                .map(|(l, n)| format!("{l} {n:.0}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        md.push_str("\nDuplicates are at-least-once at work: documents processed but not committed when a host was killed, a broker went away mid-commit or a rebalance moved a partition are delivered again.\n");
        md.push_str("\n## Latency per minute (send to output)\n\nBy the minute the message was sent in. *input*: from send until the independent reader sees it in the input topic, which is the broker's share of the others. The dotted lines are the chaos events.\n\n![Latency per minute: p50 and p99 of the input, bridge and each outputs, log scale](soak-latency.svg)\n\n| minute | input p50 ms | input p99 ms | bridge p50 ms | bridge p99 ms | each p50 ms | each p99 ms | messages |\n| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
        for m in self.latency_minutes() {
            let [(input_50, input_99), (bridge_50, bridge_99), (each_50, each_99)] = m.percentiles;
            let _ = writeln!(
                md,
                "| {} | {input_50:.0} | {input_99:.0} | {bridge_50:.0} | {bridge_99:.0} | {each_50:.0} | {each_99:.0} | {} |",
                m.minute, m.messages
            );
        }
        md.push_str("\n## Resources, every 10 s\n\n![Host 1's resident memory over the soak](soak-memory.svg)\n\n![Host 1's open file descriptors and threads over the soak](soak-handles.svg)\n\n*partitions*: assigned on that host to the bridge / failing / each listeners.\n\n| at (s) | host | RSS MB | FDs | threads | records waiting | execution rows | bridge lag | partitions | revocations |\n| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |\n");
        for s in &self.samples {
            let [b, f, e] = s.partitions;
            let _ = writeln!(
                md,
                "| {} | {} | {:.1} | {} | {} | {:.0} | {} | {} | {b} / {f} / {e} | {} |",
                s.at.as_secs(),
                s.host,
                s.rss_kb as f64 / 1024.0,
                s.fds,
                s.threads,
                s.records_waiting,
                s.rows.map_or_else(|| "—".to_string(), |r| r.to_string()),
                s.bridge_lag,
                s.revocations
            );
        }
        md.push_str("\n## The broker and the groups, every 10 s\n\nFrom outside the hosts: tansu's CPU (share of one core) and memory, and each listener group's lag on input partitions 0, 1 and 2, from what the group has committed (`?`: the broker did not answer).\n\n| at (s) | tansu CPU % | tansu RSS MB | bridge lag | failing lag | each lag |\n| ---: | ---: | ---: | --- | --- | --- |\n");
        for g in &self.group_samples {
            let lags = |listener: &str| {
                g.lags
                    .iter()
                    .find(|(l, _)| *l == listener)
                    .map_or_else(String::new, |(_, lags)| {
                        lags.iter()
                            .map(|l| l.map_or_else(|| "?".to_string(), |l| l.to_string()))
                            .collect::<Vec<_>>()
                            .join(" / ")
                    })
            };
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} |",
                g.at.as_secs(),
                g.broker_cpu
                    .map_or_else(|| "-".into(), |c| format!("{c:.0}")),
                g.broker_rss_kb
                    .map_or_else(|| "-".into(), |r| format!("{:.1}", r as f64 / 1024.0)),
                lags("bridge"),
                lags("failing"),
                lags("each"),
            );
        }
        md
    }
}
