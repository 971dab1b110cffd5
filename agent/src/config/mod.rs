//! The whole config file, composed of the sections each component owns: the agent's
//! (`[node]`, `[collect]`, `[[check]]`, `[update]`, `[export]`, in
//! `meshmon_agent_core::config`) and, in a build with the dashboard, the dashboard's
//! (`[store]`, `[[alert]]`, `[notify]`, in `meshmon_dashboard::config`). Errors name the file,
//! the key and the bad value, one line each:
//! `meshmon.toml: node.listen: 'abc' is not an address (expected host:port)`.
//!
//! Not here: the rules of any one section (their owners), or acting on the config.

pub use meshmon_agent_core::config::*;
#[cfg(feature = "dashboard")]
pub use meshmon_dashboard::config::{
    DashboardConfig, NotifyConfig, RawAlert, RawMaintenance, RawNotify, RawStore, RawWeb,
    WebConfig, redact_url,
};

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Where the config is looked for when neither `--config` nor `$MESHMON_CONFIG` is given.
pub const SYSTEM_CONFIG: &str = "/etc/meshmon/meshmon.toml";

#[cfg(test)]
mod tests;

/// The tables a config file may have, in the order `check-config` prints them.
const TABLES: [&str; 10] = [
    "node",
    "collect",
    "check",
    "store",
    "alert",
    "notify",
    "maintenance",
    "web",
    "update",
    "export",
];

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
    #[cfg(feature = "dashboard")]
    #[serde(default)]
    pub store: RawStore,
    /// Alert rules evaluated on dashboard nodes.
    #[cfg(feature = "dashboard")]
    #[serde(default, rename = "alert", skip_serializing_if = "Vec::is_empty")]
    pub alerts: Vec<RawAlert>,
    /// Where notifications go.
    #[cfg(feature = "dashboard")]
    #[serde(default)]
    pub notify: RawNotify,
    /// Recurring maintenance windows (dashboard nodes hold matching notifications).
    #[cfg(feature = "dashboard")]
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub maintenance: Vec<RawMaintenance>,
    /// The web dashboard of a dashboard node.
    #[cfg(feature = "dashboard")]
    #[serde(default)]
    pub web: RawWeb,
    /// The dashboard's sections, kept as written and unused in a build without the dashboard
    /// (one config file serves every node of a fleet).
    #[cfg(not(feature = "dashboard"))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<toml::Value>,
    #[cfg(not(feature = "dashboard"))]
    #[serde(default, rename = "alert", skip_serializing_if = "Option::is_none")]
    pub alerts: Option<toml::Value>,
    #[cfg(not(feature = "dashboard"))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify: Option<toml::Value>,
    #[cfg(not(feature = "dashboard"))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maintenance: Option<toml::Value>,
    #[cfg(not(feature = "dashboard"))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub web: Option<toml::Value>,
    /// Self-update: where releases are read from and whether the agent checks daily.
    #[serde(default)]
    pub update: RawUpdate,
    /// Exports to other monitoring systems (Prometheus).
    #[serde(default)]
    pub export: RawExport,
}

/// The validated config.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it came from; `None` for built-in defaults.
    pub source: Option<PathBuf>,
    /// The agent's sections.
    pub agent: AgentConfig,
    /// The dashboard's sections (validated on every node, used where `node.dashboard`).
    #[cfg(feature = "dashboard")]
    pub dashboard: DashboardConfig,
    /// The file with defaults filled in, for `check-config`.
    pub effective: RawConfig,
}

/// What a build without the dashboard says when asked for it.
pub const NO_DASHBOARD: &str = "this meshmon was built without the dashboard \
     (cargo build --no-default-features); the default build (cargo build --release) has it";

