//! Raw component structs: they mirror the XML exactly and hold every value as written (text),
//! so that all checks, and their messages, live in the validation of each component kind
//! (`connection.rs`, `sasl.rs`, `operation/`, `process.rs`). Unknown elements and attributes are
//! refused here. `<operation>`'s struct is declared with its field table in
//! `operation/fields.rs`.

use serde::Deserialize;

/// `<connection id="…">`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct RawConnection {
    #[serde(rename = "@id")]
    pub id: Option<String>,
    #[serde(rename = "@preset")]
    pub preset: Option<String>,
    #[serde(rename = "@xmlns")]
    pub _xmlns: Option<String>,
    pub description: Option<String>,
    pub bootstrap_servers: Option<String>,
    /// Azure Event Hubs preset: the namespace, from which bootstrap-servers follows.
    pub namespace: Option<String>,
    pub client_id: Option<String>,
    pub consumer_group: Option<String>,
    pub security_protocol: Option<String>,
    pub sasl_mechanism: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub service_name: Option<String>,
    pub oauth: Option<RawOAuth>,
    pub aws_iam: Option<RawAwsIam>,
    pub tls: Option<RawTls>,
    pub properties: Option<RawProperties>,
}

/// `<oauth>` of an OAUTHBEARER connection.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct RawOAuth {
    pub token_endpoint: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub scope: Option<String>,
    pub client_authentication: Option<String>,
}

/// `<aws-iam>` of an OAUTHBEARER connection to Amazon MSK with IAM access control.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct RawAwsIam {
    pub region: Option<String>,
    pub profile: Option<String>,
}

/// `<tls>` of a connection.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct RawTls {
    pub ca_file: Option<String>,
    pub certificate_file: Option<String>,
    pub key_file: Option<String>,
    pub key_password: Option<String>,
    pub verify_hostname: Option<String>,
}

/// `<properties><property name="…">value</property>…</properties>`: librdkafka pass-through.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawProperties {
    #[serde(rename = "property", default)]
    pub properties: Vec<RawNamedValue>,
}

/// `<headers><header name="…">value</header>…</headers>`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHeaders {
    #[serde(rename = "header", default)]
    pub headers: Vec<RawNamedValue>,
}

/// `<header name="…">value</header>`, `<property name="…">value</property>`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawNamedValue {
    #[serde(rename = "@name")]
    pub name: Option<String>,
    #[serde(rename = "$text", default)]
    pub value: Option<String>,
}

/// `<process id="…">`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct RawProcess {
    #[serde(rename = "@id")]
    pub id: Option<String>,
    #[serde(rename = "@xmlns")]
    pub _xmlns: Option<String>,
    pub description: Option<String>,
    pub start: Option<RawStart>,
    pub steps: Option<RawSteps>,
}

/// `<start operation="…"/>`; without `operation`, documents come from `sluice run --input`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawStart {
    #[serde(rename = "@operation")]
    pub operation: Option<String>,
}

/// `<steps>…</steps>`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSteps {
    #[serde(rename = "$value", default)]
    pub steps: Vec<RawStep>,
}

/// One step, named by its element.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum RawStep {
    /// `<connector operation="…"/>`: runs a connector operation on the documents.
    Connector(RawConnectorStep),
    /// `<set-properties>`: sets document properties on each document.
    SetProperties(RawSetProperties),
}

/// `<set-properties><property …/>…</set-properties>`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSetProperties {
    #[serde(rename = "property", default)]
    pub properties: Vec<RawProperty>,
}

/// `<property name="…" value="…"|from-property="…"|from-header="…"|from-tracked="…"|template="…"
/// regex="…" optional="…"/>`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawProperty {
    #[serde(rename = "@name")]
    pub name: Option<String>,
    #[serde(rename = "@value")]
    pub value: Option<String>,
    #[serde(rename = "@from-property")]
    pub from_property: Option<String>,
    #[serde(rename = "@from-header")]
    pub from_header: Option<String>,
    #[serde(rename = "@from-tracked")]
    pub from_tracked: Option<String>,
    #[serde(rename = "@template")]
    pub template: Option<String>,
    #[serde(rename = "@regex")]
    pub regex: Option<String>,
    #[serde(rename = "@optional")]
    pub optional: Option<String>,
}

/// `<connector operation="…"/>`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConnectorStep {
    #[serde(rename = "@operation")]
    pub operation: Option<String>,
}
