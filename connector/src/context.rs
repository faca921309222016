//! The client context every Sluice client runs with: it keeps librdkafka's recent error
//! reports, because TLS and SASL failures reach an application only through this callback
//! (creating the client succeeds; requests then time out), and a user needs the cause.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Mutex};

use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use rdkafka::ClientContext;
use rdkafka::{Offset, TopicPartitionList};

use crate::{AwsIam, Connection, OAuth};

/// How long a new OAUTHBEARER consumer waits for librdkafka's first token request.
const FIRST_TOKEN_WAIT: std::time::Duration = std::time::Duration::from_millis(500);

/// How many error reports are kept: enough for the cause, bounded for long-lived clients.
const KEPT: usize = 8;

/// Records librdkafka's error callbacks, and fetches OAUTHBEARER tokens for connections that
/// use them.
#[derive(Clone, Default)]
pub(crate) struct Observer {
    state: Arc<Mutex<State>>,
    tokens: Option<Arc<TokenSource>>,
    /// A listener's finished offsets, committed when the group takes partitions away.
    progress: Option<Arc<Mutex<Progress>>>,
}

/// What a listener has finished and not yet committed, per partition, and which partitions the
/// group has taken from it since.
#[derive(Debug, Default)]
pub(crate) struct Progress {
    /// The next offset to commit, per (topic, partition).
    pub finished: BTreeMap<(String, i32), i64>,
    /// Partitions revoked and not assigned again: work that finishes on them is not committed
    /// by this member (their new owner reads them from the last commit).
    pub revoked: BTreeSet<(String, i32)>,
    /// How often the group took partitions away from this member (a rebalance that revoked
    /// at least one), so that an operator can see which listeners a change disturbed.
    pub revocations: u64,
    /// How many commits of this member moved an offset: the stall watchdog's sign of life.
    pub commits: u64,
    /// The group has given this member an assignment (maybe empty): it is one of the group's
    /// members.
    pub joined: bool,
}

/// Where an OAUTHBEARER connection's tokens come from.
enum TokenSource {
    /// An OIDC token endpoint (client credentials).
    Oidc(OAuth),
    /// Amazon MSK IAM: tokens signed here with AWS credentials.
    AwsIam(AwsIam),
}

impl TokenSource {
    fn token(&self) -> Result<rdkafka::client::OAuthToken, String> {
        match self {
            Self::Oidc(oauth) => crate::oauth::fetch_token(oauth),
            Self::AwsIam(iam) => {
                let signed = crate::msk_iam::token(iam)?;
                let expires = signed
                    .expires
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap_or_default();
                tracing::debug!(
                    access_key_id = %signed.access_key_id,
                    source = %signed.source,
                    lifetime_s = signed
                        .expires
                        .duration_since(std::time::SystemTime::now())
                        .unwrap_or_default()
                        .as_secs(),
                    "Amazon MSK IAM token signed"
                );
                Ok(rdkafka::client::OAuthToken {
                    token: signed.token,
                    principal_name: signed.access_key_id,
                    lifetime_ms: i64::try_from(expires.as_millis()).unwrap_or(i64::MAX),
                })
            }
        }
    }
}

#[derive(Default)]
struct State {
    /// The latest reports, oldest first.
    recent: VecDeque<String>,
    /// The latest TLS or authentication failure: kept apart, because retries bury it under
    /// "all brokers are down" reports.
    telling: Option<String>,
}

/// Whether a client error names a TLS or authentication failure.
pub(crate) fn is_telling(reason: &str) -> bool {
    let reason = reason.to_ascii_lowercase();
    reason.contains("ssl") || reason.contains("sasl") || reason.contains("authenticat")
}

impl Observer {
    /// The context for a client of `connection`.
    pub fn for_connection(connection: &Connection) -> Self {
        let sasl = connection.config().sasl.as_ref();
        let oidc = sasl.and_then(|s| s.oauth.clone()).map(TokenSource::Oidc);
        let iam = sasl
            .and_then(|s| s.aws_iam.clone())
            .map(TokenSource::AwsIam);
        Self {
            state: Arc::default(),
            tokens: oidc.or(iam).map(Arc::new),
            progress: None,
        }
    }

    /// The context of a listener's consumer, which commits `progress` on revocation.
    pub fn with_progress(mut self, progress: Arc<Mutex<Progress>>) -> Self {
        self.progress = Some(progress);
        self
    }

