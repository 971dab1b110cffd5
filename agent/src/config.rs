//! The config file: raw serde structs that mirror the TOML (`deny_unknown_fields`, a doc and a
//! named default on every field) and [`Config`], the validated form with typed values that
//! the rest of the agent uses. Errors name the file, the key and the bad value:
//! `meshmon.toml: node.listen: 'abc' is not an address (expected host:port)`.
//!
//! Not here: reading keys' contents beyond validating them, or acting on the config.

use meshmon_proto::units::parse_duration;
use meshmon_proto::{Keyring, Selector};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Default mesh port.
pub const DEFAULT_PORT: u16 = 6130;
/// Where the config is looked for when neither `--config` nor `$MESHMON_CONFIG` is given.
pub const SYSTEM_CONFIG: &str = "/etc/meshmon/meshmon.toml";

/// A config error, already formatted as `PATH: key: message`.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

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
}

/// `[store]`, validated.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    pub path: PathBuf,
    pub retention: Duration,
    pub retention_1m: Duration,
    pub retention_1h: Duration,
    pub flush_interval: Duration,
}

/// `[update]`, validated.
#[derive(Debug, Clone, Default)]
pub struct UpdateConfig {
    /// The `releases/latest` URL; `None` = self-update off.
    pub url: Option<String>,
    /// Daily check in the agent.
    pub auto: bool,
}

/// The validated config.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it came from; `None` for built-in defaults.
    pub source: Option<PathBuf>,
    pub node: NodeConfig,
    pub collect: CollectConfig,
    pub store: StoreConfig,
    pub update: UpdateConfig,
    /// Where the Prometheus endpoint listens; `None`: off.
    pub prometheus_listen: Option<SocketAddr>,
    /// The file with defaults filled in, for `check-config`.
    pub effective: RawConfig,
}

impl Config {
    /// Finds and loads the config: `explicit`, else `$MESHMON_CONFIG`, else
    /// [`SYSTEM_CONFIG`] if it exists, else built-in defaults (a loopback dashboard node).
    pub fn load(explicit: Option<&Path>) -> Result<Config, ConfigError> {
        let env = std::env::var_os("MESHMON_CONFIG").map(PathBuf::from);
        let path = explicit.map(Path::to_path_buf).or(env).or_else(|| {
            let p = PathBuf::from(SYSTEM_CONFIG);
            p.exists().then_some(p)
        });
        match path {
            Some(p) => {
                let text = std::fs::read_to_string(&p)
                    .map_err(|e| ConfigError(format!("{}: cannot read: {e}", p.display())))?;
                Config::parse(&text, &p)
            }
            None => {
                let mut raw = RawConfig::default();
                raw.node.dashboard = true;
                Config::validate(raw, None)
            }
        }
    }

