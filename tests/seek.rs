//! Live seek, black-box on tansu: `sluice listeners seek` moves a running listener's
//! partitions through the host's API, without a restart and without the member leaving its
//! group; an independent client checks what arrives downstream and what the group committed.
//! Test input goes one message per batch (a fetch that starts inside a batch returns nothing
//! there on tansu).

mod harness;

use std::collections::BTreeMap;
use std::time::{Duration, UNIX_EPOCH};

use harness::api::Api;
use harness::{unique, Broker, Stream, Workspace};

const TOKEN: &str = "seek-token-31c9";
const WORK: Duration = Duration::from_secs(90);

/// A workspace with listener "route" (group `group`) that sends each document of `source`
/// to `target`, and the API token in its environment.
fn bridge(broker: &Broker, group: &str, source: &str, target: &str) -> Workspace {
    let xml = format!(
        r#"<components>
  <connection id="kafka"><bootstrap-servers>{}</bootstrap-servers><consumer-group>{group}</consumer-group></connection>
  <operation id="receive" type="listen" connection="kafka"><topic>{source}</topic><offset-reset>earliest</offset-reset></operation>
  <operation id="send" type="produce" connection="kafka"><topic>{target}</topic></operation>
  <process id="route"><start operation="receive"/><steps><connector operation="send"/></steps></process>
</components>"#,
        broker.bootstrap()
    );
    let ws = Workspace::with_components(&xml);
    ws.set_env("SLUICE_API_TOKEN", TOKEN);
    ws
}

/// A host serving listener "route" from a topic of two partitions to a topic of one, after
/// it processed (and committed) six documents, one per batch, alternating over partitions 0
/// and 1: doc-0, doc-2, doc-4 at offsets 0 to 2 of partition 0, doc-1, doc-3, doc-5 of 1.
struct Started {
    broker: Broker,
    source: String,
    target: String,
    group: String,
    ws: Workspace,
    serving: harness::workspace::Serving,
    api: Api,
}

impl Started {
    fn with_six_processed() -> Self {
        let broker = Broker::start();
        let source = broker.create_topic("seek-in", 2);
        let target = broker.create_topic("seek-out", 1);
        let group = unique("seek");
        let ws = bridge(&broker, &group, &source, &target);
        let serving = ws.sluice_spawn(&["serve", "--api", "127.0.0.1:0"]);
        let api = Api::of(&serving, Some(TOKEN));
        api.wait_until_running("route", 2);
        for i in 0..6 {
            broker.produce_one(&source, i % 2, None, format!("doc-{i}").as_bytes(), &[]);
        }
        broker.wait_for_committed(&group, &source, &[Some(3), Some(3)]);
        Self {
            broker,
            source,
            target,
            group,
            ws,
            serving,
            api,
        }
    }
}

#[test]
fn a_seek_back_by_timestamp_replays_exactly_the_documents_after_that_time() {
    let Started {
        broker,
        source,
        target,
        group,
        ws,
        mut serving,
        api,
    } = Started::with_six_processed();
    assert_eq!(broker.read_all(&target, 6).len(), 6);

    // The time of the fourth document by the broker's timestamps: it and those after it are
    // what the seek must replay (their timestamps, not the order they were produced in).
    let mut sent = broker.read_all(&source, 6);
    sent.sort_by_key(|r| r.timestamp);
    let time = sent[3].timestamp.expect("a timestamp");
    let mut again: Vec<String> = sent
        .iter()
        .filter(|r| r.timestamp >= Some(time))
        .map(|r| r.payload.clone())
        .collect();
    again.sort();
    let rfc3339 = humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(time as u64))
        .to_string();
    let at: BTreeMap<i32, i64> =
        sent.iter()
            .filter(|r| r.timestamp >= Some(time))
            .fold(BTreeMap::new(), |mut first, r| {
                let o = first.entry(r.partition).or_insert(r.offset);
                *o = (*o).min(r.offset);
                first
            });

    let out = ws.sluice_expect(
        &[
            "listeners",
            "seek",
            "route",
            "--to-timestamp",
            &rfc3339,
            "--api",
            api.base(),
        ],
        0,
        Stream::Stdout,
        &["moved listener \"route\": 2 partitions"],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    for partition in 0..2 {
        let to = at.get(&partition).copied().unwrap_or(3);
        let line = if to < 3 {
            format!("  {source}/{partition}: 3 -> {to} ({} processed again)", {
                let n = 3 - to;
                if n == 1 {
                    "1 message".to_string()
                } else {
                    format!("{n} messages")
                }
            })
        } else {
            format!("  {source}/{partition}: 3 -> 3 (unchanged)")
        };
        assert!(stdout.contains(&line), "{line:?} not in\n{stdout}");
    }

    // Downstream, after the six: exactly the documents from that time on, once each; the
    // group is back at the ends.
    broker.wait_for_committed(&group, &source, &[Some(3), Some(3)]);
    let arrived = broker.read_all(&target, 6 + again.len());
    let mut replayed: Vec<String> = arrived[6..].iter().map(|r| r.payload.clone()).collect();
    replayed.sort();
    assert_eq!(replayed, again);
    // The member never left: no restart, no revocation.
    let status = api.status("route");
    assert_eq!(status["state"], "RUNNING", "{status}");
    assert_eq!(status["restarts"], 0, "{status}");
    assert_eq!(status["revocations"], 0, "{status}");
    serving.stop("TERM", WORK);
}

