//! The Containers view: every container of the fleet (CPU, memory and limit, network and
//! block I/O rates, restarts, health, state, image), sortable with `s`/`S` and filtered by
//! `/`; and the compact per-host table the Host view shows under its charts.

use super::no_data;
use super::services::table;
use super::style::{Theme, num, opt_bytes, rate};
use crate::tui::app::{App, View};
use crate::tui::containers::{self, ContainerRow};
use crate::tui::data::HostData;
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::Style;
use ratatui::text::Span;
use ratatui::widgets::{Block, Cell, Row};

/// The Containers view's columns and widths (the host view shows them without HOST).
const HEAD: [&str; 12] = [
    "HOST",
    "CONTAINER",
    "STATE",
    "CPU",
    "MEM",
    "LIMIT",
    "NET RX",
    "NET TX",
    "IO",
    "RST",
    "HEALTH",
    "IMAGE",
];
const WIDTHS: [u16; 12] = [12, 22, 10, 7, 8, 8, 9, 9, 9, 4, 9, 24];

pub fn render(app: &App, t: Theme, area: Rect, buf: &mut Buffer) {
    let rows = containers::fleet(&app.fleet, &app.filter, app.ctr_sort, app.ctr_reverse);
    let unhealthy = rows.iter().filter(|r| r.healthy == Some(false)).count();
    let stopped = rows.iter().filter(|r| r.running == Some(0.0)).count();
    let b = Block::bordered().border_style(t.dim()).title(Span::styled(
        format!(
            " Containers ({} rows, {stopped} stopped, {unhealthy} unhealthy) · sort {:?}{} ",
            rows.len(),
            app.ctr_sort,
            if app.ctr_reverse { " ↑" } else { "" }
        ),
        t.title(),
    ));
    if rows.is_empty() {
        no_data(
            t,
            b,
            "containers",
            "nodes report container.* where Docker, Podman or container cgroups are found (collect.containers)",
            area,
            buf,
        );
        return;
    }
    let body = rows.iter().map(|r| row(t, r, true));
    let widths = WIDTHS.map(Constraint::Length);
    let sel = app.row[View::Containers.index()].min(rows.len() - 1);
    table(t, HEAD, body, widths, b, Some(sel), area, buf);
}

fn row<'a>(t: Theme, r: &ContainerRow, with_host: bool) -> Row<'a> {
    let state_style = match r.running {
        Some(0.0) => t.bad(),
        _ if r.state == "running" => t.good(),
        _ => Style::new(),
    };
    let (health, health_style) = match r.healthy {
        Some(true) => ("healthy", t.good()),
        Some(false) => ("UNHEALTHY", t.bad()),
        None => ("-", t.dim()),
    };
    let restarts_style = if r.restarts.is_some_and(|n| n > 0.0) {
        t.warn()
    } else {
        Style::new()
    };
    let mut cells = Vec::with_capacity(12);
    if with_host {
        cells.push(Cell::from(r.host.clone()));
    }
    cells.extend([
        Cell::from(r.name.clone()),
        Cell::from(Span::styled(r.state.clone(), state_style)),
        Cell::from(Span::styled(
            num(r.cpu_pct, "%"),
            t.level(r.cpu_pct.unwrap_or(0.0)),
        )),
        Cell::from(opt_bytes(r.mem_bytes)),
        Cell::from(opt_bytes(r.mem_limit)),
        Cell::from(rate(r.rx)),
        Cell::from(rate(r.tx)),
        Cell::from(rate(r.blkio())),
        Cell::from(Span::styled(num(r.restarts, ""), restarts_style)),
        Cell::from(Span::styled(health, health_style)),
        Cell::from(r.image.clone()),
    ]);
    Row::new(cells)
}

/// How many lines the Host view gives its containers table (0: none).
pub fn host_lines(h: &HostData, height: u16) -> u16 {
    let n = containers::of_host(h).len() as u16;
    if n == 0 || height < 20 {
        return 0;
    }
    // Header and borders, at most a quarter of the screen.
    (n + 3).min(height / 4).max(4)
}

/// The Host view's containers, busiest CPU first.
pub fn render_host(h: &HostData, t: Theme, area: Rect, buf: &mut Buffer) {
    let mut rows = containers::of_host(h);
    containers::sort_rows(&mut rows, containers::ContainerSort::Cpu, false);
    let shown = usize::from(area.height.saturating_sub(3));
    let more = rows.len().saturating_sub(shown);
    let title = if more > 0 {
        format!(" containers ({}, {more} more in view 7) ", rows.len())
    } else {
        format!(" containers ({}) ", rows.len())
    };
    let b = Block::bordered()
        .border_style(t.dim())
        .title(Span::styled(title, t.title()));
    // The fleet view's columns without HOST.
    let head: [&str; 11] = std::array::from_fn(|i| HEAD[i + 1]);
    let widths: [Constraint; 11] = std::array::from_fn(|i| Constraint::Length(WIDTHS[i + 1]));
    let body = rows.iter().take(shown).map(|r| row(t, r, false));
    table(t, head, body, widths, b, None, area, buf);
}