    /// Parses and validates TOML text; `path` is used in messages and to resolve nothing else.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| toml_error(path, text, &e))?;
        Config::validate(raw, Some(path))
    }

    fn validate(mut raw: RawConfig, path: Option<&Path>) -> Result<Config, ConfigError> {
        let file = path.map_or_else(
            || "built-in defaults".to_owned(),
            |p| p.display().to_string(),
        );
        let err = |key: &str, msg: String| ConfigError(format!("{file}: {key}: {msg}"));
        let dur = |key: &str, v: &str| parse_duration(v).map_err(|m| err(key, m));

        if raw.node.name.is_empty() {
            raw.node.name = default_node_name();
        }
        meshmon_proto::frame::validate_origin(&raw.node.name)
            .map_err(|e| err("node.name", format!("'{}': {e}", raw.node.name)))?;
        let listen: SocketAddr = raw.node.listen.parse().map_err(|_| {
            err(
                "node.listen",
                format!(
                    "'{}' is not an address (expected host:port)",
                    raw.node.listen
                ),
            )
        })?;
        for n in &raw.node.neighbours {
            check_host_port(n).map_err(|m| err("node.neighbours", m))?;
        }
        if raw.node.max_hops == 0 {
            return Err(err("node.max_hops", "must be at least 1".into()));
        }
        let keyring = match &raw.node.key_file {
            Some(kf) => {
                let text = std::fs::read_to_string(kf)
                    .map_err(|e| err("node.key_file", format!("'{}': {e}", kf.display())))?;
                Keyring::parse(&text)
                    .map_err(|e| err("node.key_file", format!("'{}': {e}", kf.display())))?
            }
            None => {
                if !listen.ip().is_loopback() {
                    return Err(err(
                        "node.listen",
                        format!(
                            "'{listen}' is not a loopback address and no node.key_file is set; \
                             create a key with 'meshmon keygen --out /etc/meshmon/mesh.key', \
                             copy it to every node and set node.key_file"
                        ),
                    ));
                }
                Keyring::new(vec![meshmon_proto::Key::NULL])
                    .map_err(|e| err("node.key_file", e.to_string()))?
            }
        };

        let c = &raw.collect;
        let interval = dur("collect.interval", &c.interval)?;
        if interval < Duration::from_millis(100) {
            return Err(err(
                "collect.interval",
                format!("'{}' is below 100ms", c.interval),
            ));
        }
        let collect = CollectConfig {
            interval,
            docker_dir: non_empty(&c.docker_dir).map(PathBuf::from),
            docker_interval: dur("collect.docker_interval", &c.docker_interval)?,
            smartctl: non_empty(&c.smartctl).map(str::to_owned),
            smart_interval: dur("collect.smart_interval", &c.smart_interval)?,
            textfile_dir: non_empty(&c.textfile_dir).map(PathBuf::from),
            systemd_units: c.systemd_units.clone(),
        };

        for (i, ch) in raw.checks.iter().enumerate() {
            let key = |k: &str| format!("check[{i}].{k}");
            if ch.name.is_empty() {
                return Err(err(&key("name"), "must not be empty".into()));
            }
            if !(ch.url.starts_with("http://") || ch.url.starts_with("https://")) {
                return Err(err(
                    &key("url"),
                    format!("'{}' is not an http:// or https:// URL", ch.url),
                ));
            }
            dur(&key("interval"), &ch.interval)?;
            dur(&key("timeout"), &ch.timeout)?;
        }

        let retention = dur("store.retention", &raw.store.retention)?;
        let retention_1m = dur("store.retention_1m", &raw.store.retention_1m)?;
        let retention_1h = dur("store.retention_1h", &raw.store.retention_1h)?;
        let flush_interval = dur("store.flush_interval", &raw.store.flush_interval)?;
        if flush_interval < Duration::from_secs(1) {
            return Err(err(
                "store.flush_interval",
                format!("'{}' is below the minimum of 1s", raw.store.flush_interval),
            ));
        }
        let store_path = raw.store.path.clone().unwrap_or_else(default_store_path);

        for (i, a) in raw.alerts.iter().enumerate() {
            let key = |k: &str| format!("alert[{i}].{k}");
            if a.name.is_empty() {
                return Err(err(&key("name"), "must not be empty".into()));
            }
            Selector::parse(&a.metric).map_err(|m| err(&key("metric"), m))?;
            if !matches!(a.op.as_str(), ">" | ">=" | "<" | "<=") {
                return Err(err(
                    &key("op"),
                    format!("'{}' is not one of > >= < <=", a.op),
                ));
            }
            if !matches!(a.severity.as_str(), "info" | "warning" | "critical") {
                return Err(err(
                    &key("severity"),
                    format!("'{}' is not one of info, warning, critical", a.severity),
                ));
            }
            if !a.threshold.is_finite() {
                return Err(err(&key("threshold"), "must be a finite number".into()));
            }
            dur(&key("for"), &a.hold)?;
            dur(&key("repeat"), &a.repeat)?;
        }
        let n = &raw.notify;
        for (key, url) in std::iter::once(("notify.slack_webhook", &n.slack_webhook))
            .chain(n.webhooks.iter().map(|u| ("notify.webhooks", u)))
        {
            if !(url.is_empty() || url.starts_with("http://") || url.starts_with("https://")) {
                return Err(err(
                    key,
                    format!("'{url}' is not an http:// or https:// URL"),
                ));
            }
        }

        let prometheus_listen = match non_empty(&raw.export.prometheus_listen) {
            None => None,
            Some(a) => Some(a.parse::<SocketAddr>().map_err(|_| {
                err(
                    "export.prometheus_listen",
                    format!("'{a}' is not an address (expected host:port)"),
                )
            })?),
        };
        let u = &raw.update;
        let update_url = non_empty(&u.url).map(str::to_owned);
        if let Some(url) = &update_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(err(
                "update.url",
                format!("'{url}' is not an http:// or https:// URL"),
            ));
        }
        if u.auto && update_url.is_none() {
            return Err(err(
                "update.auto",
                "is true but update.url is empty (set the releases/latest URL)".into(),
            ));
        }
        let update = UpdateConfig {
            url: update_url,
            auto: u.auto,
        };

        Ok(Config {
            source: path.map(Path::to_path_buf),
            node: NodeConfig {
                name: raw.node.name.clone(),
                listen,
                neighbours: raw.node.neighbours.clone(),
                dashboard: raw.node.dashboard,
                key_file: raw.node.key_file.clone(),
                keyring,
                max_hops: raw.node.max_hops,
                tags: raw.node.tags.clone(),
            },
            collect,
            store: StoreConfig {
                path: store_path,
                retention,
                retention_1m,
                retention_1h,
                flush_interval,
            },
            update,
            prometheus_listen,
            effective: raw,
        })
    }

    /// The effective config as TOML (defaults filled in; keys are never printed, only paths).
    pub fn effective_toml(&self) -> String {
        let mut eff = self.effective.clone();
        eff.store.path = Some(self.store.path.clone());
        toml::to_string_pretty(&eff).unwrap_or_else(|e| format!("# cannot render: {e}\n"))
    }
}

