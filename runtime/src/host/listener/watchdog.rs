//! The stall watchdog: a listener whose partitions have lag while it commits nothing for
//! `host.stall.timeout.ms` (and is not paused) is marked STALLED and its run stopped, for the
//! supervisor to start it again. What it catches is what a person would otherwise find: a step
//! stuck on a frozen broker, a consumer that stopped fetching after a network blip.

use std::time::Duration;

use sluice_connector::listen::PartitionPosition;
use tokio::time::Instant;

use super::ListenerControl;
use crate::store::Metrics;

/// The longest one look at the partitions may take (their broker may be the frozen one).
const LOOK_TIMEOUT: Duration = Duration::from_secs(5);

/// Watches the current run of `control`'s listener; returns once it has found the listener
/// stalled and stopped the run (never, while the listener makes progress). A commit after a
/// stall's restart counts that stall as healed.
pub(crate) async fn watch(control: &ListenerControl, timeout: Duration, metrics: &Metrics) {
    let every = (timeout / 5).clamp(Duration::from_millis(100), Duration::from_secs(5));
    let mut quiet_since = Instant::now();
    let mut commits = None;
    // The partitions with lag at the last look that got an answer.
    let mut lagging: Vec<PartitionPosition> = Vec::new();
    loop {
        tokio::time::sleep(every).await;
        let Some(consumer) = control.consumer() else {
            // Not consuming yet (joining its group): nothing it could have committed.
            quiet_since = Instant::now();
            continue;
        };
        // Each run has its own consumer, whose count starts at 0.
        let now = consumer.commits();
        if commits.map_or(now > 0, |before| before != now) && control.committed() {
            metrics.stall_healed(&control.process);
            tracing::info!("stall healed: the listener commits again");
        }
        if commits != Some(now) {
            commits = Some(now);
            quiet_since = Instant::now();
        }
        // A look that fails (the brokers do not answer) keeps what the last one found.
        if let Ok(Ok(positions)) = tokio::time::timeout(LOOK_TIMEOUT, consumer.positions()).await {
            lagging = positions
                .into_iter()
                .filter(|p| p.lag.is_some_and(|lag| lag > 0))
                .collect();
        }
        if control.is_paused() || lagging.is_empty() {
            quiet_since = Instant::now();
            continue;
        }
        if quiet_since.elapsed() >= timeout {
            let partitions = lagging
                .iter()
                .map(|p| {
                    format!(
                        "{}/{} (committed {}, lag {})",
                        p.topic,
                        p.partition,
                        p.committed
                            .map_or_else(|| "nothing".into(), |c| c.to_string()),
                        p.lag.unwrap_or_default()
                    )
                })
                .collect::<Vec<_>>()
                .join(", ");
            tracing::error!(
                partitions = %partitions,
                stall_timeout_ms = timeout.as_millis() as u64,
                "listener stalled: lag, and no commit for host.stall.timeout.ms; restarting it"
            );
            metrics.stall(&control.process);
            control.stall(format!(
                "no commit for {} ms while these partitions have lag: {partitions}",
                timeout.as_millis()
            ));
            return;
        }
    }
}
