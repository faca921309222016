//! Deploying components into a running host: `sluice serve` loads its component folders again
//! on SIGHUP, on `POST /components/reload` and, with `--watch`, when a component file changes.
//! Each listener is compared by what it runs (its [`Closure`]): a changed one finishes its
//! documents, commits and starts again with its new definition; an unchanged one keeps running
//! untouched; a new one starts; a removed one stops and leaves its consumer group. A change
//! that is invalid, or that only a restart of the host can apply, leaves the running version in
//! place and says why.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use futures::StreamExt as _;
use serde::Serialize;
use sluice_connector::listen::PartitionPosition;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::execution::Host;
use super::listener::{ListenerControl, ListenerFailure, ListenerStatus, Shared};
use crate::advice::UserMessage as _;
use crate::components::{Closure, Components, Loaded, OperationKind};
use crate::connection::kerberos::{self, CredentialCache};
use crate::container::HostLimits;

/// Why the stall watchdog and listener `process` cannot go together, if they cannot: while a
/// failing document waits for its retries its partition commits nothing, so a stall timeout
/// that is not longer than all those waits together would restart a listener that is only
/// retrying. (Not just the longest single back-off: the commit is held for the whole sequence.)
pub fn stall_refusal(
    components: &Components,
    limits: &HostLimits,
    process: &str,
) -> Option<String> {
    let timeout = limits.stall_timeout?;
    let start = components.processes.get(process)?.start.as_ref()?;
    let OperationKind::Listen(listen) = &components.operations.get(&start.id)?.kind else {
        return None;
    };
    let retries = listen.longest_retry_time();
    (timeout <= retries).then(|| {
        format!(
            "host.stall.timeout.ms is {} ms, but this listener's retries of one document may hold \
             its partition for up to {} ms (retry-backoff {} ms, doubling, over retry-limit {}, \
             each wait up to a fifth longer at random), and the watchdog would restart it while \
             it retries: raise host.stall.timeout.ms above {} ms, or lower retry-backoff or \
             retry-limit on operation \"{}\"",
            timeout.as_millis(),
            retries.as_millis(),
            listen.retry_backoff.as_millis(),
            listen.retry_limit,
            retries.as_millis(),
            start.id
        )
    })
}

/// How many listeners' positions are asked of their brokers at once. Each ask waits about half
/// a second on the broker (behind the consumer's own fetch) on a thread of the blocking pool:
/// one listener after another made the overview page and a /metrics scrape take that long
/// per listener (3 s for ten, past Prometheus' 10 s scrape timeout at forty); all at once
/// would hold a thread per listener.
const LOOKS_AT_ONCE: usize = 16;

/// Every listener of the host by process id, invalid ones included. The API reads it; a
/// reload changes it.
#[derive(Clone, Default)]
pub struct ListenerTable(Arc<RwLock<BTreeMap<String, Arc<ListenerControl>>>>);

impl ListenerTable {
    /// The listener of `process`, if the host has one.
    pub fn get(&self, process: &str) -> Option<Arc<ListenerControl>> {
        self.read().get(process).cloned()
    }

    /// Every listener, by process id.
    pub fn all(&self) -> Vec<Arc<ListenerControl>> {
        self.read().values().cloned().collect()
    }

    /// Every listener, by process id, with where its consumer stands on the partitions it
    /// holds (`None`: not consuming, or its brokers did not answer), asked of up to
    /// [`LOOKS_AT_ONCE`] listeners at a time.
    pub async fn all_with_positions(
        &self,
    ) -> Vec<(Arc<ListenerControl>, Option<Vec<PartitionPosition>>)> {
        futures::stream::iter(self.all())
            .map(|control| async move {
                let positions = control.positions().await;
                (control, positions)
            })
            .buffered(LOOKS_AT_ONCE)
            .collect()
            .await
    }

    fn insert(&self, control: Arc<ListenerControl>) {
        self.write().insert(control.process.clone(), control);
    }

