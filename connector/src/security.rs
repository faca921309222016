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

impl Sasl {
    /// `mechanism` for `username`, with nothing else set: the start of every mechanism's
    /// credentials (`Sasl { password: …, ..Sasl::new(…) }`).
    pub fn new(mechanism: SaslMechanism, username: impl Into<String>) -> Self {
        Self {
            mechanism,
            username: username.into(),
            password: None,
            kerberos: None,
            oauth: None,
            aws_iam: None,
        }
    }
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
    /// How the client id and secret travel to the token endpoint.
    pub client_authentication: ClientAuthentication,
}

/// How an OAuth client authenticates to the token endpoint (RFC 6749 2.3.1; the names are the
/// `token_endpoint_auth_method` values of OpenID Connect).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ClientAuthentication {
    /// `client_secret_post`: client_id and client_secret in the form body (the default: what
    /// most providers accept).
    #[default]
    Post,
    /// `client_secret_basic`: HTTP Basic authentication with the client id and secret, which
    /// some providers require.
    Basic,
}

impl ClientAuthentication {
    /// Every method with its name, as configurations write them.
    pub const NAMES: [(&'static str, Self); 2] = [
        ("client_secret_post", Self::Post),
        ("client_secret_basic", Self::Basic),
    ];
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

/// A setting of Sluice's from which it derives a librdkafka property itself, named for the
/// connector's own settings ([`crate::ConnectionConfig`], the operations' settings,
/// [`crate::Limits`]); the caller names the field a user writes.
///
/// Not `#[non_exhaustive]`: a caller that names a field for each setting should be told by the
/// compiler when one is added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setting {
    /// The connection's bootstrap servers ([`crate::Bootstrap`]).
    Bootstrap,
    /// The connection's client id.
    ClientId,
    /// The connection's security protocol.
    SecurityProtocol,
    /// The connection's SASL mechanism.
    SaslMechanism,
    /// The connection's SASL user name.
    SaslUsername,
    /// The connection's SASL password.
    SaslPassword,
    /// The CA certificates of the connection's TLS settings.
    TlsCaFile,
    /// The client certificate of the connection's TLS settings.
    TlsCertificateFile,
    /// The client certificate's key of the connection's TLS settings.
    TlsKeyFile,
    /// The key's password of the connection's TLS settings.
    TlsKeyPassword,
    /// Whether the connection checks that a broker's certificate names its host.
    TlsVerifyHostname,
    /// The operation's consumer group, or the connection's default one.
    ConsumerGroup,
    /// A Consume operation's autocommit: offsets follow documents.
    Autocommit,
    /// No setting: Sluice stores an offset only once its document is done.
    OffsetStore,
    /// A Consume or Listen operation's offset reset.
    OffsetReset,
    /// A Produce operation's acks.
    Acks,
    /// Idempotence, which comes with a Produce operation's acks=all.
    Idempotence,
    /// A Produce operation's compression.
    Compression,
    /// A Produce operation's delivery timeout.
    DeliveryTimeout,
    /// The host's largest message size ([`crate::Limits::max_request_size`]).
    MaxRequestSize,
}

/// In the connector's terms, e.g. `the connection's bootstrap servers`.
impl fmt::Display for Setting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Bootstrap => "the connection's bootstrap servers",
            Self::ClientId => "the connection's client id",
            Self::SecurityProtocol => "the connection's security protocol",
            Self::SaslMechanism => "the connection's SASL mechanism",
            Self::SaslUsername => "the connection's SASL user name",
            Self::SaslPassword => "the connection's SASL password",
            Self::TlsCaFile => "the connection's TLS CA file",
            Self::TlsCertificateFile => "the connection's TLS certificate file",
            Self::TlsKeyFile => "the connection's TLS key file",
            Self::TlsKeyPassword => "the connection's TLS key password",
            Self::TlsVerifyHostname => "the connection's TLS host name verification",
            Self::ConsumerGroup => "the operation's (or connection's) consumer group",
            Self::Autocommit => {
                "Sluice (offsets follow documents: the consume operation's autocommit)"
            }
            Self::OffsetStore => "Sluice (offsets follow documents)",
            Self::OffsetReset => "the consume operation's offset reset",
            Self::Acks => "the produce operation's acks",
            Self::Idempotence => "the produce operation's acks (idempotence comes with acks=all)",
            Self::Compression => "the produce operation's compression",
            Self::DeliveryTimeout => "the produce operation's delivery timeout",
            Self::MaxRequestSize => "the host's max.request.size limit",
        })
    }
}

