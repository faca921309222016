//! The host's handle on one listener: its status as the API and metrics report it, and the
//! switches the API turns (pause, resume, restart).

use std::collections::BTreeMap;
use std::sync::Arc;

use sluice_connector::consume::Consumed;

use sluice_connector::listen::{ListenConsumer, PartitionPosition};
use tokio_util::sync::CancellationToken;

use crate::failure::Failure;
use crate::host::execution::Host;

/// What a listener is doing, as the management API reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenerStatus {
    /// Connecting to the brokers and joining the group.
    Starting,
    /// Receiving and processing documents.
    Running,
    /// Holding its partitions without fetching (pause through the API; kept across restarts).
    Paused,
    /// Stopped on its own; the failure says why. A restart through the API starts it again.
    Failed(Failure),
    /// Stopped with the host.
    Stopped,
    /// The stall watchdog found it with lag but no commit for `host.stall.timeout.ms`; the
    /// text names the partitions. It starts again on the reconnect schedule.
    Stalled(String),
    /// Never started: its own components (the process, its operations, their connections)
    /// are invalid. Each entry is one located error, as `sluice validate` prints it.
    Invalid(Vec<String>),
}

impl ListenerStatus {
    /// Every state's name as the API and the metrics show them (UNASSIGNED: running, but the
    /// group gave this host no partition), so that each state's series exists from the start.
    pub const STATES: &'static [&'static str] = &[
        "STARTING",
        "RUNNING",
        "UNASSIGNED",
        "PAUSED",
        "FAILED",
        "STOPPED",
        "INVALID",
        "STALLED",
    ];

    /// The state's name as the API, the metrics and the console show it: a running listener
    /// that `holds_partitions` not is UNASSIGNED (the group gave this host none: more hosts
    /// than partitions, or a rebalance under way).
    pub fn shown(&self, holds_partitions: bool) -> &'static str {
        match self {
            Self::Running if !holds_partitions => "UNASSIGNED",
            other => other.state(),
        }
    }

    /// Kafka Connect's state names.
    pub fn state(&self) -> &'static str {
        match self {
            Self::Starting => "STARTING",
            Self::Running => "RUNNING",
            Self::Paused => "PAUSED",
            Self::Failed(_) => "FAILED",
            Self::Stopped => "STOPPED",
            Self::Invalid(_) => "INVALID",
            Self::Stalled(_) => "STALLED",
        }
    }
}

/// The host's handle on one listener: its status, and the switches the API turns.
pub struct ListenerControl {
    /// The process the listener runs.
    pub process: String,
    state: std::sync::Mutex<ControlState>,
    paused: tokio::sync::watch::Sender<bool>,
    restart: tokio::sync::Notify,
    /// A seek asked for through the API, for the listener to take up between two batches.
    pub(super) seek: std::sync::Mutex<Option<super::seek::PendingSeek>>,
}

pub(super) struct ControlState {
    status: ListenerStatus,
    pub(super) consumer: Option<ListenConsumer>,
    run: Option<CancellationToken>,
    restart_requested: bool,
    /// How many runs have begun (the first, then one per restart).
    runs: u32,
    /// Rebalances that took partitions from the consumers of runs that have ended.
    revocations_before: u64,
    /// Per (topic, partition), the highest offset any run of this listener has received:
    /// what arrives at or below it is a redelivery.
    highest_received: BTreeMap<(String, i32), i64>,
    /// The host whose components the listener runs: its next run starts with it.
    deployed: Option<Arc<Host>>,
    /// Why the version of the listener's components found at the last reload is not the one
    /// running (invalid, or it needs a restart of the host); empty when it is.
    not_deployed: Vec<String>,
    /// The watchdog stopped the current run: the supervisor starts it again on the reconnect
    /// schedule.
    stalled: bool,
    /// Stalls since the host started, and how many of them healed (the listener committed
    /// again after the restart).
    stalls: u32,
    stalls_healed: u32,
    /// A stall's restart has not committed anything yet.
    healing: bool,
    /// Rejoins in a row for partitions whose holder the broker would not name: each next one
    /// waits twice as long (another host may hold them paused, on purpose).
    blind_rejoins: u32,
}

