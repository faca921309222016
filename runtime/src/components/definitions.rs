//! Typed component definitions and the validation that builds them from the raw structs.

use std::path::Path;
use std::time::Duration;

use sluice_connector::consume::OffsetReset;
use sluice_connector::produce::{Acks, Compression, ProduceSettings};
use sluice_connector::{
    AwsIam, Bootstrap, ConnectionConfig, Header, Kerberos, OAuth, Sasl, SaslMechanism, Secret,
    SecurityProtocol, Tls,
};

use super::raw::{
    RawAwsIam, RawConnection, RawOAuth, RawOperation, RawProcess, RawProperty, RawStep, RawTls,
};
use super::source::{Location, ScannedComponent, SourceFile};
use super::values;
use super::LoadError;

/// A reference to another component, with where it is written (for "not defined" errors).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// The referenced component's id.
    pub id: String,
    /// Where the reference is written.
    pub at: Location,
}

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

/// A validated `<operation>`.
#[derive(Debug, Clone)]
pub struct OperationDefinition {
    /// Unique among operations.
    pub id: String,
    /// Where it is defined.
    pub origin: Location,
    /// What it is for.
    pub description: Option<String>,
    /// The connection it runs on.
    pub connection: Reference,
    /// What it does.
    pub kind: OperationKind,
}

/// The operation types and their settings.
#[derive(Debug, Clone)]
pub enum OperationKind {
    /// Sends documents to a topic.
    Produce(ProduceDefinition),
    /// Reads documents from a topic.
    Consume(ConsumeDefinition),
    /// Commits consumed positions for a consumer group.
    CommitOffset(CommitOffsetDefinition),
    /// Waits for messages and starts a process execution for each batch (`sluice serve`).
    Listen(ListenDefinition),
}

impl OperationKind {
    /// The `type` attribute's value.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Produce(_) => "produce",
            Self::Consume(_) => "consume",
            Self::CommitOffset(_) => "commit-offset",
            Self::Listen(_) => "listen",
        }
    }
}

/// A Produce operation as defined.
#[derive(Debug, Clone)]
pub struct ProduceDefinition {
    /// The connector's settings (topic, acks, compression, delivery timeout).
    pub settings: ProduceSettings,
    /// Whether a document's topic-name property picks the topic. Off by default: consumed
    /// documents carry the topic they came from, which must not redirect a later Produce.
    pub dynamic_topic: bool,
    /// Partition for documents that do not name one.
    pub partition: Option<i32>,
    /// Headers every document gets; a document's own header of the same name wins.
    pub headers: Vec<Header>,
}

/// A Commit Offset operation as defined.
#[derive(Debug, Clone)]
pub struct CommitOffsetDefinition {
    /// The operation's own consumer group, else the connection's.
    pub consumer_group: Option<String>,
}

/// A Consume operation as defined; the consumer group may still come from the connection.
#[derive(Debug, Clone)]
pub struct ConsumeDefinition {
    /// Topic to read; `None` only with `dynamic_topic`.
    pub topic: Option<String>,
    /// As a step, read the topic each input document's topic-name property names.
    pub dynamic_topic: bool,
    /// The operation's own consumer group, if it names one.
    pub consumer_group: Option<String>,
    /// Minimum Number of Messages: poll until at least this many are held (0: until the wait ends).
    pub minimum_messages: u32,
    /// Maximum wait time.
    pub maximum_wait: Duration,
    /// Where to start without a committed offset.
    pub offset_reset: OffsetReset,
    /// Commit consumed offsets as part of the operation.
    pub autocommit: bool,
    /// Manual partition assignment; `None`: the group assigns partitions.
    pub partitions: Option<Vec<i32>>,
    /// Overrides the connection's client id.
    pub client_id: Option<String>,
}

/// Consume defaults, the platform's where it documents one.
impl ConsumeDefinition {
    /// Minimum Number of Messages when the operation does not say: one message.
    pub const DEFAULT_MINIMUM_MESSAGES: u32 = 1;
    /// Maximum wait time when the operation does not say.
    pub const DEFAULT_MAXIMUM_WAIT: Duration = Duration::from_secs(30);
}

/// A Listen operation as defined; the consumer group may still come from the connection.
#[derive(Debug, Clone)]
pub struct ListenDefinition {
    /// Topics to listen to.
    pub topics: Vec<String>,
    /// The operation's own consumer group, if it names one.
    pub consumer_group: Option<String>,
    /// Where to start without a committed offset.
    pub offset_reset: OffsetReset,
    /// Manual partition assignment (one topic only); `None`: the group assigns partitions.
    pub partitions: Option<Vec<i32>>,
    /// Overrides the connection's client id.
    pub client_id: Option<String>,
    /// Most documents one execution receives.
    pub max_messages: std::num::NonZeroUsize,
    /// How often a failing document is tried again before it goes to the dead-letter topic.
    pub retry_limit: u32,
    /// The wait before the first retry; it doubles with each further retry.
    pub retry_backoff: Duration,
    /// Where documents go that still fail after the retries; without one, such a document
    /// stops the listener (nothing is skipped silently).
    pub dead_letter_topic: Option<String>,
    /// Each document its own execution, instead of one per partition and batch.
    pub execution_per_document: bool,
}

