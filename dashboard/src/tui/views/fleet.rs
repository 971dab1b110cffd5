//! The Fleet view: one row per host with state, headline metrics, firing alerts, last seen,
//! hop distance and tags; CPU and memory sparklines of the last minutes where the terminal is
//! wide enough. Columns are dropped from the right of the priority list on narrow terminals.

use super::style::{Theme, ago, num, pct, rate, sparkline};
use crate::tui::app::{App, SortKey};
use crate::tui::data::{HostData, HostState};
use meshmon_proto::SeriesKey;
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Row, StatefulWidget, Table, TableState};

/// How far back the sparklines reach.
const SPARK_MS: i64 = 5 * 60_000;

#[derive(Clone, Copy, PartialEq)]
enum Col {
    Host,
    State,
    Cpu,
    CpuSpark,
    Mem,
    MemSpark,
    Disk,
    Rx,
    Tx,
    Gpu,
    Alerts,
    Seen,
    Hops,
    Tags,
}

impl Col {
    fn head(self) -> &'static str {
        match self {
            Col::Host => "HOST",
            Col::State => "STATE",
            Col::Cpu => "CPU",
            Col::CpuSpark => "CPU 5m",
            Col::Mem => "MEM",
            Col::MemSpark => "MEM 5m",
            Col::Disk => "DISK",
            Col::Rx => "RX/s",
            Col::Tx => "TX/s",
            Col::Gpu => "GPU",
            Col::Alerts => "ALRT",
            Col::Seen => "SEEN",
            Col::Hops => "HOP",
            Col::Tags => "TAGS",
        }
    }

    fn sort(self) -> Option<SortKey> {
        Some(match self {
            Col::Host => SortKey::Host,
            Col::State => SortKey::Status,
            Col::Cpu => SortKey::Cpu,
            Col::Mem => SortKey::Mem,
            Col::Disk => SortKey::Disk,
            Col::Rx => SortKey::Rx,
            Col::Tx => SortKey::Tx,
            Col::Gpu => SortKey::Gpu,
            Col::Alerts => SortKey::Alerts,
            Col::Seen => SortKey::Seen,
            Col::Hops => SortKey::Hops,
            Col::Tags => SortKey::Tags,
            Col::CpuSpark | Col::MemSpark => return None,
        })
    }
}

/// Columns that fit in `width`, in display order, with their widths. The host name and the
/// tags take what is left.
fn layout(width: u16) -> Vec<(Col, u16)> {
    // Priority order: what goes first when narrow is last here.
    let want: [(Col, u16); 14] = [
        (Col::Host, 10),
        (Col::State, 5),
        (Col::Cpu, 4),
        (Col::Mem, 4),
        (Col::Disk, 4),
        (Col::Alerts, 4),
        (Col::Seen, 4),
        (Col::Rx, 6),
        (Col::Tx, 6),
        (Col::Hops, 3),
        (Col::Gpu, 4),
        (Col::Tags, 8),
        (Col::CpuSpark, 12),
        (Col::MemSpark, 12),
    ];
    let mut used = 0u16;
    let mut keep = Vec::new();
    for (c, w) in want {
        if used + w < width {
            used += w + 1;
            keep.push((c, w));
        }
    }
    let order = [
        Col::Host,
        Col::State,
        Col::Cpu,
        Col::CpuSpark,
        Col::Mem,
        Col::MemSpark,
        Col::Disk,
        Col::Rx,
        Col::Tx,
        Col::Gpu,
        Col::Alerts,
        Col::Seen,
        Col::Hops,
        Col::Tags,
    ];
    let mut spare = width.saturating_sub(used);
    let mut out: Vec<(Col, u16)> = order
        .iter()
        .filter_map(|c| keep.iter().find(|k| k.0 == *c).copied())
        .collect();
    // Share out the rest: host names first (up to 24), sparklines (up to 30), then tags.
    for (c, cap) in [
        (Col::Host, 24),
        (Col::CpuSpark, 30),
        (Col::MemSpark, 30),
        (Col::Tags, 60),
    ] {
        if let Some(e) = out.iter_mut().find(|e| e.0 == c) {
            let add = spare.min(cap - e.1.min(cap));
            e.1 += add;
            spare -= add;
        }
    }
    out
}

