//! Moving a live listener's partitions: the new positions are committed for the group first,
//! then the consumer seeks to them, so that whatever happens next (a restart, a rebalance, this
//! host going away) the group goes on from where it was moved to. Only a member of the group
//! can do this while the group is active (the coordinator refuses commits from outside it),
//! which is why a seek goes through the listener rather than a separate client.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};

use super::{ListenConsumer, NextOffset};
use crate::ConnectorError;

/// How long one request to the brokers during a seek may take.
const SEEK_TIMEOUT: Duration = Duration::from_secs(10);

/// Where a seek moves a listener's partitions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SeekTarget {
    /// These next offsets (the first message to process), each on a partition this member holds.
    Offsets(Vec<NextOffset>),
    /// On every partition this member holds: the first message whose timestamp is at or after
    /// this time (milliseconds since the epoch), or the partition's end where there is none.
    Timestamp(i64),
    /// On every partition this member holds: its first message still kept.
    Earliest,
    /// On every partition this member holds: its end (only messages produced from now on).
    Latest,
}

/// One partition a seek moved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeekMove {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// The group's committed offset before, if it had one.
    pub from: Option<i64>,
    /// The offset committed now: the next message the listener processes there.
    pub to: i64,
}

impl ListenConsumer {
    /// Moves this member's partitions to `target`: commits the new positions for the group,
    /// then seeks the consumer to them. Call it where nothing is in flight (between batches):
    /// a finished offset recorded before would otherwise be committed over the new position,
    /// so those of the moved partitions are dropped. Runs on the blocking pool.
    ///
    /// Fails, moving nothing, when a named partition is not held by this member or an offset
    /// lies outside what the partition keeps; a failure after the commit (the seek itself) is
    /// mended by the next restart, which starts from the committed positions.
    pub async fn seek(&self, target: SeekTarget) -> Result<Vec<SeekMove>, ConnectorError> {
        let this = self.clone();
        crate::blocking("listen seek", move || this.seek_blocking(&target)).await
    }

    fn seek_blocking(&self, target: &SeekTarget) -> Result<Vec<SeekMove>, ConnectorError> {
        let held = self.held_partitions()?;
        if held.is_empty() {
            return Err(ConnectorError::Seek(
                "this host's member of the group holds no partition now (another member holds \
                 them, or the group is rebalancing): seek on the host that holds them, or try \
                 again once the listener is RUNNING"
                    .into(),
            ));
        }
        let wanted = self.resolve(target, &held)?;
        let before = self.committed_before(&held)?;
        let moves: Vec<SeekMove> = wanted
            .iter()
            .map(|next| SeekMove {
                topic: next.topic.clone(),
                partition: next.partition,
                from: before
                    .get(&(next.topic.clone(), next.partition))
                    .copied()
                    .flatten(),
                to: next.offset,
            })
            .collect();
        {
            let mut progress = self.progress();
            for next in &wanted {
                progress
                    .finished
                    .remove(&(next.topic.clone(), next.partition));
            }
        }
        let mut list = TopicPartitionList::new();
        for next in &wanted {
            list.add_partition_offset(&next.topic, next.partition, Offset::Offset(next.offset))
                .map_err(|source| self.commit_error(source))?;
        }
        let committed = self.consumer.commit(&list, CommitMode::Sync);
        // Gone before the result is looked at (librdkafka's destroy can hang on a list kept).
        drop(list);
        committed.map_err(|source| self.commit_error(source))?;
        self.progress().commits += 1;
        for next in &wanted {
            self.consumer
                .seek(
                    &next.topic,
                    next.partition,
                    Offset::Offset(next.offset),
                    SEEK_TIMEOUT,
                )
                .map_err(|source| super::consume_error(&self.settings, source))?;
            tracing::debug!(
                topic = %next.topic,
                partition = next.partition,
                offset = next.offset,
                "seek: committed and moved"
            );
        }
        Ok(moves)
    }

    /// Whether the group has assigned this member any partition. Runs on the blocking pool.
    pub async fn holds_partitions(&self) -> bool {
        let this = self.clone();
        crate::blocking("listen assignment", move || {
            Ok(this.held_partitions().is_ok_and(|held| !held.is_empty()))
        })
        .await
        .unwrap_or(false)
    }