/// Listen defaults.
impl ListenDefinition {
    /// Documents per execution when the operation does not say.
    pub const DEFAULT_MAX_MESSAGES: usize = 100;
    /// Retries of a failing document when the operation does not say.
    pub const DEFAULT_RETRY_LIMIT: u32 = 3;
    /// First retry wait when the operation does not say.
    pub const DEFAULT_RETRY_BACKOFF: Duration = Duration::from_secs(1);
}

/// A validated `<process>`.
#[derive(Debug, Clone)]
pub struct ProcessDefinition {
    /// Unique among processes; what `sluice run` names.
    pub id: String,
    /// Where it is defined.
    pub origin: Location,
    /// What it is for, shown by `sluice validate`.
    pub description: Option<String>,
    /// The operation that produces the documents; `None`: documents come from `--input`.
    pub start: Option<Reference>,
    /// What happens to each document, in order.
    pub steps: Vec<Step>,
}

/// One step of a process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Runs a connector operation on the documents.
    Connector {
        /// The operation.
        operation: Reference,
    },
    /// Sets document properties on each document, in order.
    SetProperties(Vec<SetProperty>),
}

/// A document property a step can set or read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PropertyName {
    /// `message-key`
    MessageKey,
    /// `topic-name`
    TopicName,
    /// `partition`
    Partition,
    /// `timestamp`
    Timestamp,
    /// `header:NAME`
    Header(String),
}

impl PropertyName {
    const VALID: &'static str = "message-key, topic-name, partition, timestamp or header:NAME";

    fn parse(text: &str) -> Result<Self, String> {
        match text {
            "message-key" => Ok(Self::MessageKey),
            "topic-name" => Ok(Self::TopicName),
            "partition" => Ok(Self::Partition),
            "timestamp" => Ok(Self::Timestamp),
            _ => match text.strip_prefix("header:") {
                Some(name) if !name.is_empty() => Ok(Self::Header(name.to_string())),
                _ => Err(format!("must be {}, got \"{text}\"", Self::VALID)),
            },
        }
    }
}

impl std::fmt::Display for PropertyName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::MessageKey => f.write_str("message-key"),
            Self::TopicName => f.write_str("topic-name"),
            Self::Partition => f.write_str("partition"),
            Self::Timestamp => f.write_str("timestamp"),
            Self::Header(name) => write!(f, "header:{name}"),
        }
    }
}

/// A tracked property a step can read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrackedName {
    /// `topic`
    Topic,
    /// `partition`
    Partition,
    /// `offset`
    Offset,
    /// `key`
    Key,
    /// `timestamp`
    Timestamp,
    /// `header:NAME`
    Header(String),
}

impl TrackedName {
    fn parse(text: &str) -> Result<Self, String> {
        match text {
            "topic" => Ok(Self::Topic),
            "partition" => Ok(Self::Partition),
            "offset" => Ok(Self::Offset),
            "key" => Ok(Self::Key),
            "timestamp" => Ok(Self::Timestamp),
            _ => match text.strip_prefix("header:") {
                Some(name) if !name.is_empty() => Ok(Self::Header(name.to_string())),
                _ => Err(format!(
                    "must be topic, partition, offset, key, timestamp or header:NAME, got \"{text}\""
                )),
            },
        }
    }
}

impl std::fmt::Display for TrackedName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Topic => f.write_str("topic"),
            Self::Partition => f.write_str("partition"),
            Self::Offset => f.write_str("offset"),
            Self::Key => f.write_str("key"),
            Self::Timestamp => f.write_str("timestamp"),
            Self::Header(name) => write!(f, "header:{name}"),
        }
    }
}

/// Where a set-properties value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PropertySource {
    /// A constant (`value="…"`).
    Constant(String),
    /// Another document property (`from-property="…"`, `from-header="NAME"`).
    Property(PropertyName),
    /// A tracked property (`from-tracked="…"`).
    Tracked(TrackedName),
}

/// One `<property>` of a set-properties step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetProperty {
    /// The property set.
    pub target: PropertyName,
    /// Where its value comes from.
    pub source: PropertySource,
    /// When the source is absent: leave the target as it is (`true`) or fail the document.
    pub optional: bool,
}

/// Validation state for one component: where it is, and the errors found so far.
pub(crate) struct Checker<'a> {
    file: &'a SourceFile,
    scanned: &'a ScannedComponent,
    pub id: Option<String>,
    pub errors: Vec<LoadError>,
}

impl<'a> Checker<'a> {
    pub fn new(file: &'a SourceFile, scanned: &'a ScannedComponent) -> Self {
        Self {
            file,
            scanned,
            id: None,
            errors: Vec::new(),
        }
    }

