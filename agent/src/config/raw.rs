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
    /// Root of the cgroup file system the systemd collector reads (tests use a fixture tree).
    #[serde(default = "default_cgroup_root")]
    pub cgroup_root: String,
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
fn default_cgroup_root() -> String {
    "/sys/fs/cgroup".into()
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
            cgroup_root: default_cgroup_root(),
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
    /// PEM file of extra trusted root certificates (an internal CA), added to the system's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// Accept any certificate (expired, self-signed, wrong name); days left are still reported.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub insecure: bool,
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

/// `[[alert]]`. A rule named like a built-in (`host-down`, `check-down`, `smart-failed`,
/// `smart-critical-warning`, `smart-media-errors`, `smart-worn`, `disk-full`, `inodes-full`)
/// changes that built-in: only the keys given replace the built-in's, and `enabled = false`
/// switches it off. Other rules need `metric`, `op` and `threshold`.
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
        }
    }
}
