//! The Disks view: SMART health per host and device (passed, wear, temperature, media
//! errors, power-on hours) from `smart.*`, and filesystem and inode usage from `disk.*`.
//! The selection runs over both tables, SMART first.

use super::no_data;
use super::services::table;
use super::style::{Theme, num, opt_bytes, pct};
use crate::tui::app::{App, View};
use crate::tui::rows;
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::Span;
use ratatui::widgets::{Block, Cell, Row};

pub fn render(app: &App, t: Theme, area: Rect, buf: &mut Buffer) {
    let smart = rows::smart(&app.fleet);
    let fs = rows::filesystems(&app.fleet);
    let sel = app.row[View::Disks.index()];
    let smart_h = if smart.is_empty() {
        4
    } else {
        (smart.len() as u16 + 3).min(area.height / 2)
    };
    let [top, bottom] =
        Layout::vertical([Constraint::Length(smart_h), Constraint::Fill(1)]).areas(area);
    let block = |title: String| {
        Block::bordered()
            .border_style(t.dim())
            .title(Span::styled(title, t.title()))
    };
    let failing = smart.iter().filter(|s| s.passed == Some(false)).count();
    let b = block(format!(
        " SMART ({} devices, {failing} failing) ",
        smart.len()
    ));
    if smart.is_empty() {
        no_data(
            t,
            b,
            "SMART",
            "nodes report smart.* when smartctl is available",
            top,
            buf,
        );
    } else {
        let head = [
            "HOST",
            "DEVICE",
            "HEALTH",
            "WEAR",
            "TEMP",
            "MEDIA ERR",
            "POWER-ON",
        ];
        let body = smart.iter().map(|s| {
            let (health, style) = match (s.passed, s.critical_warning) {
                (Some(false), _) => ("FAILED", t.bad()),
                (_, Some(w)) if w > 0.0 => ("WARNING", t.warn()),
                (Some(true), _) => ("passed", t.good()),
                _ => ("-", t.dim()),
            };
            let err_style = if s.media_errors.unwrap_or(0.0) > 0.0 {
                t.bad()
            } else {
                Style::new()
            };
            Row::new([
                Cell::from(s.host.clone()),
                Cell::from(s.device.clone()),
                Cell::from(Span::styled(health, style)),
                Cell::from(Span::styled(
                    pct(s.wear_pct),
                    s.wear_pct.map_or(Style::new(), |w| t.level(w)),
                )),
                Cell::from(num(s.temp_c, "°C")),
                Cell::from(Span::styled(num(s.media_errors, ""), err_style)),
                Cell::from(num(s.power_on_hours, "h")),
            ])
        });
        let widths = [16, 14, 8, 5, 6, 9, 9].map(Constraint::Length);
        table(
            t,
            head,
            body,
            widths,
            b,
            Some(sel).filter(|s| *s < smart.len()),
            top,
            buf,
        );
    }
    let b = block(format!(" Filesystems ({}) ", fs.len()));
    if fs.is_empty() {
        no_data(
            t,
            b,
            "filesystems",
            "nodes report disk.* every interval",
            bottom,
            buf,
        );
    } else {
        let head = ["HOST", "MOUNT", "USED", "SIZE", "USE%", "INODES%"];
        let body = fs.iter().map(|f| {
            let lvl = |v: Option<f64>| v.map_or(Style::new(), |v| t.level(v));
            Row::new([
                Cell::from(f.host.clone()),
                Cell::from(f.mount.clone()),
                Cell::from(opt_bytes(f.used)),
                Cell::from(opt_bytes(f.total)),
                Cell::from(Span::styled(pct(f.used_pct), lvl(f.used_pct))),
                Cell::from(Span::styled(pct(f.inodes_pct), lvl(f.inodes_pct))),
            ])
        });
        let widths = [16, 24, 7, 7, 5, 7].map(Constraint::Length);
        table(
            t,
            head,
            body,
            widths,
            b,
            sel.checked_sub(smart.len()),
            bottom,
            buf,
        );
    }
}