    pub fn file(&self) -> &'a SourceFile {
        self.file
    }

    pub fn scanned(&self) -> &'a ScannedComponent {
        self.scanned
    }

    pub fn origin(&self) -> Location {
        self.file.location(self.scanned.start())
    }

    fn base_dir(&self) -> &Path {
        self.file.path.parent().unwrap_or(Path::new("."))
    }

    /// A path written in the component, relative to the component file's folder.
    pub fn relative_path(&self, path: &str) -> std::path::PathBuf {
        self.base_dir().join(path)
    }

    pub fn error_at(&mut self, offset: usize, message: String) {
        self.errors.push(LoadError::new(
            &self.file.path,
            Some(self.file.location(offset)),
            Some((self.scanned.kind, self.id.clone())),
            message,
        ));
    }

    /// Where a field is written: an element of that name, else an attribute of the component.
    pub fn field_offset(&self, field: &str) -> usize {
        self.scanned
            .element(field)
            .or_else(|| self.scanned.attribute("", field))
            .unwrap_or(self.scanned.start())
    }

    pub fn field_location(&self, field: &str) -> Location {
        self.file.location(self.field_offset(field))
    }

    pub fn field_error(&mut self, field: &str, predicate: String) {
        self.error_at(self.field_offset(field), format!("{field} {predicate}"));
    }

    /// The field's text after `${…}` replacement, trimmed; `None` when absent or invalid.
    pub fn text(&mut self, field: &str, raw: Option<String>) -> Option<String> {
        let raw = raw?;
        match values::interpolate(raw.trim(), self.base_dir()) {
            Ok(v) => Some(v.trim().to_string()),
            Err(predicate) => {
                self.field_error(field, predicate);
                None
            }
        }
    }

    /// A required field; its absence is reported with `hint` on what to write.
    pub fn required(&mut self, field: &str, raw: Option<String>, hint: &str) -> Option<String> {
        if raw.is_none() {
            let at = self.scanned.start();
            self.error_at(at, format!("{field} is missing: {hint}"));
            return None;
        }
        let value = self.text(field, raw)?;
        if value.is_empty() {
            self.field_error(field, format!("is empty: {hint}"));
            return None;
        }
        Some(value)
    }

    /// Parses an optional field; `None` when absent or invalid (then an error is recorded).
    pub fn parse<T>(
        &mut self,
        field: &str,
        raw: Option<String>,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        let value = self.text(field, raw)?;
        match parse(&value) {
            Ok(v) => Some(v),
            Err(predicate) => {
                self.field_error(field, predicate);
                None
            }
        }
    }

    /// The component's `id` attribute, checked; also names the component in later errors.
    pub fn component_id(&mut self, raw: Option<String>) -> Option<String> {
        let kind = self.scanned.kind.name();
        let hint = format!("give the {kind} a unique id attribute, e.g. <{kind} id=\"orders\">");
        let id = self.required("id", raw, &hint)?;
        match values::id(&id) {
            Ok(id) => {
                self.id = Some(id.clone());
                Some(id)
            }
            Err(predicate) => {
                self.field_error("id", predicate);
                None
            }
        }
    }

    pub fn reference(&mut self, field: &str, id: String) -> Reference {
        Reference {
            at: self.field_location(field),
            id,
        }
    }
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
    // Kerberos asks for a ticket for service/host: the host must be the broker's name.
    if let (
        Some(Some(Sasl {
            kerberos: Some(_), ..
        })),
        Some(Bootstrap::Servers(servers)),
    ) = (&sasl, &bootstrap)
    {
        for server in servers {
            let host = server.rsplit_once(':').map_or(server.as_str(), |(h, _)| h);
            if host.parse::<std::net::IpAddr>().is_ok() {
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
    let tls = match raw.tls {
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
    };
    let mut properties = Vec::new();
    for (index, property) in raw
        .properties
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
            c.error_at(at, format!("properties: {problem}"));
            continue;
        }
        if let Some(value) = c.text("properties", Some(property.value.unwrap_or_default())) {
            properties.push((name, value));
        }
    }
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
            max_request_size_cap: service.max_request_size_cap,
        },
    })
}

/// What a user coming from Java clients' MSK IAM set-up is told.
pub(crate) const AWS_MSK_IAM_NAME: &str = "AWS_MSK_IAM is the Java client's name for Amazon MSK \
     IAM; Sluice speaks it as OAUTHBEARER: write <sasl-mechanism>OAUTHBEARER</sasl-mechanism> \
     with preset=\"amazon-msk\" (or with <aws-iam/>)";

/// The SASL fields of a raw connection.
struct SaslFields {
    mechanism: Option<String>,
    username: Option<String>,
    password: Option<String>,
    service_name: Option<String>,
    oauth: Option<RawOAuth>,
    aws_iam: Option<RawAwsIam>,
}

