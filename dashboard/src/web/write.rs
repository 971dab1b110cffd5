//! The writes of the web API, each behind [`super::auth::Auth::check_write`]: acknowledge an
//! alert (`POST /api/v1/alerts/{id}/ack`) and add a silence (`POST /api/v1/silences`). They
//! do what `meshmon alerts ack` and `meshmon alerts silence` do ([`AlertDb`]), on the
//! blocking pool; the node's alert thread picks the change up within a second.
//!
//! Not here: who may write (`auth`).

use super::AppState;
use super::live::alert_json;
use super::reply::{ApiError, ApiResult, blocking, json};
use crate::alertdb::{AlertDb, NewSilence};
use crate::time::{format_rfc3339, now_ms};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde_json::json;

/// A request body, or the rejection (too large: 413) as a JSON error.
pub fn body(b: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    b.map_err(|e| ApiError(e.status(), e.body_text()))
}

/// `POST /api/v1/alerts/{id}/ack`.
pub async fn ack(
    State(st): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult {
    st.auth.check_write(&headers)?;
    let id: i64 = id
        .parse()
        .map_err(|_| ApiError::bad(format!("'{id}' is not an alert id")))?;
    let store = st.store.clone();
    let found = blocking(move || {
        let Some(rec) = AlertDb::open(&store)?.ack(id)? else {
            return Ok(None);
        };
        let row = crate::Reader::open(&store)?
            .alerts(true, None)?
            .into_iter()
            .find(|a| a.id == id);
        Ok(Some((rec, row)))
    })
    .await?;
    match found {
        Some((_, Some(row))) => Ok(json(&alert_json(&row))),
        Some((rec, None)) => Ok(json(&json!({"id": id, "rule": rec.rule, "host": rec.host}))),
        None => Err(ApiError(
            StatusCode::NOT_FOUND,
            format!("no alert with id {id}"),
        )),
    }
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Silence {
    #[serde(default = "any")]
    rule: String,
    #[serde(default = "any")]
    host: String,
    #[serde(rename = "for")]
    duration: String,
    #[serde(default)]
    comment: String,
}

fn any() -> String {
    "*".into()
}

/// `POST /api/v1/silences` with `{"rule": "glob", "host": "glob", "for": "2h", "comment": ""}`.
pub async fn silence(
    State(st): State<AppState>,
    headers: HeaderMap,
    b: Result<Bytes, BytesRejection>,
) -> ApiResult {
    st.auth.check_write(&headers)?;
    let b = body(b)?;
    let s: Silence = serde_json::from_slice(&b).map_err(|e| {
        ApiError::bad(format!(
            "expected {{\"rule\": \"glob\", \"host\": \"glob\", \"for\": \"2h\", \"comment\": \"...\"}}: {e}"
        ))
    })?;
    let d = meshmon_proto::units::parse_duration(&s.duration)
        .map_err(|m| ApiError::bad(format!("for: {m}")))?;
    if d.is_zero() {
        return Err(ApiError::bad("for: must be more than 0s"));
    }
    for (k, v) in [
        ("rule", &s.rule),
        ("host", &s.host),
        ("comment", &s.comment),
    ] {
        if v.len() > 256 || v.chars().any(char::is_control) {
            return Err(ApiError::bad(format!(
                "{k}: at most 256 characters, no control characters"
            )));
        }
    }
    let mut nonce = [0u8; 4];
    getrandom::fill(&mut nonce).map_err(|e| {
        ApiError(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("no randomness: {e}"),
        )
    })?;
    let now = now_ms();
    let until = now.saturating_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    let (store, node) = (st.store.clone(), st.node.clone());
    let row = blocking(move || {
        let new = NewSilence {
            node: &node,
            nonce: u32::from_le_bytes(nonce),
            rule: &s.rule,
            host: &s.host,
            until_ms: until,
            by: &s.comment,
            maintenance: false,
        };
        AlertDb::open(&store)?.add_silence(new, now)
    })
    .await?;
    Ok(json(&json!({
        "id": row.id,
        "rule": row.rule,
        "host": row.host,
        "until": format_rfc3339(row.until_ms),
        "comment": row.by,
    })))
}