    /// Removes `control`, unless another listener of the same process took its place.
    fn remove(&self, control: &Arc<ListenerControl>) {
        let mut table = self.write();
        if table
            .get(&control.process)
            .is_some_and(|c| Arc::ptr_eq(c, control))
        {
            table.remove(&control.process);
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Arc<ListenerControl>>> {
        self.0
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, Arc<ListenerControl>>> {
        self.0
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Where the host's components come from, to load them again.
pub struct Source {
    /// The component files and folders, as given.
    pub paths: Vec<PathBuf>,
    /// The Kerberos set-up the host started with, when a connection in use needed one. Kept
    /// for as long as the host runs (it owns the host's ticket cache).
    pub kerberos: Option<CredentialCache>,
    /// The container properties file the host read (or would have read), with its content
    /// then (`None`: there was none), to tell when it changed.
    pub container_properties: Option<(PathBuf, Option<Vec<u8>>)>,
}

/// A request to load the components again; the report goes back on `reply`, if any.
pub struct ReloadRequest {
    /// What asked, for the host's output: "SIGHUP", "the API", "a file change".
    pub by: &'static str,
    /// Where the report goes.
    pub reply: Option<oneshot::Sender<ReloadReport>>,
}

/// What a reload did, listener by listener (each list in process id order).
#[derive(Debug, Default, Serialize)]
pub struct ReloadReport {
    /// New listeners, and formerly invalid or ended ones that are valid now: they start.
    pub started: Vec<String>,
    /// Changed listeners: they finish their documents, commit and start again with the new
    /// definition.
    pub restarted: Vec<String>,
    /// Removed listeners (or processes that no longer start with a listen operation): they
    /// finish their documents, commit and leave their consumer group.
    pub stopped: Vec<String>,
    /// Listeners whose definition did not change: untouched.
    pub unchanged: Vec<String>,
    /// Running listeners whose new version cannot be deployed (it is invalid, or only a
    /// restart of the host can apply it): the running version stays. Why, per listener.
    pub kept: BTreeMap<String, Vec<String>>,
    /// Listeners that do not run, with their errors.
    pub invalid: BTreeMap<String, Vec<String>>,
    /// Changes that apply only after a restart of the host.
    pub needs_restart: Vec<String>,
    /// Listeners that share a consumer group; errors in components no listener uses.
    pub warnings: Vec<String>,
}

/// How one listener's supervisor ended.
pub(super) struct Ended {
    control: Arc<ListenerControl>,
    outcome: Result<(), ListenerFailure>,
}

/// A listener whose supervisor runs.
struct Supervised {
    control: Arc<ListenerControl>,
    /// Stops this listener alone (a child of the host's shutdown).
    retire: CancellationToken,
    /// What its run uses, to tell whether a reload changed it.
    closure: Closure,
}

/// The listeners of a running host and how to change them.
pub(super) struct Deployment {
    shared: Shared,
    table: ListenerTable,
    /// By process id.
    running: BTreeMap<String, Supervised>,
    source: Source,
    /// Whether a failed listener waits for a restart request (the API is on).
    restartable: bool,
    shutdown: CancellationToken,
    tracker: TaskTracker,
    ended_tx: mpsc::UnboundedSender<Ended>,
    ended: mpsc::UnboundedReceiver<Ended>,
}

impl Deployment {
    pub(super) fn new(
        shared: Shared,
        source: Source,
        restartable: bool,
        shutdown: CancellationToken,
        tracker: TaskTracker,
    ) -> Self {
        let (ended_tx, ended) = mpsc::unbounded_channel();
        Self {
            shared,
            table: ListenerTable::default(),
            running: BTreeMap::new(),
            source,
            restartable,
            shutdown,
            tracker,
            ended_tx,
            ended,
        }
    }

    /// The listeners, as the API sees them.
    pub(super) fn table(&self) -> ListenerTable {
        self.table.clone()
    }

    /// How many listeners have a supervisor (running, starting again, or waiting for a
    /// restart request).
    pub(super) fn supervised(&self) -> usize {
        self.running.len()
    }

    /// How many listeners are failed or invalid now: what the exit status counts.
    pub(super) fn failed_or_invalid(&self) -> usize {
        self.table
            .all()
            .iter()
            .filter(|c| {
                matches!(
                    c.status(),
                    ListenerStatus::Failed(_) | ListenerStatus::Invalid(_)
                )
            })
            .count()
    }

    /// Starts the listeners of the host's components, and lists the invalid ones.
    pub(super) fn start_first(
        &mut self,
        listeners: &[String],
        invalid: &BTreeMap<String, Vec<String>>,
    ) {
        let host = self.shared.host();
        for process in listeners {
            if let Some(closure) = host.components().closure(process) {
                self.start(process, &host, closure);
            }
        }
        for (process, errors) in invalid {
            self.set_invalid(process, errors.clone());
        }
    }

    /// Waits for the next listener whose supervisor ends, and forgets it. Cancellation safe.
    pub(super) async fn next_ended(&mut self) -> Option<Result<(), ListenerFailure>> {
        let ended = self.ended.recv().await?;
        let process = &ended.control.process;
        if self
            .running
            .get(process)
            .is_some_and(|s| Arc::ptr_eq(&s.control, &ended.control))
        {
            let supervised = self.running.remove(process).expect("present");
            // Stopped by a reload that removed it, not with the host: it leaves the table.
            if supervised.retire.is_cancelled() && !self.shutdown.is_cancelled() {
                self.table.remove(&ended.control);
            }
        }
        Some(ended.outcome)
    }

    fn control_for(&self, process: &str) -> Arc<ListenerControl> {
        // A listener still stopping from an earlier reload gets a successor of its own.
        let retiring = self
            .running
            .get(process)
            .is_some_and(|s| s.retire.is_cancelled());
        match self.table.get(process) {
            Some(control) if !retiring => control,
            _ => ListenerControl::new(process, self.was_paused(process)),
        }
    }

    /// Whether the execution store says the listener was paused when the host last ran.
    fn was_paused(&self, process: &str) -> bool {
        let Some(store) = self.shared.host().records().cloned() else {
            return false;
        };
        store.paused(process).unwrap_or_else(|error| {
            tracing::error!(%error, process, "cannot read whether the listener was paused");
            false
        })
    }

    fn start(&mut self, process: &str, host: &Arc<Host>, closure: Closure) {
        let control = self.control_for(process);
        control.deploy(host.clone());
        control.set_not_deployed(Vec::new());
        self.table.insert(control.clone());
        let retire = self.shutdown.child_token();
        let (shared, restartable, ended_tx) =
            (self.shared.clone(), self.restartable, self.ended_tx.clone());
        let (task_control, task_retire) = (control.clone(), retire.clone());
        self.tracker.spawn(async move {
            let outcome =
                super::serve::supervise(shared, task_control.clone(), task_retire, restartable)
                    .await;
            let _ = ended_tx.send(Ended {
                control: task_control,
                outcome,
            });
        });
        self.running.insert(
            process.to_string(),
            Supervised {
                control,
                retire,
                closure,
            },
        );
    }

    fn set_invalid(&mut self, process: &str, errors: Vec<String>) {
        let control = self.control_for(process);
        control.set_status(ListenerStatus::Invalid(errors));
        self.table.insert(control);
    }

    /// Whether `process` runs and is not stopping.
    fn is_running(&self, process: &str) -> bool {
        self.running
            .get(process)
            .is_some_and(|s| !s.retire.is_cancelled())
    }

    /// Loads the components again and deploys what changed (see the module's comment).
    pub(super) async fn reload(&mut self, by: &str) -> ReloadReport {
        eprintln!("sluice serve: loading the components again (asked by {by})");
        let paths = self.source.paths.clone();
        let loaded =
            match tokio::task::spawn_blocking(move || Components::load_runnable(&paths)).await {
                Ok(loaded) => loaded,
                Err(error) => {
                    tracing::error!(%error, "loading the components failed");
                    let report = ReloadReport {
                        warnings: vec!["the components could not be loaded (see the host's log); \
                                    everything keeps running as it was"
                            .into()],
                        ..ReloadReport::default()
                    };
                    print_report(&report);
                    return report;
                }
            };
        let report = self.deploy(loaded);
        print_report(&report);
        report
    }

    fn deploy(&mut self, loaded: Loaded) -> ReloadReport {
        let mut report = ReloadReport {
            needs_restart: self.host_changes(),
            ..ReloadReport::default()
        };
        let invalid = loaded.invalid_listeners();
        let others = loaded.errors_outside_listeners();
        let Loaded {
            mut components,
            errors,
            unrunnable_listeners,
            ..
        } = loaded;
        let listeners = components.listener_processes();
        let in_use: BTreeSet<String> = listeners
            .iter()
            .filter_map(|p| components.connections_of(p))
            .flatten()
            .collect();
        let refused = match &self.source.kerberos {
            Some(cache) => cache.adopt(&mut components, |id| in_use.contains(id)),
            None => kerberos::needs_setup(&components, |id| in_use.contains(id)),
        };
        report.warnings = components.shared_consumer_groups(&listeners);
        report.warnings.extend(create_embedded_topics(
            &components.embedded_topics(&listeners),
        ));
        let host = Arc::new(self.shared.host().redeploy(components));

        for process in &listeners {
            let closure = host
                .components()
                .closure(process)
                .expect("a listed process");
            let mut refusals: Vec<String> = host
                .components()
                .connections_of(process)
                .unwrap_or_default()
                .iter()
                .filter_map(|c| {
                    refused
                        .get(c)
                        .map(|why| format!("connection \"{c}\": {why}"))
                })
                .collect();
            refusals.extend(stall_refusal(
                host.components(),
                &host.container().host,
                process,
            ));
            self.deploy_one(process, &host, closure, refusals, &mut report);
        }
        for (process, errors) in invalid {
            if self.is_running(&process) {
                self.running[&process]
                    .control
                    .set_not_deployed(errors.clone());
                report.kept.insert(process, errors);
            } else {
                self.set_invalid(&process, errors.clone());
                report.invalid.insert(process, errors);
            }
        }
        self.remove_missing(&listeners, &unrunnable_listeners, &errors, &mut report);

        if others > 0 {
            report.warnings.push(format!(
                "{} in components that no listener uses; sluice validate lists them",
                crate::count(others, "error")
            ));
        }
        // The API shows the components as loaded now.
        self.shared.deploy(host);
        report
    }

    /// One valid listener of the components loaded again.
    fn deploy_one(
        &mut self,
        process: &str,
        host: &Arc<Host>,
        closure: Closure,
        refusals: Vec<String>,
        report: &mut ReloadReport,
    ) {
        let name = process.to_string();
        if !self.is_running(process) {
            if refusals.is_empty() {
                self.start(process, host, closure);
                report.started.push(name);
            } else {
                self.set_invalid(process, refusals.clone());
                report.invalid.insert(name, refusals);
            }
            return;
        }
        let supervised = self.running.get_mut(process).expect("running");
        let control = &supervised.control;
        if !refusals.is_empty() {
            control.set_not_deployed(refusals.clone());
            report.kept.insert(name, refusals);
            return;
        }
        control.deploy(host.clone());
        control.set_not_deployed(Vec::new());
        if supervised.closure == closure {
            report.unchanged.push(name);
        } else {
            supervised.closure = closure;
            control.request_restart();
            report.restarted.push(name);
        }
    }

    /// Stops the running listeners that the components no longer have, and forgets the
    /// invalid ones. A listener whose file could not be read at all keeps running: what that
    /// file holds now is unknown.
    fn remove_missing(
        &mut self,
        listeners: &[String],
        unrunnable: &BTreeSet<String>,
        errors: &[crate::components::LoadError],
        report: &mut ReloadReport,
    ) {
        let present = |p: &String| listeners.contains(p) || unrunnable.contains(p);
        let unreadable: BTreeMap<&PathBuf, String> = errors
            .iter()
            .filter(|e| e.component.is_none())
            .map(|e| (&e.file, e.to_string()))
            .collect();
        for (process, supervised) in &self.running {
            if present(process) || supervised.retire.is_cancelled() {
                continue;
            }
            let file = supervised.control.deployed().and_then(|host| {
                let definition = host.components().processes.get(process)?;
                Some(definition.origin.file.clone())
            });
            if let Some(why) = file.as_ref().and_then(|file| unreadable.get(file)) {
                let why = format!("its file cannot be read as components, so what it defines now is unknown: {why}");
                supervised.control.set_not_deployed(vec![why.clone()]);
                report.kept.insert(process.clone(), vec![why]);
                continue;
            }
            supervised.retire.cancel();
            report.stopped.push(process.clone());
        }
        for control in self.table.all() {
            let process = &control.process;
            if !present(process)
                && !self.running.contains_key(process)
                && matches!(control.status(), ListenerStatus::Invalid(_))
            {
                self.table.remove(&control);
                report.stopped.push(process.clone());
            }
        }
        report.stopped.sort();
    }

    /// What changed that only a restart of the host applies.
    fn host_changes(&self) -> Vec<String> {
        let mut changes = Vec::new();
        if let Some((path, then)) = &self.source.container_properties {
            if std::fs::read(path).ok() != *then {
                changes.push(format!(
                    "the container properties ({}) changed: the host keeps enforcing the ones \
                     it started with until it restarts",
                    path.display()
                ));
            }
        }
        if let Some(cache) = &self.source.kerberos {
            changes.extend(cache.krb5_conf_changed());
        }
        changes
    }
}

/// Partitions of each topic a host creates on the embedded broker (what the mock cluster gives
/// a topic it creates by itself).
pub const EMBEDDED_PARTITIONS: i32 = 4;

/// Creates `topics` (what the listeners on the embedded broker name, see
/// [`Components::embedded_topics`]) there: consumers do not create the topics they read.
/// Returns what could not be done, as warnings.
pub fn create_embedded_topics(topics: &BTreeSet<String>) -> Vec<String> {
    if topics.is_empty() {
        return Vec::new();
    }
    let broker = match sluice_connector::EmbeddedBroker::get() {
        Ok(broker) => broker,
        Err(error) => return vec![error.user_message()],
    };
    topics
        .iter()
        .filter_map(|topic| {
            broker
                .create_topic(topic, EMBEDDED_PARTITIONS)
                .err()
                .map(|e| e.user_message())
        })
        .collect()
}

/// What a reload did, as lines on standard error.
fn print_report(report: &ReloadReport) {
    for process in &report.started {
        eprintln!("sluice serve: listener \"{process}\" starts");
    }
    for process in &report.restarted {
        eprintln!(
            "sluice serve: listener \"{process}\" changed: it finishes its documents, commits \
             and starts again with the new definition"
        );
    }
    for process in &report.stopped {
        eprintln!(
            "sluice serve: listener \"{process}\" was removed: it finishes its documents, \
             commits and leaves its consumer group"
        );
    }
    for (process, reasons) in &report.kept {
        eprintln!(
            "sluice serve: listener \"{process}\" keeps running as it was; its new version is \
             not deployed ({}):",
            crate::count(reasons.len(), "problem")
        );
        for reason in reasons {
            eprintln!("  {reason}");
        }
    }
    for (process, errors) in &report.invalid {
        eprintln!(
            "sluice serve: listener \"{process}\" is INVALID and does not start ({}):",
            crate::count(errors.len(), "error")
        );
        for error in errors {
            eprintln!("  {error}");
        }
    }
    for change in &report.needs_restart {
        eprintln!("sluice serve: needs a restart: {change}");
    }
    for warning in &report.warnings {
        eprintln!("warning: {warning}");
    }
    eprintln!(
        "sluice serve: reloaded: {} started, {} restarted, {} stopped, {} unchanged, {} kept \
         as they ran, {} invalid",
        report.started.len(),
        report.restarted.len(),
        report.stopped.len(),
        report.unchanged.len(),
        report.kept.len(),
        report.invalid.len()
    );
}

/// How often `--watch` looks at the component files.
const WATCH_INTERVAL: Duration = Duration::from_millis(500);

/// After a change, how long the files must stay as they are before the reload: an editor or
/// a deployment tool writing several files is done by then.
const WATCH_QUIET: Duration = Duration::from_millis(300);

/// The component files under some paths, each with its size and modification time: what
/// `--watch` compares to tell that something changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ComponentFiles(BTreeMap<PathBuf, Option<(u64, SystemTime)>>);

impl ComponentFiles {
    /// The files as they are now. Taken before the components are loaded, so that a file
    /// written while the host starts is a change the watch sees, never part of its baseline.
    pub fn now(paths: &[PathBuf]) -> Self {
        Self(
            Components::files_under(paths)
                .into_iter()
                .map(|file| {
                    let stamp = std::fs::metadata(&file)
                        .ok()
                        .and_then(|m| Some((m.len(), m.modified().ok()?)));
                    (file, stamp)
                })
                .collect(),
        )
    }
}

/// `--watch`: asks for a reload when a component file under `paths` appears, disappears or
/// changes (size or modification time) from `seen` (the files as they were loaded), once the
/// files have been quiet for a moment. Looks rather than subscribes: it works the same on
/// every file system, including network mounts and the symbolic-link swaps of Kubernetes
/// config maps.
pub(super) async fn watch(
    paths: Vec<PathBuf>,
    mut seen: ComponentFiles,
    requests: mpsc::Sender<ReloadRequest>,
    shutdown: CancellationToken,
) {
    loop {
        let mut now = files(&paths).await;
        if now == seen {
            tokio::select! {
                () = tokio::time::sleep(WATCH_INTERVAL) => continue,
                () = shutdown.cancelled() => return,
            }
        }
        loop {
            tokio::select! {
                () = tokio::time::sleep(WATCH_QUIET) => {}
                () = shutdown.cancelled() => return,
            }
            let again = files(&paths).await;
            if again == now {
                break;
            }
            now = again;
        }
        seen = now;
        let request = ReloadRequest {
            by: "a file change",
            reply: None,
        };
        if requests.send(request).await.is_err() {
            return;
        }
    }
}

/// The component files now, read off the async threads.
async fn files(paths: &[PathBuf]) -> ComponentFiles {
    let paths = paths.to_vec();
    tokio::task::spawn_blocking(move || ComponentFiles::now(&paths))
        .await
        .unwrap_or_default()
}
