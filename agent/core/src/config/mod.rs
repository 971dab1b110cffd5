//! The agent's own config sections: `[node]`, `[collect]`, `[[check]]`, `[update]` and
//! `[export]`, each a raw serde struct that mirrors the TOML (in `raw`) and a validated type
//! with typed values. Errors name the file, the key and the bad value:
//! `meshmon.toml: node.listen: 'abc' is not an address (expected host:port)`.
//!
//! Not here: the dashboard's sections (`meshmon_dashboard::config`), composing the whole file
//! (the `meshmon` binary's `config`), or acting on the config.

use meshmon_proto::Keyring;
use meshmon_proto::units::parse_duration;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Default mesh port.
pub const DEFAULT_PORT: u16 = 6130;

/// A config error, already formatted as `PATH: key: message` (one line per error).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

mod export;
mod raw;

pub use export::{ExportConfig, RemoteAuth, RemoteWriteConfig, validate_export};

pub use raw::*;

/// Formats errors of one file as `PATH: key: message`.
#[derive(Debug, Clone)]
pub struct Errs {
    /// The file's name as shown, or "built-in defaults".
    pub file: String,
}

impl Errs {
    /// For `path`, or the built-in defaults when `None`.
    pub fn new(path: Option<&Path>) -> Errs {
        Errs {
            file: path.map_or_else(
                || "built-in defaults".to_owned(),
                |p| p.display().to_string(),
            ),
        }
    }

    /// `PATH: key: message`.
    pub fn at(&self, key: &str, msg: impl std::fmt::Display) -> ConfigError {
        ConfigError(format!("{}: {key}: {msg}", self.file))
    }

    /// A duration value of `key`.
    pub fn dur(&self, key: &str, v: &str) -> Result<Duration, ConfigError> {
        parse_duration(v).map_err(|m| self.at(key, m))
    }
}

/// `[node]`, validated.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    pub name: String,
    pub listen: SocketAddr,
    /// `host:port` strings; resolved each time a link is dialled.
    pub neighbours: Vec<String>,
    pub dashboard: bool,
    pub key_file: Option<PathBuf>,
    /// The keys; [`Keyring`] of the null key when there is no key file.
    pub keyring: Keyring,
    pub max_hops: u8,
    pub tags: Vec<String>,
}

/// `[collect]`, validated.
#[derive(Debug, Clone)]
pub struct CollectConfig {
    pub interval: Duration,
    pub docker_dir: Option<PathBuf>,
    pub docker_interval: Duration,
    pub smartctl: Option<String>,
    pub smart_interval: Duration,
    pub textfile_dir: Option<PathBuf>,
    pub systemd_units: Vec<String>,
    pub gpu: bool,
    /// Root of the cgroup file system read by the systemd collector.
    pub cgroup_root: PathBuf,
    /// Disk I/O from /proc/diskstats (issue 16).
    pub disk_io: bool,
    /// Partitions too in the disk I/O collector.
    pub disk_io_partitions: bool,
    /// The container collector (`collect.containers`).
    pub containers: bool,
    /// Engine API sockets, in order (`collect.container_sockets`).
    pub container_sockets: Vec<PathBuf>,
    /// Process names counted (`proc.count`).
    pub processes: Vec<String>,
    /// Top N process names by CPU and by memory; 0 = off.
    pub top_processes: usize,
}

/// The most `collect.top_processes` accepted (2N+1 names of 4 series each per interval).
pub const MAX_TOP_PROCESSES: usize = 100;

/// The shortest `[[check]]` interval accepted (short ones are for tests).
pub const MIN_CHECK_INTERVAL: Duration = Duration::from_millis(100);

/// One `[[check]]`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckConfig {
    /// The `check` label; unique among this node's checks.
    pub name: String,
    /// http:// or https:// URL.
    pub url: String,
    pub interval: Duration,
    /// Limit for the whole request (connect, TLS, headers, body).
    pub timeout: Duration,
    pub expect_status: u16,
    pub body_contains: Option<String>,
    /// Extra trusted roots (PEM), added to the system's.
    pub ca_file: Option<PathBuf>,
    /// Accept any certificate.
    pub insecure: bool,
}

/// `[update]`, validated.
#[derive(Debug, Clone, Default)]
pub struct UpdateConfig {
    /// The `releases/latest` URL; `None` = self-update off.
    pub url: Option<String>,
    /// Daily check in the agent.
    pub auto: bool,
}

