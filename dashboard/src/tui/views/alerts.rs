//! The Alerts view: firing alerts first, then pending and recently resolved ones, with
//! acknowledgement, silence and maintenance state; `a` and `m` act on the selected row. The
//! maintenance windows in force are listed below them.

use super::services::table;
use super::style::{Theme, ago, hhmm};
use crate::tui::alerts::AlertState;
use crate::tui::app::{App, View};
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Paragraph, Row, Widget};

/// Lines of maintenance windows shown at most (the rest are counted).
const WINDOW_LINES: usize = 4;

pub fn render(app: &App, t: Theme, area: Rect, buf: &mut Buffer) {
    let windows = app.alerts.windows();
    if windows.is_empty() {
        return render_alerts(app, t, area, buf);
    }
    let lines = windows.len().min(WINDOW_LINES + 1);
    let height = u16::try_from(lines + 2).unwrap_or(u16::MAX);
    let [top, bottom] =
        Layout::vertical([Constraint::Min(3), Constraint::Length(height)]).areas(area);
    render_alerts(app, t, top, buf);
    render_windows(app, t, bottom, buf);
}

/// The maintenance windows in force: where they come from, what they match, until when.
fn render_windows(app: &App, t: Theme, area: Rect, buf: &mut Buffer) {
    let windows = app.alerts.windows();
    let block = Block::bordered().border_style(t.dim()).title(Span::styled(
        format!(" Maintenance ({} in force) ", windows.len()),
        t.title(),
    ));
    let mut lines: Vec<Line> = windows
        .iter()
        .take(WINDOW_LINES)
        .map(|w| {
            let source = match w.source.as_str() {
                "config" => "config".to_owned(),
                id => format!("#{id}"),
            };
            let mut spans = vec![
                Span::styled(format!(" {source:<7}"), t.warn()),
                Span::raw(format!(
                    "hosts {:<14} rules {:<14} {}",
                    w.hosts, w.rules, w.when
                )),
            ];
            if !w.comment.is_empty() {
                spans.push(Span::styled(format!("  {}", w.comment), t.dim()));
            }
            Line::from(spans)
        })
        .collect();
    if windows.len() > WINDOW_LINES {
        lines.push(Line::styled(
            format!(
                " … and {} more (meshmon alerts maintenance --list)",
                windows.len() - WINDOW_LINES
            ),
            t.dim(),
        ));
    }
    let inner = block.inner(area);
    block.render(area, buf);
    Paragraph::new(lines).render(inner, buf);
}

fn render_alerts(app: &App, t: Theme, area: Rect, buf: &mut Buffer) {
    let list = app.alerts.list();
    let block = Block::bordered().border_style(t.dim()).title(Span::styled(
        format!(
            " Alerts ({} firing, {} total) ",
            app.alerts.firing(),
            list.len()
        ),
        t.title(),
    ));
    if list.is_empty() {
        let inner = block.inner(area);
        block.render(area, buf);
        Paragraph::new(vec![
            Line::styled(" no alerts: none firing, none recently resolved", t.dim()),
            Line::styled(
                " alert rules ([[alert]]) are evaluated on dashboard nodes; a and m act here",
                t.dim(),
            ),
        ])
        .render(inner, buf);
        return;
    }
    let now = app.now_ms;
    let head = [
        "ID", "STATE", "SEVERITY", "HOST", "RULE", "VALUE", "STARTED", "FOR", "ACK",
    ];
    let body = list.iter().map(|a| {
        let style = match a.state {
            AlertState::Firing if !a.acked => t.bad(),
            AlertState::Firing | AlertState::Pending => t.warn(),
            AlertState::Resolved => t.dim(),
        };
        let ack = match (a.acked, a.silenced_until_ms) {
            (_, Some(u)) if u > now => format!("muted {}", hhmm(u)),
            _ if a.maintenance => "maint".to_owned(),
            (true, _) => "acked".to_owned(),
            _ => "-".to_owned(),
        };
        let lasted = a.ended_ms.unwrap_or(now) - a.started_ms;
        Row::new([
            Cell::from(a.id.to_string()),
            Cell::from(Span::styled(a.state.label(), style)),
            Cell::from(a.severity.label()),
            Cell::from(a.host.clone()),
            Cell::from(a.rule.clone()),
            Cell::from(format!("{:.1}", a.value)),
            Cell::from(hhmm(a.started_ms)),
            Cell::from(ago(lasted)),
            Cell::from(ack),
        ])
    });
    let widths = [4, 8, 8, 14, 16, 8, 7, 5, 11].map(Constraint::Length);
    let sel = app.row[View::Alerts.index()].min(list.len() - 1);
    table(t, head, body, widths, block, Some(sel), area, buf);
}
