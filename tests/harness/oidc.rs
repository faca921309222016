//! A minimal OIDC token endpoint (client-credentials grant) on loopback, issuing opaque tokens
//! with a short lifetime and remembering them, so that the SASL gateway can accept exactly the
//! tokens it issued and a test can count refreshes.

use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::thread;

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
    /// Serves `client_id`/`client_secret`, issuing tokens valid for `lifetime_s` seconds.
    pub fn start(client_id: &str, client_secret: &str, lifetime_s: u64) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("token endpoint");
        let port = listener.local_addr().expect("address").port();
        let issued = Arc::new(Mutex::new(Issued::default()));
        let (state, id, secret) = (
            issued.clone(),
            client_id.to_string(),
            client_secret.to_string(),
        );
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let mut reader = BufReader::new(stream);
                let mut length = 0;
                let mut line = String::new();
                // Request line and headers.
                loop {
                    line.clear();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0; length];
                let _ = reader.read_exact(&mut body);
                let body = String::from_utf8_lossy(&body).into_owned();
                let field = |name: &str| {
                    body.split('&')
                        .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
                        .map(str::to_string)
                };
                let valid = field("grant_type").as_deref() == Some("client_credentials")
                    && field("client_id").as_deref() == Some(id.as_str())
                    && field("client_secret").as_deref() == Some(secret.as_str());
                let (status, json) = if valid {
                    let mut state = state.lock().expect("lock");
                    let token = format!("token-{}-{}", id, state.tokens.len() + 1);
                    state.tokens.push((token.clone(), id.clone()));
                    (
                        "200 OK",
                        format!(
                            r#"{{"access_token":"{token}","token_type":"Bearer","expires_in":{lifetime_s}}}"#
                        ),
                    )
                } else {
                    (
                        "401 Unauthorized",
                        r#"{"error":"invalid_client"}"#.to_string(),
                    )
                };
                super::reply_json(&mut reader.into_inner(), status, &json);
            }
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