/// Everything the agent side of a node reads: the validated agent sections.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    pub node: NodeConfig,
    pub collect: CollectConfig,
    /// HTTP(S) checks run by this node.
    pub checks: Vec<CheckConfig>,
    pub update: UpdateConfig,
    /// Where the Prometheus endpoint listens; `None`: off.
    pub prometheus_listen: Option<SocketAddr>,
    /// Remote write (dashboard nodes); `None`: off.
    pub remote_write: Option<RemoteWriteConfig>,
}

impl NodeConfig {
    /// Validates `[node]` (and reads the key file). The name must already be filled in.
    pub fn validate(n: &RawNode, e: &Errs) -> Result<NodeConfig, ConfigError> {
        meshmon_proto::frame::validate_origin(&n.name)
            .map_err(|err| e.at("node.name", format!("'{}': {err}", n.name)))?;
        let listen: SocketAddr = n.listen.parse().map_err(|_| {
            e.at(
                "node.listen",
                format!("'{}' is not an address (expected host:port)", n.listen),
            )
        })?;
        for nb in &n.neighbours {
            check_host_port(nb).map_err(|m| e.at("node.neighbours", m))?;
        }
        if n.max_hops == 0 {
            return Err(e.at("node.max_hops", "must be at least 1"));
        }
        let keyring = match &n.key_file {
            Some(kf) => read_key_file(kf).map_err(|m| e.at("node.key_file", m))?,
            None => {
                if !listen.ip().is_loopback() {
                    return Err(e.at(
                        "node.listen",
                        format!(
                            "'{listen}' is not a loopback address and no node.key_file is set; \
                             create a key with 'meshmon keygen --out /etc/meshmon/mesh.key', \
                             copy it to every node and set node.key_file"
                        ),
                    ));
                }
                Keyring::new(vec![meshmon_proto::Key::NULL])
                    .map_err(|err| e.at("node.key_file", err))?
            }
        };
        Ok(NodeConfig {
            name: n.name.clone(),
            listen,
            neighbours: n.neighbours.clone(),
            dashboard: n.dashboard,
            key_file: n.key_file.clone(),
            keyring,
            max_hops: n.max_hops,
            tags: n.tags.clone(),
        })
    }
}

/// Reads a mesh key file. Like OpenSSH with private keys, a file that its group or others can
/// read is refused: the key lets anyone join the mesh and read every frame.
pub fn read_key_file(kf: &Path) -> Result<Keyring, String> {
    use std::os::unix::fs::PermissionsExt as _;
    let meta = std::fs::metadata(kf).map_err(|err| format!("'{}': {err}", kf.display()))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(format!(
            "'{}': permissions {mode:04o} are too open (group or others can read the mesh key); \
             run 'chmod 600 {}'",
            kf.display(),
            kf.display()
        ));
    }
    let text = std::fs::read_to_string(kf).map_err(|err| format!("'{}': {err}", kf.display()))?;
    Keyring::parse(&text).map_err(|err| format!("'{}': {err}", kf.display()))
}

/// Writes a file only its owner can read (mode 0600), as a mesh key must be; replaces an
/// existing file's contents but also tightens its mode.
pub fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    f.write_all(contents.as_bytes())?;
    f.sync_all()
}

impl CollectConfig {
    /// Validates `[collect]`.
    pub fn validate(c: &RawCollect, e: &Errs) -> Result<CollectConfig, ConfigError> {
        let interval = e.dur("collect.interval", &c.interval)?;
        if interval < Duration::from_millis(100) {
            return Err(e.at(
                "collect.interval",
                format!("'{}' is below 100ms", c.interval),
            ));
        }
        let collect = CollectConfig {
            interval,
            docker_dir: non_empty(&c.docker_dir).map(PathBuf::from),
            docker_interval: e.dur("collect.docker_interval", &c.docker_interval)?,
            smartctl: non_empty(&c.smartctl).map(str::to_owned),
            smart_interval: e.dur("collect.smart_interval", &c.smart_interval)?,
            textfile_dir: non_empty(&c.textfile_dir).map(PathBuf::from),
            systemd_units: c.systemd_units.clone(),
            gpu: c.gpu,
            cgroup_root: PathBuf::from(c.cgroup_root.trim()),
            disk_io: c.disk_io,
            disk_io_partitions: c.disk_io_partitions,
            containers: c.containers,
            container_sockets: c
                .container_sockets
                .iter()
                .filter_map(|s| non_empty(s).map(PathBuf::from))
                .collect(),
            processes: c.processes.clone(),
            top_processes: c.top_processes,
        };
        for (key, d, text) in [
            (
                "collect.docker_interval",
                collect.docker_interval,
                &c.docker_interval,
            ),
            (
                "collect.smart_interval",
                collect.smart_interval,
                &c.smart_interval,
            ),
        ] {
            if d < Duration::from_secs(1) {
                return Err(e.at(key, format!("'{text}' is below the minimum of 1s")));
            }
        }
        for u in &collect.systemd_units {
            if u.is_empty() || u.contains('/') || u.starts_with('.') {
                return Err(e.at(
                    "collect.systemd_units",
                    format!("'{u}' is not a unit name (expected e.g. 'nginx.service')"),
                ));
            }
        }
        for p in &collect.processes {
            if p.trim().is_empty() || p.contains('/') {
                return Err(e.at(
                    "collect.processes",
                    format!("'{p}' is not a process name (expected e.g. 'nginx')"),
                ));
            }
        }
        if collect.top_processes > MAX_TOP_PROCESSES {
            return Err(e.at(
                "collect.top_processes",
                format!(
                    "'{}' is above the maximum of {MAX_TOP_PROCESSES}",
                    collect.top_processes
                ),
            ));
        }
        if collect.cgroup_root.as_os_str().is_empty() {
            return Err(e.at("collect.cgroup_root", "must not be empty"));
        }
        Ok(collect)
    }
}

