//! The SASL part of a `<connection>`: one function per mechanism (PLAIN and SCRAM with user
//! and password, GSSAPI with a Kerberos principal, OAUTHBEARER with an identity provider or
//! Amazon MSK IAM). Passwords are never echoed in messages.

use sluice_connector::{
    AwsIam, Bootstrap, ClientAuthentication, Kerberos, OAuth, Sasl, SaslMechanism, Secret,
    SecurityProtocol,
};

use super::check::Checker;
use super::raw::{RawAwsIam, RawOAuth};
use super::values;

/// What a user coming from Java clients' MSK IAM set-up is told.
pub(crate) const AWS_MSK_IAM_NAME: &str = "AWS_MSK_IAM is the Java client's name for Amazon MSK \
     IAM; Sluice speaks it as OAUTHBEARER: write <sasl-mechanism>OAUTHBEARER</sasl-mechanism> \
     with preset=\"amazon-msk\" (or with <aws-iam/>)";

/// The SASL fields of a raw connection.
pub(super) struct SaslFields {
    pub mechanism: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub service_name: Option<String>,
    pub oauth: Option<RawOAuth>,
    pub aws_iam: Option<RawAwsIam>,
}

/// The SASL part of a connection: `Some(None)` when the protocol uses no SASL, `None` when
/// something is wrong (errors recorded). Passwords are never echoed in messages.
pub(super) fn sasl(
    c: &mut Checker<'_>,
    protocol: SecurityProtocol,
    fields: SaslFields,
    bootstrap: Option<&Bootstrap>,
) -> Option<Option<Sasl>> {
    if !protocol.uses_sasl() {
        return no_sasl_fields(c, protocol, &fields).then_some(None);
    }
    let mechanism = mechanism(c, protocol, fields.mechanism.clone())?;
    if mechanism == SaslMechanism::OAuthBearer {
        return oauthbearer(c, fields, bootstrap).map(Some);
    }
    let oauth_fields = [
        ("oauth", fields.oauth.is_some()),
        ("aws-iam", fields.aws_iam.is_some()),
    ];
    if let Some(field) = given(&oauth_fields).next() {
        let predicate = format!(
            "applies only to sasl-mechanism OAUTHBEARER (this connection's is {})",
            mechanism.name()
        );
        c.field_error(field, predicate);
        return None;
    }
    if mechanism == SaslMechanism::Gssapi {
        return gssapi(c, fields).map(Some);
    }
    user_and_password(c, mechanism, fields).map(Some)
}

/// A protocol without SASL takes none of its fields; `false` when some are given (each an
/// error).
fn no_sasl_fields(c: &mut Checker<'_>, protocol: SecurityProtocol, fields: &SaslFields) -> bool {
    let sasl_fields = [
        ("sasl-mechanism", fields.mechanism.is_some()),
        ("username", fields.username.is_some()),
        ("password", fields.password.is_some()),
        ("service-name", fields.service_name.is_some()),
        ("oauth", fields.oauth.is_some()),
        ("aws-iam", fields.aws_iam.is_some()),
    ];
    let mut fine = true;
    for field in given(&sasl_fields) {
        let predicate = format!(
            "applies only to security-protocol SASL_PLAINTEXT or SASL_SSL (this connection's is \
             {})",
            protocol.name()
        );
        c.field_error(field, predicate);
        fine = false;
    }
    fine
}

