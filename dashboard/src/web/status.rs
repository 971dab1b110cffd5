//! Check uptime by day (`/api/v1/checks/uptime`) and the public status page's data
//! (`/api/v1/status`, only with `web.public_status`): checks up/down with their latency and
//! day bars, hosts up/down; no metrics, addresses, tags or versions, so it is safe to expose.
//!
//! Not here: the page itself (`dashboard/web/status.html`).

use super::AppState;
use super::reply::{ApiError, ApiResult, Params, blocking, json, params};
use crate::cli::{Format, Query as CliQuery};
use crate::reader::{CheckRow, check_metric_names};
use crate::time::{format_rfc3339, now_ms};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

type Q = Result<Query<Vec<(String, String)>>, QueryRejection>;

const DAY_MS: i64 = 86_400_000;

/// Uptime % per day, oldest first (`None`: no data that day).
type DayBars = Vec<Option<f64>>;
/// The range the current state of a check is read from.
const NOW_RANGE_MS: i64 = 5 * 60_000;

/// Per (check, vantage host): the uptime % of each of the last `days` days (UTC), oldest
/// first, and the rows of the last 5 minutes.
struct Uptime {
    days: Vec<String>,
    by_check: BTreeMap<(String, String), DayBars>,
    now: Vec<CheckRow>,
}

fn uptime(st: &AppState, days: usize) -> Result<Uptime, crate::StoreError> {
    let now = now_ms();
    let today = now - now.rem_euclid(DAY_MS);
    let first = today - DAY_MS * (days as i64 - 1);
    let q = CliQuery {
        db: &st.store,
        format: Format::Json,
        now_ms: now,
    };
    let (reader, _) = q.open(Some(q.head(None, check_metric_names(), today, now)))?;
    let mut by_check: BTreeMap<(String, String), DayBars> = BTreeMap::new();
    let mut labels = Vec::with_capacity(days);
    for (i, start) in (0..days).map(|i| (i, first + DAY_MS * i as i64)) {
        labels.push(format_rfc3339(start)[..10].to_owned());
        for r in reader.checks(start, (start + DAY_MS - 1).min(now))? {
            by_check
                .entry((r.check, r.host))
                .or_insert_with(|| vec![None; days])[i] = r.uptime_pct;
        }
    }
    let now_rows = reader.checks(now - NOW_RANGE_MS, now)?;
    Ok(Uptime {
        days: labels,
        by_check,
        now: now_rows,
    })
}

fn days_json(labels: &[String], values: &[Option<f64>]) -> Value {
    labels
        .iter()
        .zip(values)
        .map(|(d, v)| json!({"day": d, "uptime_pct": v.map(|v| (v * 1000.0).round() / 1000.0)}))
        .collect()
}

fn days_param(p: &Params) -> Result<usize, ApiError> {
    match p.get("days") {
        None => Ok(90),
        Some(d) => d
            .parse::<usize>()
            .ok()
            .filter(|d| (1..=366).contains(d))
            .ok_or_else(|| ApiError::bad(format!("days='{d}': expected 1 to 366"))),
    }
}

/// `GET /api/v1/checks/uptime?days=90`.
pub async fn checks_uptime(State(st): State<AppState>, q: Q) -> ApiResult {
    let p = params(q)?;
    p.only(&["days"])?;
    let days = days_param(&p)?;
    let u = blocking(move || uptime(&st, days)).await?;
    let rows: Vec<Value> = u
        .by_check
        .iter()
        .map(|((check, host), v)| json!({"check": check, "host": host, "days": days_json(&u.days, v)}))
        .collect();
    Ok(json(&Value::Array(rows)))
}

/// A public status answer is reused this long: the page is meant to be exposed, so a flood
/// of requests costs one store read per interval, not one each.
const STATUS_CACHE: Duration = Duration::from_secs(5);

/// `GET /api/v1/status` (404 unless `web.public_status`).
pub async fn status(State(st): State<AppState>, q: Q) -> ApiResult {
    if !st.public_status {
        return Err(ApiError(StatusCode::NOT_FOUND, "not found".into()));
    }
    params(q)?.only(&[])?;
    // Concurrent requests wait for the one read in progress (an async lock: no thread blocks).
    let mut cached = st.status_cache.lock().await;
    if let Some((at, v)) = cached.as_ref()
        && at.elapsed() < STATUS_CACHE
    {
        return Ok(json(v));
    }
    let v = public_status(&st).await?;
    *cached = Some((Instant::now(), v.clone()));
    Ok(json(&v))
}

async fn public_status(st: &AppState) -> Result<Value, ApiError> {
    let hosts: Vec<Value> = st
        .live
        .lock()
        .map(|l| l.hosts(meshmon_proto::clock::wall_ms()))
        .unwrap_or_default()
        .into_iter()
        .map(|(host, up)| json!({"host": host, "up": up}))
        .collect();
    let title = st.title.clone();
    let store = st.clone();
    let u = blocking(move || uptime(&store, 90)).await?;
    let mut checks: BTreeMap<&str, (Vec<&CheckRow>, Vec<&DayBars>)> = BTreeMap::new();
    for r in &u.now {
        checks.entry(&r.check).or_default().0.push(r);
    }
    for ((check, _), v) in &u.by_check {
        checks.entry(check).or_default().1.push(v);
    }
    let checks: Vec<Value> = checks
        .into_iter()
        .map(|(check, (now, days))| {
            let up = !now.is_empty()
                && now.iter().all(|r| r.up != Some(false))
                && now.iter().any(|r| r.up == Some(true));
            let lat: Vec<f64> = now.iter().filter_map(|r| r.latency_ms).collect();
            let latency = (!lat.is_empty()).then(|| lat.iter().sum::<f64>() / lat.len() as f64);
            let per_day: Vec<Option<f64>> = (0..u.days.len())
                .map(|i| {
                    let v: Vec<f64> = days.iter().filter_map(|d| d[i]).collect();
                    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
                })
                .collect();
            json!({
                "check": check,
                "up": up,
                "vantages": now.len(),
                "latency_ms": latency.map(|l| (l * 10.0).round() / 10.0),
                "days": days_json(&u.days, &per_day),
            })
        })
        .collect();
    Ok(json!({"title": title, "checks": checks, "hosts": hosts}))
}
