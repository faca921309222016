//! Component XML that several tests share: a connection to the test broker, a listener that
//! routes by header, a produce/consume pair on a secured connection.

use super::broker::Broker;
use super::unique;

/// Components: connection "tansu" to `broker` with default consumer group `group`, then
/// `body`.
pub fn components(broker: &Broker, group: &str, body: &str) -> String {
    format!(
        r#"<components>
  <connection id="tansu">
    <bootstrap-servers>{}</bootstrap-servers>
    <consumer-group>{group}</consumer-group>
  </connection>
{body}
</components>
"#,
        broker.bootstrap()
    )
}

/// Components: a listener (operation "receive", process "route") on `source` whose process
/// routes each document to the topic its `route` header names; `listen` holds the listen
/// operation's further fields.
pub fn routing_listener(broker: &Broker, group: &str, source: &str, listen: &str) -> String {
    components(
        broker,
        group,
        &format!(
            r#"<operation id="receive" type="listen" connection="tansu">
  <topic>{source}</topic><offset-reset>earliest</offset-reset>{listen}
</operation>
<operation id="send" type="produce" connection="tansu"><dynamic-topic>true</dynamic-topic></operation>
<process id="route">
  <description>Routes by header.</description>
  <start operation="receive"/>
  <steps>
    <set-properties><property name="topic-name" from-header="route"/></set-properties>
    <connector operation="send"/>
  </steps>
</process>"#
        ),
    )
}

/// `components` (from [`components`]) with librdkafka `properties` on connection "tansu".
pub fn with_connection_properties(components: &str, properties: &[(&str, &str)]) -> String {
    let properties: String = properties
        .iter()
        .map(|(name, value)| format!("<property name=\"{name}\">{value}</property>"))
        .collect();
    components.replacen(
        "</consumer-group>",
        &format!("</consumer-group>\n    <properties>{properties}</properties>"),
        1,
    )
}

/// Components: connection `connection` to `bootstrap` with `security` (elements inside
/// <connection>) and a fresh consumer group; a produce operation and process "send" and a
/// consume operation and process "receive" (two documents, from the earliest offset), both on
/// `topic`.
pub fn send_and_receive(connection: &str, bootstrap: &str, security: &str, topic: &str) -> String {
    format!(
        r#"<components>
  <connection id="{connection}">
    <bootstrap-servers>{bootstrap}</bootstrap-servers>
    <consumer-group>{group}</consumer-group>
    {security}
  </connection>
  <operation id="send" type="produce" connection="{connection}"><topic>{topic}</topic></operation>
  <operation id="receive" type="consume" connection="{connection}">
    <topic>{topic}</topic><minimum-messages>2</minimum-messages><offset-reset>earliest</offset-reset>
  </operation>
  <process id="send"><steps><connector operation="send"/></steps></process>
  <process id="receive"><start operation="receive"/></process>
</components>"#,
        group = unique("g"),
    )
}

/// Components: connection `id` to `bootstrap` with default consumer group `group`, a
/// commit-offset operation and a process "commit" running it on the documents given.
pub fn commit_offset(id: &str, bootstrap: &str, group: &str) -> String {
    format!(
        r#"<components>
  <connection id="{id}"><bootstrap-servers>{bootstrap}</bootstrap-servers><consumer-group>{group}</consumer-group></connection>
  <operation id="commit" type="commit-offset" connection="{id}"/>
  <process id="commit"><steps><connector operation="commit"/></steps></process>
</components>"#
    )
}