impl Config {
    /// Finds and loads the config: `explicit`, else `$MESHMON_CONFIG`, else
    /// [`SYSTEM_CONFIG`] if it exists, else built-in defaults (a loopback dashboard node in a
    /// build that has the dashboard, else a loopback agent).
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
                raw.node.dashboard = cfg!(feature = "dashboard");
                Config::validate(raw, None)
            }
        }
    }

    /// Parses and validates TOML text; `path` is used in messages and to resolve nothing else.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let raw: RawConfig = match toml::from_str(text) {
            Ok(raw) => raw,
            Err(e) => return Err(parse_errors(text, path, &e)),
        };
        Config::validate(raw, Some(path))
    }

    fn validate(mut raw: RawConfig, path: Option<&Path>) -> Result<Config, ConfigError> {
        let e = Errs::new(path);
        if raw.node.name.is_empty() {
            raw.node.name = default_node_name();
        }
        let mut errors = Vec::new();
        let node = NodeConfig::validate(&raw.node, &e).map_err(|x| errors.push(x.0));
        let collect = CollectConfig::validate(&raw.collect, &e).map_err(|x| errors.push(x.0));
        let checks = CheckConfig::validate_all(&raw.checks, &e).map_err(|x| errors.push(x.0));
        let update = UpdateConfig::validate(&raw.update, &e).map_err(|x| errors.push(x.0));
        let export = validate_export(&raw.export, &e).map_err(|x| errors.push(x.0));
        if let Ok(ExportConfig {
            remote_write: Some(_),
            ..
        }) = &export
        {
            if !cfg!(feature = "dashboard") {
                errors.push(
                    e.at(
                        "export.remote_write_url",
                        format!("is set but {NO_DASHBOARD}"),
                    )
                    .0,
                );
            } else if !raw.node.dashboard {
                errors.push(
                    e.at(
                        "export.remote_write_url",
                        "is set but node.dashboard is false (remote write runs on dashboard nodes, from their store)",
                    )
                    .0,
                );
            }
        }
        #[cfg(feature = "dashboard")]
        let dashboard = {
            let err = |k: &str, m: String| meshmon_dashboard::config::ConfigError(e.at(k, m).0);
            DashboardConfig::validate(
                &raw.store,
                &raw.alerts,
                &raw.notify,
                &raw.maintenance,
                &raw.web,
                &err,
            )
            .map_err(|x| errors.push(x.0))
        };
        #[cfg(feature = "dashboard")]
        if !raw.web.listen.trim().is_empty() && !raw.node.dashboard {
            errors.push(
                e.at(
                    "web.listen",
                    "is set but node.dashboard is false (the web dashboard runs on dashboard nodes, from their store)",
                )
                .0,
            );
        }
        #[cfg(not(feature = "dashboard"))]
        if raw.node.dashboard {
            errors.push(
                e.at("node.dashboard", format!("is true but {NO_DASHBOARD}"))
                    .0,
            );
        }
        let (Ok(node), Ok(collect), Ok(checks), Ok(update), Ok(export)) =
            (node, collect, checks, update, export)
        else {
            return Err(ConfigError(errors.join("\n")));
        };
        #[cfg(feature = "dashboard")]
        let Ok(dashboard) = dashboard else {
            return Err(ConfigError(errors.join("\n")));
        };
        if !errors.is_empty() {
            return Err(ConfigError(errors.join("\n")));
        }
        Ok(Config {
            source: path.map(Path::to_path_buf),
            agent: AgentConfig {
                node,
                collect,
                checks,
                update,
                prometheus_listen: export.prometheus_listen,
                remote_write: export.remote_write,
            },
            #[cfg(feature = "dashboard")]
            dashboard,
            effective: raw,
        })
    }

    /// The effective config as TOML (defaults filled in; keys are never printed, only paths;
    /// webhook URLs, which are secrets, only as scheme and host: `redact_url`).
    pub fn effective_toml(&self) -> String {
        #[allow(unused_mut)]
        let mut eff = self.effective.clone();
        #[cfg(feature = "dashboard")]
        {
            eff.store.path = Some(self.dashboard.store.path.clone());
            eff.notify.slack_webhook = redact_url(&eff.notify.slack_webhook);
            eff.notify.webhooks = eff.notify.webhooks.iter().map(|u| redact_url(u)).collect();
            for t in &mut eff.notify.target {
                t.url = redact_url(&t.url);
            }
            eff.export.remote_write_url = redact_url(&eff.export.remote_write_url);
        }
        toml::to_string_pretty(&eff).unwrap_or_else(|e| format!("# cannot render: {e}\n"))
    }
}

/// Every error of a file that does not deserialize: an unknown top-level table is named as
/// such (not as a key of the table before it), and each known table is deserialized on its
/// own so that an error in one does not hide an error in another.
fn parse_errors(text: &str, path: &Path, first: &toml::de::Error) -> ConfigError {
    let Ok(doc) = text.parse::<toml::Table>() else {
        // Not even TOML: the parser's own error, with its line.
        return toml_error(path, text, first);
    };
    let file = path.display();
    let mut lines = Vec::new();
    for key in doc.keys() {
        if !TABLES.contains(&key.as_str()) {
            lines.push(format!(
                "{file}: '{key}': unknown table (expected one of: {})",
                TABLES.join(", ")
            ));
        }
    }
    // The tables that deserialize on their own, validated together below.
    let mut good = toml::Table::new();
    for table in TABLES {
        let Some(value) = doc.get(table) else {
            continue;
        };
        let mut one = toml::Table::new();
        one.insert(table.to_owned(), value.clone());
        // Re-rendered on its own, the table keeps its keys; its errors name them.
        let Ok(alone) = toml::to_string(&one) else {
            continue;
        };
        if let Err(e) = toml::from_str::<RawConfig>(&alone) {
            // Line numbers of the re-rendered table mean nothing in the file: name the table.
            let line = toml_error(path, &alone, &e).0;
            let msg = e.message().trim().replace('`', "'");
            lines.push(if line.starts_with(&format!("{file}: line ")) {
                format!("{file}: {table}: {msg}")
            } else {
                line
            });
        } else {
            good.insert(table.to_owned(), value.clone());
        }
    }
    // Their values' errors too (a bad duration, a bad address), so one run shows them all.
    if let Ok(raw) = good.try_into::<RawConfig>()
        && let Err(e) = Config::validate(raw, Some(path))
    {
        lines.extend(e.0.lines().map(str::to_owned));
    }
    if lines.is_empty() {
        return toml_error(path, text, first);
    }
    ConfigError(lines.join("\n"))
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
