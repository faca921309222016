//! The embedded broker: librdkafka's in-process mock cluster, for the zero-setup demo and for
//! fault injection. It is not a Kafka broker; nothing that claims a feature works is tested on it.

use std::sync::mpsc;
use std::sync::OnceLock;
use std::thread;

use rdkafka::mocking::MockCluster;

use crate::ConnectorError;

/// Handle on the process-wide embedded broker.
///
/// librdkafka's mock cluster is bound to the thread-unsafe handle that created it, so it lives on
/// a dedicated thread for the life of the process; this handle only carries its address.
#[derive(Debug)]
pub struct EmbeddedBroker {
    bootstrap_servers: String,
}

static EMBEDDED: OnceLock<Result<EmbeddedBroker, String>> = OnceLock::new();

impl EmbeddedBroker {
    /// The process-wide embedded broker, started on first use (in a few milliseconds).
    /// Topics are created on first use, with 4 partitions.
    pub fn get() -> Result<&'static EmbeddedBroker, ConnectorError> {
        EMBEDDED
            .get_or_init(start)
            .as_ref()
            .map_err(|e| ConnectorError::EmbeddedBroker(e.clone()))
    }

    /// The `host:port` list clients use to reach it (loopback, a random port).
    pub fn bootstrap_servers(&self) -> &str {
        &self.bootstrap_servers
    }
}

fn start() -> Result<EmbeddedBroker, String> {
    let (ready_tx, ready_rx) = mpsc::channel();
    thread::Builder::new()
        .name("sluice-embedded-broker".into())
        .spawn(move || match MockCluster::new(1) {
            Ok(cluster) => {
                let _ = ready_tx.send(Ok(cluster.bootstrap_servers()));
                // The cluster must outlive every client of this process: park this thread for
                // good. The OS reclaims the sockets at exit.
                loop {
                    thread::park();
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
    tracing::info!(bootstrap_servers = %bootstrap_servers, "embedded broker started");
    Ok(EmbeddedBroker { bootstrap_servers })
}
