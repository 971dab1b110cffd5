//! What a notification says, for every kind of target. A queued notification's body is a
//! [`Notice`] (JSON in the outbox): the alert as it was at the event, so that a group of them
//! can be rendered together at delivery, and so that a target's format is chosen by the
//! delivery task, not stored. Shared text helpers: the one-line summary, a group's headline
//! ("host-down: 30 hosts: web01, … and 25 more"), lines cut to a service's limit, escaping.
//!
//! # Layout
//! - this file: [`Notice`], summaries, the Slack message and the generic webhook document.
//! - `text`: truncation, host lists, escaping.
//! - `chat`: Discord, Teams, Telegram.
//! - `push`: ntfy, Gotify, Pushover.
//! - `incident`: PagerDuty, Opsgenie.
//! - `email`: the email message and SMTP.
//! - `send`: a target's HTTP requests for a set of notices, and sending them.
//!
//! Not here: when to notify (the engine), queueing and grouping (the machine), retries
//! (`deliver`).

use super::engine::EventKind;
use super::rules::{Condition, Rule};
use crate::alertdb::AlertRecord;
use crate::time::format_rfc3339 as rfc3339;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

mod chat;
mod email;
mod incident;
mod push;
mod send;
mod text;

pub use send::{Delivered, Request, SendError, requests, send, send_raw, test_notice};
pub use text::{cut, fit_lines, host_list, slack_escape};

/// Everything a message says about one event of one alert: the outbox's body.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Notice {
    pub event: EventKind,
    pub alert: AlertRecord,
    /// The rule's comparison (`>`, `increase`), if it has one.
    pub op: Option<String>,
    /// A host-down alert (no series, no value).
    pub host_down: bool,
    /// The dashboard node that evaluated it.
    pub source: String,
    /// When the event happened (ms since the epoch).
    pub at_ms: i64,
    /// Its notification id (`<ident>:<event>#<target>`).
    pub notification: String,
    /// A `meshmon alerts test` notice.
    #[serde(default)]
    pub test: bool,
}

/// `1h 5m`, `42s`: how long, for people.
pub fn human_duration(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    let (d, h, m, sec) = (s / 86_400, s / 3600 % 24, s / 60 % 60, s % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{sec}s"),
        (0, 0, _) => format!("{m}m {sec}s"),
        (0, _, _) => format!("{h}h {m}m"),
        _ => format!("{d}d {h}h"),
    }
}

