//! `sluice serve`: the long-running host. It starts a listener for every process that starts
//! with a listen operation and stops them all on SIGINT or SIGTERM.

use std::sync::Arc;

use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::execution::Host;
use crate::listener::{self, Shared};

/// Runs the listeners of `processes` until a shutdown signal, then drains them. Returns how
/// many listeners failed. A second signal during the drain ends the process at once (exit
/// status 130), leaving unfinished documents uncommitted, to be delivered again.
pub async fn serve(host: Host, processes: Vec<String>) -> std::io::Result<usize> {
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    let limits = host.container().host;
    let shared = Shared {
        host: Arc::new(host),
        executions: Arc::new(Semaphore::new(
            limits.max_concurrent_executions.get() as usize
        )),
        drain: limits.drain_timeout,
    };
    let shutdown = CancellationToken::new();
    let tracker = TaskTracker::new();
    let (ended_tx, mut ended) = tokio::sync::mpsc::channel(processes.len());
    for process in &processes {
        let (shared, token, ended_tx) = (shared.clone(), shutdown.child_token(), ended_tx.clone());
        let process = process.clone();
        tracker.spawn(async move {
            let outcome = listener::run(shared, &process, token).await;
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
    // Until a signal, or until every listener has ended on its own.
    loop {
        tokio::select! {
            _ = interrupt.recv() => break,
            _ = terminate.recv() => break,
            outcome = ended.recv() => match outcome {
                Some(outcome) => {
                    running -= 1;
                    failed += report(outcome);
                    if running == 0 {
                        eprintln!("sluice serve: every listener has stopped");
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
                Some(outcome) => failed += report(outcome),
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

/// Prints how a listener ended; 1 when it failed.
fn report(outcome: Result<(), listener::ListenerFailure>) -> usize {
    match outcome {
        Ok(()) => 0,
        Err(failure) => {
            tracing::error!(process = %failure.process, reason = %failure.reason, "listener failed");
            eprintln!("sluice serve: {failure}");
            1
        }
    }
}
