//! HTTP(S) service checks (`[[check]]`): each check runs as a task on the node's tokio runtime,
//! every `interval` one request ([`probe`]), whose result feeds the check's up/down state
//! ([`state`]). The latest values are published into [`Extras`] under the source
//! `check:NAME`, so they travel the mesh as metrics of the node that runs the check: a check
//! configured on several nodes is seen from each vantage point.
//!
//! Metrics, each labelled `check="NAME"`:
//! - `check.up`: 1 up, 0 down; absent until the first decision (see [`state`]).
//! - `check.latency_ms`: time until the response headers of the last probe.
//! - `check.status`: HTTP status of the last probe.
//! - `check.cert_days_left`: days until the leaf certificate's notAfter (https only).
//!
//! Latency and status are absent when the last probe got no response (connection refused,
//! timeout, TLS error). Only changes of up/down are logged (info up, warn down with the reason
//! of the last failure), not each failure.
//!
//! # Layout
//! - [`state`]: the up/down state machine, no I/O.
//! - [`probe`]: one request, the reason of a failure, the certificate's days left.

pub mod probe;
pub mod state;

use crate::collect::{Extras, Sample};
use crate::config::CheckConfig;
use meshmon_proto::SeriesKey;
use meshmon_proto::metrics::Metric;
use probe::Probe;
use state::{Health, State};
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

/// The Extras source of check `name`.
pub fn source(name: &str) -> String {
    format!("check:{name}")
}

/// Starts one task per check on `tracker`; they stop when `shutdown` is cancelled. A check
/// whose client cannot be built (an unreadable `ca_file`) is logged and left out.
pub fn start(
    checks: &[CheckConfig],
    extras: &Extras,
    tracker: &TaskTracker,
    shutdown: &CancellationToken,
) {
    for check in checks {
        let client = match probe::client(check) {
            Ok(c) => c,
            Err(error) => {
                warn!(check = %check.name, error = format!("{error:#}"), "check not started");
                continue;
            }
        };
        tracker.spawn(run(check.clone(), client, extras.clone(), shutdown.clone()));
    }
}

/// Runs one check until `shutdown`.
async fn run(
    check: CheckConfig,
    client: reqwest::Client,
    extras: Extras,
    shutdown: CancellationToken,
) {
    let src = source(&check.name);
    let mut state = State::new();
    let mut tick = tokio::time::interval(check.interval);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            _ = tick.tick() => {}
        }
        let p = tokio::select! {
            () = shutdown.cancelled() => break,
            p = probe::probe(&client, &check) => p,
        };
        match state.observe(p.failure.is_none()) {
            Some(Health::Up) => info!(check = %check.name, url = %check.url, "check is up"),
            Some(Health::Down) => warn!(
                check = %check.name,
                url = %check.url,
                reason = p.failure.as_deref().unwrap_or(""),
                failures = state::DOWN_AFTER,
                "check is down"
            ),
            _ => {}
        }
        extras.set(&src, samples(&check.name, &p, state.health()));
    }
}

/// The metrics of one check after probe `p`.
pub fn samples(name: &str, p: &Probe, health: Health) -> Vec<Sample> {
    let key = |m| SeriesKey::labelled(m, name);
    let mut out = Vec::with_capacity(4);
    match health {
        Health::Up => out.push((key(Metric::CheckUp), 1.0)),
        Health::Down => out.push((key(Metric::CheckUp), 0.0)),
        Health::Unknown => {}
    }
    if let Some(ms) = p.latency_ms {
        out.push((key(Metric::CheckLatencyMs), ms));
    }
    if let Some(s) = p.status {
        out.push((key(Metric::CheckStatus), f64::from(s)));
    }
    if let Some(d) = p.cert_days_left {
        out.push((key(Metric::CheckCertDaysLeft), d));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_follow_health_and_response() {
        let p = Probe {
            failure: None,
            status: Some(200),
            latency_ms: Some(12.5),
            cert_days_left: Some(10.0),
        };
        let out = samples("web", &p, Health::Up);
        let names: Vec<String> = out.iter().map(|(k, _)| k.to_string()).collect();
        assert_eq!(
            names,
            [
                "check.up{check=\"web\"}",
                "check.latency_ms{check=\"web\"}",
                "check.status{check=\"web\"}",
                "check.cert_days_left{check=\"web\"}"
            ]
        );
        assert_eq!(out[0].1, 1.0);
        let refused = Probe {
            failure: Some("connection refused".into()),
            status: None,
            latency_ms: None,
            cert_days_left: None,
        };
        assert_eq!(
            samples("web", &refused, Health::Down),
            vec![(SeriesKey::labelled(Metric::CheckUp, "web"), 0.0)]
        );
        assert!(samples("web", &refused, Health::Unknown).is_empty());
    }
}
