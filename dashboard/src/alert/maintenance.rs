//! Maintenance windows: when matching alerts are recorded but not notified, and `host-down`
//! for matching hosts does not fire. Two kinds: recurring windows from the config
//! (`[[maintenance]]`: host and rule globs, weekdays, a time range and an IANA time zone) and
//! one-off windows made with `meshmon alerts maintenance` (stored and exchanged between
//! dashboard nodes as silences marked `maintenance`, PROTOCOL.md section 10).
//!
//! A recurring window is wall-clock time in its zone: `from = "02:00"`, `to = "04:00"` on
//! `days = ["sat"]` covers Saturday 02:00 to 04:00 local time whatever the UTC offset is that
//! day. A range with `to` at or before `from` runs past midnight into the next day (it belongs
//! to the day it starts on). Across a DST change the window keeps its local times, so it is an
//! hour shorter or longer that day; a window wholly inside the hour a spring change skips does
//! not happen that day. Time-zone data is built in (jiff's bundled tzdb): nothing is read from
//! `/usr/share/zoneinfo`.
//!
//! Not here: what a window does to an episode (`engine`), parsing the config (`config`).

use super::rules::glob;
use crate::alertdb::SilenceRow;
use crate::time::format_rfc3339;
use jiff::tz::TimeZone;

/// Day names as the config writes them, Monday first.
pub const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

const FULL_DAYS: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

/// A weekly schedule in one time zone.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    /// Days a window starts on, Monday first.
    days: [bool; 7],
    /// Minutes after local midnight.
    from: u16,
    to: u16,
    tz: TimeZone,
    tz_name: String,
}

/// Which key of a schedule is wrong, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleError {
    pub key: &'static str,
    pub message: String,
}

fn bad(key: &'static str, message: String) -> ScheduleError {
    ScheduleError { key, message }
}

/// `HH:MM` (24-hour clock) as minutes after midnight.
fn parse_time(s: &str) -> Option<u16> {
    let (h, m) = s.trim().split_once(':')?;
    if h.is_empty() || h.len() > 2 || m.len() != 2 {
        return None;
    }
    let h: u16 = h.parse().ok()?;
    let m: u16 = m.parse().ok()?;
    (h < 24 && m < 60).then_some(h * 60 + m)
}

fn show_time(min: u16) -> String {
    format!("{:02}:{:02}", min / 60, min % 60)
}

impl Schedule {
    /// A schedule from config values: day names (empty: every day), `HH:MM` times and an IANA
    /// zone name.
    pub fn parse(
        days: &[String],
        from: &str,
        to: &str,
        timezone: &str,
    ) -> Result<Schedule, ScheduleError> {
        let mut set = [days.is_empty(); 7];
        for d in days {
            let lower = d.trim().to_ascii_lowercase();
            let Some(i) = DAYS
                .iter()
                .zip(FULL_DAYS)
                .position(|(short, full)| lower == *short || lower == full)
            else {
                return Err(bad(
                    "days",
                    format!("'{d}' is not a day (expected one of: {})", DAYS.join(", ")),
                ));
            };
            set[i] = true;
        }
        let time = |key, v: &str| {
            parse_time(v).ok_or_else(|| bad(key, format!("'{v}' is not a time (expected HH:MM)")))
        };
        let from = time("from", from)?;
        let to = time("to", to)?;
        let tz = TimeZone::get(timezone).map_err(|_| {
            bad(
                "timezone",
                format!("'{timezone}' is not an IANA time zone (e.g. 'Europe/Berlin', 'UTC')"),
            )
        })?;
        Ok(Schedule {
            days: set,
            from,
            to,
            tz,
            tz_name: timezone.to_owned(),
        })
    }

    /// Whether the schedule covers the instant `now_ms` (ms since the epoch).
    pub fn covers(&self, now_ms: i64) -> bool {
        let Ok(ts) = jiff::Timestamp::from_millisecond(now_ms) else {
            return false;
        };
        let local = ts.to_zoned_datetime(self.tz.clone());
        let day = usize::try_from(local.weekday().to_monday_zero_offset()).unwrap_or(0) % 7;
        let min = u16::try_from(local.hour()).unwrap_or(0) * 60
            + u16::try_from(local.minute()).unwrap_or(0);
        if self.from < self.to {
            self.days[day] && (self.from..self.to).contains(&min)
        } else {
            // Past midnight: the evening part on the day it starts, the morning part after.
            (self.days[day] && min >= self.from) || (self.days[(day + 6) % 7] && min < self.to)
        }
    }

