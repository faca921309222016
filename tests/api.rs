//! The management API of `sluice serve`, against a real host on tansu: token, health,
//! processes, listener status with partitions and lag, pause (kept across a restart of the
//! host), resume, restart, execution records, validation, metrics, and a failed listener.

mod harness;

use std::time::Duration;

use harness::api::Api;
use harness::flows::{produce_routed, source_and_target, Listener};
use harness::{assert_contains, wait_for, Broker, Serving};
use serde_json::{json, Value};

const WORK: Duration = Duration::from_secs(60);
const TOKEN: &str = "api-token-7f3a9c";

/// A routing listener on `source` whose host answers API calls with TOKEN only, and whose
/// runs must not show it.
fn guarded_listener(broker: &Broker, source: &str) -> Listener {
    let listener = Listener::new(broker, source, "");
    listener.ws.set_env("SLUICE_API_TOKEN", TOKEN);
    listener.ws.hold_secrets(&[TOKEN.as_bytes()]);
    listener
}

/// Starts `sluice serve` of `listener` with the API, and waits for the API.
fn serve(listener: &Listener) -> (Serving, Api) {
    let serving = listener.serve_with_api();
    let api = Api::of(&serving, Some(TOKEN));
    (serving, api)
}

/// Waits until the listener's status says `state` and `lag` on every partition.
fn wait_for_state(api: &Api, state: &str, lag: i64) -> Value {
    let mut last = Value::Null;
    wait_for(&format!("state {state} with lag {lag}"), WORK, || {
        last = api.status("route");
        let partitions = last["partitions"].as_array()?;
        (last["state"] == state
            && partitions.len() == 2
            && partitions.iter().all(|p| p["lag"] == lag))
        .then(|| last.clone())
    })
}

