//! The dashboard's config sections: `[store]`, `[[alert]]`, `[notify]`,
//! `[[maintenance]]` and `[web]`, each a raw serde
//! struct that mirrors the TOML (in `raw`) and a validated form. The store section validates
//! straight into the writer's [`StoreConfig`], so there is one type for it.
//!
//! Errors are whole lines, `PATH: key: message`, built by the caller's formatter.
//!
//! Not here: the agent's sections or composing the whole file (the `meshmon` binary).

use crate::alert::Rule;
use crate::alert::maintenance::Recurring;
use crate::writer::StoreConfig;
use meshmon_proto::units::parse_duration;
use std::path::PathBuf;
use std::time::Duration;

mod maintenance;
mod notify;
mod raw;
mod targets;
pub mod web;

pub use maintenance::RawMaintenance;
pub use notify::redact_url;
pub use raw::*;
pub use targets::{Filter, KINDS, Kind, RawTarget, Smtp, Target};
pub use web::{RawWeb, WebConfig};

/// A config error line, `PATH: key: message`.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

/// Builds `PATH: key: message` errors.
pub type MakeErr<'a> = &'a dyn Fn(&str, String) -> ConfigError;

/// `[notify]`, validated.
#[derive(Debug, Clone, Default)]
pub struct NotifyConfig {
    /// From `slack_webhook` or the first line of `slack_webhook_file`.
    pub slack_webhook: Option<String>,
    /// `webhooks` followed by the lines of `webhooks_file`, duplicates dropped.
    pub webhooks: Vec<String>,
    /// Every target: the shorthands' (`slack`, `webhook-<hash>`) first, then
    /// `[[notify.target]]` in order.
    pub targets: Vec<Target>,
    /// A notification not delivered for this long is given up (logged, kept as `expired`).
    pub give_up_after: Duration,
}

/// The dashboard's sections, validated.
#[derive(Debug, Clone)]
pub struct DashboardConfig {
    pub store: StoreConfig,
    /// Alert rules (built-ins merged with `[[alert]]`).
    pub alerts: Vec<Rule>,
    /// Where notifications go.
    pub notify: NotifyConfig,
    /// Recurring maintenance windows (`[[maintenance]]`).
    pub maintenance: Vec<Recurring>,
    /// The web dashboard.
    pub web: WebConfig,
}

impl DashboardConfig {
    /// Validates the sections; every section's first error is reported, one a line.
    pub fn validate(
        store: &RawStore,
        alerts: &[RawAlert],
        notify: &RawNotify,
        maintenance: &[RawMaintenance],
        web: &RawWeb,
        err: MakeErr<'_>,
    ) -> Result<DashboardConfig, ConfigError> {
        let s = validate_store(store, err);
        let a = crate::alert::rules::compile(alerts, &|k, m| err(k, m).0).map_err(ConfigError);
        let n = notify::validate(notify, err);
        let m = maintenance::validate(maintenance, err);
        let w = web::validate(web, err);
        match (s, a, n, m, w) {
            (Ok(store), Ok(alerts), Ok(notify), Ok(maintenance), Ok(web)) => Ok(DashboardConfig {
                store,
                alerts,
                notify,
                maintenance,
                web,
            }),
            (s, a, n, m, w) => {
                let lines: Vec<String> = [s.err(), a.err(), n.err(), m.err(), w.err()]
                    .into_iter()
                    .flatten()
                    .map(|e| e.0)
                    .collect();
                Err(ConfigError(lines.join("\n")))
            }
        }
    }
}

/// Validates `[store]` into the writer's config.
pub fn validate_store(raw: &RawStore, err: MakeErr<'_>) -> Result<StoreConfig, ConfigError> {
    let dur = |key: &str, v: &str| parse_duration(v).map_err(|m| err(key, m));
    let mut cfg = StoreConfig::new(raw.path.clone().unwrap_or_else(default_store_path));
    cfg.retention_raw = dur("store.retention", &raw.retention)?;
    cfg.retention_1m = dur("store.retention_1m", &raw.retention_1m)?;
    cfg.retention_1h = dur("store.retention_1h", &raw.retention_1h)?;
    cfg.flush_every = dur("store.flush_interval", &raw.flush_interval)?;
    if cfg.flush_every < Duration::from_secs(1) {
        return Err(err(
            "store.flush_interval",
            format!("'{}' is below the minimum of 1s", raw.flush_interval),
        ));
    }
    Ok(cfg)
}

fn non_empty(s: &str) -> Option<&str> {
    (!s.trim().is_empty()).then_some(s.trim())
}

/// `$STATE_DIRECTORY/meshmon.db` under systemd, else the XDG data directory.
pub fn default_store_path() -> PathBuf {
    if let Some(dir) = std::env::var_os("STATE_DIRECTORY") {
        return PathBuf::from(dir).join("meshmon.db");
    }
    let base = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("/var/lib"));
    base.join("meshmon").join("meshmon.db")
}
