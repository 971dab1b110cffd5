//! Push services: ntfy (the message POSTed to the topic URL, with `Title`, `Priority` and
//! `Tags` headers), Gotify (`POST /message`, the app token in `X-Gotify-Key`) and Pushover
//! (`POST /1/messages.json`: title at most 250 characters, message at most 1,024).
//!
//! Not here: the shared helpers (`text`).

use super::chat::thread_title;
use super::send::Request;
use super::text::{cut, fit_lines, header_text};
use super::{Notice, body_lines, by_state};
use crate::config::Target;
use serde_json::json;

/// ntfy's message limit (bytes; larger bodies become attachments).
pub const NTFY_MESSAGE: usize = 4096;
pub const PUSHOVER_TITLE: usize = 250;
pub const PUSHOVER_MESSAGE: usize = 1024;

/// The message text: the headline, then one line per alert of a group, within `max`
/// characters.
fn message(ns: &[Notice], max: usize) -> String {
    fit_lines(&body_lines(ns), max, "\n")
}

/// 1 (lowest) to 5 (highest), ntfy's scale: critical 5, warning 4, info and resolved 3.
fn level(ns: &[Notice]) -> u8 {
    by_state(ns, 3, 5, 4, 3)
}

pub fn ntfy(target: &Target, ns: &[Notice]) -> Request {
    let emoji = by_state(
        ns,
        "white_check_mark",
        "rotating_light",
        "warning",
        "information_source",
    );
    let rule = ns.first().map_or("", |n| n.alert.rule.as_str());
    // ntfy counts bytes; a character is at most 4 bytes.
    let mut req = Request {
        url: target.url.clone(),
        headers: vec![
            ("Title", header_text(&cut(&thread_title(ns), 250))),
            ("Priority", level(ns).to_string()),
            ("Tags", header_text(&format!("{emoji},{rule}"))),
        ],
        body: message(ns, NTFY_MESSAGE / 4),
        json: false,
    };
    if let Some(token) = &target.token {
        req = req.header("Authorization", format!("Bearer {token}"));
    }
    req
}

pub fn gotify(target: &Target, ns: &[Notice]) -> Request {
    let priority = match level(ns) {
        5 => 8,
        4 => 5,
        _ => 2,
    };
    let body = json!({
        "title": thread_title(ns),
        "message": message(ns, 10_000),
        "priority": priority,
        "extras": {"client::display": {"contentType": "text/plain"}},
    });
    Request::json(format!("{}/message", target.url), &body)
        .header("X-Gotify-Key", target.token.clone().unwrap_or_default())
}

pub fn pushover(target: &Target, ns: &[Notice]) -> Request {
    let priority: i8 = match level(ns) {
        5 => 1,
        4 => 0,
        _ => -1,
    };
    let body = json!({
        "token": target.token.as_deref().unwrap_or_default(),
        "user": target.recipient.as_deref().unwrap_or_default(),
        "title": cut(&thread_title(ns), PUSHOVER_TITLE),
        "message": message(ns, PUSHOVER_MESSAGE),
        "priority": priority,
        "timestamp": ns.first().map(|n| n.at_ms / 1000),
    });
    Request::json(format!("{}/1/messages.json", target.url), &body)
}
