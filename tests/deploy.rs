//! Deploying components into a running `sluice serve` on tansu: a reload (POST
//! /components/reload, SIGHUP, --watch) restarts changed listeners with nothing lost, leaves
//! unchanged ones untouched, starts new ones, stops removed ones, keeps a running listener whose
//! change is invalid, and says what needs a restart of the host.

mod harness;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use harness::api::Api;
use harness::{assert_contains, components, unique, wait_for, Broker, Kafka, Workspace};
use serde_json::{json, Value};

const WORK: Duration = Duration::from_secs(60);

/// A listener "{id}" reading `source` in consumer group `group` and producing every document to
/// `target` (operations "{id}-in" and "{id}-out" on connection "tansu"); `listen` holds further
/// fields of the listen operation.
fn bridge(id: &str, source: &str, group: &str, target: &str, listen: &str) -> String {
    format!(
        r#"<operation id="{id}-in" type="listen" connection="tansu">
  <topic>{source}</topic><consumer-group>{group}</consumer-group>
  <offset-reset>earliest</offset-reset><max-messages>20</max-messages>{listen}
</operation>
<operation id="{id}-out" type="produce" connection="tansu"><topic>{target}</topic></operation>
<process id="{id}"><start operation="{id}-in"/><steps><connector operation="{id}-out"/></steps></process>
"#
    )
}

/// The distinct payloads of `topics` together.
fn payloads(kafka: &Kafka, topics: &[&str]) -> BTreeSet<String> {
    topics
        .iter()
        .flat_map(|topic| kafka.read_some(topic))
        .map(|record| record.payload)
        .collect()
}

/// The processes `GET /listeners` lists.
fn listed(api: &Api) -> Vec<String> {
    let listeners = api.json("/listeners");
    let listeners = listeners.as_array().expect("an array");
    listeners
        .iter()
        .map(|l| l["process"].as_str().expect("process").to_string())
        .collect()
}

#[test]
fn a_reload_restarts_a_changed_listener_under_load_and_leaves_the_other_alone() {
    let broker = Broker::start();
    let a_in = broker.create_topic("deploy-a-in", 2);
    let a_out = broker.create_topic("deploy-a-out", 1);
    let a_moved = broker.create_topic("deploy-a-moved", 1);
    let b_in = broker.create_topic("deploy-b-in", 1);
    let b_out = broker.create_topic("deploy-b-out", 1);
    let (group_a, group_b) = (unique("ga"), unique("gb"));
    let xml = |a_target: &str| {
        let a = bridge("a", &a_in, &group_a, a_target, "");
        let b = bridge("b", &b_in, &group_b, &b_out, "");
        components(&broker, &group_a, &(a + &b))
    };
    let ws = Workspace::with_components(&xml(&a_out));
    let mut serving = ws.sluice_spawn(&["serve", "--api", "127.0.0.1:0"]);
    let api = Api::of(&serving, None);
    api.wait_until_running("a", 2);
    api.wait_until_running("b", 1);

    // Under load: a producer feeds a's source the whole time the change is deployed.
    let stop = Arc::new(AtomicBool::new(false));
    let feeding = {
        let (bootstrap, source, stop) = (broker.bootstrap(), a_in.clone(), stop.clone());
        std::thread::spawn(move || {
            // About 200 documents a second.
            Kafka::new(&bootstrap).produce_until(&source, 2, Duration::from_millis(5), &stop)
        })
    };
    wait_for("the first documents through a", WORK, || {
        (broker.records_in(&a_out) >= 50).then_some(())
    });

    // Change a's target topic; b stays as it was.
    ws.write_components(&xml(&a_moved));
    let report = api.json_of("POST", "/components/reload");
    assert_eq!(report["restarted"], json!(["a"]), "{report}");
    assert_eq!(report["unchanged"], json!(["b"]), "{report}");
    for empty in ["started", "stopped"] {
        assert_eq!(report[empty], json!([]), "{report}");
    }
    assert_eq!(report["kept"], json!({}), "{report}");
    assert_eq!(report["needs_restart"], json!([]), "{report}");

    // The new definition takes the documents that keep coming.
    wait_for("a restarted and running", WORK, || {
        let a = api.status("a");
        (a["restarts"] == 1 && a["state"] == "RUNNING").then_some(())
    });
    wait_for("documents in a's new target", WORK, || {
        (broker.records_in(&a_moved) >= 50).then_some(())
    });
    stop.store(true, Ordering::Relaxed);
    let produced = feeding.join().expect("the producer");

    // Nothing lost: every document is in one of the two targets (at-least-once: the
    // documents of the last batch before the restart may be in both).
    let mut seen = BTreeSet::new();
    wait_for(&format!("all {produced} documents"), WORK, || {
        seen = payloads(&broker, &[&a_out, &a_moved]);
        (seen.len() == produced).then_some(())
    });
    let expected: BTreeSet<String> = (0..produced).map(|i| format!("doc-{i:05}")).collect();
    assert_eq!(seen, expected);
    // What came after the restart went to the new target only.
    let last = format!("doc-{:05}", produced - 1);
    assert!(payloads(&broker, &[&a_moved]).contains(&last));
    assert!(!payloads(&broker, &[&a_out]).contains(&last));

    // The unchanged listener was not disturbed: no restart, no rebalance, and it still works.
    broker.produce_to(&b_in, 0, "after the reload");
    assert_eq!(broker.read_payloads(&b_out, 1), ["after the reload"]);
    let b = api.status("b");
    assert_eq!(
        (&b["state"], &b["restarts"], &b["revocations"]),
        (&json!("RUNNING"), &json!(0), &json!(0)),
        "{b}"
    );
    assert_contains(
        &serving.stderr(),
        &[
            "loading the components again (asked by the API)",
            "listener \"a\" changed: it finishes its documents, commits and starts again with \
             the new definition",
            "reloaded: 0 started, 1 restarted, 0 stopped, 1 unchanged, 0 kept as they ran, 0 \
             invalid",
        ],
    );
    serving.stop("TERM", WORK);
    harness::reliability_row(
        "deploy",
        "change a listener's target topic under load (POST /components/reload)",
        produced,
        "every document delivered; the unchanged listener saw no restart and no revocation",
        None,
    );
}