impl ListenerControl {
    /// A control for the listener of `process`, paused or not from the start.
    pub fn new(process: &str, paused: bool) -> Arc<Self> {
        Arc::new(Self {
            process: process.to_string(),
            state: std::sync::Mutex::new(ControlState {
                status: ListenerStatus::Starting,
                consumer: None,
                run: None,
                restart_requested: false,
                runs: 0,
                revocations_before: 0,
                highest_received: BTreeMap::new(),
                deployed: None,
                not_deployed: Vec::new(),
                stalled: false,
                stalls: 0,
                stalls_healed: 0,
                healing: false,
                blind_rejoins: 0,
            }),
            paused: tokio::sync::watch::Sender::new(paused),
            restart: tokio::sync::Notify::new(),
            seek: std::sync::Mutex::new(None),
        })
    }

    pub(super) fn state(&self) -> std::sync::MutexGuard<'_, ControlState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// What the listener is doing now.
    pub fn status(&self) -> ListenerStatus {
        self.state().status.clone()
    }

    /// Marks what the listener is doing.
    pub fn set_status(&self, status: ListenerStatus) {
        self.state().status = status;
    }

    /// How often the listener was started again since the host started.
    pub fn restarts(&self) -> u32 {
        self.state().runs.saturating_sub(1)
    }

    /// How often the consumer group took partitions from this listener since the host
    /// started, not counting its own stops (a rebalance caused by another member: another
    /// host, or another listener of the same group).
    pub fn revocations(&self) -> u64 {
        let state = self.state();
        let current = state
            .consumer
            .as_ref()
            .map_or(0, ListenConsumer::revocations);
        state.revocations_before + current
    }

    /// The run that used `consumer` is over: its revocations are kept, before closing the
    /// consumer revokes its partitions once more.
    pub(super) fn end_run(&self, consumer: &ListenConsumer) {
        let mut state = self.state();
        state.consumer = None;
        state.revocations_before += consumer.revocations();
        drop(state);
        self.refuse_pending_seek();
    }

    /// A seek moved these partitions: what arrives there next is what the seek asked for, not
    /// a redelivery.
    pub(super) fn forget_received(&self, partitions: impl IntoIterator<Item = (String, i32)>) {
        let mut state = self.state();
        for key in partitions {
            state.highest_received.remove(&key);
        }
    }

    /// Of `batch`, how many messages this listener received before (a restart or rebalance
    /// delivers again what was not committed); remembers the rest.
    pub(super) fn redelivered(&self, batch: &[Consumed]) -> usize {
        let mut state = self.state();
        let mut again = 0;
        for message in batch {
            let (topic, partition, offset) = message.position();
            let key = (topic.to_string(), partition);
            match state.highest_received.get_mut(&key) {
                Some(highest) if offset <= *highest => again += 1,
                Some(highest) => *highest = offset,
                None => {
                    state.highest_received.insert(key, offset);
                }
            }
        }
        again
    }

    /// Gives the listener the host of its (new) definition: its next run uses it.
    pub fn deploy(&self, host: Arc<Host>) {
        self.state().deployed = Some(host);
    }

    /// The host whose components the listener runs, once one is deployed.
    pub fn deployed(&self) -> Option<Arc<Host>> {
        self.state().deployed.clone()
    }

    /// Why the listener's components as last loaded are not what runs (each a sentence);
    /// empty when they are.
    pub fn not_deployed(&self) -> Vec<String> {
        self.state().not_deployed.clone()
    }

    /// Records why the components last loaded are not what runs (empty: they are).
    pub fn set_not_deployed(&self, reasons: Vec<String>) {
        self.state().not_deployed = reasons;
    }

    /// The listener's consumer while it runs (for its partitions and lag).
    pub fn consumer(&self) -> Option<ListenConsumer> {
        self.state().consumer.clone()
    }

    /// Where the consumer stands on the partitions it holds, asked of the brokers; `None`
    /// while not consuming, or when the brokers did not answer.
    pub async fn positions(&self) -> Option<Vec<PartitionPosition>> {
        self.consumer()?.positions().await.ok()
    }

    /// Whether the listener is to hold off fetching.
    pub fn is_paused(&self) -> bool {
        *self.paused.borrow()
    }

    /// Pauses or resumes the listener (it reacts within a poll).
    pub fn set_paused(&self, paused: bool) {
        self.paused.send_replace(paused);
    }

