//! Chat services: Discord (webhook embeds), Microsoft Teams (a Workflows webhook taking an
//! Adaptive Card 1.4) and Telegram (`sendMessage` in HTML mode). One alert's firing, reminder
//! and resolved notices share a title (`host-down on web01`), so they read as one thread;
//! Telegram messages carry the alert as a hashtag (`#alert_0011…`), which Telegram links to
//! the others of the alert (a `reply_to_message_id` would need state we do not keep).
//!
//! Not here: Slack (in `notify`), the shared helpers (`text`).

use super::send::Request;
use super::text::{cut, fit_lines, html_escape};
use super::{Notice, body_lines, by_state};
use crate::config::Target;
use crate::time::format_rfc3339 as rfc3339;
use serde_json::{Value, json};

/// Discord's limits: embed title, description, footer, and all of an embed's text together.
pub const DISCORD_TITLE: usize = 256;
pub const DISCORD_DESCRIPTION: usize = 4096;
pub const DISCORD_TOTAL: usize = 6000;
/// Telegram's limit on a message's text (after entity parsing; we count the HTML).
pub const TELEGRAM_TEXT: usize = 4096;

/// The title one alert's notices share, or a group's.
pub fn thread_title(ns: &[Notice]) -> String {
    match ns {
        [one] => {
            let test = if one.test { "[TEST] " } else { "" };
            format!("{test}{} on {}", one.alert.rule, one.alert.host)
        }
        [first, ..] => format!("{}: {} hosts", first.alert.rule, ns.len()),
        [] => String::new(),
    }
}

fn footer(ns: &[Notice]) -> String {
    let source = ns.first().map_or("", |n| n.source.as_str());
    match ns {
        [one] => format!("meshmon · alert {} · from {source}", one.alert.ident),
        _ => format!("meshmon · {} alerts grouped · from {source}", ns.len()),
    }
}

/// Red, orange, blue while firing; green when resolved.
fn color(ns: &[Notice]) -> u32 {
    by_state(ns, 0x2e_b8_86, 0xd9_30_25, 0xf2_a9_00, 0x3b_82_f6)
}

/// A Discord webhook message with one embed, within Discord's limits.
pub fn discord(target: &Target, ns: &[Notice]) -> Request {
    let title = cut(&thread_title(ns), DISCORD_TITLE);
    let footer = cut(&footer(ns), 2048);
    let first = ns.first();
    let mut fields = Vec::new();
    if let Some(n) = first {
        fields.push(json!({"name": "Rule", "value": cut(&n.alert.rule, 1024), "inline": true}));
        fields.push(json!({"name": "Severity", "value": n.alert.severity, "inline": true}));
        fields.push(json!({"name": "Event", "value": n.event_name(), "inline": true}));
    }
    let fields_len: usize = fields
        .iter()
        .map(|f| {
            f["name"].as_str().map_or(0, |s| s.chars().count())
                + f["value"].as_str().map_or(0, |s| s.chars().count())
        })
        .sum();
    let room = DISCORD_TOTAL
        .saturating_sub(title.chars().count() + footer.chars().count() + fields_len)
        .min(DISCORD_DESCRIPTION);
    let description = fit_lines(&body_lines(ns), room, "\n");
    let body = json!({
        "username": "meshmon",
        "embeds": [{
            "title": title,
            "description": description,
            "color": color(ns),
            "fields": fields,
            "footer": {"text": footer},
            "timestamp": first.map(|n| rfc3339(n.at_ms)),
        }],
        "allowed_mentions": {"parse": []},
    });
    Request::json(target.url.clone(), &body)
}

/// A Teams Workflows message: one Adaptive Card 1.4.
pub fn teams(target: &Target, ns: &[Notice]) -> Request {
    let first = ns.first();
    let style = by_state(ns, "Good", "Attention", "Warning", "Default");
    let facts: Vec<Value> = first
        .map(|n| {
            vec![
                json!({"title": "Rule", "value": n.alert.rule}),
                json!({"title": "Severity", "value": n.alert.severity}),
                json!({"title": "Event", "value": n.event_name()}),
                json!({"title": "Hosts", "value": ns.len().to_string()}),
            ]
        })
        .unwrap_or_default();
    let card = json!({
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": [
            {"type": "TextBlock", "text": thread_title(ns), "weight": "Bolder",
             "size": "Medium", "color": style, "wrap": true},
            {"type": "TextBlock", "text": fit_lines(&body_lines(ns), 20_000, "\n\n"), "wrap": true},
            {"type": "FactSet", "facts": facts},
            {"type": "TextBlock", "text": footer(ns), "isSubtle": true, "size": "Small", "wrap": true},
        ],
    });
    let body = json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": card,
        }],
    });
    Request::json(target.url.clone(), &body)
}

/// A Telegram `sendMessage` in HTML mode, at most 4,096 characters.
pub fn telegram(target: &Target, ns: &[Notice]) -> Request {
    let token = target.token.as_deref().unwrap_or_default();
    let chat = target.recipient.as_deref().unwrap_or_default();
    let tag = match ns {
        [one] => format!("\n#alert_{}", one.alert.ident.replace('-', "_")),
        _ => String::new(),
    };
    let title = format!("<b>{}</b>", html_escape(&cut(&thread_title(ns), 256)));
    let room = TELEGRAM_TEXT.saturating_sub(title.chars().count() + tag.chars().count() + 1);
    let escaped: Vec<String> = body_lines(ns).iter().map(|l| html_escape(l)).collect();
    let text = format!("{title}\n{}{tag}", fit_lines(&escaped, room, "\n"));
    let body = json!({
        "chat_id": chat,
        "text": text,
        "parse_mode": "HTML",
        "link_preview_options": {"is_disabled": true},
    });
    Request::json(format!("{}/bot{token}/sendMessage", target.url), &body)
}
