//! `<connection>`: where and how to reach Kafka, checked into the connector's
//! [`ConnectionConfig`]. SASL has its own file ([`super::sasl`]).

use sluice_connector::{Bootstrap, ConnectionConfig, Sasl, Secret, SecurityProtocol, Tls};

use super::check::Checker;
use super::raw::{RawConnection, RawProperties, RawTls};
use super::sasl::{sasl, SaslFields};
use super::source::Location;
use super::values;
use crate::advice::UserMessage as _;

/// A validated `<connection>`.
#[derive(Debug, Clone)]
pub struct ConnectionDefinition {
    /// Unique among connections.
    pub id: String,
    /// Where it is defined.
    pub origin: Location,
    /// What it is for.
    pub description: Option<String>,
    /// The connector's connection settings.
    pub config: ConnectionConfig,
}

pub(crate) fn connection(
    c: &mut Checker<'_>,
    mut raw: RawConnection,
) -> Option<ConnectionDefinition> {
    let id = c.component_id(raw.id.take());
    // A preset that cannot apply leaves nothing sensible to check further.
    let service = super::presets::apply(c, &mut raw)?;
    let bootstrap = c
        .required(
            "bootstrap-servers",
            raw.bootstrap_servers,
            "list the brokers as host:port separated by commas, or write \"embedded\" for the \
             in-process broker",
        )
        .and_then(|text| match Bootstrap::parse(&text) {
            Ok(b) => Some(b),
            Err(predicate) => {
                c.field_error("bootstrap-servers", predicate);
                None
            }
        });
    let description = c.text("description", raw.description);
    let client_id = c.text("client-id", raw.client_id);
    let consumer_group = group(c, raw.consumer_group);
    let protocol = c
        .parse("security-protocol", raw.security_protocol, |v| {
            values::one_of(
                v,
                &[
                    ("PLAINTEXT", SecurityProtocol::Plaintext),
                    ("SSL", SecurityProtocol::Ssl),
                    ("SASL_PLAINTEXT", SecurityProtocol::SaslPlaintext),
                    ("SASL_SSL", SecurityProtocol::SaslSsl),
                ],
            )
        })
        .unwrap_or_default();
    let sasl = sasl(
        c,
        protocol,
        SaslFields {
            mechanism: raw.sasl_mechanism,
            username: raw.username,
            password: raw.password,
            service_name: raw.service_name,
            oauth: raw.oauth,
            aws_iam: raw.aws_iam,
        },
        bootstrap.as_ref(),
    );
    kerberos_needs_host_names(c, sasl.as_ref(), bootstrap.as_ref());
    let tls = tls_for(c, protocol, raw.tls);
    let properties = properties(c, raw.properties);
    Some(ConnectionDefinition {
        origin: c.origin(),
        description,
        id: id?,
        config: ConnectionConfig {
            bootstrap: bootstrap?,
            client_id: client_id
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| ConnectionConfig::DEFAULT_CLIENT_ID.to_string()),
            default_consumer_group: consumer_group,
            security_protocol: protocol,
            sasl: sasl?,
            tls: tls?,
            properties,
            idempotence: service.idempotence,
            service_limit: service.service_limit,
        },
    })
}

/// Kerberos asks for a ticket for service/host: the host must be the broker's name.
fn kerberos_needs_host_names(
    c: &mut Checker<'_>,
    sasl: Option<&Option<Sasl>>,
    bootstrap: Option<&Bootstrap>,
) {
    if let (
        Some(Some(Sasl {
            kerberos: Some(_), ..
        })),
        Some(Bootstrap::Servers(servers)),
    ) = (sasl, bootstrap)
    {
        for server in servers {
            if server.host().parse::<std::net::IpAddr>().is_ok() {
                c.field_error(
                    "bootstrap-servers",
                    format!(
                        "\"{server}\" is an IP address, and Kerberos needs the broker's host name \
                         (its fully qualified domain name, as in its service principal)"
                    ),
                );
            }
        }
    }
}