/// The SASL part of a connection: `Some(None)` when the protocol uses no SASL, `None` when
/// something is wrong (errors recorded). Passwords are never echoed in messages.
fn sasl(
    c: &mut Checker<'_>,
    protocol: SecurityProtocol,
    fields: SaslFields,
    bootstrap: Option<&Bootstrap>,
) -> Option<Option<Sasl>> {
    let SaslFields {
        mechanism,
        username,
        password,
        service_name,
        oauth,
        aws_iam,
    } = fields;
    if !protocol.uses_sasl() {
        let mut fine = true;
        for (field, given) in [
            ("sasl-mechanism", mechanism.is_some()),
            ("username", username.is_some()),
            ("password", password.is_some()),
            ("service-name", service_name.is_some()),
            ("oauth", oauth.is_some()),
            ("aws-iam", aws_iam.is_some()),
        ] {
            if given {
                c.field_error(
                    field,
                    format!(
                        "applies only to security-protocol SASL_PLAINTEXT or SASL_SSL (this \
                         connection's is {})",
                        protocol.name()
                    ),
                );
                fine = false;
            }
        }
        return fine.then_some(None);
    }
    let hint = format!(
        "security-protocol {} needs one: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, GSSAPI or \
         OAUTHBEARER",
        protocol.name()
    );
    let mechanism = c.required("sasl-mechanism", mechanism, &hint)?;
    let mechanism = match mechanism.as_str() {
        "PLAIN" => SaslMechanism::Plain,
        "SCRAM-SHA-256" => SaslMechanism::ScramSha256,
        "SCRAM-SHA-512" => SaslMechanism::ScramSha512,
        "GSSAPI" => SaslMechanism::Gssapi,
        "OAUTHBEARER" => SaslMechanism::OAuthBearer,
        "AWS_MSK_IAM" => {
            c.field_error("sasl-mechanism", AWS_MSK_IAM_NAME.into());
            return None;
        }
        other => {
            c.field_error(
                "sasl-mechanism",
                format!(
                    "must be one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, GSSAPI, OAUTHBEARER; \
                     got \"{other}\""
                ),
            );
            return None;
        }
    };
    if mechanism == SaslMechanism::OAuthBearer {
        for (field, given) in [
            ("username", username.is_some()),
            ("password", password.is_some()),
        ] {
            if given {
                c.field_error(
                    field,
                    "does not apply to OAUTHBEARER, which authenticates with <oauth> (token-endpoint, \
                     client-id, client-secret) or <aws-iam> (Amazon MSK IAM)"
                        .into(),
                );
                return None;
            }
        }
        let raw = match (oauth, aws_iam) {
            (Some(_), Some(_)) => {
                c.field_error(
                    "aws-iam",
                    "and oauth exclude each other: Amazon MSK IAM signs its own tokens with AWS \
                     credentials; keep one"
                        .into(),
                );
                return None;
            }
            (None, Some(raw)) => {
                return aws_iam_settings(c, raw, bootstrap).map(|aws_iam| {
                    Some(Sasl {
                        mechanism,
                        // librdkafka's name for the token's principal; the access key id that
                        // signs each token is logged when it is signed.
                        username: "aws-iam".into(),
                        password: None,
                        kerberos: None,
                        oauth: None,
                        aws_iam: Some(aws_iam),
                    })
                });
            }
            (Some(raw), None) => raw,
            (None, None) => {
                let at = c.scanned().start();
                c.error_at(
                    at,
                    "oauth is missing: OAUTHBEARER needs <oauth><token-endpoint>https://…</token-endpoint>\
                     <client-id>…</client-id><client-secret>…</client-secret></oauth>, or \
                     <aws-iam/> for Amazon MSK IAM"
                        .into(),
                );
                return None;
            }
        };
        let endpoint = c.required(
            "oauth/token-endpoint",
            raw.token_endpoint,
            "give the identity provider's token URL",
        )?;
        let loopback = ["http://127.0.0.1:", "http://localhost:", "http://[::1]:"];
        if !endpoint.starts_with("https://") && !loopback.iter().any(|p| endpoint.starts_with(p)) {
            c.field_error(
                "oauth/token-endpoint",
                format!(
                    "must be an https:// URL (the client secret travels with every token \
                     request), got \"{endpoint}\""
                ),
            );
            return None;
        }
        let client_id = c.required("oauth/client-id", raw.client_id, "give the OAuth client id");
        let client_secret = c.required(
            "oauth/client-secret",
            raw.client_secret,
            "give the OAuth client secret, as ${env:NAME} or ${file:PATH}",
        );
        let scope = c.text("oauth/scope", raw.scope).filter(|s| !s.is_empty());
        return Some(Some(Sasl {
            mechanism,
            username: client_id.clone()?,
            password: None,
            kerberos: None,
            oauth: Some(OAuth {
                token_endpoint: endpoint,
                client_id: client_id?,
                client_secret: Secret::new(client_secret?),
                scope,
            }),
            aws_iam: None,
        }));
    }
    for (field, given) in [("oauth", oauth.is_some()), ("aws-iam", aws_iam.is_some())] {
        if given {
            c.field_error(
                field,
                format!(
                    "applies only to sasl-mechanism OAUTHBEARER (this connection's is {})",
                    mechanism.name()
                ),
            );
            return None;
        }
    }
    if mechanism == SaslMechanism::Gssapi {
        let principal = c.required(
            "username",
            username,
            "GSSAPI needs the client principal, e.g. <username>svc-orders@CORP.EXAMPLE.COM</username>",
        )?;
        if let Err(predicate) = kerberos_principal(&principal) {
            c.field_error("username", predicate);
            return None;
        }
        let password = c.text("password", password).filter(|p| !p.is_empty());
        let service_name = c
            .text("service-name", service_name)
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| Kerberos::DEFAULT_SERVICE_NAME.to_string());
        return Some(Some(Sasl {
            mechanism,
            username: principal,
            password: password.map(Secret::new),
            kerberos: Some(Kerberos {
                service_name,
                // Found in the custom library when the host starts.
                keytab: None,
            }),
            oauth: None,
            aws_iam: None,
        }));
    }
    if service_name.is_some() {
        c.field_error(
            "service-name",
            format!(
                "applies only to sasl-mechanism GSSAPI (this connection's is {})",
                mechanism.name()
            ),
        );
        return None;
    }
    let username = c.required(
        "username",
        username,
        &format!("{} needs the user name", mechanism.name()),
    );
    let password = c.required(
        "password",
        password,
        &format!(
            "{} needs the password; write it as ${{env:NAME}} or ${{file:PATH}} to keep it out of \
             the file",
            mechanism.name()
        ),
    );
    Some(Some(Sasl {
        mechanism,
        username: username?,
        password: Some(Secret::new(password?)),
        kerberos: None,
        oauth: None,
        aws_iam: None,
    }))
}

