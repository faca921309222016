//! The stall watchdog, black-box on tansu: a listener with lag that commits nothing for
//! host.stall.timeout.ms is marked STALLED (state with its partitions, metric), restarted on
//! the reconnect schedule, and counted as healed once it commits again; with a Produce step
//! whose broker is frozen (SIGSTOP), and with the source broker frozen and resumed. A stall
//! timeout shorter than a listener's retries is refused when it is loaded.

mod harness;

use std::process::Command;
use std::time::{Duration, Instant};

use harness::api::Api;
use harness::{assert_contains, unique, Broker, Workspace};
use serde_json::Value;

const WORK: Duration = Duration::from_secs(90);
const TOKEN: &str = "watchdog-token-5a7e";

/// Container properties: a 3 s stall timeout, a quick reconnect schedule and drain.
const QUICK: &str =
    "host.stall.timeout.ms=3000\nhost.reconnect.backoff.ms=500\nhost.drain.timeout.ms=1000\n";

/// Freezes (`STOP`) or thaws (`CONT`) a broker process.
fn signal(broker: &Broker, signal: &str) {
    let status = Command::new("kill")
        .args([&format!("-{signal}"), &broker.pid().to_string()])
        .status()
        .expect("kill");
    assert!(status.success(), "kill -{signal}");
}

/// A workspace with a listener "route" on `source` that sends each document to `target` on
/// `target_broker` (delivery timeout 2 min: a frozen broker holds the step, it does not fail
/// it), and the quick container properties.
fn bridge(source_broker: &Broker, source: &str, target_broker: &Broker, target: &str) -> Workspace {
    let xml = format!(
        r#"<components>
  <connection id="source"><bootstrap-servers>{}</bootstrap-servers><consumer-group>{}</consumer-group></connection>
  <connection id="target"><bootstrap-servers>{}</bootstrap-servers></connection>
  <operation id="receive" type="listen" connection="source">
    <topic>{source}</topic><offset-reset>earliest</offset-reset><retry-limit>0</retry-limit>
  </operation>
  <operation id="send" type="produce" connection="target"><topic>{target}</topic><delivery-timeout>2m</delivery-timeout></operation>
  <process id="route"><start operation="receive"/><steps><connector operation="send"/></steps></process>
</components>"#,
        source_broker.bootstrap(),
        unique("g"),
        target_broker.bootstrap(),
    );
    let ws = Workspace::with_components(&xml);
    ws.write("container.properties", QUICK);
    ws.set_env("SLUICE_API_TOKEN", TOKEN);
    ws
}

fn produce(broker: &Broker, topic: &str, numbers: std::ops::Range<i32>) {
    for i in numbers {
        broker.produce_one(topic, 0, None, format!("doc-{i}").as_bytes(), &[]);
    }
}

/// Waits until the listener's status says `state`; returns it.
fn wait_for_state(api: &Api, state: &str) -> Value {
    wait_for_status(api, &format!("the listener to be {state}"), |s| {
        s["state"] == state
    })
}

