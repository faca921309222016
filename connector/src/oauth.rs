//! OAUTHBEARER tokens from an OIDC token endpoint (client-credentials grant). librdkafka asks
//! for a token when a client starts and again at 80 % of the token's lifetime, so tokens are
//! refreshed before they expire.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rdkafka::client::OAuthToken;

use crate::OAuth;

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
    let mut form = vec![
        ("grant_type", "client_credentials"),
        ("client_id", oauth.client_id.as_str()),
        ("client_secret", oauth.client_secret.expose()),
    ];
    if let Some(scope) = &oauth.scope {
        form.push(("scope", scope));
    }
    let endpoint = &oauth.token_endpoint;
    let response = match agent.post(endpoint).send_form(&form) {
        Ok(response) => response,
        Err(ureq::Error::Status(status, response)) => {
            let body = response.into_string().unwrap_or_default();
            let body: String = body.chars().take(300).collect();
            return Err(format!(
                "the token endpoint {endpoint} answered HTTP {status}: {body} (check \
                 oauth-client-id and oauth-client-secret)"
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