/// `<aws-iam>`: the region comes from the field, else from the MSK broker host names, else
/// from AWS_REGION / AWS_DEFAULT_REGION, as the AWS SDKs would take it.
fn aws_iam_settings(
    c: &mut Checker<'_>,
    raw: RawAwsIam,
    bootstrap: Option<&Bootstrap>,
) -> Option<AwsIam> {
    let profile = c
        .text("aws-iam/profile", raw.profile)
        .filter(|p| !p.is_empty());
    let from_hosts = match bootstrap {
        Some(Bootstrap::Servers(servers)) => servers.iter().find_map(|server| {
            let host = server.rsplit_once(':').map_or(server.as_str(), |(h, _)| h);
            sluice_connector::msk_iam::region_of_host(host)
        }),
        _ => None,
    };
    let from_env = ["AWS_REGION", "AWS_DEFAULT_REGION"]
        .iter()
        .find_map(|name| std::env::var(name).ok().filter(|v| !v.trim().is_empty()));
    let region = c
        .text("aws-iam/region", raw.region)
        .filter(|r| !r.is_empty())
        .or(from_hosts)
        .or(from_env);
    let Some(region) = region else {
        c.field_error(
            "aws-iam",
            "needs the cluster's region: write <aws-iam><region>eu-west-1</region></aws-iam> (the \
             bootstrap servers do not name one, as MSK's b-1.NAME.ID.c2.kafka.REGION.amazonaws.com \
             do, and AWS_REGION is not set)"
                .into(),
        );
        return None;
    };
    let plain = region
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !plain || !region.contains('-') {
        c.field_error(
            "aws-iam/region",
            format!("must be an AWS region such as eu-west-1, got \"{region}\""),
        );
        return None;
    }
    Some(AwsIam { region, profile })
}

/// `primary[/instance]@REALM`: the realm names the keytab (`{REALM}.keytab`), and the name
/// goes into a shell command (kinit), so only plain characters are allowed.
fn kerberos_principal(principal: &str) -> Result<(), String> {
    let plain = |part: &str| {
        !part.is_empty()
            && part
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'/'))
    };
    match principal.rsplit_once('@') {
        Some((name, realm)) if plain(name) && plain(realm) && !realm.contains('/') => Ok(()),
        _ => Err(format!(
            "must be a Kerberos principal user@REALM (letters, digits, '.', '_', '-', '/'), got \
             \"{principal}\": the realm, after the @, names the keytab {{REALM}}.keytab"
        )),
    }
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
    let ca_given = raw.ca_file.is_some();
    let ca_file = pem(
        "tls/ca-file",
        raw.ca_file,
        "-----BEGIN CERTIFICATE-----",
        "certificate",
    );
    let cert_given = raw.certificate_file.is_some();
    let certificate_file = pem(
        "tls/certificate-file",
        raw.certificate_file,
        "-----BEGIN CERTIFICATE-----",
        "certificate",
    );
    let key_given = raw.key_file.is_some();
    let key_file = pem(
        "tls/key-file",
        raw.key_file,
        "PRIVATE KEY-----",
        "private key",
    );
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

/// The elements each operation type takes.
pub(crate) fn operation_fields(kind: &str) -> Option<&'static [&'static str]> {
    match kind {
        "produce" => Some(&[
            "description",
            "topic",
            "dynamic-topic",
            "partition",
            "headers",
            "acks",
            "compression",
            "delivery-timeout",
        ]),
        "consume" => Some(&[
            "description",
            "topic",
            "dynamic-topic",
            "consumer-group",
            "minimum-messages",
            "maximum-wait",
            "offset-reset",
            "autocommit",
            "partitions",
            "client-id",
        ]),
        "commit-offset" => Some(&["description", "consumer-group"]),
        "listen" => Some(&[
            "description",
            "topic",
            "consumer-group",
            "offset-reset",
            "partitions",
            "client-id",
            "max-messages",
            "retry-limit",
            "retry-backoff",
            "dead-letter-topic",
            "execution-per",
        ]),
        _ => None,
    }
}

const OPERATION_TYPES: &[(&str, &str)] = &[
    ("produce", "produce"),
    ("consume", "consume"),
    ("commit-offset", "commit-offset"),
    ("listen", "listen"),
];

