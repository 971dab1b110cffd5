//! Incident services, one request per alert so that each alert is one incident: PagerDuty
//! Events API v2 (`POST /v2/enqueue`; `dedup_key` is the alert's identity, so its resolve
//! closes the incident its trigger opened) and Opsgenie (`POST /v2/alerts` with the alert's
//! identity as `alias`; resolved: `POST /v2/alerts/<alias>/close?identifierType=alias`).
//!
//! Not here: the shared helpers (`text`).

use super::Notice;
use super::send::Request;
use super::text::cut;
use crate::alert::rules::Severity;
use crate::config::Target;
use crate::time::format_rfc3339 as rfc3339;
use serde_json::json;

/// PagerDuty's limit on `payload.summary`.
pub const PAGERDUTY_SUMMARY: usize = 1024;
/// Opsgenie's limits on `message` and `description`.
pub const OPSGENIE_MESSAGE: usize = 130;
pub const OPSGENIE_DESCRIPTION: usize = 15_000;

pub fn pagerduty(target: &Target, n: &Notice) -> Request {
    let a = &n.alert;
    let mut body = json!({
        "routing_key": target.token.as_deref().unwrap_or_default(),
        "event_action": if n.resolved() { "resolve" } else { "trigger" },
        "dedup_key": a.ident,
        "client": "meshmon",
    });
    if !n.resolved() {
        let severity = match n.severity() {
            Severity::Critical => "critical",
            Severity::Warning => "warning",
            Severity::Info => "info",
        };
        body["payload"] = json!({
            "summary": cut(&n.summary(), PAGERDUTY_SUMMARY),
            "source": a.host,
            "severity": severity,
            "timestamp": rfc3339(n.at_ms),
            "component": if a.series.is_empty() { "host" } else { a.series.as_str() },
            "group": a.rule,
            "class": a.rule,
            "custom_details": n.webhook_json(),
        });
    }
    Request::json(format!("{}/v2/enqueue", target.url), &body)
}

pub fn opsgenie(target: &Target, n: &Notice) -> Request {
    let a = &n.alert;
    let key = format!("GenieKey {}", target.token.as_deref().unwrap_or_default());
    if n.resolved() {
        let body = json!({"source": n.source, "note": cut(&n.summary(), 25_000)});
        let url = format!(
            "{}/v2/alerts/{}/close?identifierType=alias",
            target.url, a.ident
        );
        return Request::json(url, &body).header("Authorization", key);
    }
    let priority = match n.severity() {
        Severity::Critical => "P1",
        Severity::Warning => "P3",
        Severity::Info => "P5",
    };
    let body = json!({
        "message": cut(&n.summary(), OPSGENIE_MESSAGE),
        "alias": a.ident,
        "description": cut(&n.summary(), OPSGENIE_DESCRIPTION),
        "priority": priority,
        "source": n.source,
        "entity": a.host,
        "tags": ["meshmon", a.rule, a.severity],
        "details": {"rule": a.rule, "host": a.host, "series": a.series,
                    "started": rfc3339(a.started_ms), "event": n.event_name()},
    });
    Request::json(format!("{}/v2/alerts", target.url), &body).header("Authorization", key)
}