/// `<tls>`, which only a protocol over TLS takes; without it, the defaults.
fn tls_for(c: &mut Checker<'_>, protocol: SecurityProtocol, raw: Option<RawTls>) -> Option<Tls> {
    match raw {
        Some(_) if !protocol.uses_tls() => {
            c.field_error(
                "tls",
                format!(
                    "applies only to security-protocol SSL or SASL_SSL (this connection's is {})",
                    protocol.name()
                ),
            );
            None
        }
        Some(raw) => tls(c, raw),
        None => Some(Tls::default()),
    }
}

/// `<properties>`: librdkafka pass-through properties, each name checked by the connector.
fn properties(c: &mut Checker<'_>, raw: Option<RawProperties>) -> Vec<(String, String)> {
    let mut properties = Vec::new();
    for (index, property) in raw
        .map(|p| p.properties)
        .unwrap_or_default()
        .into_iter()
        .enumerate()
    {
        let at = c
            .scanned()
            .nth_element("properties/property", index)
            .unwrap_or(c.scanned().start());
        let Some(name) = property
            .name
            .map(|n| n.trim().to_string())
            .filter(|n| !n.is_empty())
        else {
            c.error_at(
                at,
                "properties: a <property> needs a name attribute, e.g. <property \
                 name=\"socket.keepalive.enable\">true</property>"
                    .into(),
            );
            continue;
        };
        if let Err(problem) = sluice_connector::check_property(&name) {
            c.error_at(at, format!("properties: {}", problem.user_message()));
            continue;
        }
        if let Some(value) = c.text("properties", Some(property.value.unwrap_or_default())) {
            properties.push((name, value));
        }
    }
    properties
}

fn tls(c: &mut Checker<'_>, raw: RawTls) -> Option<Tls> {
    let mut pem = |field: &str, raw: Option<String>, marker: &str, what: &str| {
        let path = c.text(field, raw)?;
        let full = c.relative_path(&path);
        match std::fs::read_to_string(&full) {
            Ok(text) if text.contains(marker) => Some(full),
            Ok(_) => {
                c.field_error(
                    field,
                    format!(
                        "{} is not a PEM {what} (no \"{marker}\" line)",
                        full.display()
                    ),
                );
                None
            }
            Err(e) => {
                c.field_error(field, format!("{} cannot be read: {e}", full.display()));
                None
            }
        }
    };
    const CERTIFICATE: (&str, &str) = ("-----BEGIN CERTIFICATE-----", "certificate");
    const PRIVATE_KEY: (&str, &str) = ("PRIVATE KEY-----", "private key");
    let given = [&raw.ca_file, &raw.certificate_file, &raw.key_file].map(Option::is_some);
    let [ca_given, cert_given, key_given] = given;
    let [ca_file, certificate_file, key_file] = [
        ("tls/ca-file", raw.ca_file, CERTIFICATE),
        ("tls/certificate-file", raw.certificate_file, CERTIFICATE),
        ("tls/key-file", raw.key_file, PRIVATE_KEY),
    ]
    .map(|(field, raw, (marker, what))| pem(field, raw, marker, what));
    let key_password = c
        .text("tls/key-password", raw.key_password)
        .map(Secret::new);
    let verify_hostname = c
        .parse("tls/verify-hostname", raw.verify_hostname, values::boolean)
        .unwrap_or(true);
    if cert_given != key_given {
        c.field_error(
            if cert_given {
                "tls/certificate-file"
            } else {
                "tls/key-file"
            },
            "needs its partner: mutual TLS takes both tls/certificate-file and tls/key-file".into(),
        );
        return None;
    }
    if (ca_given && ca_file.is_none())
        || (cert_given && certificate_file.is_none())
        || (key_given && key_file.is_none())
    {
        return None;
    }
    Some(Tls {
        ca_file,
        certificate_file,
        key_file,
        key_password,
        verify_hostname,
    })
}

pub(super) fn group(c: &mut Checker<'_>, raw: Option<String>) -> Option<String> {
    let group = c.text("consumer-group", raw);
    if group.as_deref() == Some("") {
        c.field_error(
            "consumer-group",
            "is empty: remove it or name a group".into(),
        );
    }
    group.filter(|g| !g.is_empty())
}
