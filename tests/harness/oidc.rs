//! A minimal OIDC token endpoint (client-credentials grant) on loopback, issuing opaque tokens
//! with a short lifetime and remembering them, so that the SASL gateway can accept exactly the
//! tokens it issued and a test can count refreshes.

use std::sync::{Arc, Mutex};

use super::http::serve_json;

#[derive(Default)]
pub struct Issued {
    /// (token, client id), in issue order.
    pub tokens: Vec<(String, String)>,
}

pub struct TokenEndpoint {
    port: u16,
    pub issued: Arc<Mutex<Issued>>,
}

impl TokenEndpoint {
    /// Serves `client_id`/`client_secret` sent in the form body (client_secret_post), issuing
    /// tokens valid for `lifetime_s` seconds.
    pub fn start(client_id: &str, client_secret: &str, lifetime_s: u64) -> Self {
        Self::start_with(client_id, client_secret, lifetime_s, false)
    }

    /// [`TokenEndpoint::start`] for a provider that takes the client's credentials only with
    /// HTTP Basic authentication (client_secret_basic), as some require.
    pub fn start_basic(client_id: &str, client_secret: &str, lifetime_s: u64) -> Self {
        Self::start_with(client_id, client_secret, lifetime_s, true)
    }

    fn start_with(client_id: &str, client_secret: &str, lifetime_s: u64, basic: bool) -> Self {
        let issued = Arc::new(Mutex::new(Issued::default()));
        let (state, id, secret) = (
            issued.clone(),
            client_id.to_string(),
            client_secret.to_string(),
        );
        // RFC 6749 2.3.1, for ids and secrets with nothing to escape.
        let basic_credentials = {
            use base64::Engine as _;
            let pair = format!("{client_id}:{client_secret}");
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(pair)
            )
        };
        let port = serve_json("token endpoint", move |request| {
            let in_form = request.form_field("client_id").as_deref() == Some(id.as_str())
                && request.form_field("client_secret").as_deref() == Some(secret.as_str());
            let in_header = request.header("authorization") == Some(basic_credentials.as_str());
            let valid = request.form_field("grant_type").as_deref() == Some("client_credentials")
                && if basic { in_header } else { in_form };
            if !valid {
                return (
                    "401 Unauthorized",
                    r#"{"error":"invalid_client"}"#.to_string(),
                );
            }
            let mut state = state.lock().expect("lock");
            let token = format!("token-{}-{}", id, state.tokens.len() + 1);
            state.tokens.push((token.clone(), id.clone()));
            (
                "200 OK",
                format!(
                    r#"{{"access_token":"{token}","token_type":"Bearer","expires_in":{lifetime_s}}}"#
                ),
            )
        });
        Self { port, issued }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/token", self.port)
    }

    /// How many tokens were issued so far.
    pub fn count(&self) -> usize {
        self.issued.lock().expect("lock").tokens.len()
    }
}
