//! What a notification says: the Slack message (Block Kit blocks with a plain `text`
//! fallback) and the generic webhook's JSON document (documented in README.md, "Alerts").
//!
//! Not here: when to notify (the engine) or delivering (the deliver module).

use super::engine::EventKind;
use super::rules::{Condition, Rule};
use crate::alertdb::AlertRecord;
use crate::time::format_rfc3339 as rfc3339;
use serde_json::{Value, json};

/// Everything a message says about one event.
#[derive(Debug, Clone)]
pub struct Notice<'a> {
    pub event: EventKind,
    pub alert: &'a AlertRecord,
    pub rule: Option<&'a Rule>,
    /// The dashboard node that evaluated it.
    pub source: &'a str,
    /// When the event happened (ms since the epoch).
    pub at_ms: i64,
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

impl Notice<'_> {
    fn op(&self) -> Option<&'static str> {
        match self.rule.map(|r| &r.condition) {
            Some(Condition::Threshold { op, .. }) => Some(op.as_str()),
            Some(Condition::Increase { .. }) => Some("increase"),
            _ => None,
        }
    }

    fn is_host_down(&self) -> bool {
        matches!(self.rule.map(|r| &r.condition), Some(Condition::HostDown))
            || (self.rule.is_none() && self.alert.series.is_empty())
    }

    /// How long the alert has lasted (to its end when resolved).
    fn duration_ms(&self) -> i64 {
        let a = self.alert;
        let since = a.started_ms;
        a.ended_ms.unwrap_or(self.at_ms).saturating_sub(since)
    }

    /// The one-line summary used as the title and the plain-text fallback.
    pub fn summary(&self) -> String {
        let a = self.alert;
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
        format!("[{what}] [{}] {body}", a.severity.to_uppercase())
    }

    /// The generic webhook document (one JSON object; README.md documents every field).
    pub fn webhook_json(&self, notification: &str) -> Value {
        let a = self.alert;
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
        })
    }

    /// The Slack incoming-webhook message: Block Kit blocks plus the plain `text` fallback
    /// (shown in notifications and by clients without blocks).
    pub fn slack_json(&self) -> Value {
        let a = self.alert;
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
            json!({"type": "mrkdwn", "text": format!("*Host*\n{}", a.host)}),
            json!({"type": "mrkdwn", "text": format!("*Rule*\n{}", a.rule)}),
            json!({"type": "mrkdwn", "text": format!("*Severity*\n{}", a.severity)}),
            json!({"type": "mrkdwn", "text": format!("*For*\n{}", human_duration(self.duration_ms()))}),
        ];
        if !self.is_host_down() {
            fields.push(
                json!({"type": "mrkdwn", "text": format!("*Value*\n{} = {}", a.series,
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
        }
    }

    #[test]
    fn slack_message_has_fallback_text_and_valid_blocks() {
        let a = alert();
        let n = Notice {
            event: EventKind::Firing,
            alert: &a,
            rule: None,
            source: "ops01",
            at_ms: 1_700_000_030_000,
        };
        let v = n.slack_json();
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
        let n = Notice {
            event: EventKind::Resolved,
            alert: &a,
            rule: None,
            source: "ops01",
            at_ms: 1_700_000_090_000,
        };
        let v = n.webhook_json("0011223344556677:resolved#slack");
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
