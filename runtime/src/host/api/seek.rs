//! `POST /listeners/ID/seek`: moves a running listener's partitions (see
//! `host::listener::seek`). The body names exactly one target, as `sluice listeners seek`'s
//! options do: `{"to_offsets": [{"topic": …, "partition": …, "offset": …}, …]}`,
//! `{"to_timestamp": "2026-11-30T10:00:00Z"}` (or a while ago, `"2h"`), `{"to_earliest": true}`
//! or `{"to_latest": true}`.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};
use sluice_connector::listen::{NextOffset, SeekTarget};

use super::{control, ApiError, ApiState};
use crate::host::listener::SeekRefused;

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SeekBody {
    to_offsets: Option<Vec<OffsetBody>>,
    to_timestamp: Option<String>,
    #[serde(default)]
    to_earliest: bool,
    #[serde(default)]
    to_latest: bool,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct OffsetBody {
    topic: String,
    partition: i32,
    offset: i64,
}

const SHAPE: &str = "JSON with exactly one of to_offsets ([{\"topic\": …, \"partition\": …, \
                     \"offset\": …}]), to_timestamp (2026-11-30T10:00:00Z, or a while ago: 2h), \
                     to_earliest (true) or to_latest (true)";

fn bad(message: String) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, message)
}

impl SeekBody {
    fn target(self) -> Result<SeekTarget, ApiError> {
        let given = usize::from(self.to_offsets.is_some())
            + usize::from(self.to_timestamp.is_some())
            + usize::from(self.to_earliest)
            + usize::from(self.to_latest);
        if given != 1 {
            return Err(bad(format!(
                "a seek names one target, this one names {given}: {SHAPE}"
            )));
        }
        if let Some(offsets) = self.to_offsets {
            if offsets.is_empty() {
                return Err(bad(format!("to_offsets is empty: {SHAPE}")));
            }
            if let Some(o) = offsets.iter().find(|o| o.offset < 0 || o.partition < 0) {
                return Err(bad(format!(
                    "{}/{} offset {}: partitions and offsets are 0 or more",
                    o.topic, o.partition, o.offset
                )));
            }
            return Ok(SeekTarget::Offsets(
                offsets
                    .into_iter()
                    .map(|o| NextOffset {
                        topic: o.topic,
                        partition: o.partition,
                        offset: o.offset,
                    })
                    .collect(),
            ));
        }
        if let Some(time) = self.to_timestamp {
            return crate::host::dead_letters::since_ms(&time)
                .map(SeekTarget::Timestamp)
                .map_err(|why| bad(format!("to_timestamp: {why}")));
        }
        Ok(if self.to_earliest {
            SeekTarget::Earliest
        } else {
            SeekTarget::Latest
        })
    }
}

/// Moves the listener; answers with each partition moved, from where to where.
pub(super) async fn seek(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let control = control(&state, &id)?;
    let body: SeekBody = serde_json::from_slice(&body)
        .map_err(|e| bad(format!("the body is not a seek request ({e}): {SHAPE}")))?;
    let target = body.target()?;
    let moves = control.seek(target).await.map_err(|refused| {
        let status = match refused {
            SeekRefused::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            SeekRefused::Failed(_) => StatusCode::BAD_GATEWAY,
            SeekRefused::Unreached(..) => StatusCode::SERVICE_UNAVAILABLE,
            SeekRefused::NotRunning(_) | SeekRefused::Busy | SeekRefused::RunEnded => {
                StatusCode::CONFLICT
            }
        };
        ApiError(status, format!("listener \"{id}\": {refused}"))
    })?;
    let partitions: Vec<Value> = moves
        .iter()
        .map(|m| json!({"topic": m.topic, "partition": m.partition, "from": m.from, "to": m.to}))
        .collect();
    Ok(Json(json!({"process": id, "partitions": partitions})))
}
