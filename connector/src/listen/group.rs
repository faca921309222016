//! The group's view of a listener's topics: every partition, who holds it, and what the group
//! has committed there. A member sees only its own partitions through its assignment; a
//! partition that no member reads (its holder died and the coordinator never handed it out
//! again) shows only here.
//!
//! Who holds a partition comes from the group's description (DescribeGroups). Kafka says
//! each member's assignment there; a broker that does not (tansu 0.6.0 answers members with
//! empty assignments, and with sqlite storage drops the connection instead) may still say how
//! many members there are, and a group whose only member is this one has nobody else to hold
//! a partition.

use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::TopicPartitionList;

use super::ListenConsumer;
use crate::context::Observer;
use crate::ConnectorError;

/// How long one look at the group may wait for the brokers.
const LOOK_TIMEOUT: Duration = Duration::from_secs(5);

/// How long the group's description may take.
const DESCRIBE_TIMEOUT: Duration = Duration::from_secs(10);

/// A member's partitions as the group describes them: `None` when it does not say.
type Assignment = Option<Vec<(String, i32)>>;

/// One partition of a listener's topics as its group stands on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupPosition {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// The group's committed offset (the next to process), if any.
    pub committed: Option<i64>,
    /// The partition's end (high watermark), if the broker answered.
    pub end: Option<i64>,
    /// Messages not yet committed: end − committed (everything, without a commit).
    pub lag: Option<i64>,
    /// Who holds the partition.
    pub holder: Holder,
}

/// Who holds a partition, as far as the group says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holder {
    /// This member.
    Here,
    /// Another member (which may be paused, or stuck: its own watchdog judges it).
    Elsewhere,
    /// No member: the group has every member's assignment and the partition is in none, or
    /// this member is the group's only one.
    Nobody,
    /// Another member or nobody: the broker did not say (no assignments in its description
    /// of a group of several members, or no answer), or no one has asked yet.
    Unknown,
}

impl ListenConsumer {
    /// Every partition of the subscribed topics (or of the named partitions, for a listener
    /// that reads those), with the group's commits and ends. Runs on the blocking pool.
    pub async fn group_positions(&self) -> Result<Vec<GroupPosition>, ConnectorError> {
        let this = self.clone();
        crate::blocking("listen group status", move || {
            this.group_positions_blocking()
        })
        .await
    }

    fn group_positions_blocking(&self) -> Result<Vec<GroupPosition>, ConnectorError> {
        let held = self.held_partitions()?;
        let named = self.settings.partitions.is_some();
        let partitions: Vec<(String, i32)> = if named {
            // Named partitions: the rest of the topic belongs to other readers, not the group.
            held.clone()
        } else {
            let mut all = Vec::new();
            for topic in self.topics() {
                let metadata = self
                    .consumer
                    .fetch_metadata(Some(&topic), LOOK_TIMEOUT)
                    .map_err(|source| super::consume_error(&self.settings, source))?;
                for t in metadata.topics() {
                    all.extend(t.partitions().iter().map(|p| (topic.clone(), p.id())));
                }
                drop(metadata);
            }
            all
        };
        let mut list = TopicPartitionList::new();
        for (topic, partition) in &partitions {
            list.add_partition(topic, *partition);
        }
        let committed = self
            .consumer
            .committed_offsets(list, LOOK_TIMEOUT)
            .map_err(|source| self.commit_error(source));
        let committed = committed?;
        let mut positions: Vec<GroupPosition> = self
            .positions_of(&committed, LOOK_TIMEOUT)
            .into_iter()
            .map(|position| {
                let key = (position.topic, position.partition);
                // Who else holds it is asked only when it matters (see `holders`).
                let holder = if held.contains(&key) {
                    Holder::Here
                } else {
                    Holder::Unknown
                };
                let (topic, partition) = key;
                GroupPosition {
                    holder,
                    topic,
                    partition,
                    committed: position.committed,
                    end: position.end,
                    lag: position.lag,
                }
            })
            .collect();
        drop(committed);
        positions.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
        Ok(positions)
    }

    /// Who holds each of `partitions` (none of them held here), as the group's coordinator
    /// describes the group. Asked from a client of its own, never this consumer: a broker that
    /// cannot describe groups may drop the connection that asked (tansu 0.6.0 with sqlite
    /// storage does), and the listener's own must not go with it. Runs on the blocking pool.
    pub async fn holders(&self, partitions: Vec<(String, i32)>) -> Vec<Holder> {
        let this = self.clone();
        let count = partitions.len();
        crate::blocking("listen group description", move || {
            let members = this.members();
            let joined = this.progress().joined;
            Ok(partitions
                .iter()
                .map(|p| holder(members.as_deref(), p, joined))
                .collect())
        })
        .await
        .unwrap_or_else(|_| vec![Holder::Unknown; count])
    }

