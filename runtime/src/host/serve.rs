//! `sluice serve`: the long-running host. It starts a listener for every process that starts
//! with a listen operation, serves the management API, deploys changed components on SIGHUP or
//! a reload request (see [`super::deploy`]), and stops them all on SIGINT or SIGTERM.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use sluice_connector::backoff::jittered;
use sluice_connector::Secret;
use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::api::ApiState;
use super::console::Console;
use super::deploy::{self, ComponentFiles, Deployment, ReloadRequest, Source};
use super::execution::Host;
use super::listener::{self, watchdog, ListenerControl, ListenerFailure, ListenerStatus, Shared};
use super::memory;
use crate::container::HostLimits;

/// How `sluice serve` is reached and fed.
#[derive(Debug, Default)]
pub struct ServeOptions {
    /// Where the management API listens; `None`: no API.
    pub api: Option<SocketAddr>,
    /// The bearer token every API request but `/health` must carry, if any.
    pub api_token: Option<Secret>,
    /// Reload the components when a component file changes from these, the files as they
    /// were when the components were loaded.
    pub watch: Option<ComponentFiles>,
}

/// Runs the `listeners` of `host` until a shutdown signal, then drains them. Returns how
/// many listeners were failed or invalid at the end. `invalid` are the listeners whose
/// components are invalid, each with its located errors: they never start, and show as
/// INVALID in the start lines, the API and the metrics. `source` is where the components came
/// from, loaded again on SIGHUP, `POST /components/reload` and (with `watch`) file changes.
/// Without the API, the host also ends when every listener has failed or is invalid (nothing
/// could restart them); with it, failed listeners wait for a restart. A second signal during
/// the drain ends the process at once (exit status 130), leaving unfinished documents
/// uncommitted, to be delivered again.
pub async fn serve(
    host: Host,
    listeners: Vec<String>,
    invalid: BTreeMap<String, Vec<String>>,
    source: Source,
    options: ServeOptions,
) -> std::io::Result<usize> {
    let mut signals = StopSignals::new()?;
    // SIGHUP reloads the components (the convention of long-running Unix services).
    let mut hangup = signal(SignalKind::hangup())?;
    let shared = Shared::new(host);
    let shutdown = CancellationToken::new();
    let tracker = TaskTracker::new();
    // Closed at once: waiting on it ends when every task spawned on it (now or later) has.
    tracker.close();
    let restartable = options.api.is_some();
    let paths = source.paths.clone();
    let mut deployment = Deployment::new(
        shared.clone(),
        source,
        restartable,
        shutdown.clone(),
        tracker.clone(),
    );
    let (reload_tx, mut reloads) = mpsc::channel::<ReloadRequest>(8);
    if let Some(address) = options.api {
        let console = Arc::new(Console::new(paths.clone()));
        let api = ApiState {
            shared: shared.clone(),
            listeners: deployment.table(),
            token: options.api_token.map(Arc::new),
            reloads: reload_tx.clone(),
            console: console.clone(),
        };
        start_api(address, api, &shutdown, &tracker).await?;
        let (shared, listeners, stop) = (shared.clone(), deployment.table(), shutdown.clone());
        tracker.spawn(async move { console.sampler.run(shared, listeners, stop).await });
    }
    tracker.spawn(memory::release_free_memory(shutdown.clone()));
    deployment.start_first(&listeners, &invalid);
    report_start(&deployment, &listeners, &invalid);
    if let Some(seen) = options.watch {
        let watch = deploy::watch(paths, seen, reload_tx.clone(), shutdown.clone());
        tracker.spawn(watch);
        eprintln!("sluice serve: watching the component files; a change is deployed when they have been quiet for a moment");
    }
    if listeners.is_empty() && !restartable {
        eprintln!("sluice serve: no listener can start, and without the API nothing can fix them");
        return Ok(invalid.len());
    }

    loop {
        tokio::select! {
            () = signals.stop() => break,
            Some(()) = hangup.recv() => {
                deployment.reload("SIGHUP").await;
            }
            Some(request) = reloads.recv() => {
                let report = deployment.reload(request.by).await;
                if let Some(reply) = request.reply {
                    let _ = reply.send(report);
                }
            }
            Some(_) = deployment.next_ended() => {
                if deployment.supervised() == 0 && !restartable {
                    eprintln!("sluice serve: every listener has stopped");
                    shutdown.cancel();
                    tracker.wait().await;
                    return Ok(deployment.failed_or_invalid());
                }
            }
        }
    }
    // A reload asked for from now on is refused (503) rather than left waiting: the API
    // finishes its requests before the host ends.
    drop(reloads);
    drain(
        &mut signals,
        &mut deployment,
        shared.drain,
        &shutdown,
        &tracker,
    )
    .await;
    Ok(deployment.failed_or_invalid())
}

