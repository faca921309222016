//! `sluice serve`: the long-running host. It starts a listener for every process that starts
//! with a listen operation, serves the management API, and stops them all on SIGINT or
//! SIGTERM.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use sluice_connector::Secret;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

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
/// many listeners were failed at the end. Without the API, the host also ends when every
/// listener has failed (nothing could restart them); with it, failed listeners wait for a
/// restart. A second signal during the drain ends the process at once (exit status 130),
/// leaving unfinished documents uncommitted, to be delivered again.
pub async fn serve(
    host: Host,
    processes: Vec<String>,
    options: ServeOptions,
) -> std::io::Result<usize> {
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    let limits = host.container().host.clone();
    let shared = Shared {
        host: Arc::new(host),
        executions: Arc::new(Semaphore::new(
            limits.max_concurrent_executions.get() as usize
        )),
        drain: limits.drain_timeout,
    };
    let mut controls = BTreeMap::new();
    for process in &processes {
        let paused = match shared.host.records() {
            Some(store) => store.paused(process).unwrap_or_else(|error| {
                tracing::error!(%error, process, "cannot read whether the listener was paused");
                false
            }),
            None => false,
        };
        controls.insert(process.clone(), ListenerControl::new(process, paused));
    }
    let controls = Arc::new(controls);

    let shutdown = CancellationToken::new();
    let tracker = TaskTracker::new();
    if let Some(address) = options.api {
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
        let router = super::api::router(super::api::ApiState {
            shared: shared.clone(),
            listeners: controls.clone(),
            token: options.api_token.map(Arc::new),
        });
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
    }
    let (ended_tx, mut ended) = tokio::sync::mpsc::channel(processes.len());
    for control in controls.values() {
        let (shared, control, shutdown, ended_tx) = (
            shared.clone(),
            control.clone(),
            shutdown.clone(),
            ended_tx.clone(),
        );
        let restartable = options.api.is_some();
        tracker.spawn(async move {
            let outcome = supervise(shared, control, shutdown, restartable).await;
            let _ = ended_tx.send(outcome).await;
        });
    }
    drop(ended_tx);
    tracker.close();
    eprintln!(
        "sluice serve: {} started ({}); stop with Ctrl-C or SIGTERM",
        crate::count(processes.len(), "listener"),
        processes.join(", ")
    );

    let mut failed = 0;
    let mut running = processes.len();
    // Until a signal, or until every listener has ended on its own (only without the API).
    loop {
        tokio::select! {
            _ = interrupt.recv() => break,
            _ = terminate.recv() => break,
            outcome = ended.recv() => match outcome {
                Some(outcome) => {
                    running -= 1;
                    failed += usize::from(outcome.is_err());
                    if running == 0 {
                        eprintln!("sluice serve: every listener has stopped");
                        shutdown.cancel();
                        tracker.wait().await;
                        return Ok(failed);
                    }
                }
                None => return Ok(failed),
            },
        }
    }
    eprintln!(
        "sluice serve: stopping; running executions get {} s to finish (a second signal stops \
         at once)",
        shared.drain.as_secs()
    );
    shutdown.cancel();
    loop {
        tokio::select! {
            outcome = ended.recv() => match outcome {
                Some(outcome) => failed += usize::from(outcome.is_err()),
                None => break,
            },
            _ = interrupt.recv() => std::process::exit(130),
            _ = terminate.recv() => std::process::exit(130),
        }
    }
    tracker.wait().await;
    eprintln!("sluice serve: stopped");
    Ok(failed)
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
                let wait = host_limits.reconnect_wait(automatic);
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