#[test]
fn sighup_starts_new_listeners_stops_removed_ones_and_keeps_one_whose_change_is_invalid() {
    let broker = Broker::start();
    let topic = |name: &str| broker.create_topic(&format!("deploy-{name}"), 1);
    let (a_in, a_out, b_in, b_out, c_in, c_out) = (
        topic("a-in"),
        topic("a-out"),
        topic("b-in"),
        topic("b-out"),
        topic("c-in"),
        topic("c-out"),
    );
    let (group_a, group_b, group_c) = (unique("ga"), unique("gb"), unique("gc"));
    let a = |listen: &str| bridge("a", &a_in, &group_a, &a_out, listen);
    let b = bridge("b", &b_in, &group_b, &b_out, "");
    let ws = Workspace::with_components(&components(&broker, &group_a, &(a("") + &b)));
    ws.write("container.properties", "max.poll.records=5\n");
    let mut serving = ws.sluice_spawn(&["serve", "--api", "127.0.0.1:0"]);
    let api = Api::of(&serving, None);
    api.wait_until_running("a", 1);
    api.wait_until_running("b", 1);

    // a's change is invalid, b is gone, c is new, and d needs Kerberos, which the host did not
    // set up at start; the container properties changed too.
    let kerberos = r#"<connection id="kerberos">
  <bootstrap-servers>localhost:9092</bootstrap-servers>
  <security-protocol>SASL_PLAINTEXT</security-protocol>
  <sasl-mechanism>GSSAPI</sasl-mechanism>
  <username>svc@EXAMPLE.TEST</username>
  <service-name>kafka</service-name>
  <consumer-group>gd</consumer-group>
</connection>
<operation id="d-in" type="listen" connection="kerberos"><topic>d</topic></operation>
<process id="d"><start operation="d-in"/></process>
"#;
    let c = bridge("c", &c_in, &group_c, &c_out, "");
    let changed = a("<retry-limit>many</retry-limit>") + &c + kerberos;
    ws.write_components(&components(&broker, &group_a, &changed));
    ws.write("container.properties", "max.poll.records=7\n");
    serving.signal("HUP");
    let said = wait_for("the reload's summary", WORK, || {
        let err = serving.stderr();
        err.contains("reloaded:").then_some(err)
    });
    assert_contains(
        &said,
        &[
            "loading the components again (asked by SIGHUP)",
            "listener \"a\" keeps running as it was; its new version is not deployed (1 \
             problem):",
            "retry-limit",
            "listener \"b\" was removed: it finishes its documents, commits and leaves its \
             consumer group",
            "listener \"c\" starts",
            "listener \"d\" is INVALID and does not start (1 error):",
            "connection \"kerberos\": it uses Kerberos, which this host did not set up when it \
             started",
            "needs a restart: the container properties (container.properties) changed",
            "reloaded: 1 started, 0 restarted, 1 stopped, 0 unchanged, 1 kept as they ran, 1 \
             invalid",
        ],
    );

    // b has left; a, c and d are what the host has.
    wait_for("b gone from the listeners", WORK, || {
        (listed(&api) == ["a", "c", "d"]).then_some(())
    });
    let a_status = api.status("a");
    assert_eq!(a_status["state"], "RUNNING", "{a_status}");
    assert_eq!(a_status["restarts"], 0, "{a_status}");
    let not_deployed = a_status["not_deployed"].as_array().expect("not_deployed");
    assert_eq!(not_deployed.len(), 1, "{a_status}");
    assert_contains(
        not_deployed[0].as_str().expect("text"),
        &["c.xml:", "retry-limit"],
    );
    assert_eq!(api.status("d")["state"], "INVALID");

    // The running version of a and the new c both work.
    broker.produce_to(&a_in, 0, "to a");
    broker.produce_to(&c_in, 0, "to c");
    assert_eq!(broker.read_payloads(&a_out, 1), ["to a"]);
    assert_eq!(broker.read_payloads(&c_out, 1), ["to c"]);

    // Fixing a deploys it: it restarts with the definition now valid.
    let fixed = a("<retry-limit>5</retry-limit>") + &c + kerberos;
    ws.write_components(&components(&broker, &group_a, &fixed));
    let report = api.json_of("POST", "/components/reload");
    assert_eq!(report["restarted"], json!(["a"]), "{report}");
    assert_eq!(report["unchanged"], json!(["c"]), "{report}");
    let a_status: Value = api.status("a");
    assert!(a_status.get("not_deployed").is_none(), "{a_status}");

    // d is still INVALID: the host ends with status 1, as the README says.
    serving.signal("TERM");
    assert_eq!(serving.wait(WORK), Some(1), "{}", serving.stderr());
}

