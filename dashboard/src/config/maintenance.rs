//! `[[maintenance]]`: recurring maintenance windows as written (host and rule globs, weekdays,
//! a time range and an IANA time zone), validated into [`Recurring`] windows.
//!
//! Not here: what a window does (`alert::engine`) or when it holds (`alert::maintenance`).

use super::{ConfigError, MakeErr};
use crate::alert::maintenance::{Recurring, Schedule};
use serde::{Deserialize, Serialize};

/// `[[maintenance]]`: while it holds, matching alerts are recorded but not notified, and
/// host-down for matching hosts does not fire.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMaintenance {
    /// Globs on host names (`*` any run, `?` one character).
    pub hosts: Vec<String>,
    /// Globs on rule names; default: every rule.
    #[serde(default = "default_rules")]
    pub rules: Vec<String>,
    /// Days the window starts on (`mon` .. `sun`); default: every day.
    #[serde(default)]
    pub days: Vec<String>,
    /// Local start time, `HH:MM`.
    #[serde(alias = "start")]
    pub from: String,
    /// Local end time, `HH:MM`; at or before `from`: the next day.
    #[serde(alias = "end")]
    pub to: String,
    /// IANA time zone of `from` and `to`, e.g. `Europe/Berlin`.
    #[serde(default = "default_timezone")]
    pub timezone: String,
}

fn default_rules() -> Vec<String> {
    vec!["*".into()]
}

fn default_timezone() -> String {
    "UTC".into()
}

/// Validates every `[[maintenance]]` (the first error is reported).
pub(super) fn validate(
    raw: &[RawMaintenance],
    err: MakeErr<'_>,
) -> Result<Vec<Recurring>, ConfigError> {
    raw.iter()
        .enumerate()
        .map(|(i, m)| {
            let at = |key: &str, msg: String| err(&format!("maintenance[{i}].{key}"), msg);
            for (key, globs) in [("hosts", &m.hosts), ("rules", &m.rules)] {
                if globs.is_empty() {
                    return Err(at(
                        key,
                        "is empty (give at least one glob, '*' for all)".into(),
                    ));
                }
                if let Some(g) = globs.iter().find(|g| g.trim().is_empty()) {
                    return Err(at(key, format!("'{g}' is not a glob (it is empty)")));
                }
            }
            let schedule = Schedule::parse(&m.days, &m.from, &m.to, &m.timezone)
                .map_err(|e| at(e.key, e.message))?;
            Ok(Recurring {
                hosts: m.hosts.clone(),
                rules: m.rules.clone(),
                schedule,
            })
        })
        .collect()
}
