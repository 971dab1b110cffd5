//! The Host view's top processes: the host's latest `proc.*` values (its top names by CPU and
//! memory, as the agent sent them with its newest frame), sorted by CPU, `other` last.
//! History of one name is in `meshmon query series --metric 'proc.cpu_pct{name="..."}'`.
//!
//! Not here: the rest of the Host view (`host.rs`).

use super::style::{Theme, num, opt_bytes, rate};
use crate::tui::host::HostData;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::Span;
use ratatui::widgets::{Cell, Row};

/// One name's latest values.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcRow {
    pub name: String,
    pub cpu_pct: Option<f64>,
    pub mem: Option<f64>,
    pub read: Option<f64>,
    pub write: Option<f64>,
}

/// At most `n` names by CPU (then memory, then name), `other` last when present.
pub fn rows(h: &HostData, n: usize) -> Vec<ProcRow> {
    let mut rows: Vec<ProcRow> = h
        .by_label("proc.mem_bytes", "name")
        .map(|(name, mem)| {
            let v = |m: &str| {
                h.by_label(m, "name")
                    .find(|(x, _)| *x == name)
                    .map(|(_, v)| v)
            };
            ProcRow {
                name: name.to_owned(),
                cpu_pct: v("proc.cpu_pct"),
                mem: Some(mem),
                read: v("proc.io_read_bytes_per_s"),
                write: v("proc.io_write_bytes_per_s"),
            }
        })
        .collect();
    let other = rows
        .iter()
        .position(|r| r.name == "other")
        .map(|i| rows.remove(i));
    let key = |v: Option<f64>| v.unwrap_or(-1.0);
    rows.sort_by(|a, b| {
        key(b.cpu_pct)
            .total_cmp(&key(a.cpu_pct))
            .then(key(b.mem).total_cmp(&key(a.mem)))
            .then(a.name.cmp(&b.name))
    });
    rows.truncate(n.saturating_sub(usize::from(other.is_some())));
    rows.extend(other);
    rows
}

/// The table: a header line and one line per row.
pub fn render(t: Theme, rows: &[ProcRow], area: Rect, buf: &mut Buffer) {
    if rows.is_empty() || area.height < 2 {
        return;
    }
    let head = Row::new(
        ["TOP PROCESSES (latest)", "CPU", "MEM", "READ/s", "WRITE/s"]
            .map(|s| Cell::from(Span::styled(s, t.head()))),
    );
    let body = rows.iter().map(|r| {
        let name = if r.name == "other" {
            Span::styled("(other)", t.dim())
        } else {
            Span::raw(r.name.clone())
        };
        Row::new([
            Cell::from(name),
            Cell::from(Span::styled(
                num(r.cpu_pct, "%"),
                t.level(r.cpu_pct.unwrap_or(0.0)),
            )),
            Cell::from(opt_bytes(r.mem)),
            Cell::from(rate(r.read)),
            Cell::from(rate(r.write)),
        ])
    });
    super::host::name_and_four(head, body, area, buf);
}