impl CheckConfig {
    /// Validates every `[[check]]`.
    pub fn validate_all(raw: &[RawCheck], e: &Errs) -> Result<Vec<CheckConfig>, ConfigError> {
        let mut checks: Vec<CheckConfig> = Vec::with_capacity(raw.len());
        for (i, ch) in raw.iter().enumerate() {
            let key = |k: &str| format!("check[{i}].{k}");
            if ch.name.is_empty() {
                return Err(e.at(&key("name"), "must not be empty"));
            }
            if !is_http_url(&ch.url) {
                return Err(e.at(
                    &key("url"),
                    format!("'{}' is not an http:// or https:// URL", ch.url),
                ));
            }
            if checks.iter().any(|c| c.name == ch.name) {
                return Err(e.at(
                    &key("name"),
                    format!("'{}' is used by another check", ch.name),
                ));
            }
            let interval = e.dur(&key("interval"), &ch.interval)?;
            if interval < MIN_CHECK_INTERVAL {
                return Err(e.at(
                    &key("interval"),
                    format!("'{}' is below 100ms", ch.interval),
                ));
            }
            let timeout = e.dur(&key("timeout"), &ch.timeout)?;
            if timeout.is_zero() {
                return Err(e.at(&key("timeout"), "must be more than 0s"));
            }
            if let Some(ca) = &ch.ca_file
                && let Err(err) = std::fs::metadata(ca)
            {
                return Err(e.at(&key("ca_file"), format!("'{}': {err}", ca.display())));
            }
            checks.push(CheckConfig {
                name: ch.name.clone(),
                url: ch.url.clone(),
                interval,
                timeout,
                expect_status: ch.expect_status,
                body_contains: ch.body_contains.clone().filter(|b| !b.is_empty()),
                ca_file: ch.ca_file.clone(),
                insecure: ch.insecure,
            });
        }
        Ok(checks)
    }
}

impl UpdateConfig {
    /// Validates `[update]`.
    pub fn validate(u: &RawUpdate, e: &Errs) -> Result<UpdateConfig, ConfigError> {
        let url = non_empty(&u.url).map(str::to_owned);
        if let Some(url) = &url
            && !is_http_url(url)
        {
            return Err(e.at(
                "update.url",
                format!("'{url}' is not an http:// or https:// URL"),
            ));
        }
        if u.auto && url.is_none() {
            return Err(e.at(
                "update.auto",
                "is true but update.url is empty (set the releases/latest URL)",
            ));
        }
        Ok(UpdateConfig { url, auto: u.auto })
    }
}

pub(crate) fn is_http_url(url: &str) -> bool {
    url.starts_with("http://") || url.starts_with("https://")
}

/// The trimmed text, `None` when empty.
pub fn non_empty(s: &str) -> Option<&str> {
    (!s.trim().is_empty()).then_some(s.trim())
}

fn check_host_port(s: &str) -> Result<(), String> {
    let bad = || format!("'{s}' is not an address (expected host:port)");
    let (host, port) = s.rsplit_once(':').ok_or_else(bad)?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() || port.parse::<u16>().map_or(true, |p| p == 0) {
        return Err(bad());
    }
    Ok(())
}

/// The hostname, cut to a valid node name (invalid characters become `-`).
pub fn default_node_name() -> String {
    let uname = rustix::system::uname();
    let raw = uname.nodename().to_string_lossy().into_owned();
    let mut name: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .take(64)
        .collect();
    if name.is_empty() {
        name = "meshmon".into();
    }
    name
}