#[test]
fn a_seek_that_cannot_be_done_moves_nothing_and_a_paused_listener_stays_paused() {
    let Started {
        broker,
        source,
        target,
        group,
        ws,
        mut serving,
        api,
    } = Started::with_six_processed();
    let seek = |args: &[&str], code: i32, stream: Stream, expected: &[&str]| {
        let mut all = vec!["listeners", "seek"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--api", api.base()]);
        ws.sluice_expect(&all, code, stream, expected)
    };

    let offsets = format!("{source}:0:1,{source}:1:99");
    seek(
        &["route", "--to-offset", &offsets],
        1,
        Stream::Stderr,
        &[&format!(
            "listener \"route\": nothing was moved: offset 99 is outside what {source}/1 keeps: \
             0 to 3 (its end)"
        )],
    );
    let elsewhere = format!("{source}:7:0");
    seek(
        &["route", "--to-offset", &elsewhere],
        1,
        Stream::Stderr,
        &[&format!(
            "{source}/7 is not held by this host's member of the group (it holds {source}/0, \
             {source}/1)"
        )],
    );
    seek(
        &["nowhere", "--to-latest"],
        1,
        Stream::Stderr,
        &["listener \"nowhere\" is not defined"],
    );
    assert_eq!(
        broker.committed(&group, &source, 2),
        [Some(3), Some(3)],
        "a refused seek commits nothing"
    );
    // Without the token the API refuses, and says where the token goes.
    let mut args = vec!["listeners", "seek", "route", "--to-earliest", "--api"];
    args.push(api.base());
    ws.set_env("SLUICE_API_TOKEN", "");
    ws.sluice_expect(&args, 1, Stream::Stderr, &["set SLUICE_API_TOKEN"]);
    ws.set_env("SLUICE_API_TOKEN", TOKEN);

    // Paused, it seeks and stays paused; the group's commit moves at once; resumed, it
    // processes everything again from there.
    assert_eq!(api.send("PUT", "/listeners/route/pause"), 202);
    api_wait_for_state(&api, "PAUSED");
    seek(
        &[
            "route",
            "--to-offset",
            &format!("{source}:0:1,{source}:1:2"),
        ],
        0,
        Stream::Stdout,
        &[
            &format!("  {source}/0: 3 -> 1 (2 messages processed again)"),
            &format!("  {source}/1: 3 -> 2 (1 message processed again)"),
        ],
    );
    assert_eq!(broker.committed(&group, &source, 2), [Some(1), Some(2)]);
    assert_eq!(api.status("route")["state"], "PAUSED");
    assert_eq!(api.send("PUT", "/listeners/route/resume"), 202);
    broker.wait_for_committed(&group, &source, &[Some(3), Some(3)]);
    let arrived = broker.read_all(&target, 9);
    let mut replayed: Vec<String> = arrived[6..].iter().map(|r| r.payload.clone()).collect();
    replayed.sort();
    // Partition 0 holds doc-0, doc-2, doc-4 (offsets 0 to 2); partition 1 doc-1, doc-3, doc-5.
    assert_eq!(replayed, ["doc-2", "doc-4", "doc-5"]);

    // The API names what a body must hold.
    let (status, body) = api.call(
        "POST",
        "/listeners/route/seek",
        Some(TOKEN),
        Some((
            "application/json",
            r#"{"to_earliest": true, "to_latest": true}"#,
        )),
    );
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("a seek names one target, this one names 2"),
        "{body}"
    );
    serving.stop("TERM", WORK);
}

fn api_wait_for_state(api: &Api, state: &str) {
    harness::wait_for(&format!("the listener to be {state}"), WORK, || {
        (api.status("route")["state"] == state).then_some(())
    });
}