#[test]
fn watch_deploys_a_listener_added_to_the_folder() {
    let broker = Broker::start();
    let (a_in, a_out) = (
        broker.create_topic("watch-a-in", 1),
        broker.create_topic("watch-a-out", 1),
    );
    let (c_in, c_out) = (
        broker.create_topic("watch-c-in", 1),
        broker.create_topic("watch-c-out", 1),
    );
    let group = unique("ga");
    let ws = Workspace::with_components(&components(
        &broker,
        &group,
        &bridge("a", &a_in, &group, &a_out, ""),
    ));
    let mut serving = ws.sluice_spawn(&["serve", "--api", "off", "--watch"]);
    wait_for("a started", WORK, || {
        serving
            .stderr()
            .contains("1 listener started (a)")
            .then_some(())
    });

    // Another team drops its file into the folder.
    let c = bridge("c", &c_in, &unique("gc"), &c_out, "");
    ws.write(
        "components/team-c.xml",
        &format!("<components>\n{c}</components>\n"),
    );
    wait_for("c started", WORK, || {
        serving
            .stderr()
            .contains("listener \"c\" starts")
            .then_some(())
    });
    assert_contains(&serving.stderr(), &["asked by a file change"]);
    broker.produce_to(&c_in, 0, "to c");
    assert_eq!(broker.read_payloads(&c_out, 1), ["to c"]);
    serving.stop("TERM", WORK);
}

#[test]
fn listeners_that_share_a_consumer_group_are_warned_about() {
    let broker = Broker::start();
    let (one, two, out) = (
        broker.create_topic("shared-1", 1),
        broker.create_topic("shared-2", 1),
        broker.create_topic("shared-out", 1),
    );
    let group = unique("shared");
    let body = bridge("one", &one, &group, &out, "") + &bridge("two", &two, &group, &out, "");
    let ws = Workspace::with_components(&components(&broker, &group, &body));
    let mut serving = ws.sluice_spawn(&["serve", "--api", "off"]);
    let said = wait_for("the start lines", WORK, || {
        let err = serving.stderr();
        err.contains("listeners started").then_some(err)
    });
    assert_contains(
        &said,
        &[&format!(
            "warning: listeners \"one\" and \"two\" share consumer group \"{group}\" on {}: \
             they rebalance each other",
            broker.bootstrap()
        )],
    );
    serving.stop("TERM", WORK);
}