#[test]
fn the_api_shows_listeners_and_pauses_resumes_and_restarts_them() {
    let (broker, source, target) = source_and_target("api", 2);
    let listener = guarded_listener(&broker, &source);
    produce_routed(&broker, &source, 2, 0..4, &target);
    let (mut serving, api) = serve(&listener);

    // The token: required everywhere but /health.
    assert_eq!(
        api.call("GET", "/health", None, None),
        (200, r#"{"status":"UP"}"#.into())
    );
    let (status, body) = api.call("GET", "/processes", None, None);
    assert_eq!(status, 401);
    let body: Value = serde_json::from_str(&body).expect("JSON error");
    assert_eq!(body["error_code"], 401);
    assert_eq!(api.call("GET", "/processes", Some("wrong"), None).0, 401);

    let processes = api.json("/processes");
    assert_eq!(processes[0]["id"], "route");
    assert_eq!(processes[0]["listener"], true);
    assert_eq!(processes[0]["start"]["type"], "listen");
    assert_eq!(api.get("/processes/nope").0, 404);

    // Running: both partitions, everything committed.
    let status = wait_for_state(&api, "RUNNING", 0);
    assert_eq!(status["partitions"][0]["committed"], 2, "{status}");
    assert_eq!(status["operation"], "receive");

    // Paused: new documents wait (the lag shows them), nothing more is delivered.
    assert_eq!(api.send("PUT", "/listeners/route/pause"), 202);
    wait_for_state(&api, "PAUSED", 0);
    produce_routed(&broker, &source, 2, 4..8, &target);
    wait_for_state(&api, "PAUSED", 2);
    broker.read_all(&target, 4);

    // The pause outlives the host, and the start lines say so.
    serving.stop("TERM", WORK);
    let (mut serving, api) = serve(&listener);
    wait_for_state(&api, "PAUSED", 2);
    assert_contains(
        &serving.stderr(),
        &[
            "1 listener started (route (PAUSED))",
            "a PAUSED listener holds its partitions without reading them",
        ],
    );
    broker.read_all(&target, 4);

    assert_eq!(api.send("PUT", "/listeners/route/resume"), 202);
    let status = wait_for_state(&api, "RUNNING", 0);
    broker.read_all(&target, 8);

    assert_eq!(status["restarts"], 0);
    assert_eq!(api.send("POST", "/listeners/route/restart"), 202);
    wait_for("the restarted listener", WORK, || {
        let status = wait_for_state(&api, "RUNNING", 0);
        (status["restarts"] == 1).then_some(())
    });
    assert_eq!(api.send("PUT", "/listeners/nope/pause"), 404);

    // Executions, as sluice executions shows them.
    let executions = api.json("/executions?process=route&status=succeeded");
    let list = executions.as_array().expect("a list");
    assert!(!list.is_empty(), "{executions}");
    let id = list[0]["id"].as_str().expect("an id");
    let one = api.json(&format!("/executions/{id}"));
    assert_eq!(one["process"], "route");
    assert_eq!(api.get("/executions/nope").0, 404);
    let (status, body) = api.get("/executions?status=broken");
    assert_eq!(status, 400, "{body}");

    // Metrics in Prometheus' format.
    // After a restart the group may rebalance once more: wait for the partitions to settle.
    let lag_line = format!(
        "sluice_consumer_lag_messages{{process=\"route\",topic=\"{source}\",partition=\"0\"}} 0"
    );
    let metrics = wait_for("the listener's lag in the metrics", WORK, || {
        let (status, metrics) = api.get("/metrics");
        assert_eq!(status, 200);
        metrics.contains(&lag_line).then_some(metrics)
    });
    assert_contains(
        &metrics,
        &[
            "sluice_documents_in_total{process=\"route\"} 4",
            "sluice_executions_total{process=\"route\",status=\"succeeded\"}",
            &lag_line,
            "sluice_commit_duration_seconds_count{process=\"route\"}",
            "sluice_execution_duration_seconds_bucket{process=\"route\",le=\"+Inf\"}",
            // Restarted once through the API; everything was committed before, so nothing
            // came twice; nothing failed, and those series exist at 0 all the same.
            "sluice_listener_restarts_total{process=\"route\"} 1",
            "sluice_redeliveries_total{process=\"route\"} 0",
            "sluice_dead_letters_total{process=\"route\"} 0",
            "sluice_executions_total{process=\"route\",status=\"failed\"} 0",
            "sluice_build_info{version=\"",
        ],
    );

    // Validation: the errors sluice validate gives; bad JSON and host references refused.
    let bad = r#"<components><operation id="o" type="produce" connection="c"><topik>t</topik></operation></components>"#;
    let (status, body) = api.validate("application/xml", bad);
    assert_eq!(status, 200);
    let verdict: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(verdict["valid"], false);
    assert!(
        verdict["errors"][0]
            .as_str()
            .expect("an error")
            .starts_with(
                "request.xml:1:61: operation \"o\": unknown element <topik>; did you mean <topic>?"
            ),
        "{verdict}"
    );
    let (status, body) = api.validate("application/json", "{\"files\": [");
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("the body is not {\\\"files\\\""), "{body}");
    let (status, body) = api.validate("application/xml", "<components><connection id=\"c\"><bootstrap-servers>${env:HOME}</bootstrap-servers></connection></components>");
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("does not resolve ${env:"), "{body}");
    let (status, body) = api.validate("application/json", r#"{"files": {"a.xml": "<components><connection id=\"c\"><bootstrap-servers>b:9092</bootstrap-servers></connection></components>"}}"#);
    assert_eq!(
        (status, body.as_str()),
        (
            200,
            r#"{"valid":true,"connections":1,"operations":0,"processes":0}"#
        )
    );

    serving.stop("TERM", WORK);
    assert!(!serving.stderr().contains(TOKEN));
}

/// Waits until every partition of the listener's status shows `want(partition)`:
/// (committed, end, lag).
fn wait_for_positions(
    api: &Api,
    what: &str,
    partitions: i32,
    want: impl Fn(i32) -> (Value, i64, i64),
) -> Value {
    let mut last = Value::Null;
    wait_for(what, WORK, || {
        last = api.status("route");
        let shown = last["partitions"].as_array()?;
        (shown.len() == partitions as usize
            && shown.iter().all(|p| {
                let (committed, end, lag) = want(p["partition"].as_i64().unwrap_or(-1) as i32);
                p["committed"] == committed && p["end"] == end && p["lag"] == lag
            }))
        .then(|| last.clone())
    })
}

