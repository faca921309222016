//! Connection presets: one attribute (`preset="azure-event-hubs"`, `preset="amazon-msk"`) fills
//! in what a managed Kafka service needs; every field written in the connection still wins.
//! They work on the raw connection, before the ordinary validation, so that presets and
//! hand-written connections are checked by the same code.

use sluice_connector::{BrokerAddress, ServiceLimit};

use super::check::Checker;
use super::raw::{RawAwsIam, RawConnection, RawNamedValue, RawProperties};

/// A managed service's settings beyond the client configuration.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ServiceLimits {
    /// The service accepts idempotent producers.
    pub idempotence: bool,
    /// The service's own message size limit, if any.
    pub service_limit: Option<ServiceLimit>,
}

/// Azure Event Hubs' request limit is 1 MiB; a message plus its batch framing must stay under
/// 1,046,528 bytes (DESIGN.md).
const EVENT_HUBS_MAX_REQUEST_SIZE: u64 = 1_046_527;

/// Event Hubs' Kafka endpoint: SASL_SSL on 9093 with PLAIN, user `$ConnectionString`, password
/// the connection string; Azure closes idle TCP connections after 240 s, so the client keeps
/// its own below that.
const EVENT_HUBS_PROPERTIES: &[(&str, &str)] = &[
    ("metadata.max.age.ms", "180000"),
    ("connections.max.idle.ms", "180000"),
    ("socket.keepalive.enable", "true"),
    ("request.timeout.ms", "60000"),
];

/// Applies the preset named in the connection, if any, to the raw connection. Returns the
/// service limits, or `None` when the preset or its inputs are invalid (errors recorded).
pub(crate) fn apply(c: &mut Checker<'_>, raw: &mut RawConnection) -> Option<ServiceLimits> {
    let preset = raw.preset.as_deref().map(str::trim);
    if raw.namespace.is_some() && preset != Some("azure-event-hubs") {
        c.field_error(
            "namespace",
            "applies only to preset=\"azure-event-hubs\"".into(),
        );
        return None;
    }
    match preset {
        None => Some(ServiceLimits {
            idempotence: true,
            service_limit: None,
        }),
        Some("azure-event-hubs") => event_hubs(c, raw),
        Some("amazon-msk") => amazon_msk(c, raw),
        Some(other) => {
            c.field_error(
                "preset",
                format!("must be one of azure-event-hubs, amazon-msk; got \"{other}\""),
            );
            None
        }
    }
}

fn event_hubs(c: &mut Checker<'_>, raw: &mut RawConnection) -> Option<ServiceLimits> {
    let connection_string = c.text("password", raw.password.clone());
    let endpoint_host = connection_string.as_deref().and_then(|s| {
        s.split(';')
            .find_map(|part| part.trim().strip_prefix("Endpoint=sb://"))
            .map(|host| host.trim_end_matches('/').to_string())
    });
    if let Some(s) = &connection_string {
        // Never echo it: it holds the access key.
        if endpoint_host.is_none() || !s.contains("SharedAccessKey") {
            c.field_error(
                "password",
                "must be the Event Hubs connection string (Endpoint=sb://…;SharedAccessKeyName=…;\
                 SharedAccessKey=…), from the namespace's Shared access policies in the Azure \
                 portal"
                    .into(),
            );
            return None;
        }
    } else {
        // Given but unreadable (an unset ${env:…}) is already reported, as that.
        if raw.password.is_none() {
            c.field_error(
                "password",
                "is missing: preset azure-event-hubs needs the namespace's connection string \
                 as <password>, e.g. <password>${env:EVENTHUBS_CONNECTION_STRING}</password>"
                    .into(),
            );
        }
        return None;
    }
    if raw.bootstrap_servers.is_none() {
        let host = match c.text("namespace", raw.namespace.clone()) {
            Some(namespace) if namespace.contains('.') => namespace,
            Some(namespace) => format!("{namespace}.servicebus.windows.net"),
            None => endpoint_host.unwrap_or_default(),
        };
        raw.bootstrap_servers = Some(format!("{host}:9093"));
    }
    raw.security_protocol
        .get_or_insert_with(|| "SASL_SSL".into());
    raw.sasl_mechanism.get_or_insert_with(|| "PLAIN".into());
    raw.username
        .get_or_insert_with(|| "$ConnectionString".into());
    let properties = raw.properties.get_or_insert_with(|| RawProperties {
        properties: Vec::new(),
    });
    for (name, value) in EVENT_HUBS_PROPERTIES {
        if !properties
            .properties
            .iter()
            .any(|p| p.name.as_deref() == Some(name))
        {
            properties.properties.push(RawNamedValue {
                name: Some(name.to_string()),
                value: Some(value.to_string()),
            });
        }
    }
    let timeout = properties
        .properties
        .iter()
        .find(|p| p.name.as_deref() == Some("request.timeout.ms"))
        .and_then(|p| p.value.as_deref())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if timeout.is_some_and(|t| t < 20_000) {
        c.field_error(
            "properties",
            "request.timeout.ms must be at least 20000 for Azure Event Hubs, which can take \
             that long to answer"
                .into(),
        );
        return None;
    }
    Some(ServiceLimits {
        // Event Hubs does not support the idempotent producer.
        idempotence: false,
        service_limit: Some(ServiceLimit {
            service: "Azure Event Hubs",
            max_request_size: EVENT_HUBS_MAX_REQUEST_SIZE,
        }),
    })
}

fn amazon_msk(c: &mut Checker<'_>, raw: &mut RawConnection) -> Option<ServiceLimits> {
    let mechanism = c.text("sasl-mechanism", raw.sasl_mechanism.clone());
    let (protocol, ports, what) = match mechanism.as_deref() {
        None => ("SSL", [9094, 9194], "TLS"),
        Some("SCRAM-SHA-512") => ("SASL_SSL", [9096, 9196], "SASL/SCRAM"),
        Some("OAUTHBEARER") => {
            // IAM access control: tokens signed with AWS credentials, unless the user brings an
            // identity provider of their own (<oauth>).
            if raw.oauth.is_none() {
                raw.aws_iam.get_or_insert_with(RawAwsIam::default);
            }
            ("SASL_SSL", [9098, 9198], "IAM")
        }
        Some("AWS_MSK_IAM") => {
            c.field_error("sasl-mechanism", super::sasl::AWS_MSK_IAM_NAME.into());
            return None;
        }
        Some(other) => {
            c.field_error(
                "sasl-mechanism",
                format!(
                    "Amazon MSK supports OAUTHBEARER (IAM, port 9098), SCRAM-SHA-512 (port 9096) \
                     or TLS alone (no sasl-mechanism, port 9094); got \"{other}\""
                ),
            );
            return None;
        }
    };
    raw.security_protocol.get_or_insert_with(|| protocol.into());
    if let Some(servers) = c.text("bootstrap-servers", raw.bootstrap_servers.clone()) {
        for server in servers.split(',').map(str::trim) {
            // A server that is not host:port gets its error where bootstrap-servers is parsed.
            let port = server.parse::<BrokerAddress>().ok().map(|a| a.port());
            if let Some(port) = port.filter(|p| !ports.contains(p)) {
                c.field_error(
                    "bootstrap-servers",
                    format!(
                        "\"{server}\": Amazon MSK serves {what} on port {} (public access: {}), \
                         not {port}; port 9094 is TLS, 9096 SASL/SCRAM, 9098 IAM",
                        ports[0], ports[1]
                    ),
                );
                return None;
            }
        }
    }
    Some(ServiceLimits {
        idempotence: true,
        service_limit: None,
    })
}