pub(crate) fn operation(c: &mut Checker<'_>, raw: RawOperation) -> Option<OperationDefinition> {
    let id = c.component_id(raw.id);
    let kind = c
        .required(
            "type",
            raw.kind,
            "say what the operation does: type=\"produce\", \"consume\", \"commit-offset\" \
             or \"listen\"",
        )
        .and_then(|t| {
            values::one_of(&t, OPERATION_TYPES)
                .map_err(|p| c.field_error("type", p))
                .ok()
        });
    let connection = c
        .required(
            "connection",
            raw.connection,
            "name the connection it runs on, e.g. connection=\"local-kafka\"",
        )
        .map(|id| c.reference("connection", id));
    let description = c.text("description", raw.description);
    let kind = kind?;

    // Fields given that this type does not take.
    let allowed = operation_fields(kind).expect("a known type");
    let given = [
        ("topic", raw.topic.is_some()),
        ("dynamic-topic", raw.dynamic_topic.is_some()),
        ("partition", raw.partition.is_some()),
        ("headers", raw.headers.is_some()),
        ("acks", raw.acks.is_some()),
        ("compression", raw.compression.is_some()),
        ("delivery-timeout", raw.delivery_timeout.is_some()),
        ("consumer-group", raw.consumer_group.is_some()),
        ("minimum-messages", raw.minimum_messages.is_some()),
        ("maximum-wait", raw.maximum_wait.is_some()),
        ("offset-reset", raw.offset_reset.is_some()),
        ("autocommit", raw.autocommit.is_some()),
        ("partitions", raw.partitions.is_some()),
        ("client-id", raw.client_id.is_some()),
        ("max-messages", raw.max_messages.is_some()),
        ("retry-limit", raw.retry_limit.is_some()),
        ("retry-backoff", raw.retry_backoff.is_some()),
        ("dead-letter-topic", raw.dead_letter_topic.is_some()),
        ("execution-per", raw.execution_per.is_some()),
    ];
    for (field, present) in given {
        if present && !allowed.contains(&field) {
            c.field_error(
                field,
                format!(
                    "does not apply to a {kind} operation (its fields: {})",
                    allowed[1..].join(", ")
                ),
            );
        }
    }

    let topic_hint = "name the topic, e.g. <topic>orders</topic>";
    let kind = match kind {
        "produce" => {
            let dynamic_topic = c
                .parse("dynamic-topic", raw.dynamic_topic, values::boolean)
                .unwrap_or(false);
            let topic = if dynamic_topic && raw.topic.is_none() {
                None
            } else {
                let hint = "name the topic, e.g. <topic>orders</topic>, or set \
                            <dynamic-topic>true</dynamic-topic> to take it from each \
                            document's topic-name property";
                c.required("topic", raw.topic, hint).and_then(|t| {
                    values::topic(&t)
                        .map_err(|p| c.field_error("topic", p))
                        .ok()
                })
            };
            let partition = c.parse("partition", raw.partition, values::partition);
            let headers = raw
                .headers
                .map(|h| headers(c, h.headers))
                .unwrap_or_default();
            let acks = c.parse("acks", raw.acks, |v| {
                values::one_of(
                    v,
                    &[("all", Acks::All), ("1", Acks::Leader), ("0", Acks::None)],
                )
            });
            let compression = c.parse("compression", raw.compression, |v| {
                values::one_of(
                    v,
                    &[
                        ("none", Compression::None),
                        ("gzip", Compression::Gzip),
                        ("snappy", Compression::Snappy),
                        ("lz4", Compression::Lz4),
                        ("zstd", Compression::Zstd),
                    ],
                )
            });
            let delivery_timeout =
                c.parse("delivery-timeout", raw.delivery_timeout, values::duration);
            if topic.is_none() && !dynamic_topic {
                return None;
            }
            OperationKind::Produce(ProduceDefinition {
                settings: ProduceSettings {
                    topic,
                    acks: acks.unwrap_or_default(),
                    compression: compression.unwrap_or_default(),
                    delivery_timeout: delivery_timeout
                        .unwrap_or(ProduceSettings::DEFAULT_DELIVERY_TIMEOUT),
                },
                dynamic_topic,
                partition,
                headers,
            })
        }
        "consume" => {
            let dynamic_topic = c
                .parse("dynamic-topic", raw.dynamic_topic, values::boolean)
                .unwrap_or(false);
            let topic = if dynamic_topic && raw.topic.is_none() {
                None
            } else {
                let topic = c.required("topic", raw.topic, topic_hint).and_then(|t| {
                    values::topic(&t)
                        .map_err(|p| c.field_error("topic", p))
                        .ok()
                });
                Some(topic?)
            };
            let consumer_group = group(c, raw.consumer_group);
            let minimum = c.parse("minimum-messages", raw.minimum_messages, |v| {
                values::whole_number(v, 0)
            });
            let maximum_wait = c.parse("maximum-wait", raw.maximum_wait, values::duration);
            let offset_reset = c.parse("offset-reset", raw.offset_reset, |v| {
                values::one_of(
                    v,
                    &[
                        ("earliest", OffsetReset::Earliest),
                        ("latest", OffsetReset::Latest),
                    ],
                )
            });
            let autocommit = c.parse("autocommit", raw.autocommit, values::boolean);
            let partitions = c.parse("partitions", raw.partitions, values::partition_list);
            let client_id = c
                .text("client-id", raw.client_id)
                .filter(|id| !id.is_empty());
            OperationKind::Consume(ConsumeDefinition {
                topic,
                dynamic_topic,
                consumer_group,
                minimum_messages: minimum.unwrap_or(ConsumeDefinition::DEFAULT_MINIMUM_MESSAGES),
                maximum_wait: maximum_wait.unwrap_or(ConsumeDefinition::DEFAULT_MAXIMUM_WAIT),
                offset_reset: offset_reset.unwrap_or_default(),
                autocommit: autocommit.unwrap_or(false),
                partitions,
                client_id,
            })
        }
        "listen" => {
            let hint = "name the topic, e.g. <topic>orders</topic>, or several separated by \
                        commas";
            let topics = c.required("topic", raw.topic, hint).and_then(|t| {
                t.split(',')
                    .map(|topic| values::topic(topic.trim()))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|p| c.field_error("topic", p))
                    .ok()
            });
            let consumer_group = group(c, raw.consumer_group);
            let offset_reset = c.parse("offset-reset", raw.offset_reset, |v| {
                values::one_of(
                    v,
                    &[
                        ("earliest", OffsetReset::Earliest),
                        ("latest", OffsetReset::Latest),
                    ],
                )
            });
            let partitions = c.parse("partitions", raw.partitions, values::partition_list);
            if partitions.is_some() && topics.as_ref().is_some_and(|t| t.len() > 1) {
                c.field_error(
                    "partitions",
                    "applies to one topic; listen to several topics without partitions (the \
                     group assigns them), or use one listen operation per topic"
                        .into(),
                );
            }
            let client_id = c
                .text("client-id", raw.client_id)
                .filter(|id| !id.is_empty());
            let max_messages = c.parse("max-messages", raw.max_messages, |v| {
                values::whole_number(v, 1)
            });
            let retry_limit = c.parse("retry-limit", raw.retry_limit, |v| {
                values::whole_number(v, 0)
            });
            let retry_backoff = c.parse("retry-backoff", raw.retry_backoff, values::duration);
            let dead_letter_topic =
                c.parse("dead-letter-topic", raw.dead_letter_topic, values::topic);
            if let (Some(topics), Some(dlq)) = (&topics, &dead_letter_topic) {
                if topics.contains(dlq) {
                    c.field_error(
                        "dead-letter-topic",
                        format!(
                            "\"{dlq}\" is a topic this operation listens to: failed documents \
                             would come back forever; name another topic"
                        ),
                    );
                }
            }
            let execution_per_document = c.parse("execution-per", raw.execution_per, |v| {
                values::one_of(v, &[("batch", false), ("document", true)])
            });
            OperationKind::Listen(ListenDefinition {
                topics: topics?,
                consumer_group,
                offset_reset: offset_reset.unwrap_or_default(),
                partitions,
                client_id,
                max_messages: max_messages
                    .and_then(|n| std::num::NonZeroUsize::new(n as usize))
                    .unwrap_or(
                        std::num::NonZeroUsize::new(ListenDefinition::DEFAULT_MAX_MESSAGES)
                            .expect("not zero"),
                    ),
                retry_limit: retry_limit.unwrap_or(ListenDefinition::DEFAULT_RETRY_LIMIT),
                retry_backoff: retry_backoff.unwrap_or(ListenDefinition::DEFAULT_RETRY_BACKOFF),
                dead_letter_topic,
                execution_per_document: execution_per_document.unwrap_or(false),
            })
        }
        _ => OperationKind::CommitOffset(CommitOffsetDefinition {
            consumer_group: group(c, raw.consumer_group),
        }),
    };
    if !c.errors.is_empty() {
        return None;
    }
    Some(OperationDefinition {
        origin: c.origin(),
        description,
        id: id?,
        connection: connection?,
        kind,
    })
}