    /// The partitions assigned to this member now, in order.
    pub(super) fn held_partitions(&self) -> Result<Vec<(String, i32)>, ConnectorError> {
        let assignment = self
            .consumer
            .assignment()
            .map_err(|source| super::consume_error(&self.settings, source))?;
        let mut held: Vec<(String, i32)> = assignment
            .elements()
            .iter()
            .map(|e| (e.topic().to_string(), e.partition()))
            .collect();
        drop(assignment);
        held.sort();
        Ok(held)
    }

    /// The group's committed offsets of `held`, before the seek.
    fn committed_before(
        &self,
        held: &[(String, i32)],
    ) -> Result<BTreeMap<(String, i32), Option<i64>>, ConnectorError> {
        let mut list = TopicPartitionList::new();
        for (topic, partition) in held {
            list.add_partition(topic, *partition);
        }
        let committed = self.consumer.committed_offsets(list, SEEK_TIMEOUT);
        let committed = committed.map_err(|source| self.commit_error(source))?;
        let found = committed
            .elements()
            .iter()
            .map(|e| {
                let offset = match e.offset() {
                    Offset::Offset(n) => Some(n),
                    _ => None,
                };
                ((e.topic().to_string(), e.partition()), offset)
            })
            .collect();
        drop(committed);
        Ok(found)
    }

    /// The low and high watermarks of a partition.
    fn watermarks(&self, topic: &str, partition: i32) -> Result<(i64, i64), ConnectorError> {
        self.consumer
            .fetch_watermarks(topic, partition, SEEK_TIMEOUT)
            .map_err(|source| super::consume_error(&self.settings, source))
    }

    /// The next offsets `target` means on the partitions `held`.
    fn resolve(
        &self,
        target: &SeekTarget,
        held: &[(String, i32)],
    ) -> Result<Vec<NextOffset>, ConnectorError> {
        let at = |(topic, partition): &(String, i32), offset| NextOffset {
            topic: topic.clone(),
            partition: *partition,
            offset,
        };
        match target {
            SeekTarget::Earliest => held
                .iter()
                .map(|p| Ok(at(p, self.watermarks(&p.0, p.1)?.0)))
                .collect(),
            SeekTarget::Latest => held
                .iter()
                .map(|p| Ok(at(p, self.watermarks(&p.0, p.1)?.1)))
                .collect(),
            SeekTarget::Timestamp(ms) => self.offsets_for_time(*ms, held),
            SeekTarget::Offsets(offsets) => {
                let mut problems = Vec::new();
                for next in offsets {
                    let key = (next.topic.clone(), next.partition);
                    if !held.contains(&key) {
                        problems.push(format!(
                            "{}/{} is not held by this host's member of the group (it holds {})",
                            next.topic,
                            next.partition,
                            held.iter()
                                .map(|(t, p)| format!("{t}/{p}"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ));
                        continue;
                    }
                    let (low, high) = self.watermarks(&next.topic, next.partition)?;
                    if !(low..=high).contains(&next.offset) {
                        problems.push(format!(
                            "offset {} is outside what {}/{} keeps: {low} to {high} (its end)",
                            next.offset, next.topic, next.partition
                        ));
                    }
                }
                if problems.is_empty() {
                    Ok(offsets.clone())
                } else {
                    Err(ConnectorError::Seek(format!(
                        "nothing was moved: {}",
                        problems.join("; ")
                    )))
                }
            }
        }
    }

    /// Per partition held, the first offset whose message's timestamp is at or after `ms`; the
    /// partition's end where every message is older.
    fn offsets_for_time(
        &self,
        ms: i64,
        held: &[(String, i32)],
    ) -> Result<Vec<NextOffset>, ConnectorError> {
        let mut list = TopicPartitionList::new();
        for (topic, partition) in held {
            list.add_partition_offset(topic, *partition, Offset::Offset(ms))
                .map_err(|source| super::consume_error(&self.settings, source))?;
        }
        let found = self.consumer.offsets_for_times(list, SEEK_TIMEOUT);
        let found = found.map_err(|source| super::consume_error(&self.settings, source))?;
        let mut offsets = Vec::new();
        for element in found.elements() {
            let (topic, partition) = (element.topic().to_string(), element.partition());
            if let Err(source) = element.error() {
                drop(found);
                return Err(super::consume_error(&self.settings, source));
            }
            let offset = match element.offset() {
                Offset::Offset(n) => n,
                // No message at or after that time: the end.
                _ => self.watermarks(&topic, partition)?.1,
            };
            offsets.push(NextOffset {
                topic,
                partition,
                offset,
            });
        }
        drop(found);
        offsets.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
        Ok(offsets)
    }
}