fn fmt_value(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

impl Notice {
    /// The notice of `event` of `alert`, evaluated by `source`.
    pub fn new(
        event: EventKind,
        alert: AlertRecord,
        rule: Option<&Rule>,
        source: &str,
        at_ms: i64,
        notification: String,
    ) -> Notice {
        let op = match rule.map(|r| &r.condition) {
            Some(Condition::Threshold { op, .. }) => Some(op.as_str().to_owned()),
            Some(Condition::Increase { .. }) => Some("increase".to_owned()),
            Some(Condition::Changed { .. }) => Some("changed".to_owned()),
            _ => None,
        };
        let host_down = matches!(rule.map(|r| &r.condition), Some(Condition::HostDown))
            || (rule.is_none() && alert.series.is_empty());
        Notice {
            event,
            alert,
            op,
            host_down,
            source: source.to_owned(),
            at_ms,
            notification,
            test: false,
        }
    }

    fn op(&self) -> Option<&str> {
        self.op.as_deref()
    }

    fn is_host_down(&self) -> bool {
        self.host_down
    }

    /// `firing`, `reminder`, `resolved`.
    pub fn event_name(&self) -> &'static str {
        match self.event {
            EventKind::Firing => "firing",
            EventKind::Reminder(_) => "reminder",
            EventKind::Resolved => "resolved",
        }
    }

    pub fn resolved(&self) -> bool {
        self.event == EventKind::Resolved
    }

    /// How long the alert has lasted (to its end when resolved).
    pub fn duration_ms(&self) -> i64 {
        let a = &self.alert;
        let since = a.started_ms;
        a.ended_ms.unwrap_or(self.at_ms).saturating_sub(since)
    }

    /// The one-line summary used as the title and the plain-text fallback.
    pub fn summary(&self) -> String {
        let a = &self.alert;
        let what = match self.event {
            EventKind::Firing => "FIRING",
            EventKind::Reminder(_) => "STILL FIRING",
            EventKind::Resolved => "RESOLVED",
        };
        let body = if self.is_host_down() {
            match self.event {
                EventKind::Resolved => format!(
                    "host {} is back after {}",
                    a.host,
                    human_duration(self.duration_ms())
                ),
                _ => format!(
                    "host {} is down: no frames since {} ({} ago)",
                    a.host,
                    rfc3339(a.started_ms),
                    human_duration(self.duration_ms())
                ),
            }
        } else {
            let value = a.value.map(fmt_value).unwrap_or_else(|| "?".into());
            let cond = match (self.op(), a.threshold) {
                (Some("increase"), _) => " (increased)".to_owned(),
                (Some(op), Some(t)) => format!(" ({op} {})", fmt_value(t)),
                _ => String::new(),
            };
            format!(
                "{} on {}: {} = {value}{cond} for {}",
                a.rule,
                a.host,
                a.series,
                human_duration(self.duration_ms())
            )
        };
        let test = if self.test { "[TEST] " } else { "" };
        format!("{test}[{what}] [{}] {body}", a.severity.to_uppercase())
    }

    /// One line about this alert inside a group's message: host and what it shows.
    pub fn line(&self) -> String {
        let a = &self.alert;
        if self.is_host_down() {
            match self.event {
                EventKind::Resolved => format!(
                    "{}: back after {}",
                    a.host,
                    human_duration(self.duration_ms())
                ),
                _ => format!("{}: no frames since {}", a.host, rfc3339(a.started_ms)),
            }
        } else {
            let value = a.value.map(fmt_value).unwrap_or_else(|| "?".into());
            format!(
                "{}: {} = {value} for {}",
                a.host,
                a.series,
                human_duration(self.duration_ms())
            )
        }
    }

    /// `critical`, `warning`, `info` (as the rule said; `info` if unknown).
    pub fn severity(&self) -> super::rules::Severity {
        super::rules::Severity::parse(&self.alert.severity).unwrap_or(super::rules::Severity::Info)
    }

    /// The generic webhook document (one JSON object; README.md documents every field).
    pub fn webhook_json(&self) -> Value {
        let notification = &self.notification;
        let a = &self.alert;
        json!({
            "version": 1,
            "id": notification,
            "event": match self.event {
                EventKind::Firing => "firing",
                EventKind::Reminder(_) => "reminder",
                EventKind::Resolved => "resolved",
            },
            "reminder": match self.event { EventKind::Reminder(n) => Some(n), _ => None },
            "alert_id": a.ident,
            "rule": a.rule,
            "host": a.host,
            "series": a.series,
            "severity": a.severity,
            "value": a.value,
            "op": self.op(),
            "threshold": a.threshold,
            "started": rfc3339(a.started_ms),
            "started_ms": a.started_ms,
            "fired": a.fired_ms.map(rfc3339),
            "ended": a.ended_ms.map(rfc3339),
            "duration_s": self.duration_ms() as f64 / 1000.0,
            "acked": a.acked,
            "source": self.source,
            "at": rfc3339(self.at_ms),
            "text": self.summary(),
            "test": self.test,
        })
    }

    /// The Slack incoming-webhook message: Block Kit blocks plus the plain `text` fallback
    /// (shown in notifications and by clients without blocks).
    fn slack_single(&self) -> Value {
        let a = &self.alert;
        let emoji = match (self.event, a.severity.as_str()) {
            (EventKind::Resolved, _) => ":white_check_mark:",
            (_, "critical") => ":red_circle:",
            (_, "warning") => ":warning:",
            _ => ":information_source:",
        };
        let mut title = format!("{emoji} {}", self.summary());
        if title.chars().count() > 150 {
            // Slack's limit for header text.
            title = title.chars().take(149).collect::<String>() + "…";
        }
        let mut fields = vec![
            json!({"type": "mrkdwn", "text": format!("*Host*\n{}", slack_escape(&a.host))}),
            json!({"type": "mrkdwn", "text": format!("*Rule*\n{}", slack_escape(&a.rule))}),
            json!({"type": "mrkdwn", "text": format!("*Severity*\n{}", a.severity)}),
            json!({"type": "mrkdwn", "text": format!("*For*\n{}", human_duration(self.duration_ms()))}),
        ];
        if !self.is_host_down() {
            fields.push(
                json!({"type": "mrkdwn", "text": format!("*Value*\n{} = {}", slack_escape(&a.series),
                a.value.map(fmt_value).unwrap_or_else(|| "?".into()))}),
            );
            if let (Some(op), Some(t)) = (self.op(), a.threshold) {
                fields.push(
                    json!({"type": "mrkdwn", "text": format!("*Threshold*\n{op} {}", fmt_value(t))}),
                );
            }
        } else {
            fields.push(
                json!({"type": "mrkdwn", "text": format!("*Last seen*\n{}", rfc3339(a.started_ms))}),
            );
        }
        json!({
            "text": self.summary(),
            "blocks": [
                {"type": "header", "text": {"type": "plain_text", "text": title, "emoji": true}},
                {"type": "section", "fields": fields},
                {"type": "context", "elements": [{"type": "mrkdwn", "text":
                    format!("meshmon · alert `{}` · started {} · from {}", a.ident,
                        rfc3339(a.started_ms), self.source)}]}
            ]
        })
    }
}

