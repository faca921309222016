//! `<topic-pattern>`: the topics a Consume or Listen operation reads, chosen by a regular
//! expression over the cluster's topic names.
//!
//! Sluice matches the names itself (the `regex` crate, the one dialect Sluice takes everywhere)
//! and subscribes to the list it found, instead of handing librdkafka a `^` pattern (POSIX
//! extended syntax, matched inside librdkafka): so the pattern is checked when the components
//! load, with the position of a mistake; a listener's own dead-letter topic can never be one
//! of its sources; "matches nothing" can be shown instead of a silent wait; and a topic that
//! disappears leaves the list at the next look instead of staying subscribed.

use std::time::Duration;

/// A compiled topic pattern, matched against whole topic names.
#[derive(Debug, Clone)]
pub struct TopicPattern {
    written: String,
    regex: regex::Regex,
    /// How often the cluster's topics are looked at again for new (or gone) matches.
    pub refresh: Duration,
    /// Topics never read even when they match: a listener's dead-letter topic.
    pub excluded: Vec<String>,
}

/// Two patterns are the same when they are written the same and refreshed alike.
impl PartialEq for TopicPattern {
    fn eq(&self, other: &Self) -> bool {
        self.written == other.written
            && self.refresh == other.refresh
            && self.excluded == other.excluded
    }
}

impl Eq for TopicPattern {}

impl TopicPattern {
    /// Kafka's internal topics (`__consumer_offsets`, `__transaction_state`) start so; like
    /// Kafka's own consumers (`exclude.internal.topics`), a pattern never picks them.
    const INTERNAL_PREFIX: &'static str = "__";

    /// Compiles `pattern`, anchored at both ends: it must match a whole topic name, as Kafka
    /// Connect's `topics.regex` does. The caller checks the syntax first, for its message.
    pub fn new(pattern: &str, refresh: Duration) -> Result<Self, regex::Error> {
        Ok(Self {
            written: pattern.to_string(),
            regex: regex::Regex::new(&format!("^(?:{pattern})$"))?,
            refresh,
            excluded: Vec::new(),
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.written
    }

    /// Whether the topic named `topic` is one this pattern reads.
    pub fn picks(&self, topic: &str) -> bool {
        !topic.is_empty()
            && !topic.starts_with(Self::INTERNAL_PREFIX)
            && !self.excluded.iter().any(|t| t == topic)
            && self.regex.is_match(topic)
    }

    /// The topics on the cluster this pattern reads now, sorted, asked through `consumer`.
    pub(crate) fn topics_on(
        &self,
        connection: &crate::Connection,
        consumer: &rdkafka::consumer::BaseConsumer<crate::context::Observer>,
    ) -> Result<Vec<String>, crate::ConnectorError> {
        use rdkafka::consumer::Consumer as _;
        let metadata = connection.metadata(consumer.client(), consumer.context(), None)?;
        Ok(self.matching(&metadata))
    }

    /// The topics of `metadata` this pattern reads, sorted. Topics the cluster reports with
    /// an error (being created or deleted) or without partitions are left for the next look.
    pub(crate) fn matching(&self, metadata: &rdkafka::metadata::Metadata) -> Vec<String> {
        let mut topics: Vec<String> = metadata
            .topics()
            .iter()
            .filter(|t| t.error().is_none() && !t.partitions().is_empty())
            .map(|t| t.name())
            .filter(|name| self.picks(name))
            .map(str::to_string)
            .collect();
        topics.sort();
        topics
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pattern_matches_whole_names_and_never_internal_or_excluded_topics() {
        let mut pattern = TopicPattern::new("orders-.*", Duration::from_secs(1)).expect("valid");
        pattern.excluded.push("orders-dead".into());
        assert!(pattern.picks("orders-eu"));
        assert!(!pattern.picks("old-orders-eu"), "anchored at the start");
        assert!(!pattern.picks("orders-dead"), "the dead-letter topic");
        assert!(!pattern.picks(""), "a nameless (deleted) topic");
        let everything = TopicPattern::new(".*", Duration::from_secs(1)).expect("valid");
        assert!(!everything.picks("__consumer_offsets"));
        let alternatives = TopicPattern::new("a|b", Duration::from_secs(1)).expect("valid");
        assert!(
            !alternatives.picks("ab"),
            "the group anchors every alternative"
        );
    }
}
