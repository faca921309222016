//! `sluice serve`: every process that starts with a listen operation, with the management
//! API, until SIGINT or SIGTERM.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use sluice_connector::{EmbeddedBroker, Secret};
use sluice_runtime::advice::UserMessage as _;
use sluice_runtime::host::deploy::{self, ComponentFiles, Source};
use sluice_runtime::host::execution::Host;
use sluice_runtime::host::serve::{self, ServeOptions};

use sluice_runtime::components::Components;
use sluice_runtime::connection::kerberos;
use sluice_runtime::count;

use super::{async_runtime, load_warnings, stop_on_errors, Context, EXIT_FAILED};

/// `sluice serve`'s own options.
pub(super) struct Options {
    /// `--api`, as given.
    pub api: String,
    pub watch: bool,
    pub embedded_port: Option<u16>,
}

pub(super) fn serve(
    context: Context,
    paths: &[PathBuf],
    options: Options,
) -> anyhow::Result<ExitCode> {
    let Options {
        api,
        watch,
        embedded_port,
    } = options;
    let api = api_address(&api)?;
    if let Some(port) = embedded_port {
        EmbeddedBroker::listen_on(port).map_err(|e| anyhow::anyhow!(e))?;
    }
    let api_token = std::env::var("SLUICE_API_TOKEN")
        .ok()
        .filter(|t| !t.is_empty())
        .map(Secret::new);
    if let Some(address) = api.filter(|a| !a.ip().is_loopback()) {
        if api_token.is_none() {
            eprintln!(
                "warning: the management API listens on {address}, reachable from other \
                 machines, and SLUICE_API_TOKEN is not set: anyone who reaches it can pause, \
                 restart and reload listeners and read execution records; set \
                 SLUICE_API_TOKEN, or listen on 127.0.0.1"
            );
        }
    }
    // Before the load: a file written from here on is a change the watch deploys.
    let watch = watch.then(|| ComponentFiles::now(paths));
    let loaded = Components::load_runnable(paths);
    // A listener whose own components are invalid is reported and set aside; the others run.
    let mut invalid = loaded.invalid_listeners();
    let others = loaded.errors_outside_listeners();
    let mut components = loaded.components;
    let mut listeners = components.listener_processes();
    if listeners.is_empty() && invalid.is_empty() && !loaded.errors.is_empty() {
        return stop_on_errors(&loaded.errors);
    }
    if others > 0 {
        eprintln!(
            "warning: {} in components that no listener uses; sluice validate lists them",
            count(others, "error")
        );
    }
    if listeners.is_empty() && invalid.is_empty() {
        anyhow::bail!(
            "no process in the components starts with a listen operation, so there is \
             nothing to serve; give a process <start operation=\"…\"/> naming an \
             operation of type=\"listen\" (sluice run runs the others)"
        );
    }
    let used: BTreeSet<String> = listeners
        .iter()
        .filter_map(|p| components.connections_of(p))
        .flatten()
        .collect();
    let in_use = |id: &str| used.contains(id);
    for warning in load_warnings(&components, &context.container, in_use, &listeners) {
        eprintln!("warning: {warning}");
    }
    // Kept until the host stops: the host's Kerberos credential cache. Without one, the
    // listeners that need Kerberos are INVALID with its problems; the others run.
    let tickets = match kerberos::prepare(&mut components, &context.custom_library, in_use) {
        Ok(tickets) => tickets,
        Err(problems) => {
            let kerberos = |id: &String| {
                components.connections[id]
                    .config
                    .sasl
                    .as_ref()
                    .is_some_and(|sasl| sasl.kerberos.is_some())
            };
            listeners.retain(|process| {
                let connections = components.connections_of(process).unwrap_or_default();
                let needs_kerberos = connections.iter().any(kerberos);
                if needs_kerberos {
                    invalid.insert(process.clone(), problems.clone());
                }
                !needs_kerberos
            });
            None
        }
    };
    // A stall timeout that a listener's own retries could outlast would restart it while it
    // retries: that listener is INVALID until one of the two changes.
    listeners.retain(|process| {
        match deploy::stall_refusal(&components, &context.container.host, process) {
            Some(why) => {
                invalid.insert(process.clone(), vec![why]);
                false
            }
            None => true,
        }
    });
    open_embedded(&components, &listeners)?;
    let records = context.open_records()?;
    let host = Host::new(components, context.container).with_records(records.clone());
    let runtime = async_runtime()?;
    let options = ServeOptions {
        api,
        api_token,
        watch,
    };
    let source = Source {
        paths: paths.to_vec(),
        kerberos: tickets,
        container_properties: Some(context.container_file),
    };
    let failed = runtime.block_on(serve::serve(host, listeners, invalid, source, options))?;
    // A listener still connecting holds a blocking thread until librdkafka's metadata wait
    // ends; its work is abandoned, so the host need not wait for it.
    runtime.shutdown_timeout(Duration::from_secs(1));
    super::flush_records(&records);
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_FAILED)
    })
}

/// `--api`: `off`, or an address as `IP:PORT` or `HOST:PORT` (a host name that resolves to
/// several addresses, such as localhost, listens on its first IPv4 one).
fn api_address(api: &str) -> anyhow::Result<Option<SocketAddr>> {
    use std::net::ToSocketAddrs as _;
    if api == "off" {
        return Ok(None);
    }
    let wrong = |why: String| {
        anyhow::anyhow!(
            "--api must be an address such as 127.0.0.1:8083 or localhost:8083 (or off), got \
             \"{api}\": {why}"
        )
    };
    let addresses: Vec<SocketAddr> = api
        .to_socket_addrs()
        .map_err(|e| wrong(e.to_string()))?
        .collect();
    let address = addresses
        .iter()
        .find(|a| a.is_ipv4())
        .or(addresses.first())
        .copied()
        .ok_or_else(|| wrong("it resolves to no address".into()))?;
    Ok(Some(address))
}

/// When the `listeners` use the embedded broker: starts it, creates the topics they name
/// (consumers do not create the topics they read), and says where other processes reach it.
fn open_embedded(components: &Components, listeners: &[String]) -> anyhow::Result<()> {
    let topics = components.embedded_topics(listeners);
    if topics.is_empty() {
        return Ok(());
    }
    if let Some(problem) = deploy::create_embedded_topics(&topics).into_iter().next() {
        anyhow::bail!(problem);
    }
    let broker = EmbeddedBroker::get().map_err(|e| anyhow::anyhow!(e.user_message()))?;
    let topics: Vec<&str> = topics.iter().map(String::as_str).collect();
    eprintln!(
        "sluice serve: embedded broker on {} (nothing persists after the host stops), with \
         topics {}; a connection with <bootstrap-servers>{}</bootstrap-servers> reaches it \
         from other processes",
        broker.address(),
        topics.join(", "),
        broker.address()
    );
    Ok(())
}