fn non_empty(s: &str) -> Option<&str> {
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

/// Turns a TOML error into `PATH: section.key: message` (or `PATH: line N: message`).
fn toml_error(path: &Path, text: &str, e: &toml::de::Error) -> ConfigError {
    let file = path.display();
    let msg = e.message().trim().replace('`', "'");
    let Some(span) = e.span() else {
        return ConfigError(format!("{file}: {msg}"));
    };
    let before = &text[..span.start.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let section = before
        .lines()
        .rev()
        .find_map(|l| {
            let l = l.trim();
            l.strip_prefix("[[")
                .and_then(|r| r.strip_suffix("]]"))
                .or_else(|| l.strip_prefix('[').and_then(|r| r.strip_suffix(']')))
                .map(str::trim)
        })
        .unwrap_or("");
    let key = text
        .get(span.start..span.end)
        .filter(|k| {
            k.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        })
        .filter(|k| !k.is_empty());
    match key {
        Some(k) if section.is_empty() => ConfigError(format!("{file}: {k}: {msg}")),
        Some(k) => ConfigError(format!("{file}: {section}.{k}: {msg}")),
        None => ConfigError(format!("{file}: line {line}: {msg}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("t.toml"))
    }

    #[test]
    fn defaults_are_a_loopback_node() {
        let c = parse("").expect("empty file is valid");
        assert_eq!(c.node.listen, "127.0.0.1:6130".parse().expect("addr"));
        assert!(c.node.keyring.is_null());
        assert_eq!(c.node.max_hops, 8);
        assert_eq!(c.collect.interval, Duration::from_secs(1));
        assert!(!c.node.dashboard);
        assert!(c.prometheus_listen.is_none());
    }

    #[test]
    fn prometheus_listen_is_an_address() {
        let c = parse("[export]\nprometheus_listen = \"127.0.0.1:9464\"\n").expect("valid");
        assert_eq!(
            c.prometheus_listen,
            Some("127.0.0.1:9464".parse().expect("addr"))
        );
        let e = parse("[export]\nprometheus_listen = \"localhost\"\n").expect_err("bad");
        assert_eq!(
            e.to_string(),
            "t.toml: export.prometheus_listen: 'localhost' is not an address (expected host:port)"
        );
    }

    #[test]
    fn errors_name_file_key_and_value() {
        let e = parse("[node]\nlisten = \"abc\"\n").expect_err("bad listen");
        assert_eq!(
            e.to_string(),
            "t.toml: node.listen: 'abc' is not an address (expected host:port)"
        );
        let e = parse("[node]\nlisen = \"x\"\n").expect_err("unknown key");
        assert!(
            e.to_string()
                .starts_with("t.toml: node.lisen: unknown field"),
            "{e}"
        );
        let e = parse("[collect]\ninterval = \"1 sec\"\n").expect_err("bad duration");
        assert!(
            e.to_string()
                .starts_with("t.toml: collect.interval: '1 sec'"),
            "{e}"
        );
        let e = parse("[node]\nneighbours = [\"nohost\"]\n").expect_err("bad neighbour");
        assert!(e.to_string().contains("node.neighbours: 'nohost'"), "{e}");
    }

    #[test]
    fn public_listen_needs_a_key() {
        let e = parse("[node]\nlisten = \"0.0.0.0:6130\"\n").expect_err("no key");
        assert!(e.to_string().contains("meshmon keygen"), "{e}");
    }

    #[test]
    fn alert_rules_are_checked() {
        let ok =
            "[[alert]]\nname = \"x\"\nmetric = \"cpu.usage_pct\"\nop = \">\"\nthreshold = 90.0\n";
        assert!(parse(ok).is_ok());
        let e = parse(&ok.replace("\">\"", "\"=>\"")).expect_err("bad op");
        assert!(e.to_string().contains("alert[0].op: '=>'"), "{e}");
    }
}