pub fn render(app: &App, t: Theme, area: Rect, buf: &mut Buffer) {
    let rows = app.rows();
    let cols = layout(area.width);
    let header = Row::new(cols.iter().map(|(c, _)| {
        let mut s = c.head().to_owned();
        let mut style = t.head();
        if c.sort() == Some(app.sort) {
            s.push(if app.reverse { '↑' } else { '↓' });
            style = style.patch(t.accent());
        }
        Cell::from(Span::styled(s, style))
    }));
    let body = rows.iter().map(|h| row(app, t, h, &cols));
    let table = Table::new(body, cols.iter().map(|(_, w)| Constraint::Length(*w)))
        .header(header)
        .column_spacing(1)
        .row_highlight_style(t.selected());
    let mut state = TableState::default().with_selected(app.selected_index(&rows));
    StatefulWidget::render(table, area, buf, &mut state);
    if rows.is_empty() {
        let r = Rect::new(area.x, area.y + 1, area.width, 1.min(area.height));
        let msg = format!(" no host matches '{}' (Esc clears the filter)", app.filter);
        ratatui::widgets::Widget::render(Line::styled(msg, t.dim()), r, buf);
    }
}

fn row<'a>(app: &App, t: Theme, h: &'a HostData, cols: &[(Col, u16)]) -> Row<'a> {
    let now = app.now_ms;
    let state = h.state(now);
    let s = &h.summary;
    let firing = app.alerts.firing_on(&h.name);
    let lvl = |v: Option<f64>| v.map_or(Style::new(), |v| t.level(v));
    let cells = cols.iter().map(|(c, w)| match c {
        Col::Host => {
            let mark = if state == HostState::Down || firing > 0 {
                "!"
            } else {
                " "
            };
            let style = match (state, firing) {
                (_, 1..) | (HostState::Down, _) => t.bad(),
                (HostState::Stale, _) => t.state(state),
                (HostState::Up, _) => Style::new(),
            };
            Cell::from(Span::styled(format!("{mark}{}{}", h.name, marks(h)), style))
        }
        Col::State => Cell::from(Span::styled(state.label(), t.state(state))),
        Col::Cpu => Cell::from(Span::styled(pct(s.cpu_pct), lvl(s.cpu_pct))),
        Col::Mem => Cell::from(Span::styled(pct(s.mem_pct), lvl(s.mem_pct))),
        Col::Disk => {
            let v = s.disk_worst.as_ref().map(|d| d.1);
            Cell::from(Span::styled(pct(v), lvl(v)))
        }
        Col::CpuSpark => spark(app, t, h, "cpu.usage_pct", *w, 0),
        Col::MemSpark => spark(app, t, h, "mem.used_pct", *w, 1),
        Col::Rx => Cell::from(rate(s.rx)),
        Col::Tx => Cell::from(rate(s.tx)),
        Col::Gpu => Cell::from(Span::styled(
            pct(s.gpu.map(|g| g.0)),
            lvl(s.gpu.map(|g| g.0)),
        )),
        Col::Alerts => match firing {
            0 => Cell::from(Span::styled("-", t.dim())),
            n => Cell::from(Span::styled(format!("{n}!"), t.bad())),
        },
        Col::Seen => Cell::from(
            h.status
                .as_ref()
                .map_or_else(|| "-".into(), |st| ago(now - st.last_seen_ms as i64)),
        ),
        Col::Hops => Cell::from(num(h.hops().map(f64::from), "")),
        Col::Tags => Cell::from(Span::styled(h.tags().join(","), t.dim())),
    });
    Row::new(cells)
}

/// After a host's name: two live hosts share it; its clock is off by more than 2 s.
fn marks(h: &HostData) -> String {
    let mut m = String::new();
    if h.status.as_ref().is_some_and(|s| s.name_conflict) {
        m.push_str(" [2 hosts!]");
    }
    if let Some(o) = h
        .value(meshmon_proto::metrics::Metric::HostClockOffsetMs.name())
        .filter(|o| o.abs() > 2_000.0)
    {
        m.push_str(&format!(" [clock {:+.0}s]", o / 1000.0));
    }
    m
}

fn spark<'a>(app: &App, t: Theme, h: &HostData, metric: &str, w: u16, i: usize) -> Cell<'a> {
    let key = SeriesKey::custom(metric, Vec::new());
    let Some(ring) = h.ring(&key) else {
        return Cell::from("");
    };
    let now = app.now_ms;
    let pts: Vec<(i64, f64)> = ring
        .range(now - SPARK_MS, now)
        .into_iter()
        .map(|(t, v, _)| (t, v))
        .collect();
    let pts = crate::tui::history::downsample(&pts, now - SPARK_MS, now, usize::from(w));
    let vals: Vec<f64> = pts.iter().map(|p| p.1).collect();
    let line = sparkline(&vals, 100.0);
    Cell::from(Line::from(Span::styled(
        format!("{line:>width$}", width = usize::from(w)),
        t.series(i),
    )))
}
