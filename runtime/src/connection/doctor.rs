//! Test Connection, as a doctor: every check a connection depends on, each with a verdict and,
//! when it fails, what to fix. Secrets are never shown.

use std::time::Duration;

use sluice_connector::probe::{probe, probe_topic, PartitionEnds, PROBE_HEADER};
use sluice_connector::{
    Bootstrap, BrokerAddress, Connection, ConnectionConfig, SaslMechanism, SecurityProtocol,
};

use crate::advice::UserMessage as _;

/// A check's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// It works.
    Pass,
    /// It may work, but looks wrong.
    Warn,
    /// It does not work.
    Fail,
}

/// One check: what was checked, and the outcome or the fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// The verdict.
    pub verdict: Verdict,
    /// What was checked and found.
    pub what: String,
    /// For a warning or failure: what to do.
    pub fix: Option<String>,
}

impl Check {
    fn pass(what: impl Into<String>) -> Self {
        Self {
            verdict: Verdict::Pass,
            what: what.into(),
            fix: None,
        }
    }

    fn fail(what: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            verdict: Verdict::Fail,
            what: what.into(),
            fix: Some(fix.into()),
        }
    }

    fn warn(what: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            verdict: Verdict::Warn,
            what: what.into(),
            fix: Some(fix.into()),
        }
    }
}

/// Kerberos' own default tolerance between clocks (krb5.conf `clockskew`): brokers refuse
/// tickets whose times differ from their clocks by more.
const KERBEROS_CLOCK_SKEW: i64 = 300;

/// A clock offset that works but is worth fixing before it grows.
const CLOCK_WARNING: i64 = 60;

/// The outcome of [`super::kerberos::prepare`] as checks (it must run before threads start,
/// so the caller runs it and hands over its result).
pub fn kerberos_checks(
    config: &ConnectionConfig,
    prepared: &Result<Option<super::kerberos::CredentialCache>, Vec<String>>,
) -> Vec<Check> {
    let Some(sasl) = config
        .sasl
        .as_ref()
        .filter(|s| s.mechanism == SaslMechanism::Gssapi)
    else {
        return Vec::new();
    };
    match prepared {
        Ok(cache) => {
            let mut checks = vec![Check::pass(format!(
                "Kerberos: krb5.conf and credentials found, a ticket for {} obtained",
                sasl.username
            ))];
            let offset = cache.as_ref().and_then(|c| c.kdc_clock_offset());
            checks.extend(offset.map(clock_check));
            checks
        }
        Err(problems) => problems
            .iter()
            .map(|p| Check::fail("Kerberos", p.clone()))
            .collect(),
    }
}

/// The verdict on the offset between this machine's clock and the KDC's.
fn clock_check(offset: i64) -> Check {
    let what = if offset.abs() <= 1 {
        return Check::pass("Kerberos: this machine's clock agrees with the KDC's");
    } else {
        format!(
            "Kerberos: this machine's clock differs from the KDC's by {} s (the KDC's is {})",
            offset.abs(),
            if offset > 0 { "ahead" } else { "behind" }
        )
    };
    let fix = format!(
        "synchronise the clocks of this machine, the KDC and the brokers (NTP): Kerberos \
         refuses tickets whose times differ by more than {KERBEROS_CLOCK_SKEW} s, and only this \
         host's Kerberos library corrects for the difference, the brokers do not"
    );
    if offset.abs() > KERBEROS_CLOCK_SKEW {
        Check::fail(what, fix)
    } else if offset.abs() > CLOCK_WARNING {
        Check::warn(what, fix)
    } else {
        Check::pass(format!("{what}, within Kerberos' tolerance"))
    }
}

/// Amazon MSK IAM: which AWS credentials the chain finds, and whether a token signs with them.
/// The broker decides whether that identity may connect; this says who will ask.
pub fn aws_iam_checks(config: &ConnectionConfig) -> Vec<Check> {
    let Some(iam) = config.sasl.as_ref().and_then(|s| s.aws_iam.as_ref()) else {
        return Vec::new();
    };
    match sluice_connector::msk_iam::token(iam) {
        Ok(signed) => {
            let left = signed
                .expires
                .duration_since(std::time::SystemTime::now())
                .unwrap_or_default();
            vec![Check::pass(format!(
                "Amazon MSK IAM: AWS credentials {} from {}; a kafka-cluster:Connect token for \
                 {} signed, valid {} s (renewed before it expires)",
                signed.access_key_id,
                signed.source,
                iam.region,
                left.as_secs()
            ))]
        }
        Err(e) => vec![Check::fail("Amazon MSK IAM: AWS credentials", e)],
    }
}

