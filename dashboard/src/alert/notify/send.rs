//! Sending a set of notices to one target: the HTTP requests its kind makes (one for most
//! kinds; one per alert for PagerDuty and Opsgenie, whose incidents are per alert), or an
//! email; each answer classified as delivered, worth retrying, or never (HTTP 400, SMTP 5xx).
//! Also the test notice of `meshmon alerts test`.
//!
//! Not here: retries and backoff (`deliver`).

use super::{Notice, chat, email, incident, push, slack_json, webhook_json};
use crate::alert::engine::EventKind;
use crate::alertdb::AlertRecord;
use crate::config::{Kind, Target};
use std::time::Duration;

/// One HTTP request to make.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub url: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
    /// `application/json` (else `text/plain; charset=utf-8`).
    pub json: bool,
}

impl Request {
    pub fn json(url: String, body: &serde_json::Value) -> Request {
        Request {
            url,
            headers: Vec::new(),
            body: body.to_string(),
            json: true,
        }
    }

    pub fn header(mut self, name: &'static str, value: String) -> Request {
        self.headers.push((name, value));
        self
    }
}

/// What the receiver answered: `HTTP 200 OK`, `SMTP 250 ...`.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivered(pub String);

/// Why a send failed.
#[derive(Debug, Clone, PartialEq)]
pub struct SendError {
    pub message: String,
    /// Retrying is pointless (HTTP 400, SMTP 5xx, a message that cannot be built).
    pub permanent: bool,
    /// The receiver asked to wait this long (HTTP 429 and 503 `Retry-After`).
    pub retry_after: Option<Duration>,
}

impl SendError {
    pub fn permanent(message: String) -> SendError {
        SendError {
            message,
            permanent: true,
            retry_after: None,
        }
    }

    pub fn transient(message: String) -> SendError {
        SendError {
            message,
            permanent: false,
            retry_after: None,
        }
    }
}

/// The HTTP requests `target` makes for `notices` (all of one rule and event; not empty).
pub fn requests(target: &Target, notices: &[Notice]) -> Vec<Request> {
    match target.kind {
        Kind::Slack => vec![Request::json(target.url.clone(), &slack_json(notices))],
        Kind::Webhook => vec![Request::json(target.url.clone(), &webhook_json(notices))],
        Kind::Discord => vec![chat::discord(target, notices)],
        Kind::Teams => vec![chat::teams(target, notices)],
        Kind::Telegram => vec![chat::telegram(target, notices)],
        Kind::Ntfy => vec![push::ntfy(target, notices)],
        Kind::Gotify => vec![push::gotify(target, notices)],
        Kind::Pushover => vec![push::pushover(target, notices)],
        Kind::PagerDuty => notices
            .iter()
            .map(|n| incident::pagerduty(target, n))
            .collect(),
        Kind::Opsgenie => notices
            .iter()
            .map(|n| incident::opsgenie(target, n))
            .collect(),
        Kind::Email => Vec::new(),
    }
}

/// Sends `notices` to `target`. Several requests stop at the first failure (a retry repeats
/// them all: PagerDuty's `dedup_key` and Opsgenie's `alias` make a repeat harmless).
pub async fn send(
    client: &reqwest::Client,
    target: &Target,
    notices: &[Notice],
) -> Result<Delivered, SendError> {
    if target.kind == Kind::Email {
        return email::send(target, notices).await;
    }
    let mut last = Delivered(String::new());
    for req in requests(target, notices) {
        last = post(client, &req).await?;
    }
    Ok(last)
}

/// Sends an old outbox body (a document rendered by an earlier build) as it is.
pub async fn send_raw(
    client: &reqwest::Client,
    target: &Target,
    body: &str,
) -> Result<Delivered, SendError> {
    let req = Request {
        url: target.url.clone(),
        headers: Vec::new(),
        body: body.to_owned(),
        json: true,
    };
    post(client, &req).await
}

async fn post(client: &reqwest::Client, req: &Request) -> Result<Delivered, SendError> {
    let content_type = if req.json {
        "application/json"
    } else {
        "text/plain; charset=utf-8"
    };
    let mut builder = client
        .post(&req.url)
        .header(reqwest::header::CONTENT_TYPE, content_type)
        .body(req.body.clone());
    for (name, value) in &req.headers {
        builder = builder.header(*name, value);
    }
    let resp = builder
        .send()
        .await
        .map_err(|e| SendError::transient(format!("request failed: {}", chain(&e))))?;
    let status = resp.status();
    if status.is_success() {
        return Ok(Delivered(format!("HTTP {status}")));
    }
    let retry_after = resp
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
        .filter(|_| status.as_u16() == 429 || status.as_u16() == 503);
    let text = resp.text().await.unwrap_or_default();
    let text: String = text.chars().take(200).collect();
    Err(SendError {
        message: format!("HTTP {status}: {}", text.trim()),
        permanent: status == reqwest::StatusCode::BAD_REQUEST,
        retry_after,
    })
}

/// An error and its causes, `a: b: c` (reqwest's own text omits the cause).
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut next = e.source();
    while let Some(c) = next {
        out.push_str(": ");
        out.push_str(&c.to_string());
        next = c.source();
    }
    out
}

/// The clearly marked notice `meshmon alerts test` sends.
pub fn test_notice(source: &str, now_ms: i64) -> Notice {
    let alert = AlertRecord {
        id: 0,
        ident: format!("test-{now_ms}"),
        rule: "meshmon-test".into(),
        host: source.to_owned(),
        series: "test".into(),
        state: "firing".into(),
        severity: "info".into(),
        started_ms: now_ms,
        fired_ms: Some(now_ms),
        ended_ms: None,
        value: Some(1.0),
        threshold: None,
        reminders: 0,
        acked: false,
        maintenance: false,
    };
    let id = format!("{}:firing#test", alert.ident);
    let mut n = Notice::new(EventKind::Firing, alert, None, source, now_ms, id);
    n.test = true;
    n
}
