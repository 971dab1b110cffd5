//! The dashboard's config sections as written (`[store]`, `[[alert]]`, `[notify]`): serde
//! structs that mirror the TOML (`deny_unknown_fields`, a doc and a named default on every
//! field). Validation into typed values is in the parent.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// `[store]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStore {
    /// SQLite file; default: the user's data directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    /// How long raw data is kept.
    #[serde(default = "default_retention")]
    pub retention: String,
    /// How long one-minute rollups are kept.
    #[serde(default = "default_retention_1m")]
    pub retention_1m: String,
    /// How long one-hour rollups are kept.
    #[serde(default = "default_retention_1h")]
    pub retention_1h: String,
    /// How often open chunks are written (the most a crash can lose before backfill).
    #[serde(default = "default_flush_interval")]
    pub flush_interval: String,
}

fn default_retention() -> String {
    "7d".into()
}

fn default_retention_1m() -> String {
    "90d".into()
}
fn default_retention_1h() -> String {
    "730d".into()
}
fn default_flush_interval() -> String {
    "30s".into()
}

impl Default for RawStore {
    fn default() -> Self {
        RawStore {
            path: None,
            retention: default_retention(),
            retention_1m: default_retention_1m(),
            retention_1h: default_retention_1h(),
            flush_interval: default_flush_interval(),
        }
    }
}

/// `[[alert]]`. A rule named like a built-in (`host-down`, `check-down`, `smart-failed`,
/// `smart-critical-warning`, `smart-media-errors`, `smart-worn`, `disk-full`, `inodes-full`,
/// `oom-kill`) changes that built-in: only the keys given replace the built-in's, and
/// `enabled = false` switches it off. Other rules need `metric`, `op` and `threshold`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAlert {
    /// Rule name.
    pub name: String,
    /// Metric selector.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric: Option<String>,
    /// Glob on host names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hosts: Option<String>,
    /// Tags a host must all have (from its `node.tags`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    /// `>`, `>=`, `<`, `<=`, or `increase` (the value rose since the previous reading).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub op: Option<String>,
    /// Threshold compared with the value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
    /// Hysteresis: a firing alert resolves only once the value is past this (below it for
    /// `>`/`>=`, above it for `<`/`<=`), so a value hovering at the threshold does not flap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clear_threshold: Option<f64>,
    /// How long the condition must hold before firing (for `increase`: how long without a
    /// further increase before it resolves).
    #[serde(default, rename = "for", skip_serializing_if = "Option::is_none")]
    pub hold: Option<String>,
    /// `info`, `warning` or `critical`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<String>,
    /// Reminder interval while firing; "0s" = never.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeat: Option<String>,
    /// `false` switches the rule (or built-in) off.
    #[serde(default = "default_enabled")]
    pub enabled: bool,
}

fn default_enabled() -> bool {
    true
}

/// `[notify]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNotify {
    /// Slack incoming-webhook URL (a secret: prefer `slack_webhook_file`).
    #[serde(default)]
    pub slack_webhook: String,
    /// File whose first non-empty line is the Slack webhook URL; "" for none.
    #[serde(default)]
    pub slack_webhook_file: String,
    /// Generic JSON webhooks.
    #[serde(default)]
    pub webhooks: Vec<String>,
    /// File of more generic webhook URLs, one a line (`#` comments); "" for none.
    #[serde(default)]
    pub webhooks_file: String,
    /// Give up on a notification that could not be delivered for this long.
    #[serde(default = "default_give_up_after")]
    pub give_up_after: String,
    /// `[[notify.target]]`: targets of every kind.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub target: Vec<super::RawTarget>,
}

fn default_give_up_after() -> String {
    "24h".into()
}

impl Default for RawNotify {
    fn default() -> Self {
        RawNotify {
            slack_webhook: String::new(),
            slack_webhook_file: String::new(),
            webhooks: Vec::new(),
            webhooks_file: String::new(),
            give_up_after: default_give_up_after(),
            target: Vec::new(),
        }
    }
}
