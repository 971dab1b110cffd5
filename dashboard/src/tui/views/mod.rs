//! Drawing: `impl Widget for &App` renders the header, the view tabs, the current view, the
//! footer and overlays (help, "node not answering"). Every function here reads the App and
//! writes cells; none changes state or does I/O, and "now" is `app.now_ms`, so the same App
//! always draws the same screen.
//!
//! Not here: the terminal (`run.rs`) or what the keys do (`input.rs`).

mod alerts;
mod containers;
mod disks;
mod fleet;
mod help;
mod host;
mod host_procs;
mod mesh;
mod services;
pub mod style;

use super::app::{App, View};
use super::history::HistorySource;
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Widget, Wrap};
use style::{Theme, hhmm, hms};

/// Draws the whole screen.
pub fn draw(frame: &mut ratatui::Frame, app: &App) {
    frame.render_widget(app, frame.area());
}

impl Widget for &App {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let theme = Theme {
            color: self.settings.color,
        };
        let [head, tabs, body, foot] = Layout::vertical([
            Constraint::Length(1),
            Constraint::Length(1),
            Constraint::Min(0),
            Constraint::Length(1),
        ])
        .areas(area);
        header(self, theme, head, buf);
        view_tabs(self, theme, tabs, buf);
        if self.fleet.hosts.is_empty() {
            waiting(self, theme, body, buf);
        } else {
            match self.view {
                View::Fleet => fleet::render(self, theme, body, buf),
                View::Host => host::render(self, theme, body, buf),
                View::Services => services::render(self, theme, body, buf),
                View::Disks => disks::render(self, theme, body, buf),
                View::Alerts => alerts::render(self, theme, body, buf),
                View::Mesh => mesh::render(self, theme, body, buf),
                View::Containers => containers::render(self, theme, body, buf),
            }
        }
        footer(self, theme, foot, buf);
        if self.help {
            help::render(theme, body, buf);
        }
    }
}

fn header(app: &App, t: Theme, area: Rect, buf: &mut Buffer) {
    let (up, stale, down) = app.fleet.counts(app.now_ms);
    let firing = app.alerts.firing();
    let node = if app.fleet.node.is_empty() {
        app.settings.target.as_str()
    } else {
        app.fleet.node.as_str()
    };
    let mut spans = vec![
        Span::styled(" meshmon ", t.title()),
        Span::raw(format!("{node} ")),
        Span::styled(format!("{} hosts ", app.fleet.hosts.len()), t.accent()),
        Span::styled(format!("{up} up "), t.good()),
    ];
    if stale > 0 {
        spans.push(Span::styled(format!("{stale} stale "), t.warn()));
    }
    if down > 0 {
        spans.push(Span::styled(format!("{down} down "), t.bad()));
    }
    if firing > 0 {
        spans.push(Span::styled(format!("{firing} firing "), t.bad()));
    }
    let options = match &app.settings.history {
        HistorySource::Store => vec!["history: store".to_owned()],
        HistorySource::Live { since_ms } => {
            let why = if app.fleet.dashboard {
                "store not read yet"
            } else {
                "no store on this node"
            };
            vec![
                format!("live only ({why}): history since {}", hhmm(*since_ms)),
                format!("live only since {}", hhmm(*since_ms)),
                "live only".to_owned(),
            ]
        }
    };
    let utc = if area.width >= 120 { " UTC" } else { "" };
    let clock = format!("{}{utc} ", hms(app.now_ms));
    let used: usize = spans.iter().map(|s| s.width()).sum();
    let room = usize::from(area.width).saturating_sub(used + clock.len() + 3);
    if let Some(h) = options.into_iter().find(|h| h.chars().count() <= room) {
        spans.push(Span::styled(format!("│ {h}"), t.dim()));
    }
    Paragraph::new(Line::from(spans)).render(area, buf);
    let w = clock.len() as u16;
    if area.width > w + 40 {
        let r = Rect::new(area.right() - w, area.y, w, 1);
        Paragraph::new(Span::styled(clock, t.dim())).render(r, buf);
    }
}

fn view_tabs(app: &App, t: Theme, area: Rect, buf: &mut Buffer) {
    let mut spans = Vec::new();
    for (i, v) in View::ALL.iter().enumerate() {
        let label = format!(" {} {} ", i + 1, v.title());
        let style = if *v == app.view {
            t.selected().patch(t.title())
        } else {
            t.dim()
        };
        spans.push(Span::styled(label, style));
    }
    let win = format!(" window {} ", app.window.label());
    let w = win.chars().count() as u16;
    Paragraph::new(Line::from(spans)).render(area, buf);
    if area.width >= 60 + w {
        let r = Rect::new(area.right() - w, area.y, w, 1);
        Paragraph::new(Span::styled(win, t.accent())).render(r, buf);
    }
}

fn footer(app: &App, t: Theme, area: Rect, buf: &mut Buffer) {
    let line = if app.filtering {
        Line::from(vec![
            Span::styled(" filter: ", t.title()),
            Span::raw(format!("{}█", app.filter)),
            Span::styled("  Enter keep · Esc clear", t.dim()),
        ])
    } else if let (Some(n), false) = (&app.notice, app.fleet.hosts.is_empty()) {
        Line::from(Span::styled(format!(" {n}"), t.bad()))
    } else {
        let hint = match app.view {
            View::Fleet => format!(
                "Enter host · / filter · s sort: {:?}{} · ",
                app.sort,
                if app.reverse { " ↑" } else { "" }
            ),
            View::Host => "←→ host · t window · Esc back · ".to_owned(),
            View::Alerts => "a ack · m silence 1h · Enter host · ".to_owned(),
            View::Mesh => "Enter host · ".to_owned(),
            View::Containers => format!(
                "Enter host · / filter · s sort: {:?}{} · ",
                app.ctr_sort,
                if app.ctr_reverse { " ↑" } else { "" }
            ),
            _ => "↑↓ scroll · ".to_owned(),
        };
        let filter = if app.filter.is_empty() {
            String::new()
        } else {
            format!("filter '{}' · ", app.filter)
        };
        Line::from(vec![
            Span::styled(format!(" {filter}"), t.accent()),
            Span::styled(format!("{hint}Tab views · ? help · q quit"), t.dim()),
        ])
    };
    Paragraph::new(line).render(area, buf);
}

/// The body before any data: connecting, or why nothing answers.
fn waiting(app: &App, t: Theme, area: Rect, buf: &mut Buffer) {
    let (title, text, style) = match &app.notice {
        Some(n) => (" not connected ", n.clone(), t.bad()),
        None => (
            " connecting ",
            format!("waiting for the node at {} ...", app.settings.target),
            t.dim(),
        ),
    };
    let w = (text.chars().count() as u16 + 4).clamp(30, area.width.saturating_sub(4).max(1));
    let r = area.centered(Constraint::Length(w), Constraint::Length(5));
    Clear.render(r, buf);
    Paragraph::new(Line::from(Span::styled(text, style)))
        .wrap(Wrap { trim: true })
        .block(Block::bordered().title(title))
        .render(r, buf);
}

/// An empty table's block drawn over `area`, with a "no data yet" placeholder and a hint
/// inside it.
fn no_data(t: Theme, b: Block<'_>, what: &str, hint: &str, area: Rect, buf: &mut Buffer) {
    let inner = b.inner(area);
    b.render(area, buf);
    Paragraph::new(vec![
        Line::from(Span::styled(format!(" {what}: no data yet"), t.dim())),
        Line::from(Span::styled(format!(" {hint}"), t.dim())),
    ])
    .wrap(Wrap { trim: false })
    .render(inner, buf);
}
