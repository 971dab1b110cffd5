//! `[[notify.target]]`: one place notifications go, of one of the [`Kind`]s, with its
//! secrets read from files (so NixOS can hand them over as systemd credentials), its filters
//! and its grouping window; validated into [`Target`]. The `notify.slack_webhook*` and
//! `notify.webhooks*` shorthands become targets here too, with their old labels (`slack`,
//! `webhook-<hash>`) so that notification ids queued by an older build still match.
//!
//! Not here: rendering or sending (`alert::notify`).

use super::{ConfigError, MakeErr, non_empty};
use crate::alert::rules::Severity;
use meshmon_proto::units::parse_duration;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use std::path::Path;
use std::time::Duration;

/// The kinds of target, as written in `kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Slack,
    Discord,
    Teams,
    Telegram,
    Ntfy,
    Gotify,
    Pushover,
    PagerDuty,
    Opsgenie,
    Email,
    Webhook,
}

/// Every kind, in the order the docs list them.
pub const KINDS: [Kind; 11] = [
    Kind::Slack,
    Kind::Discord,
    Kind::Teams,
    Kind::Telegram,
    Kind::Ntfy,
    Kind::Gotify,
    Kind::Pushover,
    Kind::PagerDuty,
    Kind::Opsgenie,
    Kind::Email,
    Kind::Webhook,
];

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Slack => "slack",
            Kind::Discord => "discord",
            Kind::Teams => "teams",
            Kind::Telegram => "telegram",
            Kind::Ntfy => "ntfy",
            Kind::Gotify => "gotify",
            Kind::Pushover => "pushover",
            Kind::PagerDuty => "pagerduty",
            Kind::Opsgenie => "opsgenie",
            Kind::Email => "email",
            Kind::Webhook => "webhook",
        }
    }

    /// The service's own API base, where it has one (`url` overrides it).
    fn default_url(self) -> Option<&'static str> {
        match self {
            Kind::Telegram => Some("https://api.telegram.org"),
            Kind::Pushover => Some("https://api.pushover.net"),
            Kind::PagerDuty => Some("https://events.pagerduty.com"),
            Kind::Opsgenie => Some("https://api.opsgenie.com"),
            _ => None,
        }
    }

    /// The key of the kind's secret file, if it has one beside the URL.
    fn token_key(self) -> Option<&'static str> {
        match self {
            Kind::Telegram => Some("bot_token_file"),
            Kind::Gotify | Kind::Pushover => Some("token_file"),
            Kind::PagerDuty => Some("routing_key_file"),
            Kind::Opsgenie => Some("api_key_file"),
            _ => None,
        }
    }
}

/// `[[notify.target]]` as written.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTarget {
    /// Unique name (`meshmon alerts test --target NAME`, the outbox's target column).
    #[serde(default)]
    pub name: String,
    /// One of `slack discord teams telegram ntfy gotify pushover pagerduty opsgenie email
    /// webhook`.
    #[serde(default)]
    pub kind: String,
    /// The webhook or topic URL (slack, discord, teams, webhook, ntfy), the server (gotify),
    /// or the API base (telegram, pushover, pagerduty, opsgenie; their public API by default).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub url: String,
    /// File whose first non-empty line is `url` (a secret webhook URL).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub url_file: String,
    /// Telegram: file holding the bot token.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub bot_token_file: String,
    /// Telegram: the chat to post to.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub chat_id: String,
    /// Gotify: the application token; Pushover: the application's API token; ntfy: an
    /// access token (optional).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub token_file: String,
    /// Pushover: file holding the user (or group) key.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub user_key_file: String,
    /// PagerDuty: file holding the Events API v2 integration (routing) key.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub routing_key_file: String,
    /// Opsgenie: file holding the API integration key.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub api_key_file: String,
    /// Email: the SMTP server's host name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub smtp_host: String,
    /// Email: the SMTP port (587).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// Email: require STARTTLS (true); `false` only for a relay on a trusted network.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starttls: Option<bool>,
    /// Email: a PEM file of the certificate authority that signed the SMTP server's
    /// certificate, trusted besides the system's (a relay with a private CA).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ca_file: String,
    /// Email: SMTP user name ("" = no authentication).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub username: String,
    /// Email: file holding the SMTP password.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub password_file: String,
    /// Email: the sender, `meshmon <alerts@example.org>`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub from: String,
    /// Email: the recipients.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub to: Vec<String>,
    /// Minimum severity sent: `info` (all), `warning`, `critical`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub severity: String,
    /// Globs on rule names; empty = every rule.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<String>,
    /// Globs on host names; empty = every host.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
    /// Tags the host must all have.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Grouping window: one rule's transitions within it go out as one message; "0s" = none.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub group: String,
}

