//! The Mesh view: this node's links (neighbour, state, round-trip time, frames/s, drops,
//! authentication failures) and every host's hop distance, so a user can see how the mesh is
//! connected and where it is broken.

use super::services::table;
use super::style::{Theme, ago, num};
use crate::tui::app::{App, View};
use crate::tui::data::HostState;
use crate::tui::rows;
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Paragraph, Row, Widget};
use std::collections::BTreeMap;

pub fn render(app: &App, t: Theme, area: Rect, buf: &mut Buffer) {
    let f = &app.fleet;
    let links_h = (f.links.len() as u16 + 3).clamp(4, area.height / 2);
    let [summary, links, hosts] = Layout::vertical([
        Constraint::Length(2),
        Constraint::Length(links_h),
        Constraint::Fill(1),
    ])
    .areas(area);
    let up = f.links.iter().filter(|l| l.link.state == "up").count();
    let bad = |n: u64| if n > 0 { t.bad() } else { Style::new() };
    let mut by_hops: BTreeMap<Option<u8>, Vec<(&str, HostState)>> = BTreeMap::new();
    for h in f.hosts.values() {
        by_hops
            .entry(h.hops())
            .or_default()
            .push((&h.name, h.state(app.now_ms)));
    }
    let mut map = vec![Span::styled(" hops ", t.title())];
    for (hops, names) in &by_hops {
        map.push(Span::styled(
            format!("{}: ", hops.map_or("?".into(), |h| h.to_string())),
            t.accent(),
        ));
        for (n, s) in names {
            map.push(Span::styled(format!("{n} "), t.state(*s)));
        }
        map.push(Span::styled("│ ", t.dim()));
    }
    Paragraph::new(vec![
        Line::from(vec![
            Span::styled(format!(" node {} ", f.node), t.title()),
            Span::raw(format!("· {} links, {up} up · ", f.links.len())),
            Span::styled(
                format!("dropped {}", f.frames_dropped),
                bad(f.frames_dropped),
            ),
            Span::raw(" · "),
            Span::styled(
                format!("auth failures {}", f.auth_failures),
                bad(f.auth_failures),
            ),
        ]),
        Line::from(map),
    ])
    .render(summary, buf);

    let block = Block::bordered()
        .border_style(t.dim())
        .title(Span::styled(" Links of this node ", t.title()));
    let head = [
        "PEER", "ADDR", "DIR", "ROLE", "STATE", "RTT", "IN/s", "OUT/s", "DROPS", "AUTH!",
    ];
    let body = f.links.iter().map(|l| {
        let k = &l.link;
        let state_style = if k.state == "up" { t.good() } else { t.bad() };
        let rate = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.1}"));
        Row::new([
            Cell::from(if k.peer.is_empty() {
                "?".into()
            } else {
                k.peer.clone()
            }),
            Cell::from(k.addr.clone()),
            Cell::from(k.direction.clone()),
            Cell::from(k.role.clone()),
            Cell::from(Span::styled(k.state.clone(), state_style)),
            Cell::from(
                k.rtt_us
                    .map_or("-".into(), |r| format!("{:.2}ms", r as f64 / 1000.0)),
            ),
            Cell::from(rate(l.in_per_s)),
            Cell::from(rate(l.out_per_s)),
            Cell::from(Span::styled(k.dropped.to_string(), bad(k.dropped))),
            Cell::from(Span::styled(
                k.auth_failures.to_string(),
                bad(k.auth_failures),
            )),
        ])
    });
    let widths = [12, 21, 3, 6, 10, 8, 7, 7, 6, 5].map(Constraint::Length);
    if f.links.is_empty() {
        let inner = block.inner(links);
        block.render(links, buf);
        Line::styled(" no links: this node has no neighbours connected", t.bad())
            .render(inner, buf);
    } else {
        table(t, head, body, widths, block, None, links, buf);
    }

    let hosts_list = rows::by_hops(f);
    let block = Block::bordered().border_style(t.dim()).title(Span::styled(
        " Hosts by hop distance (Enter opens) ",
        t.title(),
    ));
    let head = ["HOP", "HOST", "STATE", "SEEN", "FRAMES", "VERSION", "ROLE"];
    let body = hosts_list.iter().map(|h| {
        let st = h.state(app.now_ms);
        let s = h.status.as_ref();
        Row::new([
            Cell::from(num(h.hops().map(f64::from), "")),
            Cell::from(h.name.clone()),
            Cell::from(Span::styled(st.label(), t.state(st))),
            Cell::from(s.map_or("-".into(), |s| ago(app.now_ms - s.last_seen_ms as i64))),
            Cell::from(s.map_or("-".into(), |s| s.frames.to_string())),
            Cell::from(s.map_or(String::new(), |s| s.version.clone())),
            Cell::from(if s.is_some_and(|s| s.dashboard) {
                "dashboard"
            } else {
                "node"
            }),
        ])
    });
    let widths = [3, 18, 6, 5, 9, 9, 9].map(Constraint::Length);
    let sel = app.row[View::Mesh.index()].min(hosts_list.len().saturating_sub(1));
    table(t, head, body, widths, block, Some(sel), hosts, buf);
}
