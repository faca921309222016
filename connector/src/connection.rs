use std::fmt;
use std::num::{NonZeroU16, NonZeroU32};
use std::time::Duration;

use rdkafka::config::ClientConfig;

use crate::context::Observer;
use crate::error::Reported;
use crate::security::is_sensitive_property;
use crate::{ConnectorError, EmbeddedBroker, Sasl, SecurityProtocol, Tls};

/// Where the brokers are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bootstrap {
    /// The in-process embedded broker (librdkafka's mock cluster): zero set-up, nothing persists.
    Embedded,
    /// Addresses of real brokers.
    Servers(Vec<BrokerAddress>),
}

impl Bootstrap {
    /// Parses bootstrap servers: `embedded`, or a comma-separated list of `host:port`.
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
        text.split(',')
            .map(|server| server.trim().parse())
            .collect::<Result<_, _>>()
            .map(Self::Servers)
    }
}

/// `embedded`, or the servers' `host:port` separated by commas, as librdkafka takes them.
impl fmt::Display for Bootstrap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Embedded => f.write_str("embedded"),
            Self::Servers(servers) => {
                for (index, server) in servers.iter().enumerate() {
                    if index > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{server}")?;
                }
                Ok(())
            }
        }
    }
}

/// A broker's address: a host name or IP address, and a port. Parsed once, from `host:port`;
/// `Display` gives `host:port` back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerAddress {
    /// As written: an IPv6 address keeps its brackets, as librdkafka takes it.
    host: String,
    port: NonZeroU16,
}

impl BrokerAddress {
    /// The host name or IP address, as written (an IPv6 address in brackets).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port, 1-65535.
    pub fn port(&self) -> u16 {
        self.port.get()
    }
}

impl std::str::FromStr for BrokerAddress {
    type Err = String;

    /// `host:port`; the error quotes the text and shows a valid one.
    fn from_str(server: &str) -> Result<Self, Self::Err> {
        server
            .rsplit_once(':')
            .filter(|(host, _)| !host.is_empty() && !host.contains(char::is_whitespace))
            .and_then(|(host, port)| {
                Some(Self {
                    host: host.to_string(),
                    port: port.parse().ok()?,
                })
            })
            .ok_or_else(|| {
                format!(
                    "\"{server}\" is not host:port (a host name or IP address, a colon, a port \
                     1-65535), e.g. \"broker-1.example.com:9092\""
                )
            })
    }
}

impl fmt::Display for BrokerAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

/// How to reach Kafka: a typed, validated connection component. Its `Debug` output hides
/// secrets (passwords are [`crate::Secret`]s; sensitive pass-through properties are masked).
#[derive(Clone, PartialEq, Eq)]
pub struct ConnectionConfig {
    /// The brokers to bootstrap from.
    pub bootstrap: Bootstrap,
    /// `client.id` sent to the brokers, visible in their logs and quotas.
    pub client_id: String,
    /// Consumer group for Consume operations that do not name one.
    pub default_consumer_group: Option<String>,
    /// PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL.
    pub security_protocol: SecurityProtocol,
    /// SASL credentials, exactly when the protocol uses SASL.
    pub sasl: Option<Sasl>,
    /// TLS settings, used when the protocol uses TLS.
    pub tls: Tls,
    /// Further librdkafka properties, checked with [`crate::check_property`].
    pub properties: Vec<(String, String)>,
    /// Whether producers may be idempotent (with acks=all); services such as Azure Event Hubs
    /// do not support it.
    pub idempotence: bool,
    /// A managed service's own limit on message size, which lowers the host's
    /// max.request.size for this connection.
    pub service_limit: Option<ServiceLimit>,
}

/// A managed service's own message size limit (Azure Event Hubs: 1,046,527 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceLimit {
    /// The service, as messages name it: "Azure Event Hubs".
    pub service: &'static str,
    /// The largest message it accepts, in bytes.
    pub max_request_size: u64,
}

