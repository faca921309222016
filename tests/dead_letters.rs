//! Dead letters listed and replayed, black-box on tansu: documents fail until a fix is applied
//! (their target topic created) and go to the dead-letter topic; `sluice dead-letters list`
//! shows them with their context; a replay to their source delivers each exactly once
//! downstream, byte for byte, through the running listener; a replay through the process
//! delivers them without the source; a second replay does nothing; a dead letter of a message
//! over max.request.size is listed, never replayed. Checked with an independent client.

mod harness;

use std::time::Duration;

use harness::api::Api;
use harness::browser::Browser;
use harness::flows::Listener;
use harness::{assert_contains, stdout, unique, wait_for, Broker, Record, Stream};
use serde_json::{json, Value};

const WORK: Duration = Duration::from_secs(60);
const TOKEN: &str = "replay-token-93be";

/// The messages that fail: (key, payload, a header of their own), all routed to a topic that
/// does not exist yet.
const FAILING: [(&str, &str, &str); 3] = [
    ("k0", "first ✓", "a"),
    ("k1", "{\"second\": 2}", "b"),
    ("k2", "third, with a tab\tinside", "c"),
];

/// A broker with a listener's source and dead-letter topics, and the name of a target that
/// does not exist yet; the FAILING messages on the source, routed to it.
struct Failing {
    broker: Broker,
    source: String,
    dead: String,
    target: String,
}

impl Failing {
    fn new() -> Self {
        let broker = Broker::start();
        let source = broker.create_topic("replay-in", 1);
        let dead = broker.create_topic("replay-dlq", 1);
        let target = unique("replay-out");
        for (key, payload, own) in FAILING {
            broker.produce_one(
                &source,
                0,
                Some(key),
                payload.as_bytes(),
                &[("route", &target), ("own", own)],
            );
        }
        Self {
            broker,
            source,
            dead,
            target,
        }
    }

    /// A listener that dead-letters a failing document at once.
    fn listener(&self) -> Listener {
        let listener = Listener::new(
            &self.broker,
            &self.source,
            &format!(
                "<retry-limit>0</retry-limit><dead-letter-topic>{}</dead-letter-topic>",
                self.dead
            ),
        );
        listener.ws.set_env("SLUICE_API_TOKEN", TOKEN);
        listener
    }

    fn wait_for_dead_letters(&self, count: i64) {
        wait_for(&format!("{count} dead letters"), WORK, || {
            (self.broker.records_in(&self.dead) == count).then_some(())
        });
    }
}

/// Asserts that `records` are the FAILING messages, byte for byte, each marked as the replay
/// of its dead letter among `letters` (the dead-letter topic `dead`, read independently).
#[track_caller]
fn assert_replayed(records: &[Record], letters: &[Record], dead: &str, target: &str) {
    let mut records: Vec<&Record> = records.iter().collect();
    records.sort_by(|a, b| a.key.cmp(&b.key));
    assert_eq!(records.len(), FAILING.len(), "{records:#?}");
    for ((key, payload, own), record) in FAILING.iter().zip(records) {
        assert_eq!(record.key.as_deref(), Some(*key));
        assert_eq!(record.payload, *payload);
        let letter = letters
            .iter()
            .find(|l| l.key.as_deref() == Some(*key))
            .expect("its dead letter");
        let replay_of = format!("{dead}/0/{}", letter.offset);
        let headers: Vec<(&str, Option<&str>)> = record
            .headers
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_deref()))
            .collect();
        assert_eq!(
            headers,
            [
                ("route", Some(target)),
                ("own", Some(*own)),
                ("sluice.replay.of", Some(replay_of.as_str()))
            ],
            "the message's own headers, none of the error headers, and the replay's mark"
        );
    }
}

