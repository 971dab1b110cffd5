//! The alert engine: a state machine fed with a dashboard node's live frames and a 1 s tick,
//! returning the alert changes to persist and the events to notify. No I/O, no clock of its
//! own: tests drive it with made-up frames and times.
//!
//! Lifecycle of an episode (one rule, one host, one series): inactive -> pending (the
//! condition holds, `for` not yet elapsed) -> firing -> resolved. Threshold and increase rules
//! are timed by the frames' own timestamps (the origin's clock), so every dashboard node that
//! receives the same frames reaches the same transitions at the same frame and names episodes
//! identically ([`ident`]): that is what lets several dashboard nodes notify each event once
//! (PROTOCOL.md section 10). Host-down is timed by this node's clock, since it is about frames
//! that do not arrive. Replayed (backfilled) frames are never fed here.
//!
//! Maintenance windows ([`Windows`]) act here, by this node's clock: an episode that fires
//! in one is recorded (marked `maintenance`) without a firing event, and its reminders are
//! counted without events; when the window ends while it still fires, it fires then, once,
//! as a normal firing. Host-down of a host in a window stays pending. An episode whose firing
//! was held resolves without a resolved event.
//!
//! Not here: persisting (the runner writes [`Change`]s), silences and delivery.

use super::maintenance::Windows;
use super::rules::{Condition, Rule};
use crate::alertdb::AlertRecord;
use meshmon_proto::SeriesKey;
use meshmon_proto::payload::down_after_ms;
use sha2::{Digest as _, Sha256};
use std::collections::HashMap;

/// What happened to an episode that users are told about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    Firing,
    /// The n-th reminder while still firing (`repeat`).
    Reminder(i64),
    Resolved,
}

impl EventKind {
    /// `firing`, `reminder-N`, `resolved`: the event part of a notification id.
    pub fn tag(self) -> String {
        match self {
            EventKind::Firing => "firing".into(),
            EventKind::Reminder(n) => format!("reminder-{n}"),
            EventKind::Resolved => "resolved".into(),
        }
    }
}

