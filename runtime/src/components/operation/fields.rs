//! The elements of `<operation>`, declared once: each element's name, the operation types that
//! take it, and where it is listed in messages. The raw struct that serde reads, the list of
//! each type's fields and the check of which elements a component gives all come from this one
//! declaration, so a new field is one line here plus its check.

use serde::Deserialize;

/// The operation types, as the `type` attribute names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperationType {
    /// `produce`
    Produce,
    /// `consume`
    Consume,
    /// `commit-offset`
    CommitOffset,
    /// `listen`
    Listen,
}

impl OperationType {
    /// Every type with its `type` attribute value.
    pub const NAMES: &'static [(&'static str, OperationType)] = &[
        ("produce", Self::Produce),
        ("consume", Self::Consume),
        ("commit-offset", Self::CommitOffset),
        ("listen", Self::Listen),
    ];

    /// The type a `type` attribute names, if any.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::NAMES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, kind)| *kind)
    }

    /// The `type` attribute's value.
    pub fn name(self) -> &'static str {
        match self {
            Self::Produce => "produce",
            Self::Consume => "consume",
            Self::CommitOffset => "commit-offset",
            Self::Listen => "listen",
        }
    }

    /// The elements this type takes, in the order messages list them.
    pub fn fields(self) -> Vec<&'static str> {
        let mut fields: Vec<_> = FIELDS
            .iter()
            .filter(|field| field.types.contains(&self))
            .collect();
        fields.sort_by_key(|field| field.listed);
        fields.iter().map(|field| field.name).collect()
    }
}

/// One element of `<operation>`.
struct Field {
    name: &'static str,
    /// Position in "its fields: …" lists. serde lists elements in declaration order, which
    /// users see among "valid elements here"; this second order, the one users write them in,
    /// is kept as both messages have always read.
    listed: u8,
    types: &'static [OperationType],
}

/// Declares `RawOperation` (the XML as written), `FIELDS`, and `RawOperation::given`.
macro_rules! operation_fields {
    ($(
        $(#[doc = $doc:literal])*
        $field:ident: $ty:ty = $name:literal, listed $listed:literal, for [$($type:ident),+];
    )+) => {
        /// `<operation id="…" type="produce|consume|commit-offset|listen" connection="…">`:
        /// one struct for every type, so that a field of the wrong type gets "does not apply
        /// to a produce operation", not "unknown".
        #[derive(Debug, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub(crate) struct RawOperation {
            #[serde(rename = "@id")]
            pub id: Option<String>,
            #[serde(rename = "@xmlns")]
            pub _xmlns: Option<String>,
            #[serde(rename = "@type")]
            pub kind: Option<String>,
            #[serde(rename = "@connection")]
            pub connection: Option<String>,
            $(
                $(#[doc = $doc])*
                #[serde(rename = $name)]
                pub $field: Option<$ty>,
            )+
        }

        const FIELDS: &[Field] = &[
            $(Field { name: $name, listed: $listed, types: &[$(OperationType::$type),+] },)+
        ];

        impl RawOperation {
            /// The elements this component gives, by name.
            pub fn given(&self) -> Vec<&'static str> {
                let mut given = Vec::new();
                $(if self.$field.is_some() {
                    given.push($name);
                })+
                given
            }
        }
    };
}

operation_fields! {
    /// What it is for.
    description: String = "description", listed 0, for [Produce, Consume, CommitOffset, Listen];
    /// The topic (Listen: several, separated by commas).
    topic: String = "topic", listed 1, for [Produce, Consume, Listen];
    /// Instead of a topic: every topic whose whole name matches this regular expression.
    topic_pattern: String = "topic-pattern", listed 1, for [Consume, Listen];
    /// How often a listener looks for topics that newly match its pattern (or have gone).
    pattern_refresh: String = "pattern-refresh", listed 1, for [Listen];
    acks: String = "acks", listed 5, for [Produce];
    compression: String = "compression", listed 6, for [Produce];
    delivery_timeout: String = "delivery-timeout", listed 7, for [Produce];
    /// The topic comes from each document's topic-name property.
    dynamic_topic: String = "dynamic-topic", listed 2, for [Produce, Consume];
    partition: String = "partition", listed 3, for [Produce];
    headers: super::super::raw::RawHeaders = "headers", listed 4, for [Produce];
    consumer_group: String = "consumer-group", listed 8, for [Consume, CommitOffset, Listen];
    minimum_messages: String = "minimum-messages", listed 9, for [Consume];
    maximum_wait: String = "maximum-wait", listed 10, for [Consume];
    offset_reset: String = "offset-reset", listed 11, for [Consume, Listen];
    autocommit: String = "autocommit", listed 12, for [Consume];
    partitions: String = "partitions", listed 13, for [Consume, Listen];
    client_id: String = "client-id", listed 14, for [Consume, Listen];
    max_messages: String = "max-messages", listed 15, for [Listen];
    retry_limit: String = "retry-limit", listed 16, for [Listen];
    retry_backoff: String = "retry-backoff", listed 17, for [Listen];
    dead_letter_topic: String = "dead-letter-topic", listed 18, for [Listen];
    execution_per: String = "execution-per", listed 19, for [Listen];
}

#[cfg(test)]
mod tests {
    use super::OperationType;

    #[test]
    fn each_type_lists_its_fields_in_the_order_users_write_them() {
        assert_eq!(
            OperationType::Produce.fields(),
            [
                "description",
                "topic",
                "dynamic-topic",
                "partition",
                "headers",
                "acks",
                "compression",
                "delivery-timeout"
            ]
        );
        assert_eq!(
            OperationType::CommitOffset.fields(),
            ["description", "consumer-group"]
        );
        assert_eq!(OperationType::Listen.fields().len(), 13);
        assert_eq!(
            OperationType::from_name("commit-offset"),
            Some(OperationType::CommitOffset)
        );
        assert_eq!(OperationType::from_name("Produce"), None);
    }
}