#[test]
fn dead_letters_are_listed_then_replayed_to_their_source_exactly_once() {
    let failing = Failing::new();
    let (broker, source, dead, target) = (
        &failing.broker,
        &failing.source,
        &failing.dead,
        &failing.target,
    );
    let listener = failing.listener();
    let ws = &listener.ws;
    let mut serving = listener.serve_with_api();
    let api = Api::of(&serving, Some(TOKEN));
    failing.wait_for_dead_letters(3);
    let originals = broker.read_all(dead, 3);

    // Listed with where each came from and why it failed.
    let error = format!("topic \"{target}\" does not exist");
    let listed = ws.sluice_expect(
        &["dead-letters", "list", "route"],
        0,
        Stream::Stdout,
        &[&format!("3 dead letters in {dead}")],
    );
    let rows: Vec<String> = stdout(&listed)
        .lines()
        .skip(1)
        .take(3)
        .map(str::to_string)
        .collect();
    for (i, row) in rows.iter().enumerate() {
        let words: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(words[0], format!("{dead}/0/{i}"), "{row}");
        assert_eq!(words[3], format!("{source}/0/{i}"), "{row}");
        assert_eq!(&words[4..6], ["1", "-"], "{row}");
        assert!(row.ends_with(&error), "{row}");
    }
    ws.sluice_expect(
        &[
            "dead-letters",
            "list",
            "route",
            "--error-contains",
            "refused",
        ],
        0,
        Stream::Stdout,
        &[&format!("no dead letters in {dead} that match")],
    );
    ws.sluice_expect(
        &["dead-letters", "list", "route", "--since", "yesterday"],
        2,
        Stream::Stderr,
        &["\"yesterday\" is neither a time (2026-11-30T10:00:00Z) nor a while ago (2h, 30min)"],
    );

    // The fix: the target topic exists. A dry run says what would go where and sends nothing.
    broker.create_topic_named(target, 1);
    ws.sluice_expect(
        &["dead-letters", "replay", "route", "--dry-run"],
        0,
        Stream::Stdout,
        &[
            &format!("would replay {dead}/0/0 -> {source}/0/0"),
            &format!("would replay {dead}/0/2 -> {source}/0/2"),
            "would replay 3 dead letters to their source, 0 skipped, 0 failed",
        ],
    );
    assert_eq!(broker.records_in(source), 3, "a dry run sent something");

    // The replay: back on the source, the running listener delivers each once.
    let replayed = ws.sluice_expect(
        &["dead-letters", "replay", "route"],
        0,
        Stream::Stdout,
        &[
            &format!("replayed {dead}/0/1 -> {source}/0/1"),
            "replayed 3 dead letters to their source, 0 skipped, 0 failed; execution ",
        ],
    );
    let out = stdout(&replayed);
    let execution = out
        .split("; execution ")
        .nth(1)
        .and_then(|rest| rest.split(':').next())
        .expect("the replay's execution")
        .to_string();
    broker.wait_for_committed(&listener.group, source, &[Some(6)]);
    assert_replayed(&broker.read_all(target, 3), &originals, dead, target);
    assert_eq!(
        broker.read_all(dead, 3),
        originals,
        "the dead letters stay as they were"
    );

    // The replay is an execution record that names what it wrote and replayed.
    let handled = api.json(&format!("/executions?message={dead}/0/2"));
    assert_eq!(handled[0]["id"], execution.as_str());
    assert_eq!(handled[0]["role"], "replayed");
    assert_eq!(handled[0]["process"], "route");
    let written = api.json(&format!("/executions?message={source}/0/4"));
    assert_eq!(written[0]["id"], execution.as_str());
    assert_eq!(written[0]["role"], "written");

    // A second replay does nothing, through the CLI or the API, and says why.
    ws.sluice_expect(
        &["dead-letters", "replay", "route"],
        0,
        Stream::Stdout,
        &[
            &format!(
                "skipped {dead}/0/0: replayed before, by execution {execution} (--again replays \
                 it anyway)"
            ),
            "replayed 0 dead letters to their source, 3 skipped, 0 failed",
        ],
    );
    let (status, body) = api.call(
        "POST",
        "/listeners/route/dead-letters/replay",
        Some(TOKEN),
        Some(("application/json", "{}")),
    );
    assert_eq!(status, 200, "{body}");
    let answer: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(answer["replayed"], json!([]));
    assert_eq!(answer["skipped"].as_array().map(Vec::len), Some(3));
    let listed = api.json("/listeners/route/dead-letters");
    assert_eq!(listed["dead_letter_topic"], dead.as_str());
    for letter in listed["dead_letters"].as_array().expect("dead letters") {
        assert_eq!(letter["replayed_by"], execution.as_str());
        assert_eq!(letter["error"], error.as_str());
        assert_eq!(letter["not_replayable"], Value::Null);
    }
    assert_eq!(broker.read_all(source, 6).len(), 6, "replayed twice");
    assert_eq!(broker.read_all(target, 3).len(), 3);

    // Unknown listeners and bad requests are explained.
    let (status, body) = api.get("/listeners/nope/dead-letters");
    assert_eq!(status, 404);
    assert_contains(
        &body,
        &["\\\"nope\\\" is not a listener of these components; listeners: route"],
    );
    let (status, body) = api.call(
        "POST",
        "/listeners/route/dead-letters/replay",
        Some(TOKEN),
        Some(("application/json", "{\"to\": \"elsewhere\"}")),
    );
    assert_eq!(status, 400, "{body}");
    assert_contains(&body, &["to (source or process)"]);
    serving.stop("TERM", WORK);
}