/// How long one TCP connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Network and Kafka checks, in order; later checks are skipped when an earlier one makes them
/// pointless (no address, no handshake).
pub async fn network_checks(config: &ConnectionConfig) -> Vec<Check> {
    let mut checks = Vec::new();
    let servers = match &config.bootstrap {
        Bootstrap::Embedded => {
            checks.push(Check::pass(
                "embedded broker: it runs inside this process, nothing to reach",
            ));
            Vec::new()
        }
        Bootstrap::Servers(servers) => servers.clone(),
    };
    let mut reachable = servers.is_empty();
    for server in &servers {
        checks.extend(port_hint(server, config));
        match reach(&server.to_string()).await {
            Reach::Unresolved(e) => checks.push(Check::fail(
                format!("{server} does not resolve ({e})"),
                "check the host name in bootstrap-servers, and this machine's DNS",
            )),
            Reach::Resolved(addresses, connected) => {
                let shown: Vec<String> = addresses.iter().map(|a| a.ip().to_string()).collect();
                checks.push(Check::pass(format!(
                    "{server} resolves to {}",
                    shown.join(", ")
                )));
                match connected {
                    Ok(Ok(())) => {
                        reachable = true;
                        checks.push(Check::pass(format!("{server} accepts TCP connections")));
                    }
                    Ok(Err(e)) => checks.push(Check::fail(
                        format!("{server} refuses TCP connections ({e})"),
                        "check the port, that the broker runs, and firewalls in between",
                    )),
                    Err(_) => checks.push(Check::fail(
                        format!(
                            "{server} does not answer within {} s",
                            CONNECT_TIMEOUT.as_secs()
                        ),
                        "a firewall may drop the traffic, or the address is wrong",
                    )),
                }
            }
        }
    }
    if !reachable {
        checks.push(Check::fail(
            "Kafka handshake skipped: no bootstrap server is reachable",
            "fix the checks above first",
        ));
        return checks;
    }
    let connection = match Connection::open(config.clone()) {
        Ok(connection) => connection,
        Err(e) => {
            checks.push(Check::fail("client configuration", e.user_message()));
            return checks;
        }
    };
    let how = handshake_description(config);
    match probe(&connection).await {
        Ok(summary) => {
            checks.push(Check::pass(format!(
                "Kafka handshake ({how}) and metadata: {} broker(s), {} topic(s) visible",
                summary.brokers.len(),
                summary.topics
            )));
            if !matches!(config.bootstrap, Bootstrap::Embedded) {
                for broker in &summary.brokers {
                    let ok = matches!(reach(broker).await, Reach::Resolved(_, Ok(Ok(()))));
                    checks.push(if ok {
                        Check::pass(format!("advertised broker {broker} is reachable"))
                    } else {
                        Check::fail(
                            format!("advertised broker {broker} is not reachable from here"),
                            "clients connect to the addresses brokers advertise after \
                             bootstrapping: the brokers' advertised.listeners must resolve and \
                             be reachable from this machine",
                        )
                    });
                }
            }
        }
        Err(e) => checks.push(Check::fail(
            format!("Kafka handshake ({how})"),
            e.user_message(),
        )),
    }
    checks
}

/// What resolving `server` (`host:port`, as the resolver takes it: an IPv6 address in
/// brackets) and connecting to it found.
enum Reach {
    Unresolved(std::io::Error),
    /// The addresses, and the connection attempt: timed out, refused, or open.
    Resolved(
        Vec<std::net::SocketAddr>,
        Result<std::io::Result<()>, tokio::time::error::Elapsed>,
    ),
}

async fn reach(server: &str) -> Reach {
    match tokio::net::lookup_host(server).await {
        Err(e) => Reach::Unresolved(e),
        Ok(addresses) => {
            let addresses: Vec<_> = addresses.collect();
            let connected = tokio::time::timeout(
                CONNECT_TIMEOUT,
                tokio::net::TcpStream::connect(&addresses[..]),
            )
            .await
            .map(|r| r.map(drop));
            Reach::Resolved(addresses, connected)
        }
    }
}

