//! How a connection authenticates and encrypts: security protocol, SASL, TLS, and the
//! librdkafka properties a user may pass through.

use std::fmt;
use std::path::PathBuf;

use crate::librdkafka_properties::LIBRDKAFKA_PROPERTIES;

/// A secret value (password, connection string, token). It never prints: `Debug` and
/// `Display` show a placeholder, so it cannot leak through logs or error messages by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for handing to librdkafka. Never log the result.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Kafka's `security.protocol`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SecurityProtocol {
    /// No TLS, no SASL.
    #[default]
    Plaintext,
    /// TLS, no SASL.
    Ssl,
    /// SASL without TLS.
    SaslPlaintext,
    /// SASL over TLS.
    SaslSsl,
}

impl SecurityProtocol {
    /// The name Kafka and librdkafka use.
    pub fn name(self) -> &'static str {
        match self {
            Self::Plaintext => "PLAINTEXT",
            Self::Ssl => "SSL",
            Self::SaslPlaintext => "SASL_PLAINTEXT",
            Self::SaslSsl => "SASL_SSL",
        }
    }

    /// Whether connections use TLS.
    pub fn uses_tls(self) -> bool {
        matches!(self, Self::Ssl | Self::SaslSsl)
    }

    /// Whether connections authenticate with SASL.
    pub fn uses_sasl(self) -> bool {
        matches!(self, Self::SaslPlaintext | Self::SaslSsl)
    }
}

/// Kafka's `sasl.mechanism`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaslMechanism {
    /// User name and password in the clear (use with SASL_SSL).
    Plain,
    /// Salted challenge-response, SHA-256.
    ScramSha256,
    /// Salted challenge-response, SHA-512.
    ScramSha512,
    /// Kerberos.
    Gssapi,
    /// OAuth 2 bearer tokens: OIDC client credentials, or Amazon MSK IAM.
    OAuthBearer,
}

impl SaslMechanism {
    /// The name Kafka and librdkafka use.
    pub fn name(self) -> &'static str {
        match self {
            Self::Plain => "PLAIN",
            Self::ScramSha256 => "SCRAM-SHA-256",
            Self::ScramSha512 => "SCRAM-SHA-512",
            Self::Gssapi => "GSSAPI",
            Self::OAuthBearer => "OAUTHBEARER",
        }
    }
}

/// SASL credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sasl {
    /// The mechanism.
    pub mechanism: SaslMechanism,
    /// User name; for GSSAPI the client principal, `user@REALM`.
    pub username: String,
    /// Password; always for PLAIN and SCRAM, optional for GSSAPI (else the keytab is used).
    pub password: Option<Secret>,
    /// Kerberos settings, exactly for GSSAPI.
    pub kerberos: Option<Kerberos>,
    /// Token endpoint settings, for OAUTHBEARER with an identity provider.
    pub oauth: Option<OAuth>,
    /// Amazon MSK IAM settings, for OAUTHBEARER with AWS credentials (instead of `oauth`).
    pub aws_iam: Option<AwsIam>,
}

/// Amazon MSK IAM: OAUTHBEARER tokens signed with AWS credentials, found as the AWS SDKs find
/// them (environment, web identity, profile files, container and instance roles).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsIam {
    /// The cluster's AWS region, which the signature is scoped to.
    pub region: String,
    /// An AWS profile to take credentials from instead of the default chain.
    pub profile: Option<String>,
}

/// OIDC client-credentials settings of an OAUTHBEARER connection: the client gets a token from
/// the identity provider's token endpoint, and a new one before it expires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuth {
    /// The token endpoint (https://…/token).
    pub token_endpoint: String,
    /// The OAuth client id (the Kafka principal the token names).
    pub client_id: String,
    /// The OAuth client secret.
    pub client_secret: Secret,
    /// Scope to ask for, if the provider needs one.
    pub scope: Option<String>,
}

/// Kerberos settings of a GSSAPI connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kerberos {
    /// The brokers' service name: their principals are `service/host@REALM`.
    pub service_name: String,
    /// The client's keytab (`{REALM}.keytab` from the custom library) when there is no password.
    pub keytab: Option<PathBuf>,
}

impl Kerberos {
    /// The service name brokers use unless configured otherwise.
    pub const DEFAULT_SERVICE_NAME: &'static str = "kafka";
}

/// The environment variable that carries a Kerberos password to the `kinit` librdkafka runs,
/// set by [`prepare_kerberos`] (never on a command line, where `ps` would show it).
const KERBEROS_PASSWORD_ENV: &str = "SLUICE_KERBEROS_PASSWORD";

/// Process-wide Kerberos set-up, which must happen before any thread starts (MIT Kerberos reads
/// these from the environment): `krb5.conf`, a credential cache private to this process (so
/// that another program's tickets are never used), and the password `kinit` reads, if any.
pub fn prepare_kerberos(
    krb5_conf: &std::path::Path,
    ccache: &std::path::Path,
    password: Option<&Secret>,
) {
    std::env::set_var("KRB5_CONFIG", krb5_conf);
    std::env::set_var("KRB5CCNAME", format!("FILE:{}", ccache.display()));
    match password {
        Some(password) => std::env::set_var(KERBEROS_PASSWORD_ENV, password.expose()),
        None => std::env::remove_var(KERBEROS_PASSWORD_ENV),
    }
}

