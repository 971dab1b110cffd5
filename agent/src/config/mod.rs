//! The config file: raw serde structs that mirror the TOML (`deny_unknown_fields`, a doc and a
//! named default on every field) and [`Config`], the validated form with typed values that
//! the rest of the agent uses. Errors name the file, the key and the bad value:
//! `meshmon.toml: node.listen: 'abc' is not an address (expected host:port)`.
//!
//! Not here: reading keys' contents beyond validating them, or acting on the config.

use meshmon_proto::Keyring;
use meshmon_proto::units::parse_duration;
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

mod notify;
mod raw;
#[cfg(test)]
mod tests;

pub use notify::redact_url;
pub use raw::*;

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
}

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

/// `[store]`, validated.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    pub path: PathBuf,
    pub retention: Duration,
    pub retention_1m: Duration,
    pub retention_1h: Duration,
    pub flush_interval: Duration,
}

/// `[notify]`, validated.
#[derive(Debug, Clone, Default)]
pub struct NotifyConfig {
    /// From `slack_webhook` or the first line of `slack_webhook_file`.
    pub slack_webhook: Option<String>,
    /// `webhooks` followed by the lines of `webhooks_file`, duplicates dropped.
    pub webhooks: Vec<String>,
    /// A notification not delivered for this long is given up (logged, kept as `expired`).
    pub give_up_after: Duration,
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
    /// HTTP(S) checks run by this node.
    pub checks: Vec<CheckConfig>,
    pub store: StoreConfig,
    pub update: UpdateConfig,
    /// Alert rules (built-ins merged with `[[alert]]`), evaluated on dashboard nodes.
    pub alerts: Vec<crate::alert::Rule>,
    /// Where notifications go.
    pub notify: NotifyConfig,
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
            gpu: c.gpu,
            cgroup_root: PathBuf::from(c.cgroup_root.trim()),
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
                return Err(err(key, format!("'{text}' is below the minimum of 1s")));
            }
        }
        for u in &collect.systemd_units {
            if u.is_empty() || u.contains('/') || u.starts_with('.') {
                return Err(err(
                    "collect.systemd_units",
                    format!("'{u}' is not a unit name (expected e.g. 'nginx.service')"),
                ));
            }
        }
        if collect.cgroup_root.as_os_str().is_empty() {
            return Err(err("collect.cgroup_root", "must not be empty".into()));
        }

        let mut checks: Vec<CheckConfig> = Vec::with_capacity(raw.checks.len());
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
            if checks.iter().any(|c| c.name == ch.name) {
                return Err(err(
                    &key("name"),
                    format!("'{}' is used by another check", ch.name),
                ));
            }
            let interval = dur(&key("interval"), &ch.interval)?;
            if interval < MIN_CHECK_INTERVAL {
                return Err(err(
                    &key("interval"),
                    format!("'{}' is below 100ms", ch.interval),
                ));
            }
            let timeout = dur(&key("timeout"), &ch.timeout)?;
            if timeout.is_zero() {
                return Err(err(&key("timeout"), "must be more than 0s".into()));
            }
            if let Some(ca) = &ch.ca_file
                && let Err(e) = std::fs::metadata(ca)
            {
                return Err(err(&key("ca_file"), format!("'{}': {e}", ca.display())));
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

        let alerts =
            crate::alert::rules::compile(&raw.alerts, &|key, msg| format!("{file}: {key}: {msg}"))
                .map_err(ConfigError)?;
        let notify = notify::validate(&raw.notify, &err)?;

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
            checks,
            store: StoreConfig {
                path: store_path,
                retention,
                retention_1m,
                retention_1h,
                flush_interval,
            },
            update,
            alerts,
            notify,
            prometheus_listen,
            effective: raw,
        })
    }

    /// The effective config as TOML (defaults filled in; keys are never printed, only paths;
    /// webhook URLs, which are secrets, only as scheme and host: [`redact_url`]).
    pub fn effective_toml(&self) -> String {
        let mut eff = self.effective.clone();
        eff.store.path = Some(self.store.path.clone());
        eff.notify.slack_webhook = redact_url(&eff.notify.slack_webhook);
        eff.notify.webhooks = eff.notify.webhooks.iter().map(|u| redact_url(u)).collect();
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