/// The ends of a listener's partitions are asked of each broker in one request, not in two
/// round trips per partition (200 partitions took 100 s on tansu that way, and the stall
/// watchdog gave up on its look after 15 s): each partition must still show its own.
#[test]
fn the_status_of_a_listener_on_many_partitions_shows_each_partitions_own_end_and_lag() {
    const PARTITIONS: i32 = 48;
    let (broker, source, target) = source_and_target("wide", PARTITIONS);
    let listener = guarded_listener(&broker, &source);
    // Partition p gets p % 4 documents, then p % 3 more: no two neighbours alike.
    let produce = |count: fn(i32) -> i32| {
        for p in 0..PARTITIONS {
            for i in 0..count(p) {
                let payload = format!("p{p}-{i}");
                broker.produce_one(&source, p, None, payload.as_bytes(), &[("route", &target)]);
            }
        }
    };
    let first = |p: i32| p % 4;
    let more = |p: i32| p % 3;
    produce(first);
    let (_serving, api) = serve(&listener);
    let committed = |p: i32| match first(p) {
        0 => Value::Null,
        n => json!(n),
    };
    wait_for_positions(&api, "everything read and committed", PARTITIONS, |p| {
        (committed(p), i64::from(first(p)), 0)
    });
    assert_eq!(api.send("PUT", "/listeners/route/pause"), 202);
    wait_for("the listener PAUSED", WORK, || {
        (api.status("route")["state"] == "PAUSED").then_some(())
    });
    produce(more);
    let status = wait_for_positions(&api, "the new documents as lag", PARTITIONS, |p| {
        (
            committed(p),
            i64::from(first(p) + more(p)),
            i64::from(more(p)),
        )
    });
    assert_eq!(status["state"], "PAUSED", "{status}");
    broker.read_all(&target, (0..PARTITIONS).map(first).sum::<i32>() as usize);
}

#[test]
fn a_failed_listener_is_reported_and_the_host_keeps_serving() {
    let broker = Broker::start();
    let source = broker.create_topic("api-in", 1);
    let missing = harness::unique("nowhere");
    broker.produce_one(&source, 0, None, b"doc", &[("route", &missing)]);
    let listener = Listener::new(&broker, &source, "<retry-limit>0</retry-limit>");
    let (mut serving, api) = serve(&listener);
    let status = wait_for("the listener to fail", WORK, || {
        let status = api.json("/listeners/route/status");
        (status["state"] == "FAILED").then_some(status)
    });
    assert_eq!(
        status["reason"],
        format!(
            "the document at topic \"{source}\" partition 0 offset 0 failed 1 time(s): topic \
             \"{missing}\" does not exist\n  no dead-letter-topic is set, so the listener stops \
             rather than skip it; fix the cause or set <dead-letter-topic> on the listen \
             operation, then start it again (it resumes at this document)"
        )
    );
    assert_eq!(api.json("/health")["status"], "UP");
    serving.signal("TERM");
    // It ends with the listener still failed.
    assert_eq!(serving.wait(WORK), Some(1), "{}", serving.stderr());
}

/// The partitions a host's listener holds now.
fn held(api: &Api) -> Vec<i64> {
    api.status("route")["partitions"]
        .as_array()
        .map(|ps| ps.iter().filter_map(|p| p["partition"].as_i64()).collect())
        .unwrap_or_default()
}

/// Waits until Kafka's group protocol has spread the four partitions over both hosts.
fn wait_for_both_hosts(a: &Api, b: &Api) {
    wait_for("both hosts to hold partitions", WORK, || {
        let (ha, hb) = (held(a), held(b));
        (!ha.is_empty() && !hb.is_empty() && ha.len() + hb.len() == 4).then_some(())
    });
}

/// Waits until the host has recorded an execution: work is under way.
fn wait_for_work(api: &Api) {
    wait_for("work under way on the first host", WORK, || {
        let executions = api.json("/executions?process=route");
        (!executions.as_array()?.is_empty()).then_some(())
    });
}