/// SMTP settings of an email target.
#[derive(Debug, Clone, PartialEq)]
pub struct Smtp {
    pub host: String,
    pub port: u16,
    pub starttls: bool,
    /// Extra trusted CA certificates (PEM), from `ca_file`.
    pub ca_pem: Option<Vec<u8>>,
    /// User name and password.
    pub credentials: Option<(String, String)>,
    pub from: String,
    pub to: Vec<String>,
}

/// Which alerts a target takes.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    pub min_severity: Severity,
    pub rules: Vec<String>,
    pub hosts: Vec<String>,
    pub tags: Vec<String>,
}

impl Default for Filter {
    fn default() -> Self {
        Filter {
            min_severity: Severity::Info,
            rules: Vec::new(),
            hosts: Vec::new(),
            tags: Vec::new(),
        }
    }
}

/// A target, validated, its secrets read.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// `name`, or `slack` / `webhook-<8 hex digits of the URL's SHA-256>` for the shorthands:
    /// the same on every dashboard node with the same config, so notification ids agree.
    pub label: String,
    pub kind: Kind,
    /// The URL (see [`RawTarget::url`]); "" for email.
    pub url: String,
    /// The kind's secret (bot token, app token, routing key, API key), if it has one.
    pub token: Option<String>,
    /// Telegram chat id, Pushover user key.
    pub recipient: Option<String>,
    pub smtp: Option<Smtp>,
    pub filter: Filter,
    /// `Duration::ZERO`: no grouping.
    pub group: Duration,
}

impl Target {
    /// A target of a shorthand (`notify.slack_webhook`, `notify.webhooks`).
    pub fn shorthand(kind: Kind, url: &str) -> Target {
        let label = match kind {
            Kind::Slack => "slack".to_owned(),
            _ => {
                let h = Sha256::digest(url.as_bytes());
                let hex: String = h[..4].iter().map(|b| format!("{b:02x}")).collect();
                format!("webhook-{hex}")
            }
        };
        Target {
            label,
            kind,
            url: url.to_owned(),
            token: None,
            recipient: None,
            smtp: None,
            filter: Filter::default(),
            group: Duration::ZERO,
        }
    }
}

pub(super) fn is_http_url(url: &str) -> bool {
    url.starts_with("http://") || url.starts_with("https://")
}

/// The first non-empty, non-comment line of a secret file.
pub(super) fn read_secret(path: &str, key: &str, err: MakeErr<'_>) -> Result<String, ConfigError> {
    let text =
        std::fs::read_to_string(Path::new(path)).map_err(|e| err(key, format!("'{path}': {e}")))?;
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .ok_or_else(|| err(key, format!("'{path}': is empty")))
}

/// Validates every `[[notify.target]]`; `taken` holds the shorthands' labels.
pub(super) fn validate_all(
    raw: &[RawTarget],
    taken: &[String],
    err: MakeErr<'_>,
) -> Result<Vec<Target>, ConfigError> {
    let mut out: Vec<Target> = Vec::new();
    for (i, t) in raw.iter().enumerate() {
        let at = format!("notify.target[{i}]");
        let target = validate(t, &at, err)?;
        if taken.contains(&target.label) || out.iter().any(|o| o.label == target.label) {
            return Err(err(
                &format!("{at}.name"),
                format!("'{}' is used twice", target.label),
            ));
        }
        out.push(target);
    }
    Ok(out)
}

