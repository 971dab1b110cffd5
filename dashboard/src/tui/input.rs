//! The key map: what every key does to the [`App`], in one place (the help overlay lists the
//! same keys from [`KEYS`]).
//!
//! Not here: reading the terminal (`run.rs`).

use super::app::{App, View};
use super::event::Action;
use super::{containers, rows};
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

/// Every key, as shown by the help overlay: (keys, what they do).
pub const KEYS: [(&str, &str); 17] = [
    ("Tab / Shift-Tab", "next / previous view"),
    (
        "1-7",
        "Fleet, Host, Services, Disks, Alerts, Mesh, Containers",
    ),
    ("↑↓ / j k", "move the selection"),
    ("PgUp PgDn / g G", "page up / down, first / last"),
    ("← → / h l", "previous / next view (in Host: host)"),
    ("Enter", "open the selected host"),
    ("Esc", "back to Fleet; clear the filter; close help"),
    ("/", "filter hosts by name or tag (Enter keeps it)"),
    ("s", "sort by the next column"),
    ("S", "reverse the sort order"),
    ("t / T", "next / previous time window (5m 1h 12h 24h 7d)"),
    ("a", "acknowledge the selected alert"),
    ("m", "silence the selected alert for 1h"),
    ("?", "this help"),
    ("q / Ctrl-C", "quit"),
    ("", ""),
    ("NO_COLOR=1", "no colours (set before starting)"),
];

const PAGE: usize = 10;

/// How many views the number keys and Tab cycle through.
const VIEWS: usize = View::ALL.len();

impl App {
    /// Number of selectable rows in `view`.
    pub fn row_count(&self, view: View) -> usize {
        match view {
            View::Fleet => self.rows().len(),
            View::Host => 0,
            View::Services => rows::checks(&self.fleet).len() + rows::units(&self.fleet).len(),
            View::Disks => rows::smart(&self.fleet).len() + rows::filesystems(&self.fleet).len(),
            View::Alerts => self.alerts.list().len(),
            View::Mesh => self.fleet.hosts.len(),
            View::Containers => {
                containers::fleet(&self.fleet, &self.filter, self.ctr_sort, self.ctr_reverse).len()
            }
        }
    }

    pub(super) fn key(&mut self, k: KeyEvent) -> Vec<Action> {
        if k.kind == KeyEventKind::Release {
            return Vec::new();
        }
        let ctrl = k.modifiers.contains(KeyModifiers::CONTROL);
        if ctrl && matches!(k.code, KeyCode::Char('c')) {
            self.quit = true;
            return Vec::new();
        }
        if self.help {
            match k.code {
                KeyCode::Esc | KeyCode::Char('?') => self.help = false,
                KeyCode::Char('q') => self.quit = true,
                _ => {}
            }
            return Vec::new();
        }
        if self.filtering {
            match k.code {
                KeyCode::Esc => {
                    self.filter.clear();
                    self.filtering = false;
                }
                KeyCode::Enter => self.filtering = false,
                KeyCode::Backspace => {
                    self.filter.pop();
                }
                KeyCode::Char(c) if !ctrl => self.filter.push(c),
                _ => {}
            }
            self.selected = None;
            return Vec::new();
        }
        match k.code {
            KeyCode::Char('q') => self.quit = true,
            KeyCode::Char('?') => self.help = true,
            KeyCode::Tab => return self.go(View::ALL[(self.view.index() + 1) % VIEWS]),
            KeyCode::BackTab => {
                return self.go(View::ALL[(self.view.index() + VIEWS - 1) % VIEWS]);
            }
            KeyCode::Char(c @ '1'..='7') => {
                return self.go(View::ALL[c as usize - '1' as usize]);
            }
            KeyCode::Left | KeyCode::Char('h') => return self.sideways(false),
            KeyCode::Right | KeyCode::Char('l') => return self.sideways(true),
            KeyCode::Up | KeyCode::Char('k') => self.step(-1),
            KeyCode::Down | KeyCode::Char('j') => self.step(1),
            KeyCode::PageUp => self.step(-(PAGE as isize)),
            KeyCode::PageDown => self.step(PAGE as isize),
            KeyCode::Home | KeyCode::Char('g') => self.step(isize::MIN / 2),
            KeyCode::End | KeyCode::Char('G') => self.step(isize::MAX / 2),
            KeyCode::Enter => return self.enter(),
            KeyCode::Esc => {
                if self.view == View::Fleet {
                    self.filter.clear();
                } else {
                    self.view = View::Fleet;
                }
            }
            KeyCode::Char('/') => {
                // The Containers view filters its own rows; every other view the fleet's.
                if self.view != View::Containers {
                    self.view = View::Fleet;
                }
                self.filtering = true;
            }
            KeyCode::Char('s') if self.view == View::Fleet => self.sort = self.sort.next(),
            KeyCode::Char('S') if self.view == View::Fleet => self.reverse = !self.reverse,
            KeyCode::Char('s') if self.view == View::Containers => {
                self.ctr_sort = self.ctr_sort.next();
            }
            KeyCode::Char('S') if self.view == View::Containers => {
                self.ctr_reverse = !self.ctr_reverse;
            }
            KeyCode::Char('t') | KeyCode::Char('T') => {
                self.window = self.window.cycle(k.code == KeyCode::Char('T'));
                self.loaded = None;
                return self.load_history();
            }
            KeyCode::Char('a') if self.view == View::Alerts => return self.ack(),
            KeyCode::Char('m') if self.view == View::Alerts => return self.silence(),
            _ => {}
        }
        Vec::new()
    }