#[test]
fn two_hosts_share_a_group_and_the_survivor_takes_over_after_sigkill() {
    let (broker, source, target) = source_and_target("scale", 4);
    let a = Listener::quick_to_take_over(&broker, &source);
    let b = a.second_host();
    let (mut first, api_a) = serve(&a);
    let (mut second, api_b) = serve(&b);
    wait_for_both_hosts(&api_a, &api_b);
    let total = 80;
    produce_routed(&broker, &source, 4, 0..total, &target);
    wait_for_work(&api_a);
    first.signal("KILL");
    assert_eq!(first.wait(WORK), None);

    // The survivor takes all four partitions and finishes them.
    wait_for("the survivor to hold every partition", WORK, || {
        (held(&api_b).len() == 4).then_some(())
    });
    let per_partition = i64::from(total / 4);
    broker.wait_for_committed(&a.group, &source, &[Some(per_partition); 4]);
    second.stop("TERM", WORK);
    broker.wait_for_payloads(&target, total as usize);
}

#[test]
fn a_clean_rebalance_processes_no_document_twice() {
    let (broker, source, target) = source_and_target("rebalance", 4);
    let a = Listener::new(&broker, &source, "<max-messages>2</max-messages>");
    let b = a.second_host();
    produce_routed(&broker, &source, 4, 0..40, &target);
    let (mut first, api_a) = serve(&a);
    // A second host joins while the first is at work: the group rebalances under load.
    wait_for_work(&api_a);
    let (mut second, api_b) = serve(&b);
    wait_for_both_hosts(&api_a, &api_b);
    produce_routed(&broker, &source, 4, 40..80, &target);
    broker.wait_for_committed(&a.group, &source, &[Some(20); 4]);
    // The first host leaves cleanly: the second takes its partitions from their commits.
    first.stop("TERM", WORK);
    second.stop("TERM", WORK);
    // Exactly once each.
    let payloads: std::collections::BTreeSet<String> =
        broker.read_payloads(&target, 80).into_iter().collect();
    assert_eq!(payloads.len(), 80);
}

#[test]
fn every_route_but_health_needs_the_token_and_no_answer_echoes_a_secret() {
    let broker = Broker::start();
    let source = broker.create_topic("api-in", 1);
    let listener = guarded_listener(&broker, &source);
    let (mut serving, api) = serve(&listener);
    let routes = [
        ("GET", "/"),
        ("GET", "/processes"),
        ("GET", "/processes/route"),
        ("GET", "/listeners"),
        ("GET", "/listeners/route/status"),
        ("PUT", "/listeners/route/pause"),
        ("PUT", "/listeners/route/resume"),
        ("POST", "/listeners/route/restart"),
        ("GET", "/executions"),
        ("GET", "/executions/01a22c01-c621-71c4-99ad-f53b0498db17"),
        ("POST", "/components/validate"),
        ("POST", "/components/reload"),
        ("GET", "/metrics"),
    ];
    for (method, path) in routes {
        for token in [None, Some("wrong"), Some(&TOKEN[..TOKEN.len() - 1])] {
            let (status, body) = api.call(method, path, token, Some(("text/plain", "x")));
            assert_eq!(status, 401, "{method} {path} with {token:?}: {body}");
            assert!(!body.contains(TOKEN), "{method} {path} shows the token");
        }
    }
    assert_eq!(api.call("GET", "/health", None, None).0, 200);

    // A component with a password and a mistake: the answer names the mistake, never the
    // password (nor its base64), and does not repeat a huge value whole.
    let secret = "pw-3e9d1c55-do-not-echo";
    let huge = "h".repeat(300_000);
    let body = format!(
        r#"<components><connection id="c"><bootstrap-servers>a:1</bootstrap-servers>
  <security-protocol>SASL_SSL</security-protocol><sasl-mechanism>PLAIN</sasl-mechanism>
  <username>u</username><password>{secret}</password><colour>{huge}</colour></connection>
  <operation id="{huge}" type="produce" connection="c"><topic>t</topic></operation></components>"#
    );
    let (status, answer) = api.validate("application/xml", &body);
    assert!(
        answer.contains("unknown element <colour>"),
        "{status}: {}",
        &answer[..answer.len().min(300)]
    );
    assert!(!answer.contains(secret) && !answer.contains("cHctM2U5ZDFjNTUtZG8tbm90LWVjaG8"));
    assert!(
        answer.len() < 10_000,
        "the answer repeats the request: {} bytes",
        answer.len()
    );
    serving.stop("TERM", WORK);
    assert!(!serving.stderr().contains(secret) && !serving.stderr().contains(TOKEN));
    harness::reliability_row(
        "security",
        "management API: 13 guarded routes × (no token, wrong token, token one character short); \
         a validate request with a password and 300 KB values",
        40,
        "every guarded route answers 401, /health 200; no answer or log line holds the token \
         or the password, and no answer repeats the request",
        None,
    );
}

