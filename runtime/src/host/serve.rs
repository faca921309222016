//! `sluice serve`: the long-running host. It starts a listener for every process that starts
//! with a listen operation, serves the management API, and stops them all on SIGINT or
//! SIGTERM.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use sluice_connector::backoff::jittered;
use sluice_connector::Secret;
use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::sync::{mpsc, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::api::ApiState;
use super::execution::Host;
use super::listener::{self, ListenerControl, ListenerFailure, ListenerStatus, Shared};

/// How `sluice serve` is reached.
#[derive(Debug, Default)]
pub struct ServeOptions {
    /// Where the management API listens; `None`: no API.
    pub api: Option<SocketAddr>,
    /// The bearer token every API request but `/health` must carry, if any.
    pub api_token: Option<Secret>,
}

/// Runs the listeners of `processes` until a shutdown signal, then drains them. Returns how
/// many listeners were failed or invalid at the end. `invalid` are the listeners whose
/// components are invalid, each with its located errors: they never start, and show as
/// INVALID in the start lines, the API and the metrics. Without the API, the host also ends
/// when every listener has failed or is invalid (nothing could restart them); with it, failed
/// listeners wait for a restart. A second signal during the drain ends the process at once
/// (exit status 130), leaving unfinished documents uncommitted, to be delivered again.
pub async fn serve(
    host: Host,
    processes: Vec<String>,
    invalid: BTreeMap<String, Vec<String>>,
    options: ServeOptions,
) -> std::io::Result<usize> {
    let mut signals = StopSignals::new()?;
    let limits = host.container().host.clone();
    let shared = Shared {
        host: Arc::new(host),
        executions: Arc::new(Semaphore::new(
            limits.max_concurrent_executions.get() as usize
        )),
        drain: limits.drain_timeout,
    };
    let controls = listener_controls(&shared, &processes);
    let mut every_control = controls.clone();
    for (process, errors) in &invalid {
        let control = ListenerControl::new(process, false);
        control.set_status(ListenerStatus::Invalid(errors.clone()));
        every_control.insert(process.clone(), control);
    }

    let shutdown = CancellationToken::new();
    let tracker = TaskTracker::new();
    if let Some(address) = options.api {
        let api = ApiState {
            shared: shared.clone(),
            listeners: Arc::new(every_control),
            token: options.api_token.map(Arc::new),
        };
        start_api(address, api, &shutdown, &tracker).await?;
    }
    let restartable = options.api.is_some();
    let mut ended = start_listeners(&shared, &controls, restartable, &shutdown, &tracker);
    tracker.close();
    report_start(&processes, &invalid);
    let invalid = invalid.len();
    if processes.is_empty() && !restartable {
        eprintln!("sluice serve: no listener can start, and without the API nothing can fix them");
        return Ok(invalid);
    }

    let (stop, failed) = wait_for_stop(&mut signals, &mut ended, processes.len()).await;
    match stop {
        Stop::Signal => {}
        Stop::EveryListenerEnded => {
            eprintln!("sluice serve: every listener has stopped");
            shutdown.cancel();
            tracker.wait().await;
            return Ok(failed + invalid);
        }
        Stop::NoListenerLeft => return Ok(failed + invalid),
    }
    let failed_in_drain = drain(&mut signals, &mut ended, shared.drain, &shutdown, &tracker).await;
    Ok(failed + failed_in_drain + invalid)
}

/// The start lines: the listeners started, and each invalid one with its errors.
fn report_start(processes: &[String], invalid: &BTreeMap<String, Vec<String>>) {
    if !processes.is_empty() {
        eprintln!(
            "sluice serve: {} started ({}); stop with Ctrl-C or SIGTERM",
            crate::count(processes.len(), "listener"),
            processes.join(", ")
        );
    }
    for (process, errors) in invalid {
        eprintln!(
            "sluice serve: listener \"{process}\" is INVALID and does not start ({}):",
            crate::count(errors.len(), "error")
        );
        for error in errors {
            eprintln!("  {error}");
        }
    }
}

/// SIGINT and SIGTERM, the signals that stop the host.
struct StopSignals {
    interrupt: Signal,
    terminate: Signal,
}

impl StopSignals {
    /// Installs the handlers; from then on these signals no longer end the process by
    /// themselves.
    fn new() -> std::io::Result<Self> {
        Ok(Self {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
        })
    }

    /// Waits for the next SIGINT or SIGTERM. Cancellation safe: a signal that arrives while
    /// nobody waits is kept for the next call.
    async fn recv(&mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
    }
}

/// A listener's control per process, paused if the execution store says the listener was
/// paused when the host last ran.
fn listener_controls(
    shared: &Shared,
    processes: &[String],
) -> BTreeMap<String, Arc<ListenerControl>> {
    let mut controls = BTreeMap::new();
    for process in processes {
        let paused = match shared.host.records() {
            Some(store) => store.paused(process).unwrap_or_else(|error| {
                tracing::error!(%error, process, "cannot read whether the listener was paused");
                false
            }),
            None => false,
        };
        controls.insert(process.clone(), ListenerControl::new(process, paused));
    }
    controls
}

/// Binds the management API to `address` and serves it on `tracker` until `shutdown`.
async fn start_api(
    address: SocketAddr,
    api: ApiState,
    shutdown: &CancellationToken,
    tracker: &TaskTracker,
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(address).await.map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!(
                "the management API cannot listen on {address}: {e}; give another address \
                 with --api, or --api off"
            ),
        )
    })?;
    let bound = listener.local_addr()?;
    let router = super::api::router(api);
    let stop = shutdown.clone();
    tracker.spawn(async move {
        let served = axum::serve(listener, router)
            .with_graceful_shutdown(async move { stop.cancelled().await })
            .await;
        if let Err(error) = served {
            tracing::error!(%error, "the management API stopped");
        }
    });
    eprintln!("sluice serve: management API on http://{bound}");
    Ok(())
}