    /// Stops the running listener (its work drains as on shutdown) and starts it again; a
    /// failed listener starts again.
    pub fn request_restart(&self) {
        let mut state = self.state();
        state.restart_requested = true;
        if let Some(run) = &state.run {
            run.cancel();
        }
        drop(state);
        // Wakes a failed listener's supervisor if it waits; otherwise the flag above is seen
        // when the cancelled run ends.
        self.restart.notify_waiters();
    }

    /// Hands out the token of the next run.
    pub fn begin_run(&self, token: CancellationToken) {
        let mut state = self.state();
        state.run = Some(token);
        state.restart_requested = false;
        state.runs += 1;
        // A stalled listener stays STALLED, with its reason, until the new run is running: a
        // restart that cannot reach the brokers is still the stall.
        if !matches!(state.status, ListenerStatus::Stalled(_)) {
            state.status = ListenerStatus::Starting;
        }
    }

    /// The watchdog's verdict: the listener is STALLED on `partitions`; its run is stopped
    /// (it drains as on shutdown) and the supervisor starts it again.
    pub(crate) fn stall(&self, partitions: String) {
        let mut state = self.state();
        state.status = ListenerStatus::Stalled(partitions);
        state.stalled = true;
        state.stalls += 1;
        state.healing = true;
        if let Some(run) = &state.run {
            run.cancel();
        }
    }

    /// Rejoins in a row for partitions whose holder the broker would not name.
    pub(crate) fn blind_rejoins(&self) -> u32 {
        self.state().blind_rejoins
    }

    /// Counts a rejoin for partitions whose holder the broker would not name, or (`false`)
    /// starts the count over: every partition with lag is held here again.
    pub(crate) fn blind_rejoin(&self, happened: bool) {
        let mut state = self.state();
        state.blind_rejoins = if happened {
            state.blind_rejoins.saturating_add(1)
        } else {
            0
        };
    }

    /// Whether the watchdog stopped the current run.
    pub(crate) fn stalling(&self) -> bool {
        self.state().stalled
    }

    /// Whether the watchdog stopped the run (and forgets it).
    pub(crate) fn take_stall(&self) -> bool {
        std::mem::take(&mut self.state().stalled)
    }

    /// The listener committed: a stall before it has healed. Returns whether this healed one.
    pub(crate) fn committed(&self) -> bool {
        let mut state = self.state();
        let healed = std::mem::take(&mut state.healing);
        if healed {
            state.stalls_healed += 1;
        }
        healed
    }

    /// Stalls since the host started, and how many healed after their restart.
    pub fn stalls(&self) -> (u32, u32) {
        let state = self.state();
        (state.stalls, state.stalls_healed)
    }

    /// Whether a restart was asked for since the run began (and forgets it).
    pub fn take_restart(&self) -> bool {
        std::mem::take(&mut self.state().restart_requested)
    }

    /// Waits for a restart request (returns at once if one is pending).
    pub async fn restart_requested(&self) {
        let notified = self.restart.notified();
        tokio::pin!(notified);
        // Registered before the flag is read, so a request in between is not missed.
        notified.as_mut().enable();
        if self.state().restart_requested {
            return;
        }
        notified.await;
    }
}

#[cfg(test)]
mod tests {
    use sluice_connector::consume::Consumed;
    use sluice_connector::ConsumedRecord;

    use super::ListenerControl;

    fn at(partition: i32, offsets: std::ops::Range<i64>) -> Vec<Consumed> {
        offsets
            .map(|offset| {
                Consumed::Record(ConsumedRecord {
                    topic: "orders".into(),
                    partition,
                    offset,
                    key: None,
                    payload: Vec::new(),
                    timestamp_ms: None,
                    headers: Vec::new(),
                })
            })
            .collect()
    }

    #[test]
    fn what_arrives_again_after_a_restart_counts_as_redelivered() {
        let control = ListenerControl::new("route", false);
        assert_eq!(control.redelivered(&at(0, 0..10)), 0);
        assert_eq!(control.redelivered(&at(1, 0..5)), 0);
        // A restart resumes partition 0 at its last commit, 6: offsets 6 to 9 come again.
        assert_eq!(control.redelivered(&at(0, 6..12)), 4);
        assert_eq!(control.redelivered(&at(0, 12..14)), 0);
        assert_eq!(control.redelivered(&at(1, 5..6)), 0);
    }
}