fn group(c: &mut Checker<'_>, raw: Option<String>) -> Option<String> {
    let group = c.text("consumer-group", raw);
    if group.as_deref() == Some("") {
        c.field_error(
            "consumer-group",
            "is empty: remove it or name a group".into(),
        );
    }
    group.filter(|g| !g.is_empty())
}

fn headers(c: &mut Checker<'_>, raw: Vec<super::raw::RawNamedValue>) -> Vec<Header> {
    let mut headers = Vec::new();
    for (index, header) in raw.into_iter().enumerate() {
        let at = c
            .scanned()
            .nth_element("headers/header", index)
            .unwrap_or(c.scanned().start());
        match header.name.map(|n| n.trim().to_string()).filter(|n| !n.is_empty()) {
            Some(name) => {
                let value = c.text("headers", Some(header.value.unwrap_or_default()));
                headers.push(Header {
                    name,
                    value: value.map(String::into_bytes),
                });
            }
            None => c.error_at(
                at,
                "headers: a <header> needs a name attribute, e.g. <header name=\"source\">sluice</header>"
                    .into(),
            ),
        }
    }
    headers
}

fn set_property(c: &mut Checker<'_>, raw: RawProperty, index: usize) -> Option<SetProperty> {
    const PATH: &str = "steps/set-properties/property";
    let at = |c: &Checker<'_>, attribute: &str| {
        c.scanned()
            .nth_attribute(PATH, index, attribute)
            .or_else(|| c.scanned().nth_element(PATH, index))
            .unwrap_or(c.scanned().start())
    };
    let fail = |c: &mut Checker<'_>, attribute: &str, message: String| {
        let offset = at(c, attribute);
        c.error_at(offset, format!("set-properties: {message}"));
    };
    let target = match raw.name.as_deref().map(str::trim) {
        None | Some("") => {
            fail(
                c,
                "name",
                format!("a <property> needs name=\"…\": {}", PropertyName::VALID),
            );
            return None;
        }
        Some(name) => match PropertyName::parse(name) {
            Ok(target) => target,
            Err(predicate) => {
                fail(c, "name", format!("name {predicate}"));
                return None;
            }
        },
    };
    let sources = [
        raw.value.is_some(),
        raw.from_property.is_some(),
        raw.from_header.is_some(),
        raw.from_tracked.is_some(),
    ];
    if sources.iter().filter(|&&given| given).count() != 1 {
        fail(
            c,
            "name",
            format!(
                "property {target} needs exactly one of value, from-property, from-header or \
                 from-tracked"
            ),
        );
        return None;
    }
    let source = if let Some(value) = raw.value {
        let value = c.text("value", Some(value))?;
        let check = match target {
            PropertyName::Partition => values::partition(&value).map(|_| ()),
            PropertyName::Timestamp => value
                .parse::<i64>()
                .map(|_| ())
                .map_err(|_| format!("must be milliseconds since the epoch, got \"{value}\"")),
            PropertyName::TopicName => values::topic(&value).map(|_| ()),
            _ => Ok(()),
        };
        if let Err(predicate) = check {
            fail(c, "value", format!("value for {target} {predicate}"));
            return None;
        }
        PropertySource::Constant(value)
    } else if let Some(name) = raw.from_property {
        match PropertyName::parse(name.trim()) {
            Ok(name) => PropertySource::Property(name),
            Err(predicate) => {
                fail(c, "from-property", format!("from-property {predicate}"));
                return None;
            }
        }
    } else if let Some(header) = raw.from_header {
        let header = header.trim().to_string();
        if header.is_empty() {
            fail(c, "from-header", "from-header must name a header".into());
            return None;
        }
        PropertySource::Property(PropertyName::Header(header))
    } else {
        let name = raw.from_tracked.unwrap_or_default();
        match TrackedName::parse(name.trim()) {
            Ok(name) => PropertySource::Tracked(name),
            Err(predicate) => {
                fail(c, "from-tracked", format!("from-tracked {predicate}"));
                return None;
            }
        }
    };
    let optional = match raw.optional.as_deref().map(values::boolean) {
        None => false,
        Some(Ok(optional)) => optional,
        Some(Err(predicate)) => {
            fail(c, "optional", format!("optional {predicate}"));
            return None;
        }
    };
    Some(SetProperty {
        target,
        source,
        optional,
    })
}