    /// Each member's assignment, as the group's coordinator describes the group (`None` for
    /// a member whose assignment it does not say); `None` when it does not answer.
    fn members(&self) -> Option<Vec<Assignment>> {
        let config = crate::consume::group_consumer_config(
            &self.connection,
            &self.settings.consumer_group,
            self.settings.offset_reset,
            self.settings.client_id.as_deref(),
            self.limits,
        );
        // Never subscribes: it describes the group without joining it.
        let client: BaseConsumer<Observer> = config
            .create_with_context(Observer::for_connection(&self.connection))
            .ok()?;
        Observer::serve_first_token(&client);
        let groups = client
            .fetch_group_list(Some(&self.settings.consumer_group), DESCRIBE_TIMEOUT)
            .ok()?;
        let group = groups
            .groups()
            .iter()
            .find(|g| g.name() == self.settings.consumer_group)?;
        let members = group
            .members()
            .iter()
            .map(|m| m.assignment().and_then(decode_assignment))
            .collect();
        drop(groups);
        Some(members)
    }
}

/// Who holds `partition`, which this member does not, from the group's `members` (see
/// [`ListenConsumer::members`]); `in_group`: this member has joined the group, so it is one
/// of them.
fn holder(members: Option<&[Assignment]>, partition: &(String, i32), in_group: bool) -> Holder {
    let Some(members) = members else {
        return Holder::Unknown;
    };
    if members
        .iter()
        .flatten()
        .any(|assigned| assigned.contains(partition))
    {
        return Holder::Elsewhere;
    }
    if members.iter().all(Option::is_some) || (in_group && members.len() == 1) {
        return Holder::Nobody;
    }
    Holder::Unknown
}

/// The partitions of a consumer-protocol assignment (Kafka's ConsumerProtocolAssignment:
/// version, then per topic its name and partitions, then user data); `None` when it is empty
/// or not one.
fn decode_assignment(bytes: &[u8]) -> Option<Vec<(String, i32)>> {
    let mut input = bytes;
    let mut take = |n: usize| -> Option<&[u8]> {
        let (head, rest) = (input.get(..n)?, input.get(n..)?);
        input = rest;
        Some(head)
    };
    let _version = i16::from_be_bytes(take(2)?.try_into().ok()?);
    let topics = i32::from_be_bytes(take(4)?.try_into().ok()?);
    let mut partitions = Vec::new();
    for _ in 0..topics.max(0) {
        let length = i16::from_be_bytes(take(2)?.try_into().ok()?);
        let topic = std::str::from_utf8(take(usize::try_from(length).ok()?)?)
            .ok()?
            .to_string();
        let count = i32::from_be_bytes(take(4)?.try_into().ok()?);
        for _ in 0..count.max(0) {
            let partition = i32::from_be_bytes(take(4)?.try_into().ok()?);
            partitions.push((topic.clone(), partition));
        }
    }
    Some(partitions)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A consumer-protocol assignment as a Kafka client's leader writes it.
    fn assignment(topics: &[(&str, &[i32])]) -> Vec<u8> {
        let mut bytes = 1i16.to_be_bytes().to_vec();
        bytes.extend((topics.len() as i32).to_be_bytes());
        for (topic, partitions) in topics {
            bytes.extend((topic.len() as i16).to_be_bytes());
            bytes.extend(topic.as_bytes());
            bytes.extend((partitions.len() as i32).to_be_bytes());
            for p in *partitions {
                bytes.extend(p.to_be_bytes());
            }
        }
        // No user data.
        bytes.extend((-1i32).to_be_bytes());
        bytes
    }

    fn p(topic: &str, partition: i32) -> (String, i32) {
        (topic.to_string(), partition)
    }

    #[test]
    fn an_assignment_decodes_to_its_partitions() {
        let bytes = assignment(&[("orders", &[0, 2]), ("refunds", &[1])]);
        assert_eq!(
            decode_assignment(&bytes),
            Some(vec![p("orders", 0), p("orders", 2), p("refunds", 1)])
        );
        assert_eq!(decode_assignment(&[]), None);
        assert_eq!(decode_assignment(&bytes[..9]), None, "cut short");
    }

    #[test]
    fn a_partition_in_no_known_assignment_is_held_by_nobody() {
        let other = Some(vec![p("orders", 0)]);
        let mine = Some(vec![p("orders", 1)]);
        let members = [other.clone(), mine.clone()];
        assert_eq!(
            holder(Some(&members), &p("orders", 0), true),
            Holder::Elsewhere
        );
        assert_eq!(
            holder(Some(&members), &p("orders", 2), true),
            Holder::Nobody
        );
        // A broker that does not say the assignments: only a group of one can be judged.
        assert_eq!(
            holder(Some(&[None, None]), &p("orders", 2), true),
            Holder::Unknown
        );
        assert_eq!(holder(Some(&[None]), &p("orders", 2), true), Holder::Nobody);
        assert_eq!(
            holder(Some(&[None]), &p("orders", 2), false),
            Holder::Unknown
        );
        assert_eq!(holder(None, &p("orders", 2), true), Holder::Unknown);
    }
}