#[test]
fn the_api_listens_on_loopback_unless_told_otherwise() {
    let broker = Broker::start();
    let source = broker.create_topic("api-in", 1);
    let listener = Listener::new(&broker, &source, "");
    // No --api: the default address. It may be taken on this machine; either way the host
    // says which address it used or could not use.
    let mut serving = listener.ws.sluice_spawn(&["serve"]);
    let said = wait_for("the API address or why not", WORK, || {
        let err = serving.stderr();
        (err.contains("management API on ") || err.contains("the management API cannot listen"))
            .then_some(err)
    });
    assert!(
        said.contains("management API on http://127.0.0.1:8083")
            || said.contains("the management API cannot listen on 127.0.0.1:8083"),
        "{said}"
    );
    serving.signal("TERM");
    serving.wait(WORK);
    harness::reliability_row(
        "security",
        "management API without --api",
        1,
        "binds 127.0.0.1:8083 (loopback) only",
        None,
    );
}

#[test]
fn an_invalid_listener_is_reported_and_the_others_serve() {
    let (broker, source, target) = source_and_target("iso", 2);
    let listener = guarded_listener(&broker, &source);
    // Another team's listener in the same folder, on a TLS connection whose CA file is missing.
    listener.ws.write(
        "components/other-team.xml",
        r#"<components>
  <connection id="secure">
    <bootstrap-servers>localhost:9093</bootstrap-servers>
    <security-protocol>SSL</security-protocol>
    <consumer-group>g</consumer-group>
    <tls><ca-file>missing-ca.pem</ca-file></tls>
  </connection>
  <operation id="audit-in" type="listen" connection="secure"><topic>audit</topic></operation>
  <operation id="audit-out" type="produce" connection="secure"><topic>audit-copy</topic></operation>
  <process id="audit"><start operation="audit-in"/><steps><connector operation="audit-out"/></steps></process>
</components>
"#,
    );
    produce_routed(&broker, &source, 2, 0..4, &target);
    let (mut serving, api) = serve(&listener);

    // The valid listener serves as if the other one were not there.
    assert_eq!(broker.read_all(&target, 4).len(), 4);
    let route = wait_for_state(&api, "RUNNING", 0);
    assert_eq!(route["partitions"][0]["committed"], 2, "{route}");

    let audit = api.status("audit");
    assert_eq!(audit["state"], "INVALID", "{audit}");
    let errors = audit["errors"].as_array().expect("errors");
    assert_eq!(errors.len(), 1, "{audit}");
    assert_contains(
        errors[0].as_str().expect("text"),
        &[
            "other-team.xml:",
            "connection \"secure\": tls/ca-file",
            "missing-ca.pem",
        ],
    );
    let listeners = api.json("/listeners");
    assert!(
        listeners
            .as_array()
            .expect("listeners")
            .iter()
            .any(|l| l["process"] == "audit" && l["state"] == "INVALID"),
        "{listeners}"
    );
    let (status, body) = api.call("POST", "/listeners/audit/restart", Some(TOKEN), None);
    assert_eq!(status, 409, "{body}");
    assert_contains(
        &body,
        &["cannot start: its components are invalid (1 error)"],
    );

    let (status, metrics) = api.get("/metrics");
    assert_eq!(status, 200);
    assert_contains(
        &metrics,
        &[
            "sluice_listener_state{process=\"audit\",state=\"INVALID\"} 1",
            "sluice_listener_state{process=\"audit\",state=\"RUNNING\"} 0",
            "sluice_listener_state{process=\"route\",state=\"RUNNING\"} 1",
            "sluice_listener_state{process=\"route\",state=\"INVALID\"} 0",
        ],
    );
    assert_contains(
        &serving.stderr(),
        &[
            "sluice serve: 1 listener started (route)",
            "sluice serve: listener \"audit\" is INVALID and does not start (1 error):",
        ],
    );

    // A clean stop, but an invalid listener counts as failed: status 1.
    serving.signal("TERM");
    assert_eq!(serving.wait(WORK), Some(1), "{}", serving.stderr());
}