impl fmt::Debug for ConnectionConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let properties: Vec<(&str, &str)> = self
            .properties
            .iter()
            .map(|(name, value)| {
                let shown = if is_sensitive_property(name) {
                    "***"
                } else {
                    value.as_str()
                };
                (name.as_str(), shown)
            })
            .collect();
        f.debug_struct("ConnectionConfig")
            .field("bootstrap", &self.bootstrap)
            .field("client_id", &self.client_id)
            .field("default_consumer_group", &self.default_consumer_group)
            .field("security_protocol", &self.security_protocol)
            .field("sasl", &self.sasl)
            .field("tls", &self.tls)
            .field("properties", &properties)
            .field("idempotence", &self.idempotence)
            .field("service_limit", &self.service_limit)
            .finish()
    }
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
    /// Most memory, in KiB, one producer's local queue may hold (librdkafka's default is
    /// 1 GiB per producer).
    pub producer_queue_kbytes: u32,
    /// Most memory, in KiB, a consumer may pre-fetch ahead of what it hands over (librdkafka's
    /// default is 64 MiB per consumer).
    pub consumer_prefetch_kbytes: u32,
    /// The managed service whose own limit lowered `max_request_size` below the host's, if
    /// one did: messages about an oversized document name it.
    pub lowered_by: Option<&'static str>,
}

impl Limits {
    /// The platform's default max.request.size: 10 MiB.
    pub const DEFAULT_MAX_REQUEST_SIZE: u64 = 10_485_760;
    /// The platform's default max.poll.records: 1.
    pub const DEFAULT_MAX_POLL_RECORDS: NonZeroU32 = NonZeroU32::MIN;
    /// 64 MiB per producer: a process step sends its batch and waits for it, so a queue
    /// larger than a few batches only delays back-pressure.
    pub const DEFAULT_PRODUCER_QUEUE_KBYTES: u32 = 65_536;
    /// 16 MiB per consumer: enough to keep fetches ahead of executions without holding a
    /// large backlog in memory per listener.
    pub const DEFAULT_CONSUMER_PREFETCH_KBYTES: u32 = 16_384;

    /// librdkafka's request bound for these limits (its message.max.bytes, and for consumers
    /// fetch.max.bytes): the largest message plus room for record batch and request framing,
    /// so a message of exactly max.request.size still fits. librdkafka caps it at 10^9.
    pub(crate) fn request_bytes(&self) -> u64 {
        const FRAMING: u64 = 64 * 1024;
        (self.max_request_size + FRAMING).min(1_000_000_000)
    }

    /// librdkafka's producer queue bound, never smaller than one largest message.
    pub(crate) fn producer_queue_kbytes(&self) -> u64 {
        u64::from(self.producer_queue_kbytes).max(self.max_request_size.div_ceil(1024) * 2)
    }

