//! What several tests do alike: send documents through Sluice and read them back, and run a
//! routing listener under `sluice serve`.

use std::ops::Range;
use std::process::Output;

use super::broker::Broker;
use super::components::{routing_listener, with_connection_properties};
use super::kafka::Kafka;
use super::unique;
use super::workspace::{assert_contains, assert_exit, stdout, Serving, Workspace};

/// Sends "first" and "second" (in.txt) through process "send" of `ws`, checks with `kafka`
/// that `topic` holds them in that order, and reads them back through process "receive" (see
/// [`super::components::send_and_receive`]); returns the two runs' outputs.
#[track_caller]
pub fn round_trip(ws: &Workspace, kafka: &Kafka, topic: &str) -> [Output; 2] {
    ws.write("in.txt", "first\nsecond\n");
    let sent = ws.sluice(&["run", "send", "--input", "in.txt"]);
    assert_exit(&sent, 0);
    assert_eq!(kafka.read_payloads(topic, 2), ["first", "second"]);
    let received = ws.sluice(&["run", "receive"]);
    assert_exit(&received, 0);
    assert_contains(&stdout(&received), &["documents: 2 in, 2 out, 0 errors"]);
    [sent, received]
}

/// A broker with topics `{prefix}-in` of `partitions` (a listener's source) and `{prefix}-out`
/// of one partition (where it routes to).
pub fn source_and_target(prefix: &str, partitions: i32) -> (Broker, String, String) {
    let broker = Broker::start();
    let source = broker.create_topic(&format!("{prefix}-in"), partitions);
    let target = broker.create_topic(&format!("{prefix}-out"), 1);
    (broker, source, target)
}

/// Produces `doc-NNN` for each N of `numbers` to partition N % `partitions` of `topic`, each
/// with header `route` naming `target` (where a [`routing_listener`] sends it).
pub fn produce_routed(
    kafka: &Kafka,
    topic: &str,
    partitions: i32,
    numbers: Range<i32>,
    target: &str,
) {
    for i in numbers {
        let payload = format!("doc-{i:03}");
        kafka.produce_one(
            topic,
            i % partitions,
            None,
            payload.as_bytes(),
            &[("route", target)],
        );
    }
}

/// A workspace of one [`routing_listener`] (process "route") with a consumer group of its
/// own, to run under `sluice serve`.
pub struct Listener {
    pub ws: Workspace,
    pub group: String,
}

impl Listener {
    /// A routing listener on `source` of `broker`; `listen` holds further fields of the
    /// listen operation.
    pub fn new(broker: &Broker, source: &str, listen: &str) -> Self {
        Self::with_properties(broker, source, listen, &[])
    }

    /// [`Listener::new`] with librdkafka `properties` on the connection.
    pub fn with_properties(
        broker: &Broker,
        source: &str,
        listen: &str,
        properties: &[(&str, &str)],
    ) -> Self {
        let group = unique("g");
        let mut xml = routing_listener(broker, &group, source, listen);
        if !properties.is_empty() {
            xml = with_connection_properties(&xml, properties);
        }
        Self {
            ws: Workspace::with_components(&xml),
            group,
        }
    }

    /// A routing listener on `source` that takes one document per execution and whose group
    /// notices a killed host soon (a session timeout of 6 s instead of 45): a kill comes while
    /// work is under way, and another host takes the killed one's partitions over soon.
    pub fn quick_to_take_over(broker: &Broker, source: &str) -> Self {
        Self::with_properties(
            broker,
            source,
            "<max-messages>1</max-messages>",
            &[("session.timeout.ms", "6000")],
        )
    }

    /// Another workspace with the same components, in the same group: a second host of this
    /// listener.
    pub fn second_host(&self) -> Self {
        let xml = std::fs::read_to_string(self.ws.path().join("components/c.xml"))
            .expect("components/c.xml");
        Self {
            ws: Workspace::with_components(&xml),
            group: self.group.clone(),
        }
    }

    /// Starts `sluice serve` without the management API.
    pub fn serve(&self) -> Serving {
        self.ws.sluice_spawn(&["serve", "--api", "off"])
    }

    /// Starts `sluice serve` with the management API on a free loopback port.
    pub fn serve_with_api(&self) -> Serving {
        self.ws.sluice_spawn(&["serve", "--api", "127.0.0.1:0"])
    }
}
