//! The Services view: HTTP checks (up/down per vantage node, latency, HTTP status,
//! certificate days left) and systemd units across the fleet, from `check.*` and `systemd.*`
//! metrics. The selection runs over both tables, checks first.

use super::no_data;
use super::style::{Theme, num, opt_bytes};
use crate::tui::app::{App, View};
use crate::tui::rows;
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::Span;
use ratatui::widgets::{Block, Cell, Row, StatefulWidget, Table, TableState};

pub fn render(app: &App, t: Theme, area: Rect, buf: &mut Buffer) {
    let checks = rows::checks(&app.fleet);
    let units = rows::units(&app.fleet);
    let sel = app.row[View::Services.index()];
    let [top, bottom] =
        Layout::vertical([Constraint::Percentage(55), Constraint::Fill(1)]).areas(area);
    let block = |title: String| {
        Block::bordered()
            .border_style(t.dim())
            .title(Span::styled(title, t.title()))
    };
    let down = checks.iter().filter(|c| c.up == Some(false)).count();
    let b = block(format!(
        " HTTP checks ({} rows, {down} down) ",
        checks.len()
    ));
    if checks.is_empty() {
        no_data(
            t,
            b,
            "HTTP checks",
            "nodes report check.* for their [[check]] entries",
            top,
            buf,
        );
    } else {
        let head = ["CHECK", "FROM", "STATE", "LATENCY", "HTTP", "CERT DAYS"];
        let body = checks.iter().map(|c| {
            let (state, style) = match c.up {
                Some(true) => ("up", t.good()),
                Some(false) => ("DOWN", t.bad()),
                None => ("-", t.dim()),
            };
            let cert_style = match c.cert_days {
                Some(d) if d < 7.0 => t.bad(),
                Some(d) if d < 21.0 => t.warn(),
                _ => Style::new(),
            };
            Row::new([
                Cell::from(c.check.clone()),
                Cell::from(c.vantage.clone()),
                Cell::from(Span::styled(state, style)),
                Cell::from(num(c.latency_ms, "ms")),
                Cell::from(num(c.status, "")),
                Cell::from(Span::styled(num(c.cert_days, "d"), cert_style)),
            ])
        });
        let widths = [20, 16, 6, 9, 5, 9].map(Constraint::Length);
        table(
            t,
            head,
            body,
            widths,
            b,
            Some(sel).filter(|s| *s < checks.len()),
            top,
            buf,
        );
    }
    let inactive = units.iter().filter(|u| u.active == Some(false)).count();
    let b = block(format!(
        " systemd units ({} rows, {inactive} inactive) ",
        units.len()
    ));
    if units.is_empty() {
        no_data(
            t,
            b,
            "systemd units",
            "nodes report systemd.* for collect.systemd_units",
            bottom,
            buf,
        );
    } else {
        let head = ["HOST", "UNIT", "ACTIVE", "MEM", "CPU"];
        let body = units.iter().map(|u| {
            let (state, style) = match u.active {
                Some(true) => ("active", t.good()),
                Some(false) => ("INACTIVE", t.bad()),
                None => ("-", t.dim()),
            };
            Row::new([
                Cell::from(u.host.clone()),
                Cell::from(u.unit.clone()),
                Cell::from(Span::styled(state, style)),
                Cell::from(opt_bytes(u.mem_bytes)),
                Cell::from(num(u.cpu_pct, "%")),
            ])
        });
        let widths = [16, 28, 8, 8, 6].map(Constraint::Length);
        table(
            t,
            head,
            body,
            widths,
            b,
            sel.checked_sub(checks.len()),
            bottom,
            buf,
        );
    }
}

/// A bordered table with a bold header and the selected row (if any) highlighted.
#[allow(clippy::too_many_arguments)]
pub(super) fn table<'a, const N: usize, const W: usize>(
    t: Theme,
    head: [&'a str; N],
    body: impl IntoIterator<Item = Row<'a>>,
    widths: [Constraint; W],
    block: Block<'a>,
    selected: Option<usize>,
    area: Rect,
    buf: &mut Buffer,
) {
    let table = Table::new(body, widths)
        .header(Row::new(
            head.map(|h| Cell::from(Span::styled(h, t.head()))),
        ))
        .block(block)
        .column_spacing(1)
        .row_highlight_style(t.selected());
    let mut state = TableState::default().with_selected(selected);
    StatefulWidget::render(table, area, buf, &mut state);
}
