//! The web console of `sluice serve`, in a real browser (headless Chromium through WebDriver)
//! against a real host on tansu: log in with the API token, see a listener run, pause it from
//! its page (the API agrees, and an independent consumer sees nothing consumed meanwhile),
//! resume it, open an execution with document errors and see where each document came from,
//! and the security that holds it together (cookie flags, CSRF, CSP, escaped output). With
//! `SLUICE_BLESS=1` it writes the README's screenshots to docs/console/.

mod harness;

use std::path::Path;
use std::time::Duration;

use harness::api::Api;
use harness::browser::Browser;
use harness::flows::{produce_routed, Listener};
use harness::{assert_contains, wait_for, Broker};

const TOKEN: &str = "console-token-5d81e2";
const WORK: Duration = Duration::from_secs(60);

/// One browser at a time: two headless Chromiums side by side on 2 cores make each slow and
/// the timings of neither meaningful.
static ONE_BROWSER: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_browser() -> std::sync::MutexGuard<'static, ()> {
    ONE_BROWSER
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The text of the last cell of the listener page's partition row: its lag.
fn lag_shown(browser: &Browser) -> Option<String> {
    let row = browser.text("section[aria-labelledby=partitions] tbody tr");
    row.split_whitespace().last().map(str::to_string)
}