    /// `sat,sun 02:00-04:00 Europe/Berlin`.
    pub fn describe(&self) -> String {
        let days: Vec<&str> = (0..7).filter(|&i| self.days[i]).map(|i| DAYS[i]).collect();
        let days = if days.len() == 7 {
            "daily".to_owned()
        } else {
            days.join(",")
        };
        format!(
            "{days} {}-{} {}",
            show_time(self.from),
            show_time(self.to),
            self.tz_name
        )
    }
}

/// A recurring window from the config.
#[derive(Debug, Clone, PartialEq)]
pub struct Recurring {
    /// Globs on host names.
    pub hosts: Vec<String>,
    /// Globs on rule names.
    pub rules: Vec<String>,
    pub schedule: Schedule,
}

impl Recurring {
    fn matches(&self, rule: &str, host: &str) -> bool {
        self.hosts.iter().any(|g| glob(g, host)) && self.rules.iter().any(|g| glob(g, rule))
    }
}

/// A window in force, as the TUI and `meshmon alerts maintenance --list` show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveWindow {
    /// `config` for a recurring window, else the one-off's local row id.
    pub source: String,
    pub hosts: String,
    pub rules: String,
    /// The schedule, or `until <time>` for a one-off window.
    pub when: String,
    pub comment: String,
}

/// Every window a dashboard node knows: the config's and the one-off windows in force.
#[derive(Debug, Clone, Default)]
pub struct Windows {
    recurring: Vec<Recurring>,
    oneoff: Vec<SilenceRow>,
}

impl Windows {
    pub fn new(recurring: Vec<Recurring>) -> Windows {
        Windows {
            recurring,
            oneoff: Vec::new(),
        }
    }

    /// Takes the one-off windows out of the silences read from the store.
    pub fn set_oneoff<'a>(&mut self, rows: impl IntoIterator<Item = &'a SilenceRow>) {
        self.oneoff = rows
            .into_iter()
            .filter(|s| s.maintenance)
            .cloned()
            .collect();
    }

    /// Whether an alert of `rule` on `host` is in maintenance at `now_ms`.
    pub fn covers(&self, rule: &str, host: &str, now_ms: i64) -> bool {
        self.oneoff
            .iter()
            .any(|s| oneoff_covers(s, rule, host, now_ms))
            || self
                .recurring
                .iter()
                .any(|w| w.matches(rule, host) && w.schedule.covers(now_ms))
    }

    /// The windows in force at `now_ms`.
    pub fn active(&self, now_ms: i64) -> Vec<ActiveWindow> {
        active(&self.recurring, &self.oneoff, now_ms)
    }
}

/// Whether the one-off window `s` holds for `rule` on `host` at `now_ms`.
pub fn oneoff_covers(s: &SilenceRow, rule: &str, host: &str, now_ms: i64) -> bool {
    in_force(s, now_ms) && glob(&s.rule, rule) && glob(&s.host, host)
}

/// The windows of `recurring` and `oneoff` (silence rows; only those marked maintenance count)
/// in force at `now_ms`, recurring first.
pub fn active(recurring: &[Recurring], oneoff: &[SilenceRow], now_ms: i64) -> Vec<ActiveWindow> {
    let mut out: Vec<ActiveWindow> = recurring
        .iter()
        .filter(|w| w.schedule.covers(now_ms))
        .map(|w| ActiveWindow {
            source: "config".into(),
            hosts: w.hosts.join(","),
            rules: w.rules.join(","),
            when: w.schedule.describe(),
            comment: String::new(),
        })
        .collect();
    out.extend(
        oneoff
            .iter()
            .filter(|s| in_force(s, now_ms))
            .map(|s| ActiveWindow {
                source: s.id.to_string(),
                hosts: s.host.clone(),
                rules: s.rule.clone(),
                when: format!("until {}", format_rfc3339(s.until_ms)),
                comment: s.by.clone(),
            }),
    );
    out
}

/// Whether `s` is a one-off window in force at `now_ms` (it starts when it is made, so a
/// node whose clock is behind the maker's does not wait for it).
fn in_force(s: &SilenceRow, now_ms: i64) -> bool {
    s.maintenance && !s.removed && now_ms < s.until_ms
}

#[cfg(test)]
#[path = "maintenance_tests.rs"]
mod tests;
