//! Live seek: the API asks a running listener to move its partitions; the listener does it
//! between two batches — the point where nothing it received is in flight and everything
//! finished is committed — then fetches from the new positions. Its member never leaves the
//! group, so no rebalance disturbs the other hosts.

use std::time::Duration;

use tokio::time::Instant;

use sluice_connector::listen::{SeekMove, SeekTarget};
use sluice_connector::ErrorKind;
use tokio::sync::oneshot;

use super::{ListenerControl, ListenerStatus};
use crate::advice::UserMessage as _;

/// How long a seek may wait for the listener to reach the point between two batches.
const REACH_TIMEOUT: Duration = Duration::from_secs(60);

/// How long a seek waits for the group to give a listener that has just joined its partitions.
const ASSIGNMENT_WAIT: Duration = Duration::from_secs(15);

/// A seek asked for and not yet taken up by the listener.
pub(crate) struct PendingSeek {
    asked: Instant,
    target: SeekTarget,
    reply: oneshot::Sender<Result<Vec<SeekMove>, SeekRefused>>,
}

/// Why a seek moved nothing (or, for a failure after its commit, what the listener does next).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SeekRefused {
    /// The listener is not running (no consumer to move the group with), in this state.
    NotRunning(&'static str),
    /// Another seek of the same listener is under way.
    Busy,
    /// The listener (in this state) did not get between two batches in time; nothing was
    /// moved.
    Unreached(Duration, &'static str),
    /// The run ended (a restart, a stall, a shutdown) before the seek was taken up.
    RunEnded,
    /// The request asked for what cannot be (a partition this member does not hold, an offset
    /// outside what a partition keeps); nothing was moved.
    Invalid(String),
    /// The brokers failed it.
    Failed(String),
}

impl std::fmt::Display for SeekRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotRunning(state) => write!(
                f,
                "the listener is {state}: a seek moves the group through the listener's own \
                 member, so it must be running (restart it, then seek)"
            ),
            Self::Busy => write!(
                f,
                "another seek of this listener is under way; try again when it has answered"
            ),
            Self::Unreached(wait, state) => write!(
                f,
                "the listener ({state}) did not get between two batches within {} s, so \
                 nothing was moved; try again (a batch ends at its documents' timeouts; a \
                 listener that is STARTING may be waiting for its brokers)",
                wait.as_secs()
            ),
            Self::RunEnded => write!(
                f,
                "the listener stopped (a restart, a stall or a shutdown) before it could seek; \
                 nothing was moved"
            ),
            Self::Invalid(why) | Self::Failed(why) => write!(f, "{why}"),
        }
    }
}

impl ListenerControl {
    /// Moves the running listener's partitions to `target` and says where each went. Waits for
    /// the listener to finish the batch in hand, up to a minute.
    pub async fn seek(&self, target: SeekTarget) -> Result<Vec<SeekMove>, SeekRefused> {
        let status = self.status();
        if !matches!(
            status,
            ListenerStatus::Starting | ListenerStatus::Running | ListenerStatus::Paused
        ) {
            return Err(SeekRefused::NotRunning(status.state()));
        }
        let (reply, answer) = oneshot::channel();
        {
            let mut pending = self.pending_seek();
            if pending.is_some() {
                return Err(SeekRefused::Busy);
            }
            *pending = Some(PendingSeek {
                asked: Instant::now(),
                target,
                reply,
            });
        }
        tokio::pin!(answer);
        match tokio::time::timeout(REACH_TIMEOUT, &mut answer).await {
            Ok(answered) => answered.unwrap_or(Err(SeekRefused::RunEnded)),
            Err(_) => {
                // Still waiting to be taken up: withdrawn. Taken up meanwhile: its answer
                // comes (bounded by the brokers' request timeouts).
                if self.pending_seek().take().is_some() {
                    return Err(SeekRefused::Unreached(REACH_TIMEOUT, self.status().state()));
                }
                answer.await.unwrap_or(Err(SeekRefused::RunEnded))
            }
        }
    }

    fn pending_seek(&self) -> std::sync::MutexGuard<'_, Option<PendingSeek>> {
        self.seek
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether a seek waits to be taken up.
    pub(super) fn seek_pending(&self) -> bool {
        self.pending_seek().is_some()
    }

    /// The seek asked for, for the listener to do now: at once when it holds partitions
    /// (`holding`); otherwise after the group has had a while to assign them, so that a seek
    /// asked for just after a start waits for the assignment instead of finding nothing.
    pub(super) fn take_seek(&self, holding: bool) -> Option<(SeekTarget, SeekReply)> {
        let mut pending = self.pending_seek();
        if !holding && pending.as_ref()?.asked.elapsed() < ASSIGNMENT_WAIT {
            return None;
        }
        pending.take().map(|p| (p.target, SeekReply(p.reply)))
    }

    /// Answers a pending seek with "the run ended": called when a run stops.
    pub(super) fn refuse_pending_seek(&self) {
        drop(self.pending_seek().take());
    }
}

/// Where the listener answers a seek it took up.
pub(super) struct SeekReply(oneshot::Sender<Result<Vec<SeekMove>, SeekRefused>>);

impl SeekReply {
    /// Sends the outcome to whoever asked (who may have gone: nothing to do then).
    pub(super) fn send(self, outcome: Result<Vec<SeekMove>, sluice_connector::ConnectorError>) {
        let _ = self.0.send(outcome.map_err(|e| match e.kind() {
            ErrorKind::User => SeekRefused::Invalid(e.user_message()),
            _ => SeekRefused::Failed(e.user_message()),
        }));
    }
}