#[test]
fn the_console_logs_in_shows_pauses_resumes_and_explains_in_a_real_browser() {
    let _browser_turn = one_browser();
    let broker = Broker::start();
    let source = broker.create_topic("console-in", 1);
    let target = broker.create_topic("console-out", 1);
    let dead_letters = broker.create_topic("console-dlt", 1);
    let listener = Listener::new(
        &broker,
        &source,
        &format!(
            "<retry-limit>0</retry-limit><dead-letter-topic>{dead_letters}</dead-letter-topic>"
        ),
    );
    listener.ws.set_env("SLUICE_API_TOKEN", TOKEN);
    listener.ws.hold_secrets(&[TOKEN.as_bytes()]);
    let mut serving = listener.serve_with_api();
    let api = Api::of(&serving, Some(TOKEN));
    let base = api.base().to_string();
    let browser = Browser::start();

    // A browser at / lands on the login form; a wrong token is refused.
    browser.goto(&format!("{base}/"));
    assert!(
        browser.current_url().ends_with("/console/login"),
        "{}",
        browser.current_url()
    );
    browser.type_into("#token", "not-the-token");
    browser.click("form.login button");
    assert_contains(
        &browser.text(".problem"),
        &["That is not this host's token."],
    );
    browser.type_into("#token", TOKEN);
    browser.click("form.login button");
    browser.wait_for_text("main", "RUNNING");
    let cookies = browser.cookies();
    let session = cookies
        .iter()
        .find(|c| c.name == "sluice_session")
        .expect("the session cookie");
    assert!(session.http_only, "{session:?}");
    assert_eq!(session.same_site.as_deref(), Some("Strict"), "{session:?}");

    // Documents flow through the listener.
    produce_routed(&broker, &source, 1, 0..4, &target);
    assert_eq!(broker.read_all(&target, 4).len(), 4);

    // Pause from the listener's page: the page and the API say PAUSED, and what arrives
    // meanwhile waits (the lag shows it; an independent consumer sees nothing more).
    browser.goto(&format!("{base}/console/listeners/route"));
    browser.wait_for_text("main", "Partitions");
    browser.click("form[action$='/pause'] button");
    browser.wait_for_text("section[aria-labelledby=state]", "PAUSED");
    wait_for("the API to say PAUSED", WORK, || {
        (api.status("route")["state"] == "PAUSED").then_some(())
    });
    produce_routed(&broker, &source, 1, 4..7, &target);
    wait_for("a lag of 3 on the listener's page", WORK, || {
        browser.goto(&format!("{base}/console/listeners/route"));
        (lag_shown(&browser).as_deref() == Some("3")).then_some(())
    });
    assert_eq!(
        broker.read_all(&target, 4).len(),
        4,
        "consumed while paused"
    );
    assert_eq!(broker.committed(&listener.group, &source, 1), [Some(4)]);
    if std::env::var_os("SLUICE_BLESS").is_some() {
        let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/console");
        browser.screenshot(&docs.join("listener.png"));
    }

    // Resume: the waiting documents go through.
    browser.click("form[action$='/resume'] button");
    browser.wait_for_text("section[aria-labelledby=state]", "RUNNING");
    assert_eq!(broker.read_all(&target, 7).len(), 7);

    // Two documents that cannot be delivered, one naming a topic made to look like markup:
    // the execution's page shows each error, where its document came from, and the markup as
    // text.
    produce_routed(&broker, &source, 1, 7..8, "nowhere-to-be-found");
    produce_routed(&broker, &source, 1, 8..9, "<script>alert(1)</script>");
    wait_for("both documents dead-lettered", WORK, || {
        (broker.read_some(&dead_letters).len() == 2).then_some(())
    });
    browser.goto(&format!(
        "{base}/console/executions?process=route&status=completed-with-errors"
    ));
    browser.wait_for_text("main", "completed-with-errors");
    let listed = browser.source();
    let pages: Vec<&str> = listed
        .split("href=\"/console/executions/")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .collect();
    assert!(!pages.is_empty(), "{listed}");
    let mut shown = String::new();
    for id in pages {
        browser.goto(&format!("{base}/console/executions/{id}"));
        shown.push_str(&browser.wait_for_text("main", "Document errors"));
        assert!(
            !browser.source().contains("<script>alert(1)</script>"),
            "markup from a document reached the page unescaped"
        );
    }
    assert_contains(
        &shown,
        &[
            &format!("topic {source}, partition 0, offset 7"),
            &format!("topic {source}, partition 0, offset 8"),
            "\"nowhere-to-be-found\"",
            "<script>alert(1)</script>",
        ],
    );

    // "Which execution handled the message at offset 7?": looked up on the executions page,
    // the listener's execution that read it, with the document's error; that execution's page
    // lists the offsets it read. A malformed address is explained.
    browser.goto(&format!("{base}/console/executions"));
    browser.type_into("#message", &format!("{source}/0/7"));
    browser.click("form.message button");
    let found = browser.wait_for_text("section[aria-labelledby=handled]", "nowhere-to-be-found");
    assert_contains(&found, &["route", "read", "completed-with-errors"]);
    browser.click("section[aria-labelledby=handled] tbody a");
    let details = browser.wait_for_text("main", "Document errors");
    // "offset 7", or "offsets 7-8" when both documents came in one batch.
    assert_contains(&details, &["Read", &format!("{source}/0 offset")]);
    browser.goto(&format!("{base}/console/executions"));
    browser.type_into("#message", &format!("{source}/first/7"));
    browser.click("form.message button");
    browser.wait_for_text(
        "section[aria-labelledby=handled] .problem",
        &format!(
            "\"{source}/first/7\" is not TOPIC/PARTITION/OFFSET (the partition is a number from \
             0), e.g. orders/0/41"
        ),
    );

    // The overview, as the README shows it.
    browser.goto(&format!("{base}/console"));
    browser.wait_for_text("main", "route");
    if std::env::var_os("SLUICE_BLESS").is_some() {
        let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/console");
        browser.screenshot(&docs.join("overview.png"));
    }

    // The security headers, and a state change without the page's CSRF token refused.
    let cookie = format!("sluice_session={}", session.value);
    let page = ureq::get(&format!("{base}/console"))
        .set("Cookie", &cookie)
        .call()
        .expect("the overview");
    let policy = page
        .header("Content-Security-Policy")
        .unwrap_or_default()
        .to_string();
    assert!(policy.contains("script-src 'self'"), "{policy}");
    assert!(!policy.contains("unsafe-inline"), "{policy}");
    let forged = ureq::post(&format!("{base}/console/listeners/route/pause"))
        .set("Cookie", &cookie)
        .send_form(&[("csrf", "guessed")]);
    assert!(
        matches!(forged, Err(ureq::Error::Status(403, _))),
        "a pause without the CSRF token: {forged:?}"
    );
    // And without a session, the API's token alone opens no console page.
    let bearer_only = ureq::get(&format!("{base}/console/processes"))
        .set("Authorization", &format!("Bearer {TOKEN}"))
        .call()
        .expect("an answer");
    assert!(bearer_only.get_url().ends_with("/console/login"));
    assert_eq!(api.status("route")["state"], "RUNNING");

    drop(browser);
    serving.stop("TERM", WORK);
}

