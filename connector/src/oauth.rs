//! OAUTHBEARER tokens from an OIDC token endpoint (client-credentials grant). librdkafka asks
//! for a token when a client starts and again at 80 % of the token's lifetime, so tokens are
//! refreshed before they expire.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rdkafka::client::OAuthToken;

use crate::{ClientAuthentication, OAuth};

/// How long a token request may take.
const TOKEN_TIMEOUT: Duration = Duration::from_secs(15);

/// Lifetime assumed when the endpoint does not say (RFC 6749 makes `expires_in` optional).
const DEFAULT_LIFETIME: Duration = Duration::from_secs(300);

/// Fetches a token. The error says what the endpoint answered, never the client secret.
pub(crate) fn fetch_token(oauth: &OAuth) -> Result<OAuthToken, String> {
    let tls = native_tls::TlsConnector::new().map_err(|e| format!("TLS set-up failed: {e}"))?;
    let agent = ureq::AgentBuilder::new()
        .tls_connector(std::sync::Arc::new(tls))
        .timeout(TOKEN_TIMEOUT)
        .build();
    let mut form = vec![("grant_type", "client_credentials")];
    let endpoint = &oauth.token_endpoint;
    let mut request = agent.post(endpoint);
    match oauth.client_authentication {
        ClientAuthentication::Post => {
            form.push(("client_id", oauth.client_id.as_str()));
            form.push(("client_secret", oauth.client_secret.expose()));
        }
        ClientAuthentication::Basic => {
            request = request.set("Authorization", &basic_authorization(oauth));
        }
    }
    if let Some(scope) = &oauth.scope {
        form.push(("scope", scope));
    }
    let response = match request.send_form(&form) {
        Ok(response) => response,
        Err(ureq::Error::Status(status, response)) => {
            let body = response.into_string().unwrap_or_default();
            let body: String = body.chars().take(300).collect();
            return Err(format!(
                "the token endpoint {endpoint} answered HTTP {status}: {body}"
            ));
        }
        Err(e) => {
            return Err(format!(
                "the token endpoint {endpoint} cannot be reached: {e}"
            ))
        }
    };
    let text = response
        .into_string()
        .map_err(|e| format!("the token endpoint {endpoint} answer cannot be read: {e}"))?;
    let body: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| format!("the token endpoint {endpoint} did not answer JSON: {e}"))?;
    let token = body["access_token"]
        .as_str()
        .ok_or_else(|| format!("the token endpoint {endpoint} answered without an access_token"))?;
    let lifetime = body["expires_in"]
        .as_u64()
        .map_or(DEFAULT_LIFETIME, Duration::from_secs);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    tracing::debug!(
        endpoint,
        lifetime_s = lifetime.as_secs(),
        "OAUTHBEARER token obtained"
    );
    Ok(OAuthToken {
        token: token.to_string(),
        principal_name: oauth.client_id.clone(),
        lifetime_ms: (now + lifetime).as_millis() as i64,
    })
}

/// `Basic base64(id:secret)`, each form-urlencoded first, as RFC 6749 2.3.1 says.
fn basic_authorization(oauth: &OAuth) -> String {
    use base64::Engine as _;
    let credentials = format!(
        "{}:{}",
        form_urlencoded(&oauth.client_id),
        form_urlencoded(oauth.client_secret.expose())
    );
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(credentials)
    )
}

/// application/x-www-form-urlencoded: unreserved characters as they are, a space as `+`,
/// every other byte as `%XX`.
fn form_urlencoded(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                encoded.push(char::from(byte))
            }
            b' ' => encoded.push('+'),
            other => encoded.push_str(&format!("%{other:02X}")),
        }
    }
    encoded
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Secret;

    #[test]
    fn basic_authentication_encodes_the_id_and_secret_first() {
        let oauth = OAuth {
            token_endpoint: "https://idp/token".into(),
            client_id: "sluice client".into(),
            client_secret: Secret::new("p@ss:word/1"),
            scope: None,
            client_authentication: ClientAuthentication::Basic,
        };
        // base64("sluice+client:p%40ss%3Aword%2F1")
        assert_eq!(
            basic_authorization(&oauth),
            "Basic c2x1aWNlK2NsaWVudDpwJTQwc3MlM0F3b3JkJTJGMQ=="
        );
    }
}