/// Waits until the listener's status satisfies `condition`; returns it, or fails showing the
/// last status seen.
fn wait_for_status(api: &Api, what: &str, condition: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + WORK;
    loop {
        let status = api.status("route");
        if condition(&status) {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; the last status: {status}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_step_stuck_on_a_frozen_broker_stalls_the_listener_which_restarts_and_heals() {
    let source_broker = Broker::start();
    let target_broker = Broker::start();
    let source = source_broker.create_topic("stall-in", 1);
    let target = target_broker.create_topic("stall-out", 1);
    let ws = bridge(&source_broker, &source, &target_broker, &target);
    let mut serving = ws.sluice_spawn(&["serve", "--api", "127.0.0.1:0"]);
    let api = Api::of(&serving, Some(TOKEN));
    produce(&source_broker, &source, 0..3);
    assert_eq!(target_broker.wait_for_payloads(&target, 3).len(), 3);
    wait_for_state(&api, "RUNNING");

    // The target broker freezes: the next documents' step waits (its delivery timeout is
    // longer than the stall timeout), nothing is committed, the lag stays.
    signal(&target_broker, "STOP");
    produce(&source_broker, &source, 3..6);
    let stalled = wait_for_state(&api, "STALLED");
    let reason = stalled["reason"].as_str().unwrap_or_default();
    assert_contains(
        reason,
        &[
            "no commit for 3000 ms while these partitions have lag: ",
            &format!("{source}/0 (committed 3, lag 3)"),
        ],
    );
    assert!(api.metric("sluice_listener_stalls_total{process=\"route\"}") >= 1.0);
    assert_contains(
        &serving.stderr(),
        &["sluice serve: listener \"route\" stalled; starts again in "],
    );

    // It thaws: a restart gets through, commits, and the stall counts as healed.
    signal(&target_broker, "CONT");
    source_broker.wait_for_committed(&wait_group(&ws), &source, &[Some(6)]);
    let running = wait_for_state(&api, "RUNNING");
    assert!(running["stalls"].as_u64() >= Some(1), "{running}");
    wait_for_status(&api, "the stall to count as healed", |status| {
        status["stalls_healed"].as_u64() >= Some(1)
    });
    assert!(api.metric("sluice_listener_stalls_healed_total{process=\"route\"}") >= 1.0);
    // At least once: the documents of the abandoned run may arrive twice.
    assert_eq!(target_broker.wait_for_payloads(&target, 6).len(), 6);
    serving.stop("TERM", WORK);
}

#[test]
fn a_frozen_source_broker_stalls_the_listener_until_it_is_back() {
    let broker = Broker::start();
    let source = broker.create_topic("frozen-in", 1);
    let target = broker.create_topic("frozen-out", 1);
    let ws = bridge(&broker, &source, &broker, &target);
    // The stalled run's member cannot leave the group while the broker is frozen: the group
    // waits for its session to time out before the restarted member gets the partition. A
    // short session keeps that wait short (45 s by default).
    let xml = std::fs::read_to_string(ws.path().join("components/c.xml")).expect("components");
    ws.write_components(&xml.replacen(
        "</consumer-group>",
        "</consumer-group><properties><property name=\"session.timeout.ms\">6000</property>\
         <property name=\"heartbeat.interval.ms\">1000</property></properties>",
        1,
    ));
    let mut serving = ws.sluice_spawn(&["serve", "--api", "127.0.0.1:0"]);
    let api = Api::of(&serving, Some(TOKEN));
    wait_for_state(&api, "RUNNING");
    // Paused, it holds three documents it has not read: lag, but not a stall.
    assert_eq!(api.send("PUT", "/listeners/route/pause"), 202);
    // The pause takes effect at the end of the poll in hand, which could still take a message.
    wait_for_state(&api, "PAUSED");
    produce(&broker, &source, 0..3);
    wait_for_status(&api, "a lag of 3 while paused", |status| {
        status["state"] == "PAUSED" && status["partitions"][0]["lag"] == 3
    });
    // Longer than the stall timeout, looking all along: a watchdog that ignored the pause
    // would have fired (a wait for something not to happen has no condition to end it).
    let watched = Instant::now();
    while watched.elapsed() < Duration::from_secs(4) {
        let status = api.status("route");
        assert_eq!(
            status["state"], "PAUSED",
            "a paused listener is not stalled: {status}"
        );
    }

    // The broker freezes, then the listener is resumed: it cannot fetch or commit.
    signal(&broker, "STOP");
    assert_eq!(api.send("PUT", "/listeners/route/resume"), 202);
    let stalled = wait_for_state(&api, "STALLED");
    assert_contains(
        stalled["reason"].as_str().unwrap_or_default(),
        &[&format!("{source}/0 (committed nothing, lag 3)")],
    );
    signal(&broker, "CONT");
    broker.wait_for_committed(&wait_group(&ws), &source, &[Some(3)]);
    wait_for_status(&api, "the stall to count as healed", |status| {
        status["state"] == "RUNNING" && status["stalls_healed"].as_u64() >= Some(1)
    });
    assert_eq!(broker.wait_for_payloads(&target, 3).len(), 3);
    serving.stop("TERM", WORK);
}

/// The consumer group of the workspace's listener.
fn wait_group(ws: &Workspace) -> String {
    let xml = std::fs::read_to_string(ws.path().join("components/c.xml")).expect("components");
    let (_, rest) = xml.split_once("<consumer-group>").expect("a group");
    rest.split('<').next().expect("its name").to_string()
}

#[test]
fn a_stall_timeout_shorter_than_a_listeners_retries_is_refused_at_load() {
    let broker = Broker::start();
    let source = broker.create_topic("refused-in", 1);
    let ws = bridge(&broker, &source, &broker, &source);
    // Retries of 1 s, 2 s and 4 s: up to 8.4 s with jitter, longer than the 3 s timeout.
    let xml = std::fs::read_to_string(ws.path().join("components/c.xml")).expect("components");
    ws.write_components(&xml.replace(
        "<retry-limit>0</retry-limit>",
        "<retry-limit>3</retry-limit><retry-backoff>1s</retry-backoff>",
    ));
    let mut serving = ws.sluice_spawn(&["serve", "--api", "127.0.0.1:0"]);
    let api = Api::of(&serving, Some(TOKEN));
    let invalid = wait_for_state(&api, "INVALID");
    assert_eq!(
        invalid["errors"][0],
        "host.stall.timeout.ms is 3000 ms, but this listener's retries of one document may hold \
         its partition for up to 8400 ms (retry-backoff 1000 ms, doubling, over retry-limit 3, \
         each wait up to a fifth longer at random), and the watchdog would restart it while it \
         retries: raise host.stall.timeout.ms above 8400 ms, or lower retry-backoff or \
         retry-limit on operation \"receive\""
    );
    assert_contains(
        &serving.stderr(),
        &["sluice serve: listener \"route\" is INVALID and does not start (1 error):"],
    );
    // An invalid listener makes the host's exit status 1.
    serving.signal("TERM");
    assert_eq!(serving.wait(WORK), Some(1), "{}", serving.stderr());
}

/// A listener "route" on `source` (3 partitions) that sends each document to `target`, in a
/// group with a 6 s session; a 10 s stall timeout, longer than the session, as in production
/// (where the default is 5 min against 45 s).
fn shared_group(broker: &Broker, source: &str, target: &str) -> Workspace {
    let xml = format!(
        r#"<components>
  <connection id="c"><bootstrap-servers>{}</bootstrap-servers><consumer-group>{}</consumer-group>
    <properties><property name="session.timeout.ms">6000</property><property name="heartbeat.interval.ms">1000</property></properties></connection>
  <operation id="receive" type="listen" connection="c"><topic>{source}</topic><offset-reset>earliest</offset-reset><retry-limit>0</retry-limit></operation>
  <operation id="send" type="produce" connection="c"><topic>{target}</topic></operation>
  <process id="route"><start operation="receive"/><steps><connector operation="send"/></steps></process>
</components>"#,
        broker.bootstrap(),
        unique("g"),
    );
    let ws = Workspace::with_components(&xml);
    ws.write(
        "container.properties",
        "host.stall.timeout.ms=10000\nhost.reconnect.backoff.ms=500\nhost.drain.timeout.ms=1000\n",
    );
    ws.set_env("SLUICE_API_TOKEN", TOKEN);
    ws
}

/// Partitions held by the listener on the host behind `api`.
fn held(api: &Api) -> Vec<i64> {
    api.status("route")["partitions"]
        .as_array()
        .map(|ps| ps.iter().filter_map(|p| p["partition"].as_i64()).collect())
        .unwrap_or_default()
}

/// Sends `doc-{i}` for each i in `numbers` to partition i % 3.
fn produce_spread(broker: &Broker, topic: &str, numbers: std::ops::Range<i32>) {
    for i in numbers {
        broker.produce_one(topic, i % 3, None, format!("doc-{i}").as_bytes(), &[]);
    }
}

#[test]
fn partitions_no_member_reads_after_a_host_is_killed_are_taken_up_by_a_rejoin() {
    let broker = Broker::start();
    let source = broker.create_topic("orphan-in", 3);
    let target = broker.create_topic("orphan-out", 1);
    let ws = shared_group(&broker, &source, &target);
    let mut first = ws.sluice_spawn(&["serve", "--api", "127.0.0.1:0"]);
    let api = Api::of(&first, Some(TOKEN));
    api.wait_until_running("route", 3);
    let mut second = ws.sluice_spawn(&["serve", "--api", "127.0.0.1:0"]);
    let second_api = Api::of(&second, Some(TOKEN));
    harness::wait_for("the two hosts to share the partitions", WORK, || {
        let (one, two) = (held(&api), held(&second_api));
        (!one.is_empty() && !two.is_empty() && one.len() + two.len() == 3).then_some(())
    });
    produce_spread(&broker, &source, 0..6);
    assert_eq!(broker.wait_for_payloads(&target, 6).len(), 6);

    // The second host dies without leaving. tansu drops it from the group when its session
    // ends, but gives its partitions to no one: the first host goes on with its own alone.
    let orphaned: Vec<i64> = held(&second_api);
    second.signal("KILL");
    let _ = second.wait(WORK);
    produce_spread(&broker, &source, 6..12);
    // The watchdog finds partitions with lag that no member on this host holds, rejoins the
    // group, and the group assigns all three here.
    let stalled = wait_for_state(&api, "STALLED");
    let reason = stalled["reason"].as_str().unwrap_or_default();
    assert_contains(
        reason,
        &["no member of the group holds these partitions, which have lag and no commit for 10000 ms: "],
    );
    for partition in &orphaned {
        assert_contains(
            reason,
            &[&format!("{source}/{partition} (committed 2, lag 2)")],
        );
    }
    assert!(
        !reason.contains("no commit for 10000 ms while these partitions have lag"),
        "the partitions held here were moving: {reason}"
    );
    let payloads = broker.wait_for_payloads(&target, 12);
    assert_eq!(payloads.len(), 12, "{payloads:?}");
    api.wait_until_running("route", 3);
    wait_for_status(&api, "the stall to count as healed", |status| {
        status["stalls_healed"].as_u64() >= Some(1)
    });
    broker.wait_for_committed(&wait_group(&ws), &source, &[Some(4), Some(4), Some(4)]);
    first.stop("TERM", WORK);
}

#[test]
fn partitions_paused_on_another_host_cost_few_rejoins() {
    let broker = Broker::start();
    let source = broker.create_topic("elsewhere-in", 3);
    let target = broker.create_topic("elsewhere-out", 1);
    let ws = shared_group(&broker, &source, &target);
    // A quicker stall timeout: this test waits for it to pass without a stall.
    ws.write(
        "container.properties",
        "host.stall.timeout.ms=3000\nhost.reconnect.backoff.ms=500\nhost.drain.timeout.ms=1000\n",
    );
    let mut first = ws.sluice_spawn(&["serve", "--api", "127.0.0.1:0"]);
    let api = Api::of(&first, Some(TOKEN));
    api.wait_until_running("route", 3);
    produce_spread(&broker, &source, 0..3);
    assert_eq!(broker.wait_for_payloads(&target, 3).len(), 3);
    let mut second = ws.sluice_spawn(&["serve", "--api", "127.0.0.1:0"]);
    let second_api = Api::of(&second, Some(TOKEN));
    harness::wait_for("the two hosts to share the partitions", WORK, || {
        let (one, two) = (held(&api), held(&second_api));
        (!one.is_empty() && !two.is_empty() && one.len() + two.len() == 3).then_some(())
    });

    // The second host's listener is paused: its partitions get lag that waits on purpose.
    // tansu does not say who holds what, so the first host cannot tell them from a dead
    // member's: it rejoins after the stall timeout, and waits twice as long before the next.
    assert_eq!(second_api.send("PUT", "/listeners/route/pause"), 202);
    wait_for_state(&second_api, "PAUSED");
    produce_spread(&broker, &source, 3..9);
    let watched = Instant::now();
    while watched.elapsed() < Duration::from_secs(8) {
        let status = api.status("route");
        assert!(status["stalls"].as_u64() <= Some(1), "{status}");
    }
    assert_eq!(api.status("route")["stalls"], 1);
    assert_contains(
        &first.stderr(),
        &[
            "which have lag and no commit for 3000 ms, and the broker does not say who does: ",
            "rejoining the group in case no one does (the next time after 6000 ms: another host \
             may hold them paused)",
        ],
    );
    assert_eq!(second_api.status("route")["stalls"], 0);

    // Resumed, the second host reads them.
    assert_eq!(second_api.send("PUT", "/listeners/route/resume"), 202);
    assert_eq!(broker.wait_for_payloads(&target, 9).len(), 9);
    second.stop("TERM", WORK);
    first.stop("TERM", WORK);
}
