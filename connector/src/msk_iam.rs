//! Amazon MSK IAM authentication for librdkafka clients: SASL OAUTHBEARER whose token is a
//! SigV4-presigned `kafka-cluster:Connect` request (AWS's MSK IAM SASL signer scheme). The
//! broker checks the signature with IAM and authorizes the identity that signed it.
//!
//! The token: `https://kafka.{region}.amazonaws.com/?Action=kafka-cluster%3AConnect&…` presigned
//! for `GET` with the `host` header signed, valid 900 s, a `User-Agent` parameter appended after
//! signing, the whole URL base64url-encoded without padding.

use std::time::{Duration, SystemTime};

use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::aws_credentials::{self, AwsCredentials};
use crate::AwsIam;

/// How long a presigned token is valid, as AWS's signers choose it.
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(900);

/// The service name the signature is scoped to.
const SIGNING_SERVICE: &str = "kafka-cluster";

/// Appended to the signed URL: MSK logs it; it is not part of the signature.
const USER_AGENT: &str = concat!("sluice/", env!("CARGO_PKG_VERSION"));

/// A token for librdkafka, with the identity it proves and when it expires.
#[derive(Debug, Clone)]
pub struct MskIamToken {
    /// The base64url token (it grants access until it expires: never log it).
    pub token: String,
    /// The access key id that signed it.
    pub access_key_id: String,
    /// Where the credentials came from.
    pub source: String,
    /// When the token stops being valid: the presigned URL's expiry, or the credentials' own
    /// expiry if that comes first. librdkafka asks for a new token at 80 % of the way there.
    pub expires: SystemTime,
}

/// Signs a new token with the credentials the chain finds now.
pub fn token(iam: &AwsIam) -> Result<MskIamToken, String> {
    let credentials = aws_credentials::find(iam.profile.as_deref(), &iam.region)?;
    let now = SystemTime::now();
    if credentials.expiration.is_some_and(|e| e <= now) {
        return Err(format!(
            "the AWS credentials from {} have expired: renew them",
            credentials.source
        ));
    }
    let url = presigned_url(&iam.region, &credentials, now);
    let presign_expiry = now + TOKEN_LIFETIME;
    Ok(MskIamToken {
        token: base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(url),
        access_key_id: credentials.access_key_id,
        source: credentials.source,
        expires: credentials
            .expiration
            .map_or(presign_expiry, |e| e.min(presign_expiry)),
    })
}

/// The region an MSK broker host name names: `b-1.NAME.ID.c2.kafka.REGION.amazonaws.com`,
/// `boot-ID.c2.kafka-serverless.REGION.amazonaws.com` (and their `.amazonaws.com.cn` forms).
pub fn region_of_host(host: &str) -> Option<String> {
    let labels: Vec<&str> = host.split('.').collect();
    let at = labels
        .iter()
        .position(|l| *l == "kafka" || *l == "kafka-serverless")?;
    let region = labels.get(at + 1)?;
    (labels.get(at + 2) == Some(&"amazonaws") && region.contains('-')).then(|| region.to_string())
}

