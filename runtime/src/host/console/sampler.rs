//! What the console draws over time: every few seconds, each listener's total lag (kept a
//! quarter of an hour, for the lag chart) and its dead-letter count (kept an hour, for "dead
//! letters in the last hour"). In memory: a restart of the host starts the history again.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::host::deploy::ListenerTable;
use crate::host::listener::Shared;

/// How often the sampler looks.
pub const SAMPLE_EVERY: Duration = Duration::from_secs(5);
/// How much lag history the chart shows.
pub const LAG_HISTORY: Duration = Duration::from_secs(15 * 60);
/// The window of the overview's counts.
pub const COUNT_WINDOW: Duration = Duration::from_secs(60 * 60);

/// One listener's samples.
#[derive(Debug, Default)]
struct History {
    /// (when, total lag over the partitions it holds); none while it holds none.
    lag: VecDeque<(Instant, i64)>,
    /// (when, dead letters since the host started).
    dead_letters: VecDeque<(Instant, u64)>,
}

/// The samples of every listener, by process.
#[derive(Debug, Default)]
pub struct Sampler {
    histories: Mutex<BTreeMap<String, History>>,
}

impl Sampler {
    fn histories(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, History>> {
        self.histories
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Samples the listeners every [`SAMPLE_EVERY`] until `stop`.
    pub async fn run(&self, shared: Shared, listeners: ListenerTable, stop: CancellationToken) {
        loop {
            self.sample(&shared, &listeners).await;
            tokio::select! {
                () = tokio::time::sleep(SAMPLE_EVERY) => {}
                () = stop.cancelled() => return,
            }
        }
    }

    async fn sample(&self, shared: &Shared, listeners: &ListenerTable) {
        let now = Instant::now();
        let metrics = shared.host().metrics().clone();
        for (control, positions) in listeners.all_with_positions().await {
            let lag =
                positions.map(|positions| positions.iter().filter_map(|p| p.lag).sum::<i64>());
            let dead_letters = metrics.dead_letters_of(&control.process);
            let mut histories = self.histories();
            let history = histories.entry(control.process.clone()).or_default();
            if let Some(lag) = lag {
                history.lag.push_back((now, lag));
            }
            history.dead_letters.push_back((now, dead_letters));
            forget_before(&mut history.lag, now, LAG_HISTORY);
            forget_before(&mut history.dead_letters, now, COUNT_WINDOW);
        }
    }

    /// `process`'s lag samples of the last [`LAG_HISTORY`], oldest first, as (seconds ago,
    /// lag).
    pub fn lag(&self, process: &str) -> Vec<(f64, i64)> {
        let now = Instant::now();
        self.histories().get(process).map_or_else(Vec::new, |h| {
            h.lag
                .iter()
                .map(|(at, lag)| (now.duration_since(*at).as_secs_f64(), *lag))
                .collect()
        })
    }

    /// Dead letters of `process` within the last [`COUNT_WINDOW`] (since the oldest sample
    /// in it, when the host has run for less).
    pub fn dead_letters_in_window(&self, process: &str) -> u64 {
        self.histories()
            .get(process)
            .and_then(|h| Some(h.dead_letters.back()?.1 - h.dead_letters.front()?.1))
            .unwrap_or(0)
    }
}

fn forget_before<T>(samples: &mut VecDeque<(Instant, T)>, now: Instant, keep: Duration) {
    while samples
        .front()
        .is_some_and(|(at, _)| now.duration_since(*at) > keep)
    {
        samples.pop_front();
    }
}