/// librdkafka properties Sluice sets itself, with the setting that controls each. A
/// pass-through property cannot override them silently.
const OWNED: &[(&str, Setting)] = &[
    ("bootstrap.servers", Setting::Bootstrap),
    ("metadata.broker.list", Setting::Bootstrap),
    ("client.id", Setting::ClientId),
    ("security.protocol", Setting::SecurityProtocol),
    ("sasl.mechanism", Setting::SaslMechanism),
    ("sasl.mechanisms", Setting::SaslMechanism),
    ("sasl.username", Setting::SaslUsername),
    ("sasl.password", Setting::SaslPassword),
    ("ssl.ca.location", Setting::TlsCaFile),
    ("ssl.certificate.location", Setting::TlsCertificateFile),
    ("ssl.key.location", Setting::TlsKeyFile),
    ("ssl.key.password", Setting::TlsKeyPassword),
    (
        "ssl.endpoint.identification.algorithm",
        Setting::TlsVerifyHostname,
    ),
    ("group.id", Setting::ConsumerGroup),
    ("enable.auto.commit", Setting::Autocommit),
    ("enable.auto.offset.store", Setting::OffsetStore),
    ("auto.offset.reset", Setting::OffsetReset),
    ("acks", Setting::Acks),
    ("request.required.acks", Setting::Acks),
    ("enable.idempotence", Setting::Idempotence),
    ("compression.codec", Setting::Compression),
    ("compression.type", Setting::Compression),
    ("message.timeout.ms", Setting::DeliveryTimeout),
    ("delivery.timeout.ms", Setting::DeliveryTimeout),
    ("message.max.bytes", Setting::MaxRequestSize),
];

/// Why a pass-through librdkafka property is not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PropertyError {
    /// Sluice sets the property itself, from one of its settings.
    #[error("{name} is set by {owner}; use that instead")]
    SetBySluice {
        /// The property.
        name: String,
        /// The setting it comes from.
        owner: Setting,
    },
    /// librdkafka does not know the property.
    #[error("{}", unknown_property_message(.name, .close_matches))]
    Unknown {
        /// The property.
        name: String,
        /// Up to three known properties it resembles, closest first.
        close_matches: Vec<&'static str>,
    },
}

fn unknown_property_message(name: &str, close_matches: &[&str]) -> String {
    if close_matches.is_empty() {
        format!("{name} is not a librdkafka property (see librdkafka's CONFIGURATION.md)")
    } else {
        format!(
            "{name} is not a librdkafka property; close matches: {}",
            close_matches.join(", ")
        )
    }
}

/// Checks a pass-through librdkafka property name: it must be one librdkafka knows and not one
/// Sluice sets. For a misspelling, the error has close matches.
pub fn check_property(name: &str) -> Result<(), PropertyError> {
    if let Some(&(_, owner)) = OWNED.iter().find(|(owned, _)| *owned == name) {
        return Err(PropertyError::SetBySluice {
            name: name.to_string(),
            owner,
        });
    }
    if LIBRDKAFKA_PROPERTIES.contains(&name) {
        return Ok(());
    }
    let mut close: Vec<(f64, &'static str)> = LIBRDKAFKA_PROPERTIES
        .iter()
        .map(|known| (strsim::jaro_winkler(name, known), *known))
        .filter(|(score, _)| *score > 0.85)
        .collect();
    close.sort_by(|a, b| b.0.total_cmp(&a.0));
    Err(PropertyError::Unknown {
        name: name.to_string(),
        close_matches: close.into_iter().take(3).map(|(_, k)| k).collect(),
    })
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
            Err(PropertyError::SetBySluice {
                name: "sasl.password".into(),
                owner: Setting::SaslPassword
            })
        );
        let misspelt = check_property("socket.keepalive.enabled");
        assert_eq!(
            misspelt,
            Err(PropertyError::Unknown {
                name: "socket.keepalive.enabled".into(),
                close_matches: vec!["socket.keepalive.enable", "socket.nagle.disable"]
            })
        );
        assert_eq!(
            misspelt.map_err(|e| e.to_string()),
            Err(
                "socket.keepalive.enabled is not a librdkafka property; close matches: \
                 socket.keepalive.enable, socket.nagle.disable"
                    .into()
            )
        );
        assert!(check_property("zzz")
            .unwrap_err()
            .to_string()
            .contains("not a librdkafka property"));
        // Every property Sluice sets is one librdkafka knows.
        for (name, _) in OWNED {
            assert!(LIBRDKAFKA_PROPERTIES.contains(name), "{name}");
        }
    }
}
