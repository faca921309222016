//! The embedded broker: librdkafka's in-process mock cluster, for the zero-setup demo and for
//! fault injection. It is not a Kafka broker; nothing that claims a feature works is tested on it.

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};
use std::thread;

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::mocking::MockCluster;

use crate::ConnectorError;

/// Handle on the process-wide embedded broker.
///
/// librdkafka's mock cluster is bound to the thread-unsafe handle that created it, so it lives on
/// a dedicated thread for the life of the process; this handle carries its address and sends
/// that thread what to do.
#[derive(Debug)]
pub struct EmbeddedBroker {
    bootstrap_servers: String,
    /// The fixed address other processes reach it at, when one was asked for.
    entrance: Option<SocketAddr>,
    commands: Mutex<mpsc::Sender<Command>>,
}

/// What the broker's thread does for the other threads.
enum Command {
    CreateTopic {
        name: String,
        partitions: i32,
        done: mpsc::Sender<Result<(), String>>,
    },
}

static EMBEDDED: OnceLock<Result<EmbeddedBroker, String>> = OnceLock::new();

/// The port asked for with [`EmbeddedBroker::listen_on`], before the broker started.
static ENTRANCE_PORT: OnceLock<u16> = OnceLock::new();

impl EmbeddedBroker {
    /// Makes the embedded broker reachable at `127.0.0.1:port` from other processes (a
    /// `sluice run` feeding a `sluice serve`), instead of only at the random port the mock
    /// cluster picks. Call before anything uses the broker; an error says why not.
    pub fn listen_on(port: u16) -> Result<(), String> {
        if EMBEDDED.get().is_some() {
            return Err("the embedded broker has already started".into());
        }
        ENTRANCE_PORT
            .set(port)
            .map_err(|_| "an embedded broker port was already chosen".to_string())
    }

    /// The process-wide embedded broker, started on first use (in a few milliseconds).
    /// Topics are created on first use, with 4 partitions.
    pub fn get() -> Result<&'static EmbeddedBroker, ConnectorError> {
        EMBEDDED
            .get_or_init(start)
            .as_ref()
            .map_err(|e| ConnectorError::EmbeddedBroker(e.clone()))
    }

    /// The `host:port` list clients of this process use to reach it (loopback, a random port).
    pub fn bootstrap_servers(&self) -> &str {
        &self.bootstrap_servers
    }

    /// Where other processes reach it: the port asked for with
    /// [`EmbeddedBroker::listen_on`], else the random one.
    pub fn address(&self) -> String {
        match self.entrance {
            Some(entrance) => entrance.to_string(),
            None => self.bootstrap_servers.clone(),
        }
    }

    /// Creates `name` with `partitions` partitions, unless it exists. Consumers do not create
    /// the topics they subscribe to, so a listener's topic must exist before it starts.
    pub fn create_topic(&self, name: &str, partitions: i32) -> Result<(), ConnectorError> {
        let (done, outcome) = mpsc::channel();
        let command = Command::CreateTopic {
            name: name.to_string(),
            partitions,
            done,
        };
        let gone = || ConnectorError::EmbeddedBroker("the embedded broker has stopped".into());
        self.commands
            .lock()
            .map_err(|_| gone())?
            .send(command)
            .map_err(|_| gone())?;
        outcome
            .recv()
            .map_err(|_| gone())?
            .map_err(ConnectorError::EmbeddedBroker)
    }
}

fn start() -> Result<EmbeddedBroker, String> {
    let (ready_tx, ready_rx) = mpsc::channel();
    let (commands, received) = mpsc::channel::<Command>();
    thread::Builder::new()
        .name("sluice-embedded-broker".into())
        .spawn(move || match MockCluster::new(1) {
            Ok(cluster) => {
                let _ = ready_tx.send(Ok(cluster.bootstrap_servers()));
                // The cluster serves every client of this process until it exits: the
                // sender lives in a static, so this loop never ends before then.
                while let Ok(command) = received.recv() {
                    match command {
                        Command::CreateTopic {
                            name,
                            partitions,
                            done,
                        } => {
                            let created = match cluster.create_topic(&name, partitions, 1) {
                                Err(KafkaError::MockCluster(
                                    RDKafkaErrorCode::TopicAlreadyExists,
                                )) => Ok(()),
                                other => other
                                    .map_err(|e| format!("cannot create topic \"{name}\": {e}")),
                            };
                            let _ = done.send(created);
                        }
                    }
                }
            }
            Err(e) => {
                let _ = ready_tx.send(Err(e.to_string()));
            }
        })
        .map_err(|e| e.to_string())?;
    let bootstrap_servers = ready_rx
        .recv()
        .map_err(|_| "the embedded broker thread exited during start-up".to_string())??;
    let entrance = match ENTRANCE_PORT.get() {
        Some(port) => Some(open_entrance(*port, &bootstrap_servers)?),
        None => None,
    };
    tracing::info!(bootstrap_servers = %bootstrap_servers, entrance = ?entrance, "embedded broker started");
    Ok(EmbeddedBroker {
        bootstrap_servers,
        entrance,
        commands: Mutex::new(commands),
    })
}

/// Listens on `127.0.0.1:port` and passes each connection through to the mock cluster at
/// `bootstrap_servers`. Clients only bootstrap there: the cluster's metadata names its own
/// address, on loopback too, which they then use directly.
fn open_entrance(port: u16, bootstrap_servers: &str) -> Result<SocketAddr, String> {
    let listener = TcpListener::bind(("127.0.0.1", port)).map_err(|e| {
        format!("the embedded broker cannot listen on 127.0.0.1:{port}: {e}; choose another port")
    })?;
    let address = listener.local_addr().map_err(|e| e.to_string())?;
    let target = bootstrap_servers
        .split(',')
        .next()
        .unwrap_or_default()
        .to_string();
    thread::Builder::new()
        .name("sluice-embedded-entrance".into())
        .spawn(move || {
            for client in listener.incoming().flatten() {
                if let Err(error) = pass_through(client, &target) {
                    tracing::debug!(%error, "embedded broker entrance: connection dropped");
                }
            }
        })
        .map_err(|e| e.to_string())?;
    Ok(address)
}

/// Copies bytes both ways between `client` and the broker at `target` until either closes.
fn pass_through(client: TcpStream, target: &str) -> io::Result<()> {
    let broker = TcpStream::connect(target)?;
    let (mut client_reader, mut broker_writer) = (client.try_clone()?, broker.try_clone()?);
    let (mut broker_reader, mut client_writer) = (broker, client);
    thread::Builder::new()
        .name("sluice-embedded-entrance-in".into())
        .spawn(move || {
            let _ = io::copy(&mut client_reader, &mut broker_writer);
            let _ = broker_writer.shutdown(std::net::Shutdown::Write);
        })?;
    thread::Builder::new()
        .name("sluice-embedded-entrance-out".into())
        .spawn(move || {
            let _ = io::copy(&mut broker_reader, &mut client_writer);
            let _ = client_writer.shutdown(std::net::Shutdown::Write);
        })?;
    Ok(())
}