fn handshake_description(config: &ConnectionConfig) -> String {
    let mut how = config.security_protocol.name().to_string();
    if let Some(sasl) = &config.sasl {
        how.push_str(&format!(
            ", SASL {} as {}",
            sasl.mechanism.name(),
            sasl.username
        ));
    }
    how
}

/// Well-known ports that do not fit the security protocol (Kafka's, Amazon MSK's).
fn port_hint(server: &BrokerAddress, config: &ConnectionConfig) -> Option<Check> {
    let port = server.port();
    let protocol = config.security_protocol;
    let mechanism = config.sasl.as_ref().map(|s| s.mechanism);
    let expected = match port {
        9092 if protocol.uses_tls() => "9092 is usually a PLAINTEXT listener",
        9094 | 9194 if protocol != SecurityProtocol::Ssl => {
            "9094/9194 is Amazon MSK's TLS port (security-protocol SSL)"
        }
        9096 | 9196
            if protocol != SecurityProtocol::SaslSsl
                || !matches!(mechanism, Some(SaslMechanism::ScramSha512)) =>
        {
            "9096/9196 is Amazon MSK's SASL/SCRAM port (SASL_SSL with SCRAM-SHA-512)"
        }
        9098 | 9198
            if protocol != SecurityProtocol::SaslSsl
                || config.sasl.as_ref().is_none_or(|s| s.aws_iam.is_none()) =>
        {
            "9098/9198 is Amazon MSK's IAM port (SASL_SSL with OAUTHBEARER and aws-iam)"
        }
        _ => return None,
    };
    Some(Check::warn(
        format!(
            "{server}: the port may not match security-protocol {}",
            protocol.name()
        ),
        expected,
    ))
}

/// `--topic`: that the topic exists and this identity may describe and read it, and with
/// `write`, produce to it (one probe message, read back). Run after [`network_checks`]
/// passed.
pub async fn topic_checks(config: &ConnectionConfig, topic: &str, write: bool) -> Vec<Check> {
    let connection = match Connection::open(config.clone()) {
        Ok(connection) => connection,
        Err(e) => return vec![Check::fail("client configuration", e.user_message())],
    };
    let probe = match probe_topic(&connection, topic, write).await {
        Ok(probe) => probe,
        Err(e) => return vec![Check::fail(format!("topic \"{topic}\""), e.user_message())],
    };
    let mut checks = Vec::new();
    match &probe.described {
        Ok(partitions) => checks.push(Check::pass(describe_partitions(topic, partitions))),
        Err(why) => checks.push(Check::fail(
            format!("topic \"{topic}\" cannot be described"),
            format!("{why}: check the name (sluice validate lists what the components use), or create it"),
        )),
    }
    match &probe.read {
        Some(Ok(())) => checks.push(Check::pass(format!(
            "reading topic \"{topic}\": every partition answered a fetch"
        ))),
        Some(Err(why)) => checks.push(Check::fail(
            format!("reading topic \"{topic}\" is refused"),
            format!(
                "{why}: Consume and Listen need READ on the topic (and on their consumer group)"
            ),
        )),
        None => {}
    }
    match &probe.write {
        Some(Ok(written)) => checks.push(Check::pass(format!(
            "writing topic \"{topic}\": a probe message (header {PROBE_HEADER}) was produced to \
             partition {} at offset {} and read back",
            written.partition, written.offset
        ))),
        Some(Err(why)) => checks.push(Check::fail(
            format!("writing topic \"{topic}\" is refused"),
            format!("{why}: Produce needs WRITE on the topic (and IDEMPOTENT_WRITE on the cluster for the idempotent producer)"),
        )),
        None => {}
    }
    checks
}

/// `topic "orders": 3 partitions, end offsets 0:120 1:98 2:130, 348 messages kept`.
fn describe_partitions(topic: &str, partitions: &[PartitionEnds]) -> String {
    let ends: Vec<String> = partitions
        .iter()
        .map(|p| format!("{}:{}", p.partition, p.end))
        .collect();
    let kept: i64 = partitions.iter().map(|p| p.end - p.earliest).sum();
    format!(
        "topic \"{topic}\": {}, end offsets {}, {} kept",
        crate::count(partitions.len(), "partition"),
        ends.join(" "),
        crate::count(kept as usize, "message")
    )
}
