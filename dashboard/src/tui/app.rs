//! [`App`]: the whole state of the TUI, changed only by [`App::update`] with an [`AppEvent`].
//! Drawing reads it (`views/`), never changes it, so every key and every data event can be
//! tested here without a terminal.
//!
//! Not here: the key map itself (`input.rs`), the fleet model (`data.rs`), the terminal loop
//! (`run.rs`).

use super::alerts::{Alert, Alerts};
use super::data::{Fleet, HostData, HostState};
use super::event::{Action, AppEvent, Loaded};
use super::history::{History, HistorySource, Stats, Window, downsample};
use meshmon_proto::SeriesKey;

/// The screens, in tab order (number keys 1-7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum View {
    #[default]
    Fleet,
    Host,
    Services,
    Disks,
    Alerts,
    Mesh,
    Containers,
}

impl View {
    pub const ALL: [View; 7] = [
        View::Fleet,
        View::Host,
        View::Services,
        View::Disks,
        View::Alerts,
        View::Mesh,
        View::Containers,
    ];

    pub fn title(self) -> &'static str {
        match self {
            View::Fleet => "Fleet",
            View::Host => "Host",
            View::Services => "Services",
            View::Disks => "Disks",
            View::Alerts => "Alerts",
            View::Mesh => "Mesh",
            View::Containers => "Containers",
        }
    }

    pub fn index(self) -> usize {
        View::ALL.iter().position(|v| *v == self).unwrap_or(0)
    }
}

/// Fleet table columns, in the order `s` cycles through them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortKey {
    #[default]
    Host,
    Status,
    Cpu,
    Mem,
    Disk,
    Rx,
    Tx,
    Gpu,
    Alerts,
    Seen,
    Hops,
    Tags,
}

impl SortKey {
    pub const ALL: [SortKey; 12] = [
        SortKey::Host,
        SortKey::Status,
        SortKey::Cpu,
        SortKey::Mem,
        SortKey::Disk,
        SortKey::Rx,
        SortKey::Tx,
        SortKey::Gpu,
        SortKey::Alerts,
        SortKey::Seen,
        SortKey::Hops,
        SortKey::Tags,
    ];

    pub fn next(self) -> SortKey {
        let i = SortKey::ALL.iter().position(|k| *k == self).unwrap_or(0);
        SortKey::ALL[(i + 1) % SortKey::ALL.len()]
    }
}

/// Settings fixed for a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Colour on (false with `NO_COLOR`): styles fall back to bold/reverse.
    pub color: bool,
    pub history: HistorySource,
    /// The node's address, for messages.
    pub target: String,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            color: true,
            history: HistorySource::Live { since_ms: 0 },
            target: String::new(),
        }
    }
}

/// The state of the TUI.
#[derive(Debug, Default)]
pub struct App {
    pub settings: Settings,
    pub fleet: Fleet,
    pub alerts: Alerts,
    pub loaded: Option<Loaded>,
    pub view: View,
    /// Selected host in the fleet table (by name, so it stays put while rows re-sort).
    pub selected: Option<String>,
    /// Host shown in the Host view.
    pub host: Option<String>,
    /// Selected row in the Services, Disks, Alerts, Mesh and Containers views.
    pub row: [usize; View::ALL.len()],
    pub sort: SortKey,
    pub reverse: bool,
    /// The Containers view's sort column and direction.
    pub ctr_sort: super::containers::ContainerSort,
    pub ctr_reverse: bool,
    pub filter: String,
    /// `/` was pressed: keys edit the filter.
    pub filtering: bool,
    pub window: Window,
    pub help: bool,
    pub quit: bool,
    /// The clock the views are drawn at (ms since the epoch).
    pub now_ms: i64,
    /// A problem to show instead of data (e.g. the node is not answering).
    pub notice: Option<String>,
}

impl App {
    pub fn new(settings: Settings, now_ms: i64) -> App {
        App {
            settings,
            now_ms,
            ..App::default()
        }
    }

    /// Applies one event; returns what the caller must do.
    pub fn update(&mut self, event: AppEvent) -> Vec<Action> {
        match event {
            AppEvent::Status(s) => {
                self.fleet.status(s, self.now_ms);
                self.notice = None;
            }
            AppEvent::Frame {
                header,
                payload,
                replay,
            } => self.fleet.frame(&header, payload, replay),
            AppEvent::Key(k) => return self.key(k),
            AppEvent::Resize => {}
            AppEvent::Tick { now_ms } => self.now_ms = now_ms,
            AppEvent::Disconnected(msg) => self.notice = Some(msg),
            AppEvent::Alerts(list) => self.alerts.replace(list),
            AppEvent::Maintenance(w) => self.alerts.set_windows(w),
            AppEvent::History(l) => self.loaded = Some(l),
            AppEvent::Shutdown => self.quit = true,
        }
        Vec::new()
    }

