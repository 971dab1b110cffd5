//! `[notify]`: the webhook URLs given in the file or read from `slack_webhook_file` and
//! `webhooks_file` (so the secret URLs need not sit in the config file), validated and merged
//! into [`NotifyConfig`]; and [`redact_url`], which `check-config` uses so that it never prints
//! a URL in full.
//!
//! Not here: delivering notifications (`alert::deliver`).

use super::targets::{self, Kind, Target, is_http_url};
use super::{ConfigError, MakeErr, NotifyConfig, RawNotify, non_empty};
use meshmon_proto::units::parse_duration;
use std::path::Path;

/// Validates `[notify]` and reads its URL files.
pub(super) fn validate(n: &RawNotify, err: MakeErr<'_>) -> Result<NotifyConfig, ConfigError> {
    for (key, url) in std::iter::once(("notify.slack_webhook", &n.slack_webhook))
        .chain(n.webhooks.iter().map(|u| ("notify.webhooks", u)))
    {
        if !(url.trim().is_empty() || is_http_url(url.trim())) {
            return Err(err(
                key,
                format!("'{url}' is not an http:// or https:// URL"),
            ));
        }
    }

    let mut slack_webhook = non_empty(&n.slack_webhook).map(str::to_owned);
    if let Some(path) = non_empty(&n.slack_webhook_file) {
        const KEY: &str = "notify.slack_webhook_file";
        if slack_webhook.is_some() {
            return Err(err(
                KEY,
                "is set together with notify.slack_webhook; keep only one".into(),
            ));
        }
        let urls = read_urls(Path::new(path), KEY, err)?;
        match urls.into_iter().next() {
            Some(url) => slack_webhook = Some(url),
            None => return Err(err(KEY, format!("'{path}': holds no URL"))),
        }
    }

    let mut webhooks: Vec<String> = n
        .webhooks
        .iter()
        .filter_map(|u| non_empty(u).map(str::to_owned))
        .collect();
    if let Some(path) = non_empty(&n.webhooks_file) {
        webhooks.extend(read_urls(Path::new(path), "notify.webhooks_file", err)?);
    }
    // The same URL twice would be two targets with one label (a hash of the URL).
    let mut seen = std::collections::HashSet::new();
    webhooks.retain(|u| seen.insert(u.clone()));

    // The shorthands are targets too, first, under their old labels.
    let mut all: Vec<Target> = slack_webhook
        .iter()
        .map(|u| Target::shorthand(Kind::Slack, u))
        .chain(webhooks.iter().map(|u| Target::shorthand(Kind::Webhook, u)))
        .collect();
    let taken: Vec<String> = all.iter().map(|t| t.label.clone()).collect();
    all.extend(targets::validate_all(&n.target, &taken, err)?);

    Ok(NotifyConfig {
        slack_webhook,
        webhooks,
        targets: all,
        give_up_after: parse_duration(&n.give_up_after)
            .map_err(|m| err("notify.give_up_after", m))?,
    })
}

/// The URLs of a file, one a non-empty line; lines starting with `#` are comments. A bad line
/// is named by its number, not its text: it may be a secret with a typo.
fn read_urls(path: &Path, key: &str, err: MakeErr<'_>) -> Result<Vec<String>, ConfigError> {
    let shown = path.display();
    let text = std::fs::read_to_string(path).map_err(|e| err(key, format!("'{shown}': {e}")))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if !is_http_url(line) {
            return Err(err(
                key,
                format!(
                    "'{shown}': line {} is not an http:// or https:// URL",
                    i + 1
                ),
            ));
        }
        out.push(line.to_owned());
    }
    Ok(out)
}

/// A URL cut to its scheme and host, the rest (user info, path, query) replaced with `…`:
/// `https://hooks.slack.com/services/T/B/X` becomes `https://hooks.slack.com/…`. "" stays "".
pub fn redact_url(url: &str) -> String {
    let url = url.trim();
    if url.is_empty() {
        return String::new();
    }
    let Some((scheme, rest)) = url.split_once("://") else {
        return "…".into();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if host.len() == rest.len() {
        format!("{scheme}://{host}")
    } else {
        format!("{scheme}://{host}/…")
    }
}
