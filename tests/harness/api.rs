//! A client of one `sluice serve`'s management API.

use std::time::Duration;

use serde_json::Value;

use super::wait_for;
use super::workspace::Serving;

/// How long a host may take to say where its API listens.
const STARTUP: Duration = Duration::from_secs(60);

/// A client of one host's API, sending `token` (if any) with every request but [`Api::call`].
pub struct Api {
    base: String,
    token: Option<String>,
}

impl Api {
    /// Waits for the host to print its API address.
    pub fn of(serving: &Serving, token: Option<&str>) -> Self {
        let base = wait_for("the management API address", STARTUP, || {
            let err = serving.stderr();
            let (_, rest) = err.split_once("management API on ")?;
            // The whole line: the file may be read while the host is still writing it.
            let (address, _) = rest.split_once('\n')?;
            Some(address.trim().to_string())
        });
        Self {
            base,
            token: token.map(str::to_string),
        }
    }

    /// Where the API is, `http://HOST:PORT`.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// `(status, body)` of a request with `token`, if any.
    pub fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<(&str, &str)>,
    ) -> (u16, String) {
        let mut request = ureq::request(method, &format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.set("Authorization", &format!("Bearer {token}"));
        }
        let response = match body {
            Some((content_type, body)) => {
                request.set("Content-Type", content_type).send_string(body)
            }
            None => request.call(),
        };
        match response {
            Ok(r) => (r.status(), r.into_string().expect("body")),
            Err(ureq::Error::Status(status, r)) => (status, r.into_string().expect("body")),
            Err(e) => panic!("{method} {path}: {e}"),
        }
    }

    /// The status of a `method` request to `path` with no body.
    pub fn send(&self, method: &str, path: &str) -> u16 {
        self.call(method, path, self.token.as_deref(), None).0
    }

    pub fn get(&self, path: &str) -> (u16, String) {
        self.call("GET", path, self.token.as_deref(), None)
    }

    /// The JSON answer of `method` `path`, which must be 200.
    pub fn json_of(&self, method: &str, path: &str) -> Value {
        let (status, body) = self.call(method, path, self.token.as_deref(), None);
        assert_eq!(status, 200, "{method} {path}: {body}");
        serde_json::from_str(&body).expect("JSON")
    }

    pub fn json(&self, path: &str) -> Value {
        self.json_of("GET", path)
    }

    /// `POST /components/validate`.
    pub fn validate(&self, content_type: &str, body: &str) -> (u16, String) {
        self.call(
            "POST",
            "/components/validate",
            self.token.as_deref(),
            Some((content_type, body)),
        )
    }

    /// The value of the series `series` (name with its labels, as /metrics writes it).
    pub fn metric(&self, series: &str) -> f64 {
        let (_, text) = self.get("/metrics");
        text.lines()
            .find_map(|l| {
                l.strip_prefix(series)?
                    .strip_prefix(' ')?
                    .trim()
                    .parse()
                    .ok()
            })
            .unwrap_or_else(|| panic!("no {series} in\n{text}"))
    }

    pub fn status(&self, listener: &str) -> Value {
        self.json(&format!("/listeners/{listener}/status"))
    }

    /// Waits until `listener` is RUNNING with `partitions` assigned; returns its status.
    pub fn wait_until_running(&self, listener: &str, partitions: usize) -> Value {
        let mut last = Value::Null;
        wait_for(
            &format!("listener {listener} RUNNING with {partitions} partitions"),
            STARTUP,
            || {
                last = self.status(listener);
                (last["state"] == "RUNNING"
                    && last["partitions"].as_array().map(Vec::len) == Some(partitions))
                .then(|| last.clone())
            },
        )
    }
}