    /// Serves the token request an OAUTHBEARER client makes at start: librdkafka hands it to
    /// the application through the poll queue, which a consumer only reads when polled, so
    /// without this its first request would wait for a token that never comes.
    pub fn serve_first_token(consumer: &BaseConsumer<Observer>) {
        if consumer.context().tokens.is_some() {
            // Nothing is assigned yet: the poll returns no message, it only serves events.
            let _ = consumer.poll(FIRST_TOKEN_WAIT);
        }
    }

    /// The most telling recent error: a TLS or authentication failure if there was one, else
    /// the latest report.
    pub fn cause(&self) -> Option<String> {
        let state = self.state.lock().ok()?;
        state
            .telling
            .clone()
            .or_else(|| state.recent.back().cloned())
    }
}

impl ClientContext for Observer {
    // Only OAUTHBEARER clients receive refresh events; for the others this changes nothing.
    const ENABLE_REFRESH_OAUTH_TOKEN: bool = true;

    fn generate_oauth_token(
        &self,
        _config: Option<&str>,
    ) -> Result<rdkafka::client::OAuthToken, Box<dyn std::error::Error>> {
        let tokens = self
            .tokens
            .as_ref()
            .ok_or("this connection has no OAUTHBEARER token source")?;
        tokens.token().map_err(|e| {
            // Kept as the telling cause: librdkafka reports token failures vaguely.
            if let Ok(mut state) = self.state.lock() {
                state.telling = Some(format!("SASL OAUTHBEARER token: {e}"));
            }
            e.into()
        })
    }

    /// librdkafka's own log lines, one notch quieter than librdkafka rates them: what fails
    /// reaches the user as our own sentence (a failed operation, a listener's warning) with
    /// what to do, and these lines are the detail behind it, shown with
    /// `RUST_LOG=librdkafka=info` (or `debug`). Same subscriber, so the same format (text or
    /// JSON) and structured fields.
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error
            | RDKafkaLogLevel::Warning => {
                tracing::info!(target: "librdkafka", facility, librdkafka_level = ?level, "{message}")
            }
            RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
                tracing::debug!(target: "librdkafka", facility, "{message}")
            }
            RDKafkaLogLevel::Debug => tracing::trace!(target: "librdkafka", facility, "{message}"),
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        // librdkafka logs the failure itself (through `log`); this is the structured copy.
        tracing::debug!(target: "librdkafka", error = %error, reason, "client error");
        if let Ok(mut state) = self.state.lock() {
            if is_telling(reason) {
                state.telling = Some(reason.to_string());
            }
            if state.recent.len() == KEPT {
                state.recent.pop_front();
            }
            state.recent.push_back(reason.to_string());
        }
    }
}

impl ConsumerContext for Observer {
    /// Before partitions move to another member, commit what this member finished on them:
    /// their new owner then starts after it, not at an older commit.
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let Some(progress) = &self.progress else {
            return;
        };
        let mut progress = progress
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match rebalance {
            Rebalance::Revoke(list) => {
                if list.count() > 0 {
                    progress.revocations += 1;
                }
                let mut commit = TopicPartitionList::new();
                for element in list.elements() {
                    let key = (element.topic().to_string(), element.partition());
                    if let Some(next) = progress.finished.remove(&key) {
                        let _ = commit.add_partition_offset(
                            element.topic(),
                            element.partition(),
                            Offset::Offset(next),
                        );
                    }
                    progress.revoked.insert(key);
                }
                if commit.count() > 0 {
                    match consumer.commit(&commit, CommitMode::Sync) {
                        Ok(()) => tracing::info!(
                            partitions = commit.count(),
                            "committed finished offsets of revoked partitions"
                        ),
                        Err(error) => tracing::warn!(
                            error = %crate::explain(&error),
                            "could not commit the finished offsets of revoked partitions; \
                             their documents will be delivered again"
                        ),
                    }
                }
                // Dropped before the consumer can be (librdkafka's destroy may hang otherwise).
                drop(commit);
            }
            Rebalance::Assign(list) => {
                progress.joined = true;
                for element in list.elements() {
                    progress
                        .revoked
                        .remove(&(element.topic().to_string(), element.partition()));
                }
            }
            Rebalance::Error(_) => {}
        }
    }
}
