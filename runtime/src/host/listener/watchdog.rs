//! The stall watchdog. It judges each partition of the listener's topics on its own: a
//! partition with lag whose group commit has not moved for `host.stall.timeout.ms` is stuck.
//! - Held here (and the listener not paused): this host's run is stuck on it (a step waiting
//!   on a frozen broker, a consumer that stopped fetching). The run is stopped, marked
//!   STALLED, and started again.
//! - Held by no member of the group: no one reads it. Seen on tansu 0.6.0, whose coordinator
//!   drops a member that died (its session ended) without forming the group again, so the
//!   dead member's partitions go to no one. This host rejoins the group the same way (stop,
//!   STALLED, start again), and the group forms anew and assigns every partition.
//! - Held by another member: that member's own watchdog judges it (it may be paused on
//!   purpose). This host only warns, once per timeout, naming the partitions.
//! - The broker does not say who holds it (tansu 0.6.0 describes groups without assignments,
//!   or not at all with sqlite storage): this host rejoins as for no one, but each rejoin in a
//!   row waits twice as long as the last (up to four timeouts), so that a host that holds them
//!   paused costs few rebalances.
//!
//! Who holds a partition is asked of the group (DescribeGroups) only when one not held here
//! is stuck, at most once per timeout.
//!
//! Judging each partition, not the listener's commits as a whole, catches one stuck partition
//! beside others that move.

use std::collections::HashMap;
use std::time::Duration;

use sluice_connector::consume::OffsetReset;
use sluice_connector::listen::{GroupPosition, Holder};
use tokio::time::Instant;

use super::ListenerControl;
use crate::store::Metrics;

/// The longest one look at the group may take (its brokers may be the frozen ones).
const LOOK_TIMEOUT: Duration = Duration::from_secs(15);

/// Blind rejoins (the broker does not say who holds the partitions) in a row wait the stall
/// timeout, twice it, then four times it at most: with the default 5 min, a host that holds
/// partitions paused costs a rebalance every 20 min, and partitions no one holds wait no
/// longer than that to be taken up.
const MAX_DOUBLINGS: u32 = 2;

/// What the watchdog knows of one partition.
struct Watched {
    position: GroupPosition,
    /// Since when the partition has had lag under the same commit.
    since: Instant,
    /// The partition's end when `since` was set: without a commit and with offset-reset
    /// latest, only what arrived after that is unread.
    end_then: Option<i64>,
}

impl Watched {
    /// What is unread: from the commit, or (none, latest) what arrived since the clock began.
    fn lag(&self, reset: OffsetReset) -> i64 {
        match (self.position.committed, reset) {
            (None, OffsetReset::Latest) => {
                (self.position.end.unwrap_or(0) - self.end_then.unwrap_or(0)).max(0)
            }
            _ => self.position.lag.unwrap_or(0),
        }
    }
}