/// The start lines: the listeners started (the paused ones said so), and each invalid one
/// with its errors.
fn report_start(
    deployment: &Deployment,
    listeners: &[String],
    invalid: &BTreeMap<String, Vec<String>>,
) {
    if !listeners.is_empty() {
        let table = deployment.table();
        let names: Vec<String> = listeners
            .iter()
            .map(|p| match table.get(p) {
                Some(control) if control.is_paused() => format!("{p} (PAUSED)"),
                _ => p.clone(),
            })
            .collect();
        eprintln!(
            "sluice serve: {} started ({}); stop with Ctrl-C or SIGTERM, reload the components \
             with SIGHUP",
            crate::count(listeners.len(), "listener"),
            names.join(", ")
        );
        if names.iter().any(|n| n.ends_with("(PAUSED)")) {
            eprintln!(
                "sluice serve: a PAUSED listener holds its partitions without reading them, as \
                 it was paused when the host last ran; resume it with PUT \
                 /listeners/<process>/resume"
            );
        }
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
    async fn stop(&mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
    }
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

/// Cancels every listener and waits for all to end, their running executions having
/// `drain_time` to finish; a second signal meanwhile exits the process at once (status 130).
async fn drain(
    signals: &mut StopSignals,
    deployment: &mut Deployment,
    drain_time: Duration,
    shutdown: &CancellationToken,
    tracker: &TaskTracker,
) {
    eprintln!(
        "sluice serve: stopping; running executions get {} s to finish (a second signal stops \
         at once)",
        drain_time.as_secs()
    );
    shutdown.cancel();
    while deployment.supervised() > 0 {
        tokio::select! {
            ended = deployment.next_ended() => if ended.is_none() { break },
            () = signals.stop() => std::process::exit(130),
        }
    }
    tracker.wait().await;
    eprintln!("sluice serve: stopped");
}

/// Runs one listener, again after each restart request. A listener that fails because of the
/// outside world starts again on the reconnect schedule; one that needs a fix waits for a
/// restart request when it is `restartable` (the API is on), else ends with its failure.
pub(super) async fn supervise(
    shared: Shared,
    control: Arc<ListenerControl>,
    shutdown: CancellationToken,
    restartable: bool,
) -> Result<(), ListenerFailure> {
    let host_limits = shared.host().container().host.clone();
    // Automatic restarts in a row; a run that lasted longer than the longest wait was healthy
    // and starts the schedule over.
    let mut automatic = 0;
    let mut first = true;
    loop {
        let run = shutdown.child_token();
        control.begin_run(run.clone());
        if !std::mem::take(&mut first) {
            shared.host().metrics().restart(&control.process);
        }
        let started = tokio::time::Instant::now();
        let running = listener::run(shared.clone(), control.clone(), run);
        let outcome = match host_limits.stall_timeout {
            Some(timeout) => {
                let metrics = shared.host().metrics().clone();
                tokio::pin!(running);
                tokio::select! {
                    outcome = &mut running => outcome,
                    // The watchdog stopped the run: it drains as on shutdown.
                    () = watchdog::watch(&control, timeout, &metrics) => running.await,
                }
            }
            None => running.await,
        };
        if control.take_restart() && !shutdown.is_cancelled() {
            tracing::info!(process = %control.process, "listener restarting");
            continue;
        }
        // Stalled: start again on the reconnect schedule, staying STALLED meanwhile.
        if control.take_stall() && !shutdown.is_cancelled() {
            let again = StartAgain {
                control: &control,
                shutdown: &shutdown,
                limits: &host_limits,
            };
            if !again.after_wait(started, &mut automatic, " stalled;").await {
                return outcome;
            }
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
                let again = StartAgain {
                    control: &control,
                    shutdown: &shutdown,
                    limits: &host_limits,
                };
                if !again.after_wait(started, &mut automatic, "").await {
                    return outcome;
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

/// A listener's start again on the reconnect schedule, after the outside world failed it or
/// it stalled.
struct StartAgain<'a> {
    control: &'a ListenerControl,
    shutdown: &'a CancellationToken,
    limits: &'a HostLimits,
}

impl StartAgain<'_> {
    /// Waits the schedule's next wait (`automatic` counts the waits so far; a run that lasted
    /// longer than the whole schedule starts it over), or less if a restart is asked for.
    /// Says so on standard error, `why` after the listener's name. `false`: the host is
    /// shutting down instead.
    async fn after_wait(
        &self,
        started: tokio::time::Instant,
        automatic: &mut usize,
        why: &str,
    ) -> bool {
        if started.elapsed() > self.limits.longest_reconnect_wait() {
            *automatic = 0;
        }
        let wait = jittered(self.limits.reconnect_wait(*automatic));
        *automatic += 1;
        eprintln!(
            "sluice serve: listener \"{}\"{why} starts again in {} ms",
            self.control.process,
            wait.as_millis()
        );
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = self.control.restart_requested() => {
                self.control.take_restart();
            }
            () = self.shutdown.cancelled() => return false,
        }
        true
    }
}