#[test]
fn dead_letters_replayed_through_the_process_skip_the_source_and_oversized_ones_stay() {
    let failing = Failing::new();
    let (broker, source, dead, target) = (
        &failing.broker,
        &failing.source,
        &failing.dead,
        &failing.target,
    );
    // A fourth message over max.request.size: dead-lettered at once without its bytes.
    broker.produce_one(source, 0, Some("big"), &[b'x'; 300], &[("route", target)]);
    let listener = failing.listener();
    listener
        .ws
        .write("container.properties", "kafka.max.request.size=200\n");
    let mut serving = listener.serve_with_api();
    let api = Api::of(&serving, Some(TOKEN));
    failing.wait_for_dead_letters(4);
    broker.wait_for_committed(&listener.group, source, &[Some(4)]);
    serving.stop("TERM", WORK);

    // It goes to the dead-letter topic as it arrives, before the batch's execution.
    let letters = broker.read_all(dead, 4);
    let big = letters
        .iter()
        .find(|l| l.key.is_none())
        .expect("the oversized one's dead letter, without its key")
        .offset;
    let first = letters
        .iter()
        .find(|l| l.key.as_deref() == Some("k0"))
        .expect("k0's dead letter")
        .offset;
    let listed = listener.ws.sluice_expect(
        &["dead-letters", "list", "route"],
        0,
        Stream::Stdout,
        &[&format!(
            "{dead}/0/{big}: not replayable: its message was over max.request.size, so the dead \
             letter holds only where it is ({source}/0/3), not its bytes: read it there"
        )],
    );
    assert_contains(
        &stdout(&listed),
        &["message is 303 bytes; max.request.size is 200 bytes"],
    );
    drop(api);

    broker.create_topic_named(target, 1);
    listener.ws.sluice_expect(
        &["dead-letters", "replay", "route", "--to", "process"],
        0,
        Stream::Stdout,
        &[
            &format!("replayed {dead}/0/{first} -> process route"),
            &format!("skipped {dead}/0/{big}: its message was over max.request.size"),
            "replayed 3 dead letters to the process, 1 skipped, 0 failed; execution ",
        ],
    );
    assert_replayed(&broker.read_all(target, 3), &letters, dead, target);
    assert_eq!(broker.records_in(source), 4, "the source was not written");
    listener.ws.sluice_expect(
        &["dead-letters", "replay", "route", "--to", "process"],
        0,
        Stream::Stdout,
        &["replayed 0 dead letters to the process, 4 skipped, 0 failed"],
    );
    // --again replays them anyway: a second copy downstream, as asked.
    listener.ws.sluice_expect(
        &[
            "dead-letters",
            "replay",
            "route",
            "--to",
            "process",
            "--again",
        ],
        0,
        Stream::Stdout,
        &["replayed 3 dead letters to the process, 1 skipped, 0 failed"],
    );
    assert_eq!(broker.read_all(target, 6).len(), 6);
}