/// Watches the current run of `control`'s listener; returns once it has found a stuck
/// partition and stopped the run (never, while every partition with lag makes progress). A
/// commit after a stall's restart counts that stall as healed.
pub(crate) async fn watch(control: &ListenerControl, timeout: Duration, metrics: &Metrics) {
    let every = (timeout / 5).clamp(Duration::from_millis(100), Duration::from_secs(5));
    let mut commits = None;
    let mut watched: HashMap<(String, i32), Watched> = HashMap::new();
    // When partitions held elsewhere were last warned about, and the group last asked who
    // holds them.
    let mut warned: Option<Instant> = None;
    let mut asked: Option<Instant> = None;
    loop {
        tokio::time::sleep(every).await;
        let Some(consumer) = control.consumer() else {
            // Not consuming yet (joining its group): nothing it could have committed.
            watched.clear();
            continue;
        };
        // Each run has its own consumer, whose count starts at 0.
        let now = consumer.commits();
        if commits.map_or(now > 0, |before| before != now) && control.committed() {
            metrics.stall_healed(&control.process);
            tracing::info!("stall healed: the listener commits again");
        }
        commits = Some(now);
        let reset = consumer.settings().offset_reset;
        let paused = control.is_paused();
        // A look that fails (the brokers do not answer) keeps what the last one found, and
        // the clocks run on.
        if let Ok(Ok(positions)) =
            tokio::time::timeout(LOOK_TIMEOUT, consumer.group_positions()).await
        {
            look(&mut watched, positions);
        }
        if paused {
            // Lag that waits on purpose: every clock starts again at the resume.
            for w in watched.values_mut() {
                w.since = Instant::now();
                w.end_then = w.position.end;
            }
            continue;
        }
        // Every partition with lag is held here: the blind rejoins (below) start over.
        if watched
            .values()
            .all(|w| w.position.holder == Holder::Here || w.lag(reset) == 0)
        {
            control.blind_rejoin(false);
        }
        let stuck_for =
            |w: &Watched, threshold: Duration| w.lag(reset) > 0 && w.since.elapsed() >= threshold;
        // Partitions held elsewhere: the group says who holds them only when asked.
        let elsewhere: Vec<(String, i32)> = watched
            .values()
            .filter(|w| w.position.holder != Holder::Here && stuck_for(w, timeout))
            .map(|w| (w.position.topic.clone(), w.position.partition))
            .collect();
        if !elsewhere.is_empty() && asked.is_none_or(|at: Instant| at.elapsed() >= timeout) {
            asked = Some(Instant::now());
            let holders = consumer.holders(elsewhere.clone()).await;
            for (key, holder) in elsewhere.into_iter().zip(holders) {
                if let Some(w) = watched.get_mut(&key) {
                    w.position.holder = holder;
                }
            }
        }
        // Not named by the broker: rejoin after the timeout, then after twice as long each
        // time in a row, so that a host that holds them paused costs few rebalances.
        let blind = timeout.saturating_mul(1 << control.blind_rejoins().min(MAX_DOUBLINGS));
        let mut stuck: Vec<&Watched> = watched
            .values()
            .filter(|w| match w.position.holder {
                Holder::Here | Holder::Nobody | Holder::Elsewhere => stuck_for(w, timeout),
                Holder::Unknown => stuck_for(w, blind),
            })
            .collect();
        stuck.sort_by(|a, b| {
            let key = |w: &Watched| (w.position.topic.clone(), w.position.partition);
            key(a).cmp(&key(b))
        });
        let shown = |holders: &[Holder]| {
            stuck
                .iter()
                .filter(|w| holders.contains(&w.position.holder))
                .map(|w| {
                    format!(
                        "{}/{} (committed {}, lag {})",
                        w.position.topic,
                        w.position.partition,
                        w.position
                            .committed
                            .map_or_else(|| "nothing".into(), |c| c.to_string()),
                        w.lag(reset)
                    )
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        let (here, nobody) = (shown(&[Holder::Here]), shown(&[Holder::Nobody]));
        let (others, unknown) = (shown(&[Holder::Elsewhere]), shown(&[Holder::Unknown]));
        if !others.is_empty() && warned.is_none_or(|at: Instant| at.elapsed() >= timeout) {
            warned = Some(Instant::now());
            tracing::warn!(
                partitions = %others,
                stall_timeout_ms = timeout.as_millis() as u64,
                "partitions held by another member of the group have lag and no commit for \
                 host.stall.timeout.ms; look at the other hosts that run this listener"
            );
        }
        if here.is_empty() && nobody.is_empty() && unknown.is_empty() {
            continue;
        }
        let mut reasons = Vec::new();
        if !here.is_empty() {
            reasons.push(format!(
                "no commit for {} ms while these partitions have lag: {here}",
                timeout.as_millis()
            ));
        }
        if !nobody.is_empty() {
            reasons.push(format!(
                "no member of the group holds these partitions, which have lag and no commit \
                 for {} ms: {nobody}; rejoining the group so that it assigns them again",
                timeout.as_millis()
            ));
        }
        if !unknown.is_empty() {
            control.blind_rejoin(true);
            reasons.push(format!(
                "no member on this host holds these partitions, which have lag and no commit \
                 for {} ms, and the broker does not say who does: {unknown}; rejoining the \
                 group in case no one does (the next time after {} ms: another host may hold \
                 them paused)",
                blind.as_millis(),
                timeout
                    .saturating_mul(1 << control.blind_rejoins().min(MAX_DOUBLINGS))
                    .as_millis()
            ));
        }
        let reason = reasons.join("; ");
        tracing::error!(
            %reason,
            stall_timeout_ms = timeout.as_millis() as u64,
            "listener stalled: partitions with lag and no commit for host.stall.timeout.ms; restarting it"
        );
        metrics.stall(&control.process);
        control.stall(reason);
        return;
    }
}

/// Takes in one look at the group: a partition's clock starts again when its commit moves,
/// when it has no lag, and when it moves to or from this host.
fn look(watched: &mut HashMap<(String, i32), Watched>, positions: Vec<GroupPosition>) {
    let now = Instant::now();
    let mut seen = Vec::with_capacity(positions.len());
    for position in positions {
        let key = (position.topic.clone(), position.partition);
        seen.push(key.clone());
        let here = |p: &GroupPosition| p.holder == Holder::Here;
        match watched.get_mut(&key) {
            Some(w) => {
                let moved = w.position.committed != position.committed
                    || here(&w.position) != here(&position);
                if moved || position.lag == Some(0) {
                    w.since = now;
                    w.end_then = position.end;
                }
                // Who holds it elsewhere is what the group said when last asked.
                let holder = if here(&position) || here(&w.position) {
                    position.holder
                } else {
                    w.position.holder
                };
                w.position = GroupPosition { holder, ..position };
            }
            None => {
                watched.insert(
                    key,
                    Watched {
                        end_then: position.end,
                        position,
                        since: now,
                    },
                );
            }
        }
    }
    watched.retain(|key, _| seen.contains(key));
}