    /// Fleet rows after filter and sort.
    pub fn rows(&self) -> Vec<&HostData> {
        let needle = self.filter.to_lowercase();
        let mut rows: Vec<&HostData> = self
            .fleet
            .hosts
            .values()
            .filter(|h| {
                needle.is_empty()
                    || h.name.to_lowercase().contains(&needle)
                    || h.tags().iter().any(|t| t.to_lowercase().contains(&needle))
            })
            .collect();
        let now = self.now_ms;
        let num = |v: Option<f64>| v.unwrap_or(f64::NEG_INFINITY);
        let key = |h: &HostData| -> (f64, String) {
            let s = &h.summary;
            let n = match self.sort {
                SortKey::Host | SortKey::Tags => 0.0,
                // Worst first: down, stale, then up.
                SortKey::Status => match h.state(now) {
                    HostState::Down => 2.0,
                    HostState::Stale => 1.0,
                    HostState::Up => 0.0,
                },
                SortKey::Cpu => num(s.cpu_pct),
                SortKey::Mem => num(s.mem_pct),
                SortKey::Disk => num(s.disk_worst.as_ref().map(|d| d.1)),
                SortKey::Rx => num(s.rx),
                SortKey::Tx => num(s.tx),
                SortKey::Gpu => num(s.gpu.map(|g| g.0)),
                SortKey::Alerts => self.alerts.firing_on(&h.name) as f64,
                SortKey::Seen => -num(h.status.as_ref().map(|s| s.last_seen_ms as f64)),
                SortKey::Hops => -num(h.hops().map(f64::from)),
            };
            let text = if self.sort == SortKey::Tags {
                h.tags().join(",")
            } else {
                String::new()
            };
            (n, text)
        };
        // Text columns ascend, numeric ones show the largest first; `S` flips either.
        let text_sort = matches!(self.sort, SortKey::Host | SortKey::Tags);
        rows.sort_by(|a, b| {
            let (ka, kb) = (key(a), key(b));
            let ord = if text_sort {
                ka.1.cmp(&kb.1)
            } else {
                kb.0.total_cmp(&ka.0)
            };
            let ord = if self.reverse { ord.reverse() } else { ord };
            ord.then_with(|| a.name.cmp(&b.name))
        });
        rows
    }

    /// Index of the selected host in [`App::rows`] (the first row when none is selected).
    pub fn selected_index(&self, rows: &[&HostData]) -> Option<usize> {
        if rows.is_empty() {
            return None;
        }
        let i = self
            .selected
            .as_ref()
            .and_then(|s| rows.iter().position(|h| &h.name == s));
        Some(i.unwrap_or(0))
    }

    /// The host the Host view shows: the chosen one, else the selected fleet row.
    pub fn host_data(&self) -> Option<&HostData> {
        if let Some(h) = self.host.as_ref().and_then(|h| self.fleet.hosts.get(h)) {
            return Some(h);
        }
        let rows = self.rows();
        self.selected_index(&rows).map(|i| rows[i])
    }

    /// `[since, until]` of the current window.
    pub fn window_range(&self) -> (i64, i64) {
        (self.now_ms - self.window.ms(), self.now_ms)
    }

    /// Points of `host`'s `key` in the current window: loaded history where present, then
    /// the live ring after it.
    pub fn series(&self, host: &str, key: &SeriesKey, points: usize) -> Vec<(i64, f64)> {
        let (since, until) = self.window_range();
        let mut pts = Vec::new();
        let mut from = since;
        if let Some(l) = self.loaded_for(host)
            && let Some(s) = loaded_points(l, key)
        {
            pts.extend(s.into_iter().filter(|p| p.0 >= since && p.0 <= until));
            from = l.until_ms + 1;
        }
        pts.extend(self.fleet.series(host, key, from, until, 0));
        downsample(&pts, since, until, points)
    }

    /// Stats of `host`'s `key` in the current window.
    pub fn stats(&self, host: &str, key: &SeriesKey) -> Option<Stats> {
        let (since, until) = self.window_range();
        if self.loaded_for(host).is_some() {
            return Stats::of(&self.series(host, key, 0), None);
        }
        self.fleet.stats(host, key, since, until)
    }

    fn loaded_for(&self, host: &str) -> Option<&Loaded> {
        self.loaded.as_ref().filter(|l| l.host == host)
    }

    /// The alert under the cursor in the Alerts view.
    pub fn selected_alert(&self) -> Option<&Alert> {
        let list = self.alerts.list();
        list.get(self.row[View::Alerts.index()].min(list.len().saturating_sub(1)))
    }

    /// The history request for the Host view's host and window, if one is shown.
    pub(super) fn load_history(&self) -> Vec<Action> {
        if self.view != View::Host {
            return Vec::new();
        }
        let Some(h) = self.host_data() else {
            return Vec::new();
        };
        let (since_ms, until_ms) = self.window_range();
        vec![Action::LoadHistory {
            host: h.name.clone(),
            since_ms,
            until_ms,
        }]
    }
}

/// Loaded points of `key`: the series itself, or, for a labelled metric asked for without its
/// label (e.g. `net.rx_bytes_per_s`), the aggregate of every label value per timestamp, as the
/// live rings do (see [`super::history::aggregate_of`]).
fn loaded_points(l: &Loaded, key: &SeriesKey) -> Option<Vec<(i64, f64)>> {
    if let Some((_, s)) = l.series.iter().find(|(k, _)| k == key) {
        return Some(s.clone());
    }
    if !key.labels.is_empty() {
        return None;
    }
    let agg = super::history::aggregate_of(&key.name);
    let mut by_ts: std::collections::BTreeMap<i64, f64> = std::collections::BTreeMap::new();
    let mut any = false;
    for (_, pts) in l.series.iter().filter(|(k, _)| k.name == key.name) {
        any = true;
        for &(t, v) in pts {
            by_ts
                .entry(t)
                .and_modify(|acc| {
                    *acc = match agg {
                        super::history::Aggregate::Max => acc.max(v),
                        super::history::Aggregate::Sum => *acc + v,
                    }
                })
                .or_insert(v);
        }
    }
    any.then(|| by_ts.into_iter().collect())
}