/// The words of the overview's row of listener `process`.
fn overview_row(browser: &Browser, process: &str) -> Vec<String> {
    let table = browser.text("div[data-refresh] tbody");
    table
        .lines()
        .find(|line| line.starts_with(process))
        .map(|line| line.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default()
}

#[test]
fn the_console_refreshes_by_itself_pages_executions_and_shows_processes_and_validation() {
    let _browser_turn = one_browser();
    let broker = Broker::start();
    let source = broker.create_topic("console-in", 1);
    let target = broker.create_topic("console-out", 1);
    // One document per execution, so that a few documents make more than a page.
    let listener = Listener::new(&broker, &source, "<max-messages>1</max-messages>");
    // Another team's listener whose connection is broken: INVALID, with its error.
    listener.ws.write(
        "components/other-team.xml",
        r#"<components>
  <connection id="audit-kafka"><bootstrap-servers>localhost</bootstrap-servers><consumer-group>g</consumer-group></connection>
  <operation id="audit-in" type="listen" connection="audit-kafka"><topic>audit</topic></operation>
  <process id="audit"><start operation="audit-in"/></process>
</components>
"#,
    );
    let mut serving = listener.serve_with_api();
    let api = Api::of(&serving, None);
    let base = api.base().to_string();
    let browser = Browser::start();

    // Without a token the console is open, like the API; the overview refreshes by itself.
    browser.goto(&format!("{base}/console"));
    browser.wait_for_text("main", "RUNNING");
    produce_routed(&broker, &source, 1, 0..30, &target);
    wait_for("the overview to count 30 documents in", WORK, || {
        (overview_row(&browser, "route").get(2).map(String::as_str) == Some("30")).then_some(())
    });
    assert!(
        browser.current_url().ends_with("/console"),
        "the page was reloaded"
    );
    let audit = browser.text("div[data-refresh] tbody");
    assert_contains(
        &audit,
        &[
            "INVALID",
            "other-team.xml:2:",
            "bootstrap-servers \"localhost\" is not host:port",
        ],
    );
    assert_contains(
        &browser.text("div[data-refresh] tfoot"),
        &["Total 30 30 0 0 0"],
    );

    // Executions a page at a time: 25, then the rest.
    browser.goto(&format!("{base}/console/executions?process=route"));
    browser.wait_for_text("main", "Older executions");
    let first = browser
        .source()
        .matches("href=\"/console/executions/")
        .count();
    assert_eq!(first, 25);
    browser.click("a[rel=next]");
    browser.wait_for_text("main", "succeeded");
    let second = browser
        .source()
        .matches("href=\"/console/executions/")
        .count();
    assert_eq!(second, 5);
    // The JSON API pages the same way, with a Link header.
    let mut ids = std::collections::BTreeSet::new();
    let mut next = Some("/executions?process=route&limit=20".to_string());
    while let Some(path) = next {
        let response = ureq::get(&format!("{base}{path}")).call().expect("a page");
        next = response.header("Link").and_then(|link| {
            let target = link.strip_prefix('<')?.split_once(">; rel=\"next\"")?.0;
            Some(target.to_string())
        });
        let page: serde_json::Value =
            serde_json::from_str(&response.into_string().expect("body")).expect("JSON");
        for execution in page.as_array().expect("a list") {
            assert!(ids.insert(execution["id"].as_str().expect("id").to_string()));
        }
    }
    assert_eq!(ids.len(), 30);

    // A restart asks first, then happens.
    browser.goto(&format!("{base}/console/listeners/route"));
    browser.click("form[action$='/restart'] button");
    browser.accept_dialog();
    browser.wait_for_text("section[aria-labelledby=state]", "restarts: 1");

    // The processes as flows, with their connection and no secret.
    browser.goto(&format!("{base}/console/processes"));
    assert_contains(
        &browser.wait_for_text("main", "route"),
        &[
            &format!(
                "Start: listen receive from {source} on connection tansu ({}, PLAINTEXT)",
                broker.bootstrap()
            ),
            "Set properties: topic-name ← property header:route",
        ],
    );

    // Validation of pasted components, with what they hold shown as text.
    browser.goto(&format!("{base}/console/validate"));
    browser.type_into(
        "#xml",
        r#"<components><operation id="x" type="produce" connection="c"><topik><script>alert(3)</script></topik></operation></components>"#,
    );
    browser.click("form.validate button");
    let verdict = browser.wait_for_text("section[aria-labelledby=verdict]", "error");
    assert_contains(&verdict, &["pasted.xml:1:", "unknown element <topik>"]);
    assert!(!browser.source().contains("<script>alert(3)"));

    // A listener id that is markup comes back as text.
    browser.goto(&format!(
        "{base}/console/listeners/%3Cscript%3Ealert(2)%3C%2Fscript%3E"
    ));
    assert_contains(
        &browser.wait_for_text("main", "not defined"),
        &["listener \"<script>alert(2)</script>\" is not defined"],
    );
    assert!(!browser.source().contains("<script>alert(2)"));

    drop(browser);
    // The invalid listener counts as failed.
    serving.signal("TERM");
    assert_eq!(serving.wait(WORK), Some(1));
}