/// The one-line headline of a set of notices of one rule and event: the notice's summary
/// when it is alone, else `[FIRING] [CRITICAL] host-down: 30 hosts: web01, web02, … and 25
/// more`.
pub fn headline(ns: &[Notice]) -> String {
    match ns {
        [] => String::new(),
        [one] => one.summary(),
        [first, ..] => {
            let what = match first.event {
                EventKind::Firing => "FIRING",
                EventKind::Reminder(_) => "STILL FIRING",
                EventKind::Resolved => "RESOLVED",
            };
            let hosts: Vec<&str> = ns.iter().map(|n| n.alert.host.as_str()).collect();
            format!(
                "[{what}] [{}] {}: {} hosts: {}",
                first.alert.severity.to_uppercase(),
                first.alert.rule,
                ns.len(),
                host_list(&hosts, HEADLINE_HOSTS)
            )
        }
    }
}

/// Host names a group's headline names before "… and N more".
pub const HEADLINE_HOSTS: usize = 5;

/// The lines of a message body: one per alert of a group, or the summary's details.
pub fn lines(ns: &[Notice]) -> Vec<String> {
    ns.iter().map(Notice::line).collect()
}

/// The body of a chat or push message: the headline, then one line per alert of a group.
pub fn body_lines(ns: &[Notice]) -> Vec<String> {
    let mut out = vec![headline(ns)];
    if ns.len() > 1 {
        out.extend(lines(ns));
    }
    out
}

/// One of four values by the set's state: `resolved` when resolved, else by the severity of
/// its (first) alert. Colours, priorities and emoji of every kind come from here.
pub fn by_state<T>(ns: &[Notice], resolved: T, critical: T, warning: T, info: T) -> T {
    match ns.first() {
        Some(n) if n.resolved() => resolved,
        Some(n) => match n.severity() {
            super::rules::Severity::Critical => critical,
            super::rules::Severity::Warning => warning,
            super::rules::Severity::Info => info,
        },
        None => info,
    }
}

