//! The alert model the Alerts view shows and acts on: one [`Alert`] per (rule, host) episode,
//! its state, severity and whether a user acknowledged or silenced it, or a maintenance
//! window held it; and the maintenance windows in force.
//!
//! Not here: evaluating rules or sending notifications (the dashboard's alert engine, which
//! feeds [`super::AppEvent::Alerts`]), or performing an acknowledgement (the caller does that
//! with the [`super::Action`] the App emits).

pub use crate::alert::maintenance::ActiveWindow;

/// Lifecycle of an alert, as in `meshmon query alerts`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum AlertState {
    Firing,
    Pending,
    Resolved,
}

impl AlertState {
    pub fn label(self) -> &'static str {
        match self {
            AlertState::Firing => "firing",
            AlertState::Pending => "pending",
            AlertState::Resolved => "resolved",
        }
    }
}

/// How bad an alert is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Critical,
    Warning,
    Info,
}

impl Severity {
    pub fn label(self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::Warning => "warning",
            Severity::Info => "info",
        }
    }
}

/// One alert episode.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    pub id: u64,
    /// Rule name from the config.
    pub rule: String,
    pub host: String,
    pub state: AlertState,
    pub severity: Severity,
    /// When it started (ms since the epoch).
    pub started_ms: i64,
    /// When it ended, for resolved alerts.
    pub ended_ms: Option<i64>,
    /// The value that triggered it.
    pub value: f64,
    pub acked: bool,
    /// Silenced (no notifications) until this time.
    pub silenced_until_ms: Option<i64>,
    /// Recorded while a maintenance window held its notifications.
    pub maintenance: bool,
}

/// All alerts known to the TUI, firing first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Alerts {
    list: Vec<Alert>,
    windows: Vec<ActiveWindow>,
}

impl Alerts {
    /// Replaces the list (the alert engine sends the whole current set).
    pub fn replace(&mut self, mut list: Vec<Alert>) {
        list.sort_by(|a, b| {
            (a.state, a.severity, std::cmp::Reverse(a.started_ms)).cmp(&(
                b.state,
                b.severity,
                std::cmp::Reverse(b.started_ms),
            ))
        });
        self.list = list;
    }

    /// Replaces the maintenance windows in force.
    pub fn set_windows(&mut self, windows: Vec<ActiveWindow>) {
        self.windows = windows;
    }

    /// The maintenance windows in force (recurring ones first).
    pub fn windows(&self) -> &[ActiveWindow] {
        &self.windows
    }

    /// Firing first, then pending, then resolved; worst severity and newest first within.
    pub fn list(&self) -> &[Alert] {
        &self.list
    }

    /// Firing alerts of `host`.
    pub fn firing_on(&self, host: &str) -> usize {
        self.list
            .iter()
            .filter(|a| a.state == AlertState::Firing && a.host == host)
            .count()
    }

    /// All firing alerts.
    pub fn firing(&self) -> usize {
        self.list
            .iter()
            .filter(|a| a.state == AlertState::Firing)
            .count()
    }

    /// The alert with this id, for acknowledging and silencing.
    pub fn get_mut(&mut self, id: u64) -> Option<&mut Alert> {
        self.list.iter_mut().find(|a| a.id == id)
    }
}