fn validate(t: &RawTarget, at: &str, err: MakeErr<'_>) -> Result<Target, ConfigError> {
    let key = |k: &str| format!("{at}.{k}");
    let name = non_empty(&t.name)
        .ok_or_else(|| err(&key("name"), "is missing".into()))?
        .to_owned();
    let Some(kind) = KINDS.into_iter().find(|k| k.as_str() == t.kind.trim()) else {
        let all: Vec<&str> = KINDS.iter().map(|k| k.as_str()).collect();
        return Err(err(
            &key("kind"),
            format!(
                "'{}' is not a kind (expected one of: {})",
                t.kind,
                all.join(", ")
            ),
        ));
    };
    // Keys of another kind are mistakes worth naming.
    let own_token = kind.token_key();
    for (k, v) in [
        ("bot_token_file", &t.bot_token_file),
        ("token_file", &t.token_file),
        ("routing_key_file", &t.routing_key_file),
        ("api_key_file", &t.api_key_file),
    ] {
        let ntfy_token = kind == Kind::Ntfy && k == "token_file";
        if !v.is_empty() && own_token != Some(k) && !ntfy_token {
            return Err(err(
                &key(k),
                format!("is not used by kind '{}'", kind.as_str()),
            ));
        }
    }

    let mut url = non_empty(&t.url).map(str::to_owned);
    if let Some(path) = non_empty(&t.url_file) {
        if url.is_some() {
            return Err(err(
                &key("url_file"),
                format!("is set together with {at}.url; keep only one"),
            ));
        }
        url = Some(read_secret(path, &key("url_file"), err)?);
    }
    let url = match (url, kind) {
        (Some(u), Kind::Email) => {
            return Err(err(
                &key("url"),
                format!("'{u}': email targets take smtp_host"),
            ));
        }
        (Some(u), _) if !is_http_url(&u) => {
            return Err(err(&key("url"), "is not an http:// or https:// URL".into()));
        }
        (Some(u), _) => u.trim_end_matches('/').to_owned(),
        (None, Kind::Email) => String::new(),
        (None, k) => match k.default_url() {
            Some(u) => u.to_owned(),
            None => {
                return Err(err(
                    &key("url_file"),
                    format!("is missing (kind '{}' needs url_file or url)", k.as_str()),
                ));
            }
        },
    };

    let token = match own_token.or((kind == Kind::Ntfy).then_some("token_file")) {
        Some(k) => {
            let path = match k {
                "bot_token_file" => &t.bot_token_file,
                "routing_key_file" => &t.routing_key_file,
                "api_key_file" => &t.api_key_file,
                _ => &t.token_file,
            };
            match non_empty(path) {
                Some(p) => Some(read_secret(p, &key(k), err)?),
                None if kind == Kind::Ntfy => None,
                None => {
                    return Err(err(
                        &key(k),
                        format!("is missing (kind '{}' needs it)", kind.as_str()),
                    ));
                }
            }
        }
        None => None,
    };
    let recipient = match kind {
        Kind::Telegram => Some(
            non_empty(&t.chat_id)
                .ok_or_else(|| {
                    err(
                        &key("chat_id"),
                        "is missing (kind 'telegram' needs it)".into(),
                    )
                })?
                .to_owned(),
        ),
        Kind::Pushover => match non_empty(&t.user_key_file) {
            Some(p) => Some(read_secret(p, &key("user_key_file"), err)?),
            None => {
                return Err(err(
                    &key("user_key_file"),
                    "is missing (kind 'pushover' needs it)".into(),
                ));
            }
        },
        _ => None,
    };
    let smtp = if kind == Kind::Email {
        Some(smtp(t, &key, err)?)
    } else {
        None
    };

    let min_severity = match t.severity.trim() {
        "" | "info" => Severity::Info,
        "warning" => Severity::Warning,
        "critical" => Severity::Critical,
        s => {
            return Err(err(
                &key("severity"),
                format!("'{s}' is not a severity (info, warning, critical)"),
            ));
        }
    };
    for (k, globs) in [("rules", &t.rules), ("hosts", &t.hosts), ("tags", &t.tags)] {
        if globs.iter().any(|g| g.trim().is_empty()) {
            return Err(err(&key(k), "holds an empty pattern".into()));
        }
    }
    let group = match non_empty(&t.group) {
        Some(g) => parse_duration(g).map_err(|m| err(&key("group"), m))?,
        None => Duration::ZERO,
    };
    Ok(Target {
        label: name,
        kind,
        url,
        token,
        recipient,
        smtp,
        filter: Filter {
            min_severity,
            rules: t.rules.clone(),
            hosts: t.hosts.clone(),
            tags: t.tags.clone(),
        },
        group,
    })
}