/// The generic webhook document of a set: the notice's own when alone, else a group document
/// (`group: true`, `count`, every host, every alert's document).
pub fn webhook_json(ns: &[Notice]) -> Value {
    match ns {
        [one] => one.webhook_json(),
        _ => {
            let first = ns.first();
            json!({
                "version": 1,
                "group": true,
                "id": first.map(|n| n.notification.as_str()),
                "event": first.map(Notice::event_name),
                "rule": first.map(|n| n.alert.rule.as_str()),
                "severity": first.map(|n| n.alert.severity.as_str()),
                "count": ns.len(),
                "hosts": ns.iter().map(|n| n.alert.host.as_str()).collect::<Vec<_>>(),
                "alerts": ns.iter().map(Notice::webhook_json).collect::<Vec<_>>(),
                "text": headline(ns),
            })
        }
    }
}

/// Slack's section text limit.
const SLACK_SECTION: usize = 3000;

/// The Slack message of a set: the notice's own when alone, else the headline and one line per
/// host (cut to Slack's limits).
pub fn slack_json(ns: &[Notice]) -> Value {
    match ns {
        [one] => one.slack_single(),
        _ => {
            let title = cut(&headline(ns), 150);
            let escaped: Vec<String> = lines(ns).iter().map(|l| slack_escape(l)).collect();
            json!({
                "text": headline(ns),
                "blocks": [
                    {"type": "header", "text": {"type": "plain_text", "text": title, "emoji": true}},
                    {"type": "section", "text": {"type": "mrkdwn",
                        "text": fit_lines(&escaped, SLACK_SECTION, "\n")}},
                    {"type": "context", "elements": [{"type": "mrkdwn", "text":
                        format!("meshmon · {} alerts grouped · from {}", ns.len(),
                            ns.first().map_or("", |n| n.source.as_str()))}]}
                ]
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert() -> AlertRecord {
        AlertRecord {
            id: 1,
            ident: "0011223344556677".into(),
            rule: "cpu-hot".into(),
            host: "web01".into(),
            series: "cpu.usage_pct".into(),
            state: "firing".into(),
            severity: "critical".into(),
            started_ms: 1_700_000_000_000,
            fired_ms: Some(1_700_000_030_000),
            ended_ms: None,
            value: Some(97.5),
            threshold: Some(90.0),
            reminders: 0,
            acked: false,
            maintenance: false,
        }
    }

    #[test]
    fn slack_message_has_fallback_text_and_valid_blocks() {
        let a = alert();
        let n = Notice::new(
            EventKind::Firing,
            a,
            None,
            "ops01",
            1_700_000_030_000,
            "x".into(),
        );
        let v = slack_json(&[n]);
        let text = v["text"].as_str().expect("text");
        assert!(text.contains("FIRING") && text.contains("web01") && text.contains("97.50"));
        assert!(text.contains("30s"), "{text}");
        let blocks = v["blocks"].as_array().expect("blocks");
        assert_eq!(blocks[0]["type"], "header");
        assert_eq!(blocks[0]["text"]["type"], "plain_text");
        assert!(
            blocks[0]["text"]["text"]
                .as_str()
                .expect("t")
                .chars()
                .count()
                <= 150
        );
        for f in blocks[1]["fields"].as_array().expect("fields") {
            assert_eq!(f["type"], "mrkdwn");
        }
    }

    #[test]
    fn webhook_document_fields() {
        let mut a = alert();
        a.state = "resolved".into();
        a.ended_ms = Some(1_700_000_090_000);
        let id = "0011223344556677:resolved#slack".to_owned();
        let n = Notice::new(EventKind::Resolved, a, None, "ops01", 1_700_000_090_000, id);
        let v = webhook_json(&[n]);
        assert_eq!(v["event"], "resolved");
        assert_eq!(v["duration_s"], 90.0);
        assert_eq!(v["ended"], "2023-11-14T22:14:50.000Z");
        assert_eq!(v["host"], "web01");
    }

    #[test]
    fn durations_for_people() {
        assert_eq!(human_duration(42_000), "42s");
        assert_eq!(human_duration(3_900_000), "1h 5m");
        assert_eq!(human_duration(90_061_000), "1d 1h");
    }
}
