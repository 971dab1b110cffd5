//! The agent's config sections as written: serde structs that mirror the TOML
//! (`deny_unknown_fields`, a doc and a named default on every field). Validation into typed
//! values is in the parent.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

use super::DEFAULT_PORT;

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
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawExport {
    /// `host:port` of a Prometheus endpoint (`GET /metrics`) with the latest value of every
    /// metric of every host; "" (the default) turns it off.
    #[serde(default)]
    pub prometheus_listen: String,
    /// Prometheus remote-write URL (e.g. `http://prometheus:9090/api/v1/write`); dashboard
    /// nodes push every host's live samples there. "" (the default) turns it off.
    #[serde(default)]
    pub remote_write_url: String,
    /// File whose first line is a bearer token for remote write (mode 0600); "" for none.
    #[serde(default)]
    pub remote_write_bearer_file: String,
    /// File whose first line is `user:password` for remote write's basic auth (mode 0600);
    /// "" for none.
    #[serde(default)]
    pub remote_write_basic_auth_file: String,
    /// How often queued samples are pushed.
    #[serde(default = "default_remote_write_interval")]
    pub remote_write_interval: String,
    /// Samples remote write queues while the receiver is slow or down; past it the oldest
    /// are dropped (and read back from the store when the receiver is back, up to 1 hour).
    #[serde(default = "default_remote_write_queue")]
    pub remote_write_queue: usize,
}

fn default_remote_write_interval() -> String {
    "10s".into()
}

fn default_remote_write_queue() -> usize {
    200_000
}

impl Default for RawExport {
    fn default() -> RawExport {
        RawExport {
            prometheus_listen: String::new(),
            remote_write_url: String::new(),
            remote_write_bearer_file: String::new(),
            remote_write_basic_auth_file: String::new(),
            remote_write_interval: default_remote_write_interval(),
            remote_write_queue: default_remote_write_queue(),
        }
    }
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
    /// `neighbors` is accepted too.
    #[serde(default, alias = "neighbors")]
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
    32
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
    // Disk I/O (issue 16).
    /// Block device activity from /proc/diskstats (whole disks, md, dm); false = off.
    #[serde(default = "default_disk_io")]
    pub disk_io: bool,
    /// Partitions too in the disk I/O collector.
    #[serde(default)]
    pub disk_io_partitions: bool,
    /// Per-container metrics (cgroups, named by the engine API); false = off.
    #[serde(default = "default_containers")]
    pub containers: bool,
    /// Docker-compatible engine API sockets, tried in order (Docker's, then Podman's).
    #[serde(default = "default_container_sockets")]
    pub container_sockets: Vec<String>,
    /// Process names whose count is sent as `proc.count{name}` (0 when none runs).
    #[serde(default)]
    pub processes: Vec<String>,
    /// The top N process names by CPU and by memory sent every interval; 0 = off.
    #[serde(default = "default_top_processes")]
    pub top_processes: usize,
}

fn default_disk_io() -> bool {
    true
}

fn default_containers() -> bool {
    true
}

fn default_container_sockets() -> Vec<String> {
    vec![
        "/var/run/docker.sock".into(),
        "/run/podman/podman.sock".into(),
    ]
}

fn default_top_processes() -> usize {
    10
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
            disk_io: default_disk_io(),
            disk_io_partitions: false,
            containers: default_containers(),
            container_sockets: default_container_sockets(),
            processes: Vec::new(),
            top_processes: default_top_processes(),
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