const CERT_BEGIN: &str = "-----BEGIN CERTIFICATE-----";

fn smtp(
    t: &RawTarget,
    key: &dyn Fn(&str) -> String,
    err: MakeErr<'_>,
) -> Result<Smtp, ConfigError> {
    let host = non_empty(&t.smtp_host).ok_or_else(|| {
        err(
            &key("smtp_host"),
            "is missing (kind 'email' needs it)".into(),
        )
    })?;
    let from = non_empty(&t.from)
        .ok_or_else(|| err(&key("from"), "is missing (kind 'email' needs it)".into()))?;
    if from.parse::<lettre::message::Mailbox>().is_err() {
        return Err(err(&key("from"), format!("'{from}' is not a mail address")));
    }
    if t.to.is_empty() {
        return Err(err(
            &key("to"),
            "is empty (kind 'email' needs a recipient)".into(),
        ));
    }
    if let Some(bad) =
        t.to.iter()
            .find(|a| a.parse::<lettre::message::Mailbox>().is_err())
    {
        return Err(err(&key("to"), format!("'{bad}' is not a mail address")));
    }
    let credentials = match (non_empty(&t.username), non_empty(&t.password_file)) {
        (Some(u), Some(p)) => Some((u.to_owned(), read_secret(p, &key("password_file"), err)?)),
        (None, None) => None,
        (Some(_), None) => {
            return Err(err(
                &key("password_file"),
                "is missing (username is set)".into(),
            ));
        }
        (None, Some(_)) => {
            return Err(err(
                &key("username"),
                "is missing (password_file is set)".into(),
            ));
        }
    };
    let starttls = t.starttls.unwrap_or(true);
    let ca_pem = match non_empty(&t.ca_file) {
        None => None,
        Some(_) if !starttls => {
            return Err(err(
                &key("ca_file"),
                "is set but starttls = false (the CA is for STARTTLS)".into(),
            ));
        }
        Some(path) => {
            let pem = std::fs::read(Path::new(path))
                .map_err(|e| err(&key("ca_file"), format!("'{path}': {e}")))?;
            let has_cert = pem
                .windows(CERT_BEGIN.len())
                .any(|w| w == CERT_BEGIN.as_bytes());
            if !has_cert || lettre::transport::smtp::client::Certificate::from_pem(&pem).is_err() {
                return Err(err(
                    &key("ca_file"),
                    format!("'{path}': no PEM certificate in it ({CERT_BEGIN} ...)"),
                ));
            }
            Some(pem)
        }
    };
    Ok(Smtp {
        host: host.to_owned(),
        port: t.port.unwrap_or(587),
        starttls,
        ca_pem,
        credentials,
        from: from.to_owned(),
        to: t.to.clone(),
    })
}

#[cfg(test)]
#[path = "targets_tests.rs"]
mod tests;