/// Starts a supervised listener per control on `tracker`; each sends how it ended on the
/// channel returned.
fn start_listeners(
    shared: &Shared,
    controls: &BTreeMap<String, Arc<ListenerControl>>,
    restartable: bool,
    shutdown: &CancellationToken,
    tracker: &TaskTracker,
) -> mpsc::Receiver<Result<(), ListenerFailure>> {
    // At least one slot: a channel cannot be empty-sized, even when no listener starts.
    let (ended_tx, ended) = mpsc::channel(controls.len().max(1));
    for control in controls.values() {
        let (shared, control, shutdown, ended_tx) = (
            shared.clone(),
            control.clone(),
            shutdown.clone(),
            ended_tx.clone(),
        );
        tracker.spawn(async move {
            let outcome = supervise(shared, control, shutdown, restartable).await;
            let _ = ended_tx.send(outcome).await;
        });
    }
    ended
}

/// Why the host stops.
enum Stop {
    /// SIGINT or SIGTERM: the listeners still running are drained.
    Signal,
    /// Every listener has ended on its own (only without the API: with it, failed listeners
    /// wait for a restart).
    EveryListenerEnded,
    /// Every listener's task is gone, not all of them having said how they ended.
    NoListenerLeft,
}

/// Waits for a shutdown signal while the `running` listeners report how they end on `ended`;
/// returns why it stopped waiting and how many listeners failed meanwhile.
async fn wait_for_stop(
    signals: &mut StopSignals,
    ended: &mut mpsc::Receiver<Result<(), ListenerFailure>>,
    mut running: usize,
) -> (Stop, usize) {
    let mut failed = 0;
    if running == 0 {
        // Only invalid listeners, and the API on: it serves until it is stopped.
        signals.recv().await;
        return (Stop::Signal, failed);
    }
    loop {
        tokio::select! {
            () = signals.recv() => return (Stop::Signal, failed),
            outcome = ended.recv() => match outcome {
                Some(outcome) => {
                    running -= 1;
                    failed += usize::from(outcome.is_err());
                    if running == 0 {
                        return (Stop::EveryListenerEnded, failed);
                    }
                }
                None => return (Stop::NoListenerLeft, failed),
            },
        }
    }
}

/// Cancels every listener and waits for all to end, their running executions having
/// `drain_time` to finish; a second signal meanwhile exits the process at once (status 130).
/// Returns how many listeners failed meanwhile.
async fn drain(
    signals: &mut StopSignals,
    ended: &mut mpsc::Receiver<Result<(), ListenerFailure>>,
    drain_time: Duration,
    shutdown: &CancellationToken,
    tracker: &TaskTracker,
) -> usize {
    eprintln!(
        "sluice serve: stopping; running executions get {} s to finish (a second signal stops \
         at once)",
        drain_time.as_secs()
    );
    shutdown.cancel();
    let mut failed = 0;
    loop {
        tokio::select! {
            outcome = ended.recv() => match outcome {
                Some(outcome) => failed += usize::from(outcome.is_err()),
                None => break,
            },
            () = signals.recv() => std::process::exit(130),
        }
    }
    tracker.wait().await;
    eprintln!("sluice serve: stopped");
    failed
}

/// Runs one listener, again after each restart request. A listener that fails because of the
/// outside world starts again on the reconnect schedule; one that needs a fix waits for a
/// restart request when it is `restartable` (the API is on), else ends with its failure.
async fn supervise(
    shared: Shared,
    control: Arc<ListenerControl>,
    shutdown: CancellationToken,
    restartable: bool,
) -> Result<(), ListenerFailure> {
    let host_limits = shared.host.container().host.clone();
    // Automatic restarts in a row; a run that lasted longer than the longest wait was healthy
    // and starts the schedule over.
    let mut automatic = 0;
    loop {
        let run = shutdown.child_token();
        control.begin_run(run.clone());
        let started = tokio::time::Instant::now();
        let outcome = listener::run(shared.clone(), control.clone(), run).await;
        if control.take_restart() && !shutdown.is_cancelled() {
            tracing::info!(process = %control.process, "listener restarting");
            continue;
        }
        match &outcome {
            Ok(()) => control.set_status(ListenerStatus::Stopped),
            Err(failure) => {
                tracing::error!(process = %failure.process, reason = %failure.failure, kind = failure.failure.kind_name(), "listener failed");
                eprintln!("sluice serve: {failure}");
                control.set_status(ListenerStatus::Failed(failure.failure.clone()));
            }
        }
        if shutdown.is_cancelled() {
            return outcome;
        }
        // The outside world failed: start again on the reconnect schedule, as the platform
        // does, rather than wait for someone to notice.
        if let Err(failure) = &outcome {
            if failure.failure.is_outside() {
                if started.elapsed() > host_limits.longest_reconnect_wait() {
                    automatic = 0;
                }
                let wait = jittered(host_limits.reconnect_wait(automatic));
                automatic += 1;
                eprintln!(
                    "sluice serve: listener \"{}\" starts again in {} ms",
                    control.process,
                    wait.as_millis()
                );
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    () = control.restart_requested() => {
                        control.take_restart();
                    }
                    () = shutdown.cancelled() => return outcome,
                }
                continue;
            }
        }
        if outcome.is_ok() || !restartable {
            return outcome;
        }
        tokio::select! {
            () = control.restart_requested() => {
                control.take_restart();
                tracing::info!(process = %control.process, "failed listener restarting");
            }
            () = shutdown.cancelled() => return outcome,
        }
    }
}