/// The names of the fields that are given, of (name, given) pairs.
fn given<'a>(fields: &'a [(&'a str, bool)]) -> impl Iterator<Item = &'a str> + 'a {
    fields
        .iter()
        .filter(|(_, given)| *given)
        .map(|(name, _)| *name)
}

/// `sasl-mechanism`, required with a SASL protocol.
fn mechanism(
    c: &mut Checker<'_>,
    protocol: SecurityProtocol,
    raw: Option<String>,
) -> Option<SaslMechanism> {
    let hint = format!(
        "security-protocol {} needs one: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, GSSAPI or \
         OAUTHBEARER",
        protocol.name()
    );
    let mechanism = c.required("sasl-mechanism", raw, &hint)?;
    match mechanism.as_str() {
        "PLAIN" => Some(SaslMechanism::Plain),
        "SCRAM-SHA-256" => Some(SaslMechanism::ScramSha256),
        "SCRAM-SHA-512" => Some(SaslMechanism::ScramSha512),
        "GSSAPI" => Some(SaslMechanism::Gssapi),
        "OAUTHBEARER" => Some(SaslMechanism::OAuthBearer),
        "AWS_MSK_IAM" => {
            c.field_error("sasl-mechanism", AWS_MSK_IAM_NAME.into());
            None
        }
        other => {
            c.field_error(
                "sasl-mechanism",
                format!(
                    "must be one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, GSSAPI, OAUTHBEARER; \
                     got \"{other}\""
                ),
            );
            None
        }
    }
}

/// OAUTHBEARER: tokens from an identity provider (`<oauth>`) or signed for Amazon MSK IAM
/// (`<aws-iam>`), never both, and no user or password.
fn oauthbearer(
    c: &mut Checker<'_>,
    fields: SaslFields,
    bootstrap: Option<&Bootstrap>,
) -> Option<Sasl> {
    let credentials = [
        ("username", fields.username.is_some()),
        ("password", fields.password.is_some()),
    ];
    if let Some(field) = given(&credentials).next() {
        c.field_error(
            field,
            "does not apply to OAUTHBEARER, which authenticates with <oauth> (token-endpoint, \
             client-id, client-secret) or <aws-iam> (Amazon MSK IAM)"
                .into(),
        );
        return None;
    }
    match (fields.oauth, fields.aws_iam) {
        (Some(_), Some(_)) => {
            c.field_error(
                "aws-iam",
                "and oauth exclude each other: Amazon MSK IAM signs its own tokens with AWS \
                 credentials; keep one"
                    .into(),
            );
            None
        }
        (None, Some(raw)) => aws_iam_settings(c, raw, bootstrap).map(|aws_iam| Sasl {
            aws_iam: Some(aws_iam),
            // librdkafka's name for the token's principal; the access key id that signs each
            // token is logged when it is signed.
            ..Sasl::new(SaslMechanism::OAuthBearer, "aws-iam")
        }),
        (Some(raw), None) => oauth(c, raw),
        (None, None) => {
            let at = c.scanned().start();
            c.error_at(
                at,
                "oauth is missing: OAUTHBEARER needs <oauth><token-endpoint>https://…</token-endpoint>\
                 <client-id>…</client-id><client-secret>…</client-secret></oauth>, or \
                 <aws-iam/> for Amazon MSK IAM"
                    .into(),
            );
            None
        }
    }
}

/// `<oauth>`: an identity provider's token endpoint (HTTPS, or plain HTTP on loopback) and the
/// client credentials sent to it.
fn oauth(c: &mut Checker<'_>, raw: RawOAuth) -> Option<Sasl> {
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
                "must be an https:// URL (the client secret travels with every token request), \
                 got \"{endpoint}\""
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
    let client_authentication = c
        .parse(
            "oauth/client-authentication",
            raw.client_authentication,
            |v| values::one_of(v, &ClientAuthentication::NAMES),
        )
        .unwrap_or_default();
    Some(Sasl {
        oauth: Some(OAuth {
            token_endpoint: endpoint,
            client_id: client_id.clone()?,
            client_secret: Secret::new(client_secret?),
            scope,
            client_authentication,
        }),
        ..Sasl::new(SaslMechanism::OAuthBearer, client_id?)
    })
}

/// GSSAPI: the client principal (its realm names the keytab), an optional password, and the
/// brokers' service name.
fn gssapi(c: &mut Checker<'_>, fields: SaslFields) -> Option<Sasl> {
    let principal = c.required(
        "username",
        fields.username,
        "GSSAPI needs the client principal, e.g. <username>svc-orders@CORP.EXAMPLE.COM</username>",
    )?;
    if let Err(predicate) = kerberos_principal(&principal) {
        c.field_error("username", predicate);
        return None;
    }
    let password = c
        .text("password", fields.password)
        .filter(|p| !p.is_empty());
    let service_name = c
        .text("service-name", fields.service_name)
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| Kerberos::DEFAULT_SERVICE_NAME.to_string());
    Some(Sasl {
        password: password.map(Secret::new),
        kerberos: Some(Kerberos {
            service_name,
            // Found in the custom library when the host starts.
            keytab: None,
        }),
        ..Sasl::new(SaslMechanism::Gssapi, principal)
    })
}

/// PLAIN and SCRAM: a user name and a password.
fn user_and_password(
    c: &mut Checker<'_>,
    mechanism: SaslMechanism,
    fields: SaslFields,
) -> Option<Sasl> {
    if fields.service_name.is_some() {
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
        fields.username,
        &format!("{} needs the user name", mechanism.name()),
    );
    let password = c.required(
        "password",
        fields.password,
        &format!(
            "{} needs the password; write it as ${{env:NAME}} or ${{file:PATH}} to keep it out of \
             the file",
            mechanism.name()
        ),
    );
    Some(Sasl {
        password: Some(Secret::new(password?)),
        ..Sasl::new(mechanism, username?)
    })
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
        Some(Bootstrap::Servers(servers)) => servers
            .iter()
            .find_map(|server| sluice_connector::msk_iam::region_of_host(server.host())),
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