#[test]
fn every_answer_is_json_and_the_root_says_what_the_host_is() {
    let broker = Broker::start();
    let source = broker.create_topic("api-in", 1);
    let listener = guarded_listener(&broker, &source);
    // A host name is an address too.
    let serving = listener.ws.sluice_spawn(&["serve", "--api", "localhost:0"]);
    let api = Api::of(&serving, Some(TOKEN));

    let about = api.json("/");
    assert_eq!(about["name"], "sluice", "{about}");
    assert_eq!(about["version"], env!("CARGO_PKG_VERSION"), "{about}");
    assert!(
        about["commit"].as_str().is_some_and(|c| !c.is_empty()),
        "{about}"
    );
    assert!(
        about["librdkafka"]
            .as_str()
            .is_some_and(|v| v.starts_with("2.")),
        "{about}"
    );
    // A browser goes to the console, whose login its bearer token does not replace.
    let base = api.base();
    let page = ureq::get(&format!("{base}/"))
        .set("Authorization", &format!("Bearer {TOKEN}"))
        .set("Accept", "text/html,application/xhtml+xml")
        .call()
        .expect("GET / as a browser");
    assert!(
        page.get_url().ends_with("/console/login"),
        "{}",
        page.get_url()
    );
    assert_eq!(page.content_type(), "text/html");
    assert!(page
        .into_string()
        .expect("page")
        .contains("<title>Log in · Sluice</title>"));

    // Errors are JSON too: a bad query string, a method a route does not take, no token.
    let error = |method: &str, path: &str, token: Option<&str>| -> (u16, Value) {
        let (status, body) = api.call(method, path, token, None);
        let json = serde_json::from_str(&body).unwrap_or_else(|_| panic!("not JSON: {body}"));
        (status, json)
    };
    let (status, body) = error("GET", "/executions?limit=many", Some(TOKEN));
    assert_eq!((status, &body["error_code"]), (400, &json!(400)), "{body}");
    assert_contains(
        body["message"].as_str().expect("message"),
        &["query string"],
    );
    let (status, body) = error("DELETE", "/processes", Some(TOKEN));
    assert_eq!((status, &body["error_code"]), (405, &json!(405)), "{body}");
    assert_contains(
        body["message"].as_str().expect("message"),
        &["DELETE is not allowed on /processes"],
    );
    let (status, body) = error("GET", "/nowhere", Some(TOKEN));
    assert_eq!((status, &body["error_code"]), (404, &json!(404)), "{body}");
    let unauthorized = ureq::get(&format!("{base}/listeners")).call();
    let Err(ureq::Error::Status(401, response)) = unauthorized else {
        panic!("expected 401: {unauthorized:?}");
    };
    assert_eq!(
        response.header("WWW-Authenticate"),
        Some("Bearer realm=\"sluice\"")
    );
    assert!(!serving
        .stderr()
        .contains("warning: the management API listens on"));
}

#[test]
fn an_api_beyond_loopback_without_a_token_is_warned_about() {
    let broker = Broker::start();
    let source = broker.create_topic("api-in", 1);
    let listener = Listener::new(&broker, &source, "");
    let mut serving = listener.ws.sluice_spawn(&["serve", "--api", "0.0.0.0:0"]);
    let said = wait_for("the start lines", WORK, || {
        let err = serving.stderr();
        err.contains("listener started").then_some(err)
    });
    assert_contains(
        &said,
        &[
            "warning: the management API listens on 0.0.0.0:0, reachable from other machines, \
           and SLUICE_API_TOKEN is not set",
        ],
    );
    serving.stop("TERM", WORK);
}