#[test]
fn the_console_lists_and_replays_dead_letters_and_moves_the_listener_in_a_real_browser() {
    let failing = Failing::new();
    let (broker, source, dead, target) = (
        &failing.broker,
        &failing.source,
        &failing.dead,
        &failing.target,
    );
    let listener = failing.listener();
    let mut serving = listener.serve_with_api();
    let api = Api::of(&serving, Some(TOKEN));
    failing.wait_for_dead_letters(3);
    let originals = broker.read_all(dead, 3);
    let browser = Browser::start();
    browser.goto(&format!("{}/console/login", api.base()));
    browser.type_into("#token", TOKEN);
    browser.click("form.login button");
    browser.wait_for_text("main", "RUNNING");

    // From the listener's page to its dead letters: each with where it came from and why.
    browser.goto(&format!("{}/console/listeners/route", api.base()));
    browser.click("section[aria-labelledby=dead-letters] a");
    let listed = browser.wait_for_text("section[aria-labelledby=letters]", &format!("In {dead}"));
    for i in 0..3 {
        assert_contains(
            &listed,
            &[
                &format!("{dead}/0/{i}"),
                &format!("{source}/0/{i}"),
                &format!("topic \"{target}\" does not exist"),
            ],
        );
    }

    // The fix, then the replay to their source: the running listener delivers each once.
    broker.create_topic_named(target, 1);
    browser.click("form.replay button");
    browser.accept_dialog();
    let outcome = browser.wait_for_text(
        "section[aria-labelledby=outcome]",
        "3 replayed, 0 skipped, 0 failed.",
    );
    assert_contains(
        &outcome,
        &[&format!("{dead}/0/1"), &format!("{source}/0/1")],
    );
    broker.wait_for_committed(&listener.group, source, &[Some(6)]);
    assert_replayed(&broker.read_all(target, 3), &originals, dead, target);
    // Listed again, each names the execution that replayed it; a second replay skips them.
    browser.goto(&format!(
        "{}/console/listeners/route/dead-letters",
        api.base()
    ));
    let execution = api.json(&format!("/executions?message={dead}/0/0"))[0]["id"]
        .as_str()
        .expect("the replay's execution")
        .to_string();
    browser.wait_for_text("section[aria-labelledby=letters]", &execution);
    browser.click("form.replay button");
    browser.accept_dialog();
    browser.wait_for_text(
        "section[aria-labelledby=outcome]",
        "0 replayed, 3 skipped, 0 failed.",
    );

    // Seek to the earliest message: the six source messages are processed again (the three
    // that failed first now reach their target too), without a restart.
    browser.goto(&format!("{}/console/listeners/route", api.base()));
    browser.click("#seek-to option[value=earliest]");
    browser.click("form.seek button");
    browser.accept_dialog();
    let moved = browser.wait_for_text("section[aria-labelledby=moved]", source);
    let row: Vec<&str> = moved
        .lines()
        .find(|l| l.contains(source.as_str()))
        .expect("the partition's row")
        .split_whitespace()
        .collect();
    assert_eq!(row, [source.as_str(), "0", "6", "0"], "{moved}");
    broker.wait_for_committed(&listener.group, source, &[Some(6)]);
    assert_eq!(broker.read_all(target, 9).len(), 9);
    assert_eq!(api.status("route")["restarts"], 0);
    serving.stop("TERM", WORK);
}
