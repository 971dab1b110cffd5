//! The config file as written: serde structs that mirror the TOML (`deny_unknown_fields`, a
//! doc and a named default on every field). Validation into typed values is in the parent.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

use super::DEFAULT_PORT;

/// The whole file as written.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// This node: name, port, neighbours, role, key.
    #[serde(default)]
    pub node: RawNode,
    /// What to collect and how often.
    #[serde(default)]
    pub collect: RawCollect,
    /// HTTP(S) service checks run by this node.
    #[serde(default, rename = "check", skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<RawCheck>,
    /// The store of a dashboard node.
    #[serde(default)]
    pub store: RawStore,
    /// Alert rules evaluated on dashboard nodes.
    #[serde(default, rename = "alert", skip_serializing_if = "Vec::is_empty")]
    pub alerts: Vec<RawAlert>,
    /// Where notifications go.
    #[serde(default)]
    pub notify: RawNotify,
    /// Self-update: where releases are read from and whether the agent checks daily.
    #[serde(default)]
    pub update: RawUpdate,
    /// Exports to other monitoring systems (Prometheus).
    #[serde(default)]
    pub export: RawExport,
}

/// `[update]`. Off unless `url` is set; `auto` additionally needs `url`.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawUpdate {
    /// URL of a GitHub-style `releases/latest` JSON document; "" turns self-update off.
    #[serde(default)]
    pub url: String,
    /// Check once a day in the agent and, when a newer release is verified, replace the
    /// binary and exit so systemd restarts it.
    #[serde(default)]
    pub auto: bool,
}

/// `[export]`.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawExport {
    /// `host:port` of a Prometheus endpoint (`GET /metrics`) with the latest value of every
    /// metric of every host; "" (the default) turns it off.
    #[serde(default)]
    pub prometheus_listen: String,
}

/// `[node]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNode {
    /// Node name, unique in the mesh; default: the hostname.
    #[serde(default)]
    pub name: String,
    /// The one mesh port of this node, `host:port`.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// Neighbours this node dials, `host:port` each. A link carries frames both ways.
    #[serde(default)]
    pub neighbours: Vec<String>,
    /// Dashboard role: store, alerts, history for the TUI and queries.
    #[serde(default)]
    pub dashboard: bool,
    /// Key file: first line seals, further lines are also accepted (rotation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_file: Option<PathBuf>,
    /// Frames travel at most this many links from their origin.
    #[serde(default = "default_max_hops")]
    pub max_hops: u8,
    /// Free-form tags shown in the TUI and usable in alert rules.
    #[serde(default)]
    pub tags: Vec<String>,
}

fn default_listen() -> String {
    format!("127.0.0.1:{DEFAULT_PORT}")
}
fn default_max_hops() -> u8 {
    8
}

impl Default for RawNode {
    fn default() -> Self {
        RawNode {
            name: String::new(),
            listen: default_listen(),
            neighbours: Vec::new(),
            dashboard: false,
            key_file: None,
            max_hops: default_max_hops(),
            tags: Vec::new(),
        }
    }
}

/// `[collect]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCollect {
    /// Core metrics interval.
    #[serde(default = "default_interval")]
    pub interval: String,
    /// Docker directory whose size is reported; "" turns the collector off.
    #[serde(default = "default_docker_dir")]
    pub docker_dir: String,
    /// How often the Docker directory is walked.
    #[serde(default = "default_docker_interval")]
    pub docker_interval: String,
    /// smartctl program (path or name); "" turns SMART off.
    #[serde(default = "default_smartctl")]
    pub smartctl: String,
    /// How often SMART data is read.
    #[serde(default = "default_smart_interval")]
    pub smart_interval: String,
    /// Directory of node_exporter-style `*.prom` files; "" for none.
    #[serde(default)]
    pub textfile_dir: String,
    /// systemd units to watch, e.g. `nginx.service`.
    #[serde(default)]
    pub systemd_units: Vec<String>,
    /// NVIDIA GPUs through NVML (switches itself off where there is no driver); false = off.
    #[serde(default = "default_gpu")]
    pub gpu: bool,
}

fn default_gpu() -> bool {
    true
}

fn default_interval() -> String {
    "1s".into()
}
fn default_docker_dir() -> String {
    "/var/lib/docker".into()
}
fn default_docker_interval() -> String {
    "5m".into()
}
fn default_smartctl() -> String {
    "smartctl".into()
}
fn default_smart_interval() -> String {
    "10m".into()
}

impl Default for RawCollect {
    fn default() -> Self {
        RawCollect {
            interval: default_interval(),
            docker_dir: default_docker_dir(),
            docker_interval: default_docker_interval(),
            smartctl: default_smartctl(),
            smart_interval: default_smart_interval(),
            textfile_dir: String::new(),
            systemd_units: Vec::new(),
            gpu: default_gpu(),
        }
    }
}

/// `[[check]]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCheck {
    /// Check name (the `check` label).
    pub name: String,
    /// http:// or https:// URL.
    pub url: String,
    /// How often to run it.
    #[serde(default = "default_check_interval")]
    pub interval: String,
    /// Request timeout.
    #[serde(default = "default_check_timeout")]
    pub timeout: String,
    /// Expected HTTP status.
    #[serde(default = "default_expect_status")]
    pub expect_status: u16,
    /// Text the body must contain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_contains: Option<String>,
}

fn default_check_interval() -> String {
    "30s".into()
}
fn default_check_timeout() -> String {
    "5s".into()
}
fn default_expect_status() -> u16 {
    200
}

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

/// `[[alert]]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAlert {
    /// Rule name.
    pub name: String,
    /// Metric selector.
    pub metric: String,
    /// Glob on host names.
    #[serde(default = "default_hosts")]
    pub hosts: String,
    /// `>`, `>=`, `<` or `<=`.
    pub op: String,
    /// Threshold compared with the value.
    pub threshold: f64,
    /// How long the condition must hold before firing.
    #[serde(default = "default_for", rename = "for")]
    pub hold: String,
    /// `info`, `warning` or `critical`.
    #[serde(default = "default_severity")]
    pub severity: String,
    /// Reminder interval while firing; "0s" = never.
    #[serde(default = "default_repeat")]
    pub repeat: String,
}

fn default_hosts() -> String {
    "*".into()
}
fn default_for() -> String {
    "0s".into()
}
fn default_severity() -> String {
    "warning".into()
}
fn default_repeat() -> String {
    "4h".into()
}

/// `[notify]`.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawNotify {
    /// Slack incoming-webhook URL.
    #[serde(default)]
    pub slack_webhook: String,
    /// Generic JSON webhooks.
    #[serde(default)]
    pub webhooks: Vec<String>,
}