/// The presigned `kafka-cluster:Connect` URL for `region`, signed at `time` (AWS Signature
/// Version 4, query-string form).
pub fn presigned_url(region: &str, credentials: &AwsCredentials, time: SystemTime) -> String {
    let host = format!("kafka.{region}.amazonaws.com");
    let (date, stamp) = amz_date(time);
    let scope = format!("{date}/{region}/{SIGNING_SERVICE}/aws4_request");
    let mut query = vec![
        ("Action", "kafka-cluster:Connect".to_string()),
        ("X-Amz-Algorithm", "AWS4-HMAC-SHA256".to_string()),
        (
            "X-Amz-Credential",
            format!("{}/{scope}", credentials.access_key_id),
        ),
        ("X-Amz-Date", stamp.clone()),
        ("X-Amz-Expires", TOKEN_LIFETIME.as_secs().to_string()),
        ("X-Amz-SignedHeaders", "host".to_string()),
    ];
    if let Some(token) = &credentials.session_token {
        query.push(("X-Amz-Security-Token", token.expose().to_string()));
    }
    // The canonical query string: parameters sorted by name, names and values encoded.
    query.sort_by(|a, b| a.0.cmp(b.0));
    let canonical_query = query
        .iter()
        .map(|(name, value)| format!("{}={}", uri_encode(name), uri_encode(value)))
        .collect::<Vec<_>>()
        .join("&");
    // An empty body's hash: a presigned GET has none (not UNSIGNED-PAYLOAD, which is S3's).
    let canonical_request = format!(
        "GET\n/\n{canonical_query}\nhost:{host}\n\nhost\n{}",
        hex(&Sha256::digest(b""))
    );
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{stamp}\n{scope}\n{}",
        hex(&Sha256::digest(canonical_request.as_bytes()))
    );
    let key = [date.as_str(), region, SIGNING_SERVICE, "aws4_request"]
        .iter()
        .fold(
            format!("AWS4{}", credentials.secret_access_key.expose()).into_bytes(),
            |key, part| hmac(&key, part.as_bytes()),
        );
    let signature = hex(&hmac(&key, string_to_sign.as_bytes()));
    format!(
        "https://{host}/?{canonical_query}&X-Amz-Signature={signature}&User-Agent={}",
        uri_encode(USER_AGENT)
    )
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC takes keys of any length; `new_from_slice` cannot fail for it.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// SigV4's URI encoding: every byte but the unreserved characters, as %XX in upper case.
fn uri_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// `(YYYYMMDD, YYYYMMDDTHHMMSSZ)` of a time, in UTC.
fn amz_date(time: SystemTime) -> (String, String) {
    let seconds = time
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let days = i64::try_from(seconds / 86_400).unwrap_or_default();
    let (year, month, day) = aws_credentials::civil_from_days(days);
    let of_day = seconds % 86_400;
    let date = format!("{year:04}{month:02}{day:02}");
    let stamp = format!(
        "{date}T{:02}{:02}{:02}Z",
        of_day / 3600,
        of_day % 3600 / 60,
        of_day % 60
    );
    (date, stamp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Secret;

    #[test]
    fn regions_of_msk_host_names() {
        assert_eq!(
            region_of_host("b-1.orders.abc123.c2.kafka.eu-west-1.amazonaws.com").as_deref(),
            Some("eu-west-1")
        );
        assert_eq!(
            region_of_host("boot-abc.c2.kafka-serverless.us-east-2.amazonaws.com").as_deref(),
            Some("us-east-2")
        );
        assert_eq!(
            region_of_host("b-1.x.y.c1.kafka.cn-north-1.amazonaws.com.cn").as_deref(),
            Some("cn-north-1")
        );
        assert_eq!(region_of_host("localhost"), None);
        assert_eq!(region_of_host("kafka.example.com"), None);
    }

    #[test]
    fn the_token_is_the_presigned_url_in_base64url_and_lives_900_s() {
        let credentials = AwsCredentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: Secret::new("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
            session_token: None,
            expiration: None,
            source: "test".into(),
        };
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_350_896);
        let url = presigned_url("eu-west-1", &credentials, at);
        assert!(
            url.starts_with(
                "https://kafka.eu-west-1.amazonaws.com/?Action=kafka-cluster%3AConnect&\
                 X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20261122%2F\
                 eu-west-1%2Fkafka-cluster%2Faws4_request&X-Amz-Date=20261122T123456Z&\
                 X-Amz-Expires=900&X-Amz-SignedHeaders=host&X-Amz-Signature="
            ),
            "{url}"
        );
        assert!(url.ends_with(&format!(
            "&User-Agent=sluice%2F{}",
            env!("CARGO_PKG_VERSION")
        )));
        assert!(
            !url.contains("wJalr"),
            "the secret key is never in the token"
        );
    }
}