    /// librdkafka's pre-fetch bound; it must hold one full fetch (`fetch_max_bytes`).
    pub(crate) fn consumer_prefetch_kbytes(&self, fetch_max_bytes: u64) -> u64 {
        u64::from(self.consumer_prefetch_kbytes).max(fetch_max_bytes.div_ceil(1024))
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_request_size: Self::DEFAULT_MAX_REQUEST_SIZE,
            max_poll_records: Self::DEFAULT_MAX_POLL_RECORDS,
            producer_queue_kbytes: Self::DEFAULT_PRODUCER_QUEUE_KBYTES,
            consumer_prefetch_kbytes: Self::DEFAULT_CONSUMER_PREFETCH_KBYTES,
            lowered_by: None,
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
/// How often the metadata wait checks for a definitive TLS or SASL failure.
const METADATA_SLICE: Duration = Duration::from_secs(1);

impl Connection {
    /// Resolves the connection; for `embedded` this starts the in-process broker once per process.
    /// Nothing is sent to the brokers yet.
    pub fn open(config: ConnectionConfig) -> Result<Self, ConnectorError> {
        let bootstrap_servers = match &config.bootstrap {
            Bootstrap::Embedded => EmbeddedBroker::get()?.bootstrap_servers().to_string(),
            servers @ Bootstrap::Servers(_) => servers.to_string(),
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

    /// The host's limits as they apply to this connection (a service's own message size limit
    /// wins when it is lower).
    pub fn limits(&self, host: Limits) -> Limits {
        match self.config.service_limit {
            Some(limit) if limit.max_request_size < host.max_request_size => Limits {
                max_request_size: limit.max_request_size,
                lowered_by: Some(limit.service),
                ..host
            },
            _ => host,
        }
    }

    /// The librdkafka settings every client of this connection starts from, sorted, with
    /// secret values masked: what Test Connection shows and golden files record.
    pub fn resolved_settings(&self) -> Vec<(String, String)> {
        self.client_config()
            .config_map()
            .into_iter()
            .map(|(name, value)| {
                let secret = is_sensitive_property(name);
                (
                    name.to_string(),
                    if secret {
                        "***".to_string()
                    } else {
                        value.to_string()
                    },
                )
            })
            .collect()
    }

    /// The definition this connection was opened from.
    pub fn config(&self) -> &ConnectionConfig {
        &self.config
    }

    /// The settings every client of this connection starts from.
    pub(crate) fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        // Pass-through properties first: none of them is one of ours (checked at load).
        for (name, value) in &self.config.properties {
            config.set(name, value);
        }
        let protocol = self.config.security_protocol;
        config
            .set("bootstrap.servers", &self.bootstrap_servers)
            .set("client.id", &self.config.client_id)
            .set("security.protocol", protocol.name());
        if let Some(sasl) = &self.config.sasl {
            config.set("sasl.mechanism", sasl.mechanism.name());
            match &sasl.kerberos {
                Some(kerberos) => {
                    config
                        .set("sasl.kerberos.service.name", &kerberos.service_name)
                        .set("sasl.kerberos.principal", &sasl.username);
                    if let Some(keytab) = &kerberos.keytab {
                        config.set("sasl.kerberos.keytab", keytab.to_string_lossy());
                    }
                    if sasl.password.is_some() {
                        config.set(
                            "sasl.kerberos.kinit.cmd",
                            crate::security::kinit_with_password(&sasl.username),
                        );
                    }
                }
                // OAUTHBEARER: the token comes from the client context (Observer).
                None if sasl.oauth.is_some() || sasl.aws_iam.is_some() => {}
                None => {
                    config.set("sasl.username", &sasl.username);
                    if let Some(password) = &sasl.password {
                        config.set("sasl.password", password.expose());
                    }
                }
            }
        }
        if protocol.uses_tls() {
            let tls = &self.config.tls;
            match &tls.ca_file {
                Some(path) => config.set("ssl.ca.location", path.to_string_lossy()),
                // librdkafka's "probe" finds the system's CA bundle wherever the OS keeps it.
                None => config.set("ssl.ca.location", "probe"),
            };
            if let Some(path) = &tls.certificate_file {
                config.set("ssl.certificate.location", path.to_string_lossy());
            }
            if let Some(path) = &tls.key_file {
                config.set("ssl.key.location", path.to_string_lossy());
            }
            if let Some(password) = &tls.key_password {
                config.set("ssl.key.password", password.expose());
            }
            config.set(
                "ssl.endpoint.identification.algorithm",
                if tls.verify_hostname { "https" } else { "none" },
            );
        }
        config
    }

    /// How many partitions `topic` has; `None` when it does not exist. A blocking metadata
    /// request through `client`.
    pub(crate) fn partition_count<C: rdkafka::ClientContext>(
        &self,
        client: &rdkafka::client::Client<C>,
        observer: &Observer,
        topic: &str,
    ) -> Result<Option<usize>, ConnectorError> {
        let metadata = self.metadata(client, observer, Some(topic))?;
        Ok(metadata
            .topics()
            .iter()
            .find(|t| t.name() == topic && t.error().is_none())
            .map(|t| t.partitions().len())
            .filter(|&n| n > 0))
    }

    /// Cluster metadata (for one topic, or all), blocking.
    pub(crate) fn metadata<C: rdkafka::ClientContext>(
        &self,
        client: &rdkafka::client::Client<C>,
        observer: &Observer,
        topic: Option<&str>,
    ) -> Result<rdkafka::metadata::Metadata, ConnectorError> {
        // Ask in short slices: a TLS or SASL failure will not heal by waiting, so once the
        // client has reported one, stop instead of sitting out the whole timeout.
        let deadline = std::time::Instant::now() + METADATA_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match client.fetch_metadata(topic, left.min(METADATA_SLICE)) {
                Ok(metadata) => return Ok(metadata),
                Err(e) if left <= METADATA_SLICE => return Err(self.unreachable(e, observer)),
                Err(e) => {
                    if observer
                        .cause()
                        .is_some_and(|c| crate::context::is_telling(&c))
                    {
                        return Err(self.unreachable(e, observer));
                    }
                }
            }
        }
    }

    /// The error for a cluster we could not talk to, with the cause librdkafka reported to
    /// `observer` (a TLS or SASL failure) when there is one.
    pub(crate) fn unreachable(
        &self,
        source: rdkafka::error::KafkaError,
        observer: &Observer,
    ) -> ConnectorError {
        let mut cause = observer.cause().unwrap_or_default();
        // Some brokers answer a failed SASL authentication by closing the connection, which
        // the client can only report as a transport failure.
        if self.config.security_protocol.uses_sasl() && !crate::context::is_telling(&cause) {
            if !cause.is_empty() {
                cause.push_str("; ");
            }
            cause.push_str(
                "authentication failed? Some brokers close the connection on a wrong user name \
                 or password instead of saying so: check them",
            );
        }
        ConnectorError::Unreachable(Box::new(crate::error::Unreachable {
            bootstrap: self.bootstrap_servers.clone(),
            timeout: METADATA_TIMEOUT,
            source,
            reported: (!cause.is_empty()).then(|| Reported::new(cause)),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn address(host: &str, port: u16) -> BrokerAddress {
        BrokerAddress {
            host: host.into(),
            port: NonZeroU16::new(port).expect("a port above 0"),
        }
    }

    #[test]
    fn bootstrap_accepts_embedded_and_host_port_lists() {
        assert_eq!(Bootstrap::parse(" embedded "), Ok(Bootstrap::Embedded));
        assert_eq!(
            Bootstrap::parse("a.example.com:9092, 10.0.0.1:9093"),
            Ok(Bootstrap::Servers(vec![
                address("a.example.com", 9092),
                address("10.0.0.1", 9093)
            ]))
        );
        let servers = Bootstrap::parse("a.example.com:9092, [::1]:9093").expect("valid");
        assert_eq!(servers.to_string(), "a.example.com:9092,[::1]:9093");
        let Bootstrap::Servers(servers) = servers else {
            panic!("servers")
        };
        assert_eq!((servers[1].host(), servers[1].port()), ("[::1]", 9093));
    }

    #[test]
    fn a_service_cap_lowers_the_hosts_max_request_size() {
        let mut config = ConnectionConfig {
            bootstrap: Bootstrap::Servers(vec![address("h", 1)]),
            client_id: "c".into(),
            default_consumer_group: None,
            security_protocol: SecurityProtocol::Plaintext,
            sasl: None,
            tls: Tls::default(),
            properties: Vec::new(),
            idempotence: false,
            service_limit: Some(ServiceLimit {
                service: "Azure Event Hubs",
                max_request_size: 1_046_527,
            }),
        };
        let host = Limits::default();
        let limits = Connection::open(config.clone()).expect("open").limits(host);
        assert_eq!(limits.max_request_size, 1_046_527);
        assert_eq!(limits.lowered_by, Some("Azure Event Hubs"));
        assert_eq!(limits.max_poll_records, host.max_poll_records);
        let small = Limits {
            max_request_size: 1000,
            ..host
        };
        assert_eq!(
            Connection::open(config.clone())
                .expect("open")
                .limits(small)
                .max_request_size,
            1000
        );
        config.service_limit = None;
        assert_eq!(Connection::open(config).expect("open").limits(host), host);
    }

    #[test]
    fn memory_bounds_always_hold_one_largest_message() {
        let limits = Limits::default();
        assert_eq!(limits.producer_queue_kbytes(), 65_536);
        assert_eq!(limits.consumer_prefetch_kbytes(10_551_296), 16_384);
        let big = Limits {
            max_request_size: 100 * 1024 * 1024,
            producer_queue_kbytes: 1024,
            consumer_prefetch_kbytes: 1024,
            ..limits
        };
        assert_eq!(big.producer_queue_kbytes(), 204_800);
        assert_eq!(
            big.consumer_prefetch_kbytes(100 * 1024 * 1024 + 65_536),
            102_464
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
        assert!(Bootstrap::parse(":1").is_err());
        assert!(Bootstrap::parse("a b:1").is_err());
        assert!(Bootstrap::parse("h:70000").is_err());
        assert!(Bootstrap::parse("").is_err());
    }
}
