//! The client context every Sluice client runs with: it keeps librdkafka's recent error
//! reports, because TLS and SASL failures reach an application only through this callback
//! (creating the client succeeds; requests then time out), and a user needs the cause.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use rdkafka::consumer::ConsumerContext;
use rdkafka::error::KafkaError;
use rdkafka::ClientContext;

/// How many error reports are kept: enough for the cause, bounded for long-lived clients.
const KEPT: usize = 8;

/// Records librdkafka's error callbacks.
#[derive(Clone, Default)]
pub(crate) struct Observer {
    state: Arc<Mutex<State>>,
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

impl ConsumerContext for Observer {}