/// Something the runner must persist, with the event to notify if any.
#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::large_enum_variant)] // short-lived, a handful per frame at most
pub enum Change {
    /// Insert or update the episode; notify `event` if given.
    Upsert(AlertRecord, Option<EventKind>),
    /// A pending episode that never fired is forgotten.
    DeletePending(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Pending,
    Firing,
}

#[derive(Debug, Clone)]
struct Episode {
    ident: String,
    state: State,
    started_ms: i64,
    fired_ms: Option<i64>,
    value: Option<f64>,
    reminders: i64,
    acked: bool,
    /// Increase and changed rules: the last time the value rose (changed).
    last_increase_ms: i64,
    /// The last frame that carried the series (frame time).
    seen_ms: i64,
    /// A maintenance window held its firing (or, for host-down, keeps it pending).
    maintenance: bool,
}

impl Episode {
    /// A pending episode that started at `started_ms`.
    fn new(ident: String, started_ms: i64, value: Option<f64>) -> Episode {
        Episode {
            ident,
            state: State::Pending,
            started_ms,
            fired_ms: None,
            value,
            reminders: 0,
            acked: false,
            last_increase_ms: started_ms,
            seen_ms: started_ms,
            maintenance: false,
        }
    }
}

#[derive(Debug, Clone, Default)]
struct HostState {
    /// This node's clock when the host's newest live frame arrived.
    last_seen_ms: i64,
    /// The newest frame's own timestamp (the origin's clock).
    last_ts_ms: i64,
    interval_ms: u64,
    tags: Vec<String>,
    dashboard: bool,
    /// Per rule: whether it applies to this host (hosts glob and tags).
    applies: Vec<bool>,
    /// When this host's alerts were last checked for series it no longer reports.
    gone_checked_ms: i64,
}

/// An alert whose series has not been in any complete frame of its host for this long resolves:
/// the disk was unmounted, the check or unit removed from the config, the drive pulled.
pub const SERIES_GONE_MS: i64 = 60_000;
/// How often a host's alerts are checked for that.
const GONE_CHECK_EVERY_MS: i64 = 10_000;

/// Key of an episode: rule index, host, series (`""` for host-down).
type Key = (usize, String, String);

/// The engine of one dashboard node.
pub struct Engine {
    rules: Vec<Rule>,
    /// Rules by the metric name they watch.
    by_metric: HashMap<String, Vec<usize>>,
    host_down: Option<usize>,
    episodes: HashMap<Key, Episode>,
    /// Increase and changed rules: the previous reading per series.
    previous: HashMap<Key, f64>,
    hosts: HashMap<String, HostState>,
    windows: Windows,
    /// This node's clock at the latest frame or tick (maintenance windows are wall-clock).
    now_ms: i64,
}

/// The mesh-wide identity of an episode: the same on every dashboard node that saw the same
/// frames.
pub fn ident(rule: &str, host: &str, series: &str, started_ms: i64) -> String {
    let mut h = Sha256::new();
    for part in [rule, host, series] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    h.update(started_ms.to_be_bytes());
    h.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Frames are stamped when their values are collected, on a fixed grid plus the collector's
/// wake-up delay (a few ms). Without slack, `for = "2s"` at a 1 s interval would fire at the
/// third reading only when the third woke later than the first, and a whole interval later
/// otherwise.
const CLOCK_SLACK_MS: i64 = 100;

/// Whether `elapsed` (frame time) counts as having held for `hold`.
fn held(elapsed: i64, hold: i64) -> bool {
    elapsed.saturating_add(CLOCK_SLACK_MS) >= hold
}

fn ms(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Engine {
    /// An engine for `rules` with no state.
    pub fn new(rules: Vec<Rule>) -> Engine {
        let mut by_metric: HashMap<String, Vec<usize>> = HashMap::new();
        let mut host_down = None;
        for (i, r) in rules.iter().enumerate() {
            match r.metric_name() {
                Some(m) => by_metric.entry(m.to_owned()).or_default().push(i),
                None => host_down = Some(i),
            }
        }
        Engine {
            rules,
            by_metric,
            host_down,
            episodes: HashMap::new(),
            previous: HashMap::new(),
            hosts: HashMap::new(),
            windows: Windows::default(),
            now_ms: 0,
        }
    }

    /// The maintenance windows (the config's, and the one-off ones the machine reads from
    /// the store).
    pub fn windows_mut(&mut self) -> &mut Windows {
        &mut self.windows
    }

    fn in_window(&self, ri: usize, host: &str) -> bool {
        self.windows.covers(&self.rules[ri].name, host, self.now_ms)
    }

    /// The rules.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Takes over the persisted active episodes. Those of rules that no longer exist resolve
    /// now (returned); the others are re-evaluated with the current rules as frames arrive.
    pub fn restore(&mut self, active: Vec<AlertRecord>, now_ms: i64) -> Vec<Change> {
        let mut out = Vec::new();
        for rec in active {
            let Some(ri) = self.rules.iter().position(|r| r.name == rec.rule) else {
                let mut r = rec;
                let fired = r.state == "firing";
                r.state = "resolved".into();
                r.ended_ms = Some(now_ms);
                // A firing a maintenance window held was never sent: nor is its end.
                let event = (!r.maintenance).then_some(EventKind::Resolved);
                out.push(if fired {
                    Change::Upsert(r, event)
                } else {
                    Change::DeletePending(r.ident)
                });
                continue;
            };
            let state = if rec.state == "firing" {
                State::Firing
            } else {
                State::Pending
            };
            let ep = Episode {
                ident: rec.ident,
                state,
                started_ms: rec.started_ms,
                fired_ms: rec.fired_ms,
                value: rec.value,
                reminders: rec.reminders,
                acked: rec.acked,
                last_increase_ms: rec.fired_ms.unwrap_or(rec.started_ms),
                seen_ms: now_ms,
                maintenance: rec.maintenance,
            };
            self.episodes.insert((ri, rec.host, rec.series), ep);
        }
        out
    }

    /// Hosts known from the store before any frame arrived: they count as seen at `now_ms`
    /// (so a host that never comes back goes down one hold time after this node starts),
    /// with their last frame at `last_ts_ms`.
    pub fn know_host(&mut self, host: &str, last_ts_ms: i64, now_ms: i64) {
        let n = self.rules.len();
        let rules = &self.rules;
        self.hosts
            .entry(host.to_owned())
            .or_insert_with(|| HostState {
                last_seen_ms: now_ms,
                last_ts_ms,
                interval_ms: 1000,
                applies: (0..n).map(|i| rules[i].applies_to(host, &[])).collect(),
                ..HostState::default()
            });
    }

    /// A user acknowledged episode `ident`: no more reminders.
    pub fn ack(&mut self, ident: &str) -> bool {
        match self.episodes.values_mut().find(|e| e.ident == ident) {
            Some(e) if !e.acked => {
                e.acked = true;
                true
            }
            _ => false,
        }
    }

    /// Dashboard nodes heard within their down time, with this node's name included by the
    /// caller.
    pub fn live_dashboards(&self, now_ms: i64) -> Vec<String> {
        self.hosts
            .iter()
            .filter(|(_, h)| {
                h.dashboard
                    && now_ms.saturating_sub(h.last_seen_ms)
                        < i64::try_from(down_after_ms(h.interval_ms)).unwrap_or(i64::MAX)
            })
            .map(|(n, _)| n.clone())
            .collect()
    }

    /// The tags `host` last reported (none if unknown).
    pub fn host_tags(&self, host: &str) -> &[String] {
        self.hosts.get(host).map_or(&[], |h| h.tags.as_slice())
    }

    /// Host info arrived: tags, interval and role.
    pub fn host_info(&mut self, host: &str, tags: &[String], interval_ms: u64, dashboard: bool) {
        let applies = self
            .rules
            .iter()
            .map(|r| r.applies_to(host, tags))
            .collect();
        let h = self.hosts.entry(host.to_owned()).or_default();
        h.tags = tags.to_vec();
        h.interval_ms = interval_ms;
        h.dashboard = dashboard;
        h.applies = applies;
    }

    /// A live frame of `host` with timestamp `ts_ms` arrived at `now_ms`, carrying `values`
    /// (empty for frames without samples); `complete` when `values` is every series the host
    /// reports now (a sample frame decoded without a gap), so a series missing from it is gone.
    pub fn frame(
        &mut self,
        host: &str,
        ts_ms: i64,
        now_ms: i64,
        values: &[(SeriesKey, f64)],
        complete: bool,
        out: &mut Vec<Change>,
    ) {
        self.now_ms = now_ms;
        if !self.hosts.contains_key(host) {
            self.host_info(host, &[], 1000, false);
        }
        if let Some(h) = self.hosts.get_mut(host) {
            h.last_seen_ms = now_ms;
            h.last_ts_ms = h.last_ts_ms.max(ts_ms);
        }
        if let Some(ri) = self.host_down {
            let key = (ri, host.to_owned(), String::new());
            if let Some(ep) = self.episodes.remove(&key) {
                self.end(&key, ep, ts_ms, None, out);
            }
        }
        for (series, value) in values {
            let Some(rules) = self.by_metric.get(&series.name) else {
                continue;
            };
            // Few rules watch one metric: copying their indexes is cheaper than the borrow
            // gymnastics of evaluating in place.
            let rules: Vec<usize> = rules.to_vec();
            for ri in rules {
                let applies = self
                    .hosts
                    .get(host)
                    .and_then(|h| h.applies.get(ri).copied())
                    .unwrap_or(false);
                if !applies {
                    continue;
                }
                let matches = match &self.rules[ri].condition {
                    Condition::Threshold { metric, .. }
                    | Condition::Increase { metric }
                    | Condition::Changed { metric, .. } => metric.matches(series),
                    Condition::HostDown => false,
                };
                if matches && value.is_finite() {
                    self.evaluate(ri, host, series, *value, ts_ms, out);
                }
            }
        }
        if complete {
            self.resolve_gone(host, ts_ms, out);
        }
    }

    /// Resolves the host's alerts on series it has stopped reporting.
    fn resolve_gone(&mut self, host: &str, ts_ms: i64, out: &mut Vec<Change>) {
        let Some(h) = self.hosts.get_mut(host) else {
            return;
        };
        if ts_ms.saturating_sub(h.gone_checked_ms) < GONE_CHECK_EVERY_MS {
            return;
        }
        h.gone_checked_ms = ts_ms;
        let gone: Vec<Key> = self
            .episodes
            .iter()
            .filter(|((_, h, series), ep)| {
                h == host
                    && !series.is_empty()
                    && ts_ms.saturating_sub(ep.seen_ms) >= SERIES_GONE_MS
            })
            .map(|(k, _)| k.clone())
            .collect();
        for key in gone {
            if let Some(ep) = self.episodes.remove(&key) {
                tracing::info!(rule = %self.rules[key.0].name, host, series = %key.2,
                    "alert resolved: the series is no longer reported");
                self.end(&key, ep, ts_ms, None, out);
            }
        }
    }

    fn evaluate(
        &mut self,
        ri: usize,
        host: &str,
        series: &SeriesKey,
        value: f64,
        ts: i64,
        out: &mut Vec<Change>,
    ) {
        let key = (ri, host.to_owned(), series.to_string());
        if let Some(ep) = self.episodes.get_mut(&key) {
            ep.seen_ms = ts;
        }
        let rule = &self.rules[ri];
        let hold = ms(rule.hold);
        match rule.condition.clone() {
            Condition::Threshold {
                op,
                threshold,
                clear,
                ..
            } => {
                let holds = op.holds(value, threshold);
                match self.episodes.get_mut(&key) {
                    None if holds => {
                        let ep = Episode::new(ident(&rule.name, host, &key.2, ts), ts, Some(value));
                        if hold == 0 {
                            self.fire(key, ep, ts, Some(value), out);
                        } else {
                            out.push(Change::Upsert(self.record(&key, &ep, None), None));
                            self.episodes.insert(key, ep);
                        }
                    }
                    None => {}
                    Some(ep) if ep.state == State::Pending => {
                        if !holds {
                            let ident = ep.ident.clone();
                            self.episodes.remove(&key);
                            out.push(Change::DeletePending(ident));
                        } else if held(ts.saturating_sub(ep.started_ms), hold)
                            && let Some(ep) = self.episodes.remove(&key)
                        {
                            self.fire(key, ep, ts, Some(value), out);
                        }
                    }
                    Some(ep) => {
                        let resolved = match clear {
                            Some(c) => op.cleared(value, c),
                            None => !holds,
                        };
                        if resolved {
                            if let Some(ep) = self.episodes.remove(&key) {
                                self.end(&key, ep, ts, Some(value), out);
                            }
                        } else {
                            ep.value = Some(value);
                            self.remind(&key, ts, out);
                        }
                    }
                }
            }
            cond @ (Condition::Increase { .. } | Condition::Changed { .. }) => {
                let prev = self.previous.insert(key.clone(), value);
                let rose = prev.is_some_and(|p| match cond {
                    Condition::Changed { min, .. } => (value - p).abs() > min,
                    _ => value > p,
                });
                match self.episodes.get_mut(&key) {
                    None if rose => {
                        let ep = Episode::new(ident(&rule.name, host, &key.2, ts), ts, Some(value));
                        self.fire(key, ep, ts, Some(value), out);
                    }
                    None => {}
                    Some(ep) => {
                        if rose {
                            ep.last_increase_ms = ts;
                            ep.value = Some(value);
                        }
                        if held(ts.saturating_sub(ep.last_increase_ms), hold) {
                            if let Some(ep) = self.episodes.remove(&key) {
                                self.end(&key, ep, ts, Some(value), out);
                            }
                        } else {
                            self.remind(&key, ts, out);
                        }
                    }
                }
            }
            Condition::HostDown => {}
        }
    }

    fn fire(
        &mut self,
        key: Key,
        mut ep: Episode,
        at: i64,
        value: Option<f64>,
        out: &mut Vec<Change>,
    ) {
        ep.state = State::Firing;
        ep.fired_ms = Some(at);
        ep.value = value.or(ep.value);
        ep.maintenance = self.in_window(key.0, &key.1);
        let event = (!ep.maintenance).then_some(EventKind::Firing);
        out.push(Change::Upsert(self.record(&key, &ep, None), event));
        self.episodes.insert(key, ep);
    }

    fn end(&self, key: &Key, mut ep: Episode, at: i64, value: Option<f64>, out: &mut Vec<Change>) {
        match ep.state {
            State::Pending => out.push(Change::DeletePending(ep.ident)),
            State::Firing => {
                ep.value = value.or(ep.value);
                let mut rec = self.record(key, &ep, Some(at));
                rec.state = "resolved".into();
                // Its firing was never sent: nor is its end.
                let event = (!ep.maintenance).then_some(EventKind::Resolved);
                out.push(Change::Upsert(rec, event));
            }
        }
    }

    fn remind(&mut self, key: &Key, now: i64, out: &mut Vec<Change>) {
        let repeat = ms(self.rules[key.0].repeat);
        let Some(ep) = self.episodes.get(key) else {
            return;
        };
        let Some(fired) = ep.fired_ms else {
            return;
        };
        if repeat == 0 || ep.acked {
            return;
        }
        let n = now.saturating_sub(fired) / repeat;
        if n > ep.reminders {
            // In a window the reminder is counted, not sent: none are stacked up for later.
            let held = ep.maintenance || self.in_window(key.0, &key.1);
            let Some(ep) = self.episodes.get_mut(key) else {
                return;
            };
            ep.reminders = n;
            let ep = ep.clone();
            out.push(Change::Upsert(
                self.record(key, &ep, None),
                (!held).then_some(EventKind::Reminder(n)),
            ));
        }
    }

    fn record(&self, key: &Key, ep: &Episode, ended_ms: Option<i64>) -> AlertRecord {
        let rule = &self.rules[key.0];
        let threshold = match &rule.condition {
            Condition::Threshold { threshold, .. } => Some(*threshold),
            _ => None,
        };
        AlertRecord {
            id: 0,
            ident: ep.ident.clone(),
            rule: rule.name.clone(),
            host: key.1.clone(),
            series: key.2.clone(),
            state: match ep.state {
                State::Pending => "pending".into(),
                State::Firing => "firing".into(),
            },
            severity: rule.severity.as_str().into(),
            started_ms: ep.started_ms,
            fired_ms: ep.fired_ms,
            ended_ms,
            value: ep.value,
            threshold,
            reminders: ep.reminders,
            acked: ep.acked,
            maintenance: ep.maintenance,
        }
    }
}

#[path = "engine_tick.rs"]
mod tick;

#[cfg(test)]
#[path = "engine_tests.rs"]
mod tests;
