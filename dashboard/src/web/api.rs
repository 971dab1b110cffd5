//! The read-only JSON API (`/api/v1/hosts`, `series`, `stats`, `alerts`, `checks`, `fleet`,
//! `mesh`). Store reads go through the same code as `meshmon query` ([`Query`]: the running
//! node's head merged with the file) on the blocking pool; `fleet` and `mesh` answer from the
//! live view without SQLite. Rows carry the CLI's `--format json` field names.
//!
//! Not here: writes and logins (`auth`), the public status page (`status`).

use super::AppState;
use super::reply::{ApiError, ApiResult, Params, blocking, json, json_text, params};
use crate::cli::{Format, Query as CliQuery};
use crate::reader::SeriesRows;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use meshmon_proto::Selector;
use serde_json::json;
use std::time::Duration;

type Q = Result<Query<Vec<(String, String)>>, QueryRejection>;

/// The most points a series answer carries when no step is asked for (about).
const MAX_POINTS: i64 = 1000;
/// Steps the server picks from, the first that keeps a range within [`MAX_POINTS`].
const STEPS_S: [u64; 16] = [
    2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 43200, 86400,
];

fn query(st: &AppState) -> CliQuery<'_> {
    CliQuery {
        db: &st.store,
        format: Format::Json,
        now_ms: crate::time::now_ms(),
    }
}

/// A host name as sent: not empty, not absurdly long, no control characters.
fn host_arg(p: &Params) -> Result<String, ApiError> {
    let host = p.need("host")?;
    if host.is_empty() || host.len() > 255 || host.chars().any(char::is_control) {
        return Err(ApiError::bad(format!("'{host}' is not a host name")));
    }
    Ok(host)
}

pub async fn hosts(State(st): State<AppState>, q: Q) -> ApiResult {
    params(q)?.only(&[])?;
    let out = blocking(move || query(&st).hosts()).await?;
    Ok(json_text(out.text))
}

pub async fn alerts(State(st): State<AppState>, q: Q) -> ApiResult {
    let p = params(q)?;
    p.only(&["all", "since"])?;
    let (all, since) = (p.flag("all")?, p.get("since").map(str::to_owned));
    let out = blocking(move || query(&st).alerts(all, since.as_deref())).await?;
    Ok(json_text(out.text))
}

pub async fn checks(State(st): State<AppState>, q: Q) -> ApiResult {
    let p = params(q)?;
    p.only(&["since", "until"])?;
    let (since, until) = (
        p.get("since").map(str::to_owned),
        p.get("until").map(str::to_owned),
    );
    let out = blocking(move || query(&st).checks(since.as_deref(), until.as_deref())).await?;
    Ok(json_text(out.text))
}

pub async fn stats(State(st): State<AppState>, q: Q) -> ApiResult {
    let p = params(q)?;
    p.only(&["host", "metric", "since", "until"])?;
    let host = host_arg(&p)?;
    let metrics = p.all("metric");
    let (since, until) = (
        p.get("since").map(str::to_owned),
        p.get("until").map(str::to_owned),
    );
    let out =
        blocking(move || query(&st).stats(&host, &metrics, since.as_deref(), until.as_deref()))
            .await?;
    Ok(json_text(out.text))
}

/// The step for `[since, until]` when none is asked for: none (raw) for short ranges, else
/// the first of [`STEPS_S`] that keeps the answer within about [`MAX_POINTS`] points (a
/// minute or more reads rollups: a 7-day range reads 10-minute steps from one-minute
/// rollups).
pub fn auto_step(since: i64, until: i64) -> Option<Duration> {
    let span_s = until.saturating_sub(since).max(0) / 1000;
    if span_s <= MAX_POINTS {
        return None;
    }
    let want = u64::try_from(span_s / MAX_POINTS).unwrap_or(u64::MAX);
    let s = STEPS_S
        .iter()
        .copied()
        .find(|s| *s >= want)
        .unwrap_or(86_400);
    Some(Duration::from_secs(s))
}

fn points_json(points: &[(i64, f64)]) -> serde_json::Value {
    points
        .iter()
        .map(|(t, v)| {
            let v = serde_json::Number::from_f64(*v).map_or(serde_json::Value::Null, Into::into);
            json!([t, v])
        })
        .collect()
}

pub async fn series(State(st): State<AppState>, q: Q) -> ApiResult {
    let p = params(q)?;
    p.only(&["host", "metric", "since", "until", "step", "all"])?;
    let host = host_arg(&p)?;
    let metric = p.need("metric")?;
    let all = p.flag("all")?;
    let sel = Selector::parse(&metric).map_err(ApiError::bad)?;
    let (since, until, step) = (
        p.get("since").map(str::to_owned),
        p.get("until").map(str::to_owned),
        p.get("step").map(str::to_owned),
    );
    let h = host.clone();
    let found: Vec<SeriesRows> = blocking(move || {
        let q = query(&st);
        let since = q.time(since.as_deref(), q.now_ms - 3_600_000)?;
        let until = q.time(until.as_deref(), q.now_ms)?;
        if until < since {
            return Err(crate::StoreError::BadArgument(
                "'until' is before 'since'".into(),
            ));
        }
        let step = match step {
            Some(s) => Some(
                meshmon_proto::units::parse_duration(&s).map_err(crate::StoreError::BadArgument)?,
            ),
            None => auto_step(since, until),
        };
        let (reader, _warning) =
            q.open(Some(q.head(Some(&h), vec![sel.name.clone()], since, until)))?;
        reader.series(&h, &sel, since, until, step)
    })
    .await?;
    if all {
        let series: Vec<serde_json::Value> = found
            .iter()
            .map(|s| json!({"key": s.key.to_string(), "points": points_json(&s.points)}))
            .collect();
        return Ok(json(&json!({"host": host, "series": series})));
    }
    if found.len() > 1 {
        let names: Vec<String> = found.iter().take(10).map(|s| s.key.to_string()).collect();
        return Err(ApiError::bad(format!(
            "'{metric}' matches {} series of '{host}' ({}); add labels to pick one, or all=1",
            found.len(),
            names.join(", ")
        )));
    }
    let points = found.first().map_or(json!([]), |s| points_json(&s.points));
    Ok(json(
        &json!({"host": host, "metric": metric, "points": points}),
    ))
}

pub async fn fleet(State(st): State<AppState>, q: Q) -> ApiResult {
    params(q)?.only(&[])?;
    let rows = st
        .live
        .lock()
        .map(|l| l.fleet(meshmon_proto::clock::wall_ms()))
        .unwrap_or_default();
    Ok(json(&serde_json::Value::Array(rows)))
}

pub async fn mesh(State(st): State<AppState>, q: Q) -> ApiResult {
    params(q)?.only(&[])?;
    let status = st.live.lock().ok().and_then(|l| l.status.clone());
    let Some(s) = status else {
        return Ok(json(&json!({"node": st.node, "links": [], "hosts": []})));
    };
    let links: Vec<serde_json::Value> = s
        .links
        .iter()
        .filter(|l| l.role != "viewer")
        .map(|l| {
            json!({
                "peer": l.peer, "addr": l.addr, "state": l.state, "direction": l.direction,
                "rtt_ms": l.rtt_us.map(|r| r as f64 / 1000.0),
            })
        })
        .collect();
    let mut hosts: Vec<serde_json::Value> = s
        .hosts
        .iter()
        .map(|h| json!({"host": h.name, "hops": h.hops}))
        .collect();
    hosts.sort_by(|a, b| a["host"].as_str().cmp(&b["host"].as_str()));
    Ok(json(
        &json!({"node": s.node, "links": links, "hosts": hosts}),
    ))
}
