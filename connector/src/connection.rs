use std::num::NonZeroU32;
use std::time::Duration;

use rdkafka::config::ClientConfig;

use crate::{ConnectorError, EmbeddedBroker};

/// Where the brokers are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bootstrap {
    /// The in-process embedded broker (librdkafka's mock cluster): zero set-up, nothing persists.
    Embedded,
    /// `host:port` pairs of real brokers.
    Servers(Vec<String>),
}

impl Bootstrap {
    /// Parses the bootstrap servers field: `embedded`, or a comma-separated list of `host:port`.
    ///
    /// The error says what was wrong and what would be valid; the caller adds where.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text == "embedded" {
            return Ok(Self::Embedded);
        }
        if text.is_empty() {
            return Err(
                "is empty: give host:port pairs separated by commas, or \"embedded\" \
                        for the in-process broker"
                    .into(),
            );
        }
        let mut servers = Vec::new();
        for server in text.split(',').map(str::trim) {
            let valid = server.rsplit_once(':').is_some_and(|(host, port)| {
                !host.is_empty()
                    && !host.contains(char::is_whitespace)
                    && port.parse::<u16>().is_ok_and(|p| p > 0)
            });
            if !valid {
                return Err(format!(
                    "\"{server}\" is not host:port (a host name or IP address, a colon, \
                     a port 1-65535), e.g. \"broker-1.example.com:9092\""
                ));
            }
            servers.push(server.to_string());
        }
        Ok(Self::Servers(servers))
    }
}

/// How to reach Kafka: a typed, validated connection component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionConfig {
    /// The brokers to bootstrap from.
    pub bootstrap: Bootstrap,
    /// `client.id` sent to the brokers, visible in their logs and quotas.
    pub client_id: String,
    /// Consumer group for Consume operations that do not name one.
    pub default_consumer_group: Option<String>,
}

impl ConnectionConfig {
    /// The client id a connection uses when its definition gives none.
    pub const DEFAULT_CLIENT_ID: &'static str = "sluice";
}

/// Limits the runtime host's owner sets for every operation (the host's container properties).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest message, in bytes, that Produce sends and Consume/Listen accept.
    pub max_request_size: u64,
    /// Most records one poll of a Consume operation hands over.
    pub max_poll_records: NonZeroU32,
}

impl Limits {
    /// The platform's default max.request.size: 10 MiB.
    pub const DEFAULT_MAX_REQUEST_SIZE: u64 = 10_485_760;
    /// The platform's default max.poll.records: 1.
    pub const DEFAULT_MAX_POLL_RECORDS: NonZeroU32 = NonZeroU32::MIN;
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_request_size: Self::DEFAULT_MAX_REQUEST_SIZE,
            max_poll_records: Self::DEFAULT_MAX_POLL_RECORDS,
        }
    }
}

/// An opened connection: the resolved broker addresses plus the settings every client shares.
#[derive(Debug, Clone)]
pub struct Connection {
    config: ConnectionConfig,
    bootstrap_servers: String,
}

/// How long we wait for cluster metadata before calling the brokers unreachable.
const METADATA_TIMEOUT: Duration = Duration::from_secs(15);

impl Connection {
    /// Resolves the connection; for `embedded` this starts the in-process broker once per process.
    /// Nothing is sent to the brokers yet.
    pub fn open(config: ConnectionConfig) -> Result<Self, ConnectorError> {
        let bootstrap_servers = match &config.bootstrap {
            Bootstrap::Embedded => EmbeddedBroker::get()?.bootstrap_servers().to_string(),
            Bootstrap::Servers(servers) => servers.join(","),
        };
        Ok(Self {
            config,
            bootstrap_servers,
        })
    }

    /// The brokers' `host:port` list as librdkafka sees it.
    pub fn bootstrap_servers(&self) -> &str {
        &self.bootstrap_servers
    }

    /// The definition this connection was opened from.
    pub fn config(&self) -> &ConnectionConfig {
        &self.config
    }

    /// The settings every client of this connection starts from.
    pub(crate) fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.bootstrap_servers)
            .set("client.id", &self.config.client_id);
        config
    }

    /// How many partitions `topic` has; `None` when it does not exist. A blocking metadata
    /// request through `client`.
    pub(crate) fn partition_count<C: rdkafka::ClientContext>(
        &self,
        client: &rdkafka::client::Client<C>,
        topic: &str,
    ) -> Result<Option<usize>, ConnectorError> {
        let metadata = client
            .fetch_metadata(Some(topic), METADATA_TIMEOUT)
            .map_err(|e| self.unreachable(e))?;
        Ok(metadata
            .topics()
            .iter()
            .find(|t| t.name() == topic && t.error().is_none())
            .map(|t| t.partitions().len())
            .filter(|&n| n > 0))
    }

    pub(crate) fn unreachable(&self, source: rdkafka::error::KafkaError) -> ConnectorError {
        ConnectorError::Unreachable {
            bootstrap: self.bootstrap_servers.clone(),
            timeout: METADATA_TIMEOUT,
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bootstrap_accepts_embedded_and_host_port_lists() {
        assert_eq!(Bootstrap::parse(" embedded "), Ok(Bootstrap::Embedded));
        assert_eq!(
            Bootstrap::parse("a.example.com:9092, 10.0.0.1:9093"),
            Ok(Bootstrap::Servers(vec![
                "a.example.com:9092".into(),
                "10.0.0.1:9093".into()
            ]))
        );
    }

    #[test]
    fn bootstrap_names_the_bad_server() {
        assert_eq!(
            Bootstrap::parse("ok:1,broker").unwrap_err(),
            "\"broker\" is not host:port (a host name or IP address, a colon, a port 1-65535), \
             e.g. \"broker-1.example.com:9092\""
        );
        assert!(Bootstrap::parse("h:0").is_err());
        assert!(Bootstrap::parse("h:70000").is_err());
        assert!(Bootstrap::parse("").is_err());
    }
}