pub(crate) fn process(c: &mut Checker<'_>, raw: RawProcess) -> Option<ProcessDefinition> {
    let id = c.component_id(raw.id);
    let description = c.text("description", raw.description);
    let start = match raw.start {
        Some(start) => match start.operation {
            Some(op) => {
                let offset = c
                    .scanned
                    .attribute("start", "operation")
                    .unwrap_or(c.scanned.start());
                let op = op.trim().to_string();
                Some(Reference {
                    at: c.file.location(offset),
                    id: op,
                })
            }
            None => None,
        },
        None => None,
    };
    let mut steps = Vec::new();
    // Position among all <property> elements of the process, to locate errors.
    let mut property_index = 0;
    for (index, step) in raw
        .steps
        .map(|s| s.steps)
        .unwrap_or_default()
        .into_iter()
        .enumerate()
    {
        let offset = c
            .scanned
            .nth_child("steps", index)
            .map_or(c.scanned.start(), |t| t.start);
        match step {
            RawStep::SetProperties(step) => {
                let mut properties = Vec::new();
                for raw in step.properties {
                    if let Some(property) = set_property(c, raw, property_index) {
                        properties.push(property);
                    }
                    property_index += 1;
                }
                if properties.is_empty() && c.errors.is_empty() {
                    c.error_at(
                        offset,
                        format!(
                            "step {} (<set-properties>) sets nothing: add <property name=\"…\" \
                             value=\"…\"/> elements",
                            index + 1
                        ),
                    );
                }
                steps.push(Step::SetProperties(properties));
            }
            RawStep::Connector(step) => match step.operation.map(|o| o.trim().to_string()) {
                Some(op) if !op.is_empty() => {
                    let at = c
                        .scanned
                        .nth_child("steps", index)
                        .and_then(|t| t.attributes.iter().find(|(n, _)| n == "operation"))
                        .map_or(offset, |a| a.1);
                    steps.push(Step::Connector {
                        operation: Reference {
                            at: c.file.location(at),
                            id: op,
                        },
                    })
                }
                _ => c.error_at(
                    offset,
                    format!(
                        "step {} (<connector>) needs an operation attribute naming the operation \
                         to run, e.g. <connector operation=\"send-orders\"/>",
                        index + 1
                    ),
                ),
            },
        }
    }
    if start.is_none() && steps.is_empty() && c.errors.is_empty() {
        let at = c.scanned.start();
        c.error_at(
            at,
            "does nothing: give it a <start operation=\"…\"/> (a consume or listen \
             operation) or <steps> to run on the documents given with sluice run --input"
                .into(),
        );
    }
    if !c.errors.is_empty() {
        return None;
    }
    Some(ProcessDefinition {
        origin: c.origin(),
        id: id?,
        description,
        start,
        steps,
    })
}