    fn go(&mut self, view: View) -> Vec<Action> {
        self.view = view;
        self.load_history()
    }

    /// Left/right: another host in the Host view, another view elsewhere.
    fn sideways(&mut self, next: bool) -> Vec<Action> {
        if self.view != View::Host {
            let i = self.view.index() + if next { 1 } else { VIEWS - 1 };
            return self.go(View::ALL[i % VIEWS]);
        }
        let rows = self.rows();
        let Some(cur) = self.host_data().map(|h| h.name.clone()) else {
            return Vec::new();
        };
        let i = rows.iter().position(|h| h.name == cur).unwrap_or(0);
        let n = rows.len().max(1);
        let j = if next { (i + 1) % n } else { (i + n - 1) % n };
        if let Some(h) = rows.get(j) {
            let name = h.name.clone();
            self.selected = Some(name.clone());
            self.host = Some(name);
            self.loaded = None;
        }
        self.load_history()
    }

    fn step(&mut self, by: isize) {
        match self.view {
            View::Host => {}
            View::Fleet => {
                let rows = self.rows();
                let Some(i) = self.selected_index(&rows) else {
                    return;
                };
                let j = (i as isize)
                    .saturating_add(by)
                    .clamp(0, rows.len() as isize - 1);
                self.selected = Some(rows[j as usize].name.clone());
            }
            v => {
                let n = self.row_count(v) as isize;
                let r = &mut self.row[v.index()];
                *r = (*r as isize).saturating_add(by).clamp(0, (n - 1).max(0)) as usize;
            }
        }
    }

    fn enter(&mut self) -> Vec<Action> {
        let name = match self.view {
            View::Fleet => {
                let rows = self.rows();
                self.selected_index(&rows).map(|i| rows[i].name.clone())
            }
            View::Mesh => {
                let hosts = rows::by_hops(&self.fleet);
                let i = self.row[View::Mesh.index()].min(hosts.len().saturating_sub(1));
                hosts.get(i).map(|h| h.name.clone())
            }
            View::Alerts => self.selected_alert().map(|a| a.host.clone()),
            View::Containers => {
                let rows =
                    containers::fleet(&self.fleet, &self.filter, self.ctr_sort, self.ctr_reverse);
                let i = self.row[View::Containers.index()].min(rows.len().saturating_sub(1));
                rows.get(i).map(|r| r.host.clone())
            }
            _ => None,
        };
        let Some(name) = name else {
            return Vec::new();
        };
        self.selected = Some(name.clone());
        if self.host.as_ref() != Some(&name) {
            self.loaded = None;
        }
        self.host = Some(name);
        self.go(View::Host)
    }

    fn ack(&mut self) -> Vec<Action> {
        let Some(id) = self.selected_alert().map(|a| a.id) else {
            return Vec::new();
        };
        if let Some(a) = self.alerts.get_mut(id) {
            a.acked = true;
        }
        vec![Action::Ack { id }]
    }

    fn silence(&mut self) -> Vec<Action> {
        let Some(id) = self.selected_alert().map(|a| a.id) else {
            return Vec::new();
        };
        let until_ms = self.now_ms + 3_600_000;
        if let Some(a) = self.alerts.get_mut(id) {
            a.silenced_until_ms = Some(until_ms);
        }
        vec![Action::Silence { id, until_ms }]
    }
}
