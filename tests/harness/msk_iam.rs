//! Amazon MSK IAM on loopback: the broker's side of the check (a token is a SigV4-presigned
//! `kafka-cluster:Connect` URL; its signature is recomputed here with `aws-sigv4`, AWS's own
//! signer, independent of Sluice's), and an AWS container credentials endpoint (as ECS and EKS
//! Pod Identity serve) issuing short-lived credentials, to see tokens renewed.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use base64::Engine;

use super::http::serve_json;

/// The signature `aws-sigv4` computes for the MSK IAM request signed at `time`.
pub fn reference_signature(
    region: &str,
    access_key_id: &str,
    secret_access_key: &str,
    session_token: Option<&str>,
    time: SystemTime,
    expires: Duration,
) -> String {
    use aws_sigv4::http_request::{
        sign, SignableBody, SignableRequest, SignatureLocation, SigningSettings,
    };
    let identity = aws_credential_types::Credentials::new(
        access_key_id,
        secret_access_key,
        session_token.map(str::to_string),
        None,
        "test",
    )
    .into();
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(expires);
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("kafka-cluster")
        .time(time)
        .settings(settings)
        .build()
        .expect("signing params")
        .into();
    let host = format!("kafka.{region}.amazonaws.com");
    let url = format!("https://{host}/?Action=kafka-cluster%3AConnect");
    let request = SignableRequest::new(
        "GET",
        &url,
        std::iter::once(("host", host.as_str())),
        SignableBody::Bytes(&[]),
    )
    .expect("signable request");
    let (instructions, _) = sign(request, &params).expect("sign").into_parts();
    instructions
        .params()
        .iter()
        .find(|(name, _)| *name == "X-Amz-Signature")
        .map(|(_, value): &(&str, Cow<'static, str>)| value.to_string())
        .expect("a signature parameter")
}

/// The query parameters of a URL, decoded.
pub fn query_parameters(url: &str) -> HashMap<String, String> {
    let query = url.split_once('?').map_or("", |(_, q)| q);
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (percent_decode(k), percent_decode(v)))
        .collect()
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(byte) = u8::from_str_radix(&text[i + 1..i + 3], 16) {
                out.push(byte);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `YYYYMMDDTHHMMSSZ` as a time.
fn amz_date(stamp: &str) -> Option<SystemTime> {
    if stamp.len() != 16 {
        return None;
    }
    let rfc3339 = format!(
        "{}-{}-{}T{}:{}:{}Z",
        &stamp[0..4],
        &stamp[4..6],
        &stamp[6..8],
        &stamp[9..11],
        &stamp[11..13],
        &stamp[13..15]
    );
    humantime::parse_rfc3339(&rfc3339).ok()
}

/// Checks an MSK IAM token as the broker would: the presigned request's shape, its expiry, and
/// its signature with the secret key of the access key id it names. Returns that id.
pub fn verify(token: &str, keys: &[(String, String)], region: &str) -> Result<String, String> {
    let url = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or("the token is not base64url (without padding) of a URL")?;
    let expected_base = format!("https://kafka.{region}.amazonaws.com/?");
    if !url.starts_with(&expected_base) {
        return Err(format!("the token is not a request to {expected_base}"));
    }
    let q = query_parameters(&url);
    let get = |name: &str| q.get(name).cloned().unwrap_or_default();
    if get("Action") != "kafka-cluster:Connect"
        || get("X-Amz-Algorithm") != "AWS4-HMAC-SHA256"
        || get("X-Amz-SignedHeaders") != "host"
        || get("User-Agent").is_empty()
    {
        return Err(format!(
            "the token's request is not an MSK IAM Connect: {q:?}"
        ));
    }
    let credential = get("X-Amz-Credential");
    let parts: Vec<&str> = credential.split('/').collect();
    let [access_key_id, _, credential_region, "kafka-cluster", "aws4_request"] = parts[..] else {
        return Err(format!(
            "X-Amz-Credential \"{credential}\" has the wrong scope"
        ));
    };
    if credential_region != region {
        return Err(format!(
            "signed for region {credential_region}, not {region}"
        ));
    }
    let signed_at = amz_date(&get("X-Amz-Date")).ok_or("X-Amz-Date is not a time")?;
    let expires = Duration::from_secs(get("X-Amz-Expires").parse().map_err(|_| "X-Amz-Expires")?);
    if expires > Duration::from_secs(900) || signed_at + expires < SystemTime::now() {
        return Err("the token has expired".into());
    }
    let (_, secret) = keys
        .iter()
        .find(|(id, _)| id == access_key_id)
        .ok_or_else(|| format!("unknown access key id {access_key_id}"))?;
    let session_token = q.get("X-Amz-Security-Token").map(String::as_str);
    let expected = reference_signature(
        region,
        access_key_id,
        secret,
        session_token,
        signed_at,
        expires,
    );
    if get("X-Amz-Signature") != expected {
        return Err("the signature does not match".into());
    }
    Ok(access_key_id.to_string())
}

/// A container credentials endpoint (`AWS_CONTAINER_CREDENTIALS_FULL_URI`): it wants
/// `authorization` in the Authorization header, and issues credentials for `access_key_id`
/// that expire `lifetime` after each request.
pub struct CredentialsEndpoint {
    port: u16,
    requests: Arc<Mutex<usize>>,
}

impl CredentialsEndpoint {
    pub fn start(
        access_key_id: &str,
        secret: &str,
        session_token: &str,
        authorization: &str,
        lifetime: Duration,
    ) -> Self {
        let requests = Arc::new(Mutex::new(0));
        let counted = requests.clone();
        let (id, secret, token, authorization) = (
            access_key_id.to_string(),
            secret.to_string(),
            session_token.to_string(),
            authorization.to_string(),
        );
        let port = serve_json("credentials endpoint", move |request| {
            let authorized = request
                .headers
                .iter()
                .any(|(name, value)| name == "authorization" && *value == authorization);
            if !authorized {
                return (
                    "401 Unauthorized",
                    r#"{"message":"unauthorized"}"#.to_string(),
                );
            }
            *counted.lock().expect("lock") += 1;
            let expiration = humantime::format_rfc3339_seconds(SystemTime::now() + lifetime);
            (
                "200 OK",
                format!(
                    r#"{{"AccessKeyId":"{id}","SecretAccessKey":"{secret}","Token":"{token}","Expiration":"{expiration}"}}"#
                ),
            )
        });
        Self { port, requests }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/v2/credentials", self.port)
    }

    /// How many credentials it issued.
    pub fn count(&self) -> usize {
        *self.requests.lock().expect("lock")
    }
}