/// librdkafka's `sasl.kerberos.kinit.cmd` for password authentication: the password comes from
/// the environment [`prepare_kerberos`] set. The principal has been checked to hold only
/// characters that need no shell quoting beyond single quotes.
pub(crate) fn kinit_with_password(principal: &str) -> String {
    format!("printf '%s\\n' \"${KERBEROS_PASSWORD_ENV}\" | kinit -- '{principal}'")
}

/// TLS settings (for SSL and SASL_SSL).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tls {
    /// CA certificates (PEM) that sign the brokers' certificates; `None`: the system's store.
    pub ca_file: Option<PathBuf>,
    /// Client certificate (PEM) for mutual TLS.
    pub certificate_file: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    pub key_file: Option<PathBuf>,
    /// Password of an encrypted private key.
    pub key_password: Option<Secret>,
    /// Check that a broker's certificate names the host connected to. On by default; turning
    /// it off allows man-in-the-middle attacks.
    pub verify_hostname: bool,
}

impl Default for Tls {
    fn default() -> Self {
        Self {
            ca_file: None,
            certificate_file: None,
            key_file: None,
            key_password: None,
            verify_hostname: true,
        }
    }
}

/// librdkafka properties Sluice sets itself, with the field (or mechanism) that controls each.
/// A pass-through property cannot override them silently.
const OWNED: &[(&str, &str)] = &[
    ("bootstrap.servers", "the connection's bootstrap-servers"),
    ("metadata.broker.list", "the connection's bootstrap-servers"),
    ("client.id", "the connection's client-id"),
    ("security.protocol", "the connection's security-protocol"),
    ("sasl.mechanism", "the connection's sasl-mechanism"),
    ("sasl.mechanisms", "the connection's sasl-mechanism"),
    ("sasl.username", "the connection's username"),
    ("sasl.password", "the connection's password"),
    ("ssl.ca.location", "the connection's tls/ca-file"),
    (
        "ssl.certificate.location",
        "the connection's tls/certificate-file",
    ),
    ("ssl.key.location", "the connection's tls/key-file"),
    ("ssl.key.password", "the connection's tls/key-password"),
    (
        "ssl.endpoint.identification.algorithm",
        "the connection's tls/verify-hostname",
    ),
    (
        "group.id",
        "the operation's (or connection's) consumer-group",
    ),
    (
        "enable.auto.commit",
        "Sluice (offsets follow documents: the consume operation's autocommit)",
    ),
    (
        "enable.auto.offset.store",
        "Sluice (offsets follow documents)",
    ),
    ("auto.offset.reset", "the consume operation's offset-reset"),
    ("acks", "the produce operation's acks"),
    ("request.required.acks", "the produce operation's acks"),
    (
        "enable.idempotence",
        "the produce operation's acks (idempotence comes with acks=all)",
    ),
    ("compression.codec", "the produce operation's compression"),
    ("compression.type", "the produce operation's compression"),
    (
        "message.timeout.ms",
        "the produce operation's delivery-timeout",
    ),
    (
        "delivery.timeout.ms",
        "the produce operation's delivery-timeout",
    ),
    (
        "message.max.bytes",
        "the container property kafka.max.request.size",
    ),
];

/// Checks a pass-through librdkafka property name: it must be one librdkafka knows and not one
/// Sluice sets. The error says why, with close matches for a misspelling.
pub fn check_property(name: &str) -> Result<(), String> {
    if let Some((_, owner)) = OWNED.iter().find(|(owned, _)| *owned == name) {
        return Err(format!("{name} is set by {owner}; use that instead"));
    }
    if LIBRDKAFKA_PROPERTIES.contains(&name) {
        return Ok(());
    }
    let mut close: Vec<(f64, &str)> = LIBRDKAFKA_PROPERTIES
        .iter()
        .map(|known| (strsim::jaro_winkler(name, known), *known))
        .filter(|(score, _)| *score > 0.85)
        .collect();
    close.sort_by(|a, b| b.0.total_cmp(&a.0));
    let close: Vec<&str> = close.into_iter().take(3).map(|(_, k)| k).collect();
    if close.is_empty() {
        Err(format!(
            "{name} is not a librdkafka property (see librdkafka's CONFIGURATION.md)"
        ))
    } else {
        Err(format!(
            "{name} is not a librdkafka property; close matches: {}",
            close.join(", ")
        ))
    }
}

/// Whether a property's value must not be shown (passwords, secrets, tokens, keys).
pub fn is_sensitive_property(name: &str) -> bool {
    [
        "password",
        "secret",
        "token",
        "jaas",
        "key.pem",
        "certificate.pem",
        "passphrase",
    ]
    .iter()
    .any(|word| name.contains(word))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_do_not_print() {
        let secret = Secret::new("hunter2");
        assert_eq!(format!("{secret} {secret:?}"), "*** Secret(***)");
        assert_eq!(secret.expose(), "hunter2");
    }

    #[test]
    fn pass_through_properties_are_checked() {
        assert_eq!(check_property("socket.keepalive.enable"), Ok(()));
        assert_eq!(
            check_property("sasl.password"),
            Err("sasl.password is set by the connection's password; use that instead".into())
        );
        assert_eq!(
            check_property("socket.keepalive.enabled"),
            Err(
                "socket.keepalive.enabled is not a librdkafka property; close matches: \
                 socket.keepalive.enable, socket.nagle.disable"
                    .into()
            )
        );
        assert!(check_property("zzz")
            .unwrap_err()
            .contains("not a librdkafka property"));
    }
}
