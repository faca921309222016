//! A real browser for the web console's tests: Debian's headless Chromium, driven through its
//! WebDriver server (chromedriver) with the W3C WebDriver protocol over HTTP. A fresh profile
//! per browser; nothing outside loopback is reachable, so what would reach out is turned off.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

use super::{free_port, wait_for, wait_until_listening};

/// The key under which WebDriver names an element.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A headless Chromium, closed when this drops.
pub struct Browser {
    driver: Child,
    base: String,
    session: String,
    // Dropped last: the browser's profile.
    _profile: tempfile::TempDir,
}

/// A cookie as the browser holds it.
#[derive(Debug)]
pub struct Cookie {
    pub name: String,
    pub value: String,
    pub http_only: bool,
    pub same_site: Option<String>,
}

impl Browser {
    /// Starts chromedriver on a free port and a headless Chromium session through it.
    pub fn start() -> Self {
        let port = free_port();
        let mut driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver (Debian package chromium-driver; ./dev test installs it)");
        assert!(
            wait_until_listening(&mut driver, port, Duration::from_secs(30)),
            "chromedriver did not start"
        );
        let profile = tempfile::tempdir().expect("a browser profile");
        let base = format!("http://127.0.0.1:{port}");
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-background-networking", "--disable-component-update",
                    "--no-first-run", "--window-size=1280,900",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            },
        }}});
        let answer = post(&format!("{base}/session"), &capabilities);
        let session = answer["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no browser session: {answer}"))
            .to_string();
        Self {
            driver,
            base,
            session,
            _profile: profile,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}/session/{}{path}", self.base, self.session)
    }

    /// Opens `url`.
    pub fn goto(&self, url: &str) {
        post(&self.url("/url"), &json!({"url": url}));
    }

    /// Where the browser is now.
    pub fn current_url(&self) -> String {
        get(&self.url("/url"))["value"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// The page's HTML as the browser has it now.
    pub fn source(&self) -> String {
        get(&self.url("/source"))["value"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// The element `css` selects, if there is one now.
    fn find(&self, css: &str) -> Option<String> {
        let answer = post_any(
            &self.url("/element"),
            &json!({"using": "css selector", "value": css}),
        );
        answer["value"][ELEMENT].as_str().map(str::to_string)
    }

    /// Waits for the element `css` selects and returns its id.
    fn element(&self, css: &str) -> String {
        wait_for(&format!("element {css}"), Duration::from_secs(30), || {
            self.find(css)
        })
    }

    /// The visible text of the element `css` selects (waiting for it). The console replaces
    /// parts of its pages as they refresh: an element replaced between finding it and reading
    /// it is found again.
    pub fn text(&self, css: &str) -> String {
        wait_for(
            &format!("the text of {css}"),
            Duration::from_secs(30),
            || {
                let element = self.find(css)?;
                let url = self.url(&format!("/element/{element}/text"));
                let answer = match ureq::get(&url).call() {
                    Ok(response) => json_of(response),
                    Err(ureq::Error::Status(_, response)) => json_of(response),
                    Err(e) => panic!("GET {url}: {e}"),
                };
                answer["value"].as_str().map(str::to_string)
            },
        )
    }

    /// Waits until the text of the element `css` selects contains `expected`; returns it.
    pub fn wait_for_text(&self, css: &str, expected: &str) -> String {
        let mut last = String::new();
        wait_for(
            &format!("\"{expected}\" in {css}"),
            Duration::from_secs(60),
            || {
                last = self.find(css).map(|_| self.text(css)).unwrap_or_default();
                last.contains(expected).then(|| last.clone())
            },
        )
    }

    /// Clicks the element `css` selects (found again if a refresh replaced it meanwhile).
    pub fn click(&self, css: &str) {
        wait_for(
            &format!("a click on {css}"),
            Duration::from_secs(30),
            || {
                let element = self.find(css)?;
                let answer = post_any(&self.url(&format!("/element/{element}/click")), &json!({}));
                let error = answer["value"]["error"].as_str();
                assert!(
                    error.is_none_or(|e| e == "stale element reference"),
                    "click on {css}: {answer}"
                );
                error.is_none().then_some(())
            },
        );
    }

    /// Types `text` into the element `css` selects.
    pub fn type_into(&self, css: &str, text: &str) {
        let element = self.element(css);
        post(
            &self.url(&format!("/element/{element}/value")),
            &json!({"text": text}),
        );
    }

    /// Accepts the dialog the page opened (a confirmation), waiting for it.
    pub fn accept_dialog(&self) {
        wait_for("a dialog", Duration::from_secs(10), || {
            let answer = post_any(&self.url("/alert/accept"), &json!({}));
            answer["value"].get("error").is_none().then_some(())
        });
    }

    /// The cookies the browser holds for the current page.
    pub fn cookies(&self) -> Vec<Cookie> {
        get(&self.url("/cookie"))["value"]
            .as_array()
            .map(|cookies| {
                cookies
                    .iter()
                    .map(|c| Cookie {
                        name: c["name"].as_str().unwrap_or_default().to_string(),
                        value: c["value"].as_str().unwrap_or_default().to_string(),
                        http_only: c["httpOnly"].as_bool().unwrap_or(false),
                        same_site: c["sameSite"].as_str().map(str::to_string),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Writes a PNG of what the browser shows to `path`.
    pub fn screenshot(&self, path: &Path) {
        use base64::Engine as _;
        let answer = get(&self.url("/screenshot"));
        let png = base64::engine::general_purpose::STANDARD
            .decode(answer["value"].as_str().expect("a screenshot"))
            .expect("base64");
        if let Some(folder) = path.parent() {
            std::fs::create_dir_all(folder).expect("screenshot folder");
        }
        std::fs::write(path, png).expect("write screenshot");
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = ureq::delete(&self.url("")).call();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn json_of(response: ureq::Response) -> Value {
    serde_json::from_str(&response.into_string().expect("a WebDriver answer")).expect("JSON")
}

fn get(url: &str) -> Value {
    match ureq::get(url).call() {
        Ok(response) => json_of(response),
        Err(ureq::Error::Status(status, response)) => {
            panic!(
                "GET {url}: {status} {}",
                response.into_string().unwrap_or_default()
            )
        }
        Err(e) => panic!("GET {url}: {e}"),
    }
}

fn post(url: &str, body: &Value) -> Value {
    let answer = post_any(url, body);
    assert!(
        answer["value"].get("error").is_none(),
        "POST {url}: {answer}"
    );
    answer
}

/// A POST whose WebDriver error (such as "no such element") is an answer, not a failure.
fn post_any(url: &str, body: &Value) -> Value {
    let request = ureq::post(url).set("Content-Type", "application/json");
    match request.send_string(&body.to_string()) {
        Ok(response) => json_of(response),
        Err(ureq::Error::Status(_, response)) => json_of(response),
        Err(e) => panic!("POST {url}: {e}"),
    }
}
