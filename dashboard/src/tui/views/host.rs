//! The Host view: host info, live gauges, history charts (CPU, memory, network, disks, GPU)
//! over the selected time window, the top processes (latest, `host_procs`), and a stats table
//! (avg, max, p95, last) for that window.

use super::host_procs;
use super::style::{Theme, bytes, hhmm, num, uptime};
use crate::tui::app::App;
use crate::tui::data::HostData;
use meshmon_proto::SeriesKey;
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{
    Axis, Block, Cell, Chart, Dataset, GraphType, LineGauge, Paragraph, Row, Table, Widget, Wrap,
};

fn key(name: &str) -> SeriesKey {
    SeriesKey::custom(name, Vec::new())
}

fn labelled(name: &str, label: &str, value: &str) -> SeriesKey {
    SeriesKey::custom(name, vec![(label.to_owned(), value.to_owned())])
}

pub fn render(app: &App, t: Theme, area: Rect, buf: &mut Buffer) {
    let Some(h) = app.host_data() else {
        let msg = format!(" no host matches '{}' (Esc clears the filter)", app.filter);
        Line::styled(msg, t.dim()).render(area, buf);
        return;
    };
    let gauges = gauges(h);
    let gcols = (area.width / 38).clamp(1, 4) as usize;
    let grows = gauges
        .len()
        .div_ceil(gcols)
        .min(if area.height >= 30 { 4 } else { 2 });
    let ctr_lines = super::containers::host_lines(h, area.height);
    let procs = host_procs::rows(h, if area.height >= 40 { 8 } else { 4 });
    let procs_height = if procs.is_empty() {
        0
    } else {
        procs.len() as u16 + 2
    };
    let [info, gauge_area, charts, procs_area, ctrs, stats] = Layout::vertical([
        Constraint::Length(2),
        Constraint::Length(grows as u16),
        Constraint::Fill(1),
        Constraint::Length(procs_height),
        Constraint::Length(ctr_lines),
        Constraint::Length(stat_rows(h).len() as u16 + 1),
    ])
    .areas(area);
    header(app, t, h, info, buf);
    let cells = Layout::horizontal(vec![Constraint::Fill(1); gcols]).split(gauge_area);
    for (i, (label, ratio, text)) in gauges.iter().take(gcols * grows).enumerate() {
        let r = cells[i % gcols];
        let r = Rect::new(r.x, r.y + (i / gcols) as u16, r.width.saturating_sub(1), 1);
        LineGauge::default()
            .ratio(ratio.clamp(0.0, 1.0))
            .label(Line::from(vec![
                Span::styled(format!("{label:<5}"), t.title()),
                Span::styled(format!("{text:>13} "), t.level(ratio * 100.0)),
            ]))
            .filled_style(t.level(ratio * 100.0).patch(t.accent()))
            .unfilled_style(t.dim())
            .render(r, buf);
    }
    render_charts(app, t, h, charts, buf);
    host_procs::render(t, &procs, procs_area, buf);
    if ctr_lines > 0 {
        super::containers::render_host(h, t, ctrs, buf);
    }
    render_stats(app, t, h, stats, buf);
}

fn header(app: &App, t: Theme, h: &HostData, area: Rect, buf: &mut Buffer) {
    let state = h.state(app.now_ms);
    let mut first = vec![
        Span::styled(format!(" {} ", h.name), t.title()),
        Span::styled(state.label(), t.state(state)),
        Span::raw(format!("  hops {}", num(h.hops().map(f64::from), ""))),
    ];
    let mut second = vec![Span::raw(" ")];
    if let Some(i) = &h.info {
        first.push(Span::raw(format!(
            "  {}  kernel {}  {}",
            i.os, i.kernel, i.arch
        )));
        second.push(Span::raw(format!(
            "meshmon {}  {} cores  interval {}s{}  ",
            i.version,
            i.cores,
            i.interval_ms as f64 / 1000.0,
            if i.dashboard { "  dashboard" } else { "" }
        )));
    } else {
        first.push(Span::styled("  (host info not received yet)", t.dim()));
    }
    if let Some(u) = h.summary.uptime_s {
        second.push(Span::raw(format!("up {}  ", uptime(u))));
    }
    if !h.tags().is_empty() {
        second.push(Span::styled(
            format!("tags {}", h.tags().join(",")),
            t.accent(),
        ));
    }
    Paragraph::new(vec![Line::from(first), Line::from(second)])
        .wrap(Wrap { trim: false })
        .render(area, buf);
}

/// (label, ratio 0..1, text) of every gauge: CPU, memory, swap, each disk, each GPU.
fn gauges(h: &HostData) -> Vec<(String, f64, String)> {
    let s = &h.summary;
    let mut g = Vec::new();
    if let Some(c) = s.cpu_pct {
        let load = s.load1.map_or(String::new(), |l| format!("ld {l:.1} "));
        g.push(("CPU".into(), c / 100.0, format!("{load}{c:.0}%")));
    }
    if let Some(m) = s.mem_pct {
        let text = match (s.mem_used, s.mem_total) {
            (Some(u), Some(tot)) => format!("{}/{}", bytes(u), bytes(tot)),
            _ => format!("{m:.0}%"),
        };
        g.push(("MEM".into(), m / 100.0, text));
    }
    if let (Some(u), Some(tot)) = (h.value("swap.used_bytes"), h.value("swap.total_bytes"))
        && tot > 0.0
    {
        let text = format!("{}/{}", bytes(u), bytes(tot));
        g.push(("SWAP".into(), u / tot, text));
    }
    for (m, v) in h.by_label("disk.used_pct", "mount") {
        g.push((m.to_owned(), v / 100.0, format!("{v:.0}%")));
    }
    for (gpu, v) in h.by_label("gpu.util_pct", "gpu") {
        g.push((format!("GPU{gpu}"), v / 100.0, format!("{v:.0}%")));
    }
    g
}

type Fmt = fn(f64) -> String;

/// One chart: title, (legend, series) lines, y maximum (None: fit the data), value format.
type ChartSpec = (String, Vec<(String, SeriesKey)>, Option<f64>, Fmt);

fn charts(h: &HostData) -> Vec<ChartSpec> {
    let pctf: Fmt = |v| format!("{v:.0}%");
    let ratef: Fmt = |v| format!("{}/s", bytes(v));
    let mut c = vec![
        (
            "CPU".into(),
            vec![("cpu".into(), key("cpu.usage_pct"))],
            Some(100.0),
            pctf,
        ),
        (
            "Memory".into(),
            vec![("mem".into(), key("mem.used_pct"))],
            Some(100.0),
            pctf,
        ),
        (
            "Network".into(),
            vec![
                ("rx".into(), key("net.rx_bytes_per_s")),
                ("tx".into(), key("net.tx_bytes_per_s")),
            ],
            None,
            ratef,
        ),
    ];
    let disks: Vec<(String, SeriesKey)> = h
        .by_label("disk.used_pct", "mount")
        .take(6)
        .map(|(m, _)| (m.to_owned(), labelled("disk.used_pct", "mount", m)))
        .collect();
    if !disks.is_empty() {
        c.push(("Disks".into(), disks, Some(100.0), pctf));
    }
    let gpus: Vec<(String, SeriesKey)> = h
        .by_label("gpu.util_pct", "gpu")
        .take(6)
        .map(|(g, _)| (format!("gpu{g}"), labelled("gpu.util_pct", "gpu", g)))
        .collect();
    if !gpus.is_empty() {
        c.push(("GPU".into(), gpus, Some(100.0), pctf));
    }
    c
}

fn render_charts(app: &App, t: Theme, h: &HostData, area: Rect, buf: &mut Buffer) {
    if area.height < 4 {
        return;
    }
    let all = charts(h);
    let per_row = ((area.width / 26) as usize).clamp(1, all.len());
    let rows = if per_row < all.len() && area.height >= 20 {
        2
    } else {
        1
    };
    let shown = all.len().min(per_row * rows);
    let per_row = shown.div_ceil(rows);
    let row_areas = Layout::vertical(vec![Constraint::Fill(1); rows]).split(area);
    let (since, until) = app.window_range();
    for (i, (title, series, ymax, fmt)) in all.into_iter().take(shown).enumerate() {
        let cells =
            Layout::horizontal(vec![Constraint::Fill(1); per_row]).split(row_areas[i / per_row]);
        let r = cells[i % per_row];
        let points = usize::from(r.width.saturating_sub(8)) * 2;
        let data: Vec<(String, Vec<(f64, f64)>)> = series
            .iter()
            .map(|(name, k)| {
                let pts = app.series(&h.name, k, points);
                let xy = pts
                    .iter()
                    .map(|(ts, v)| ((ts - until) as f64 / 1000.0, *v))
                    .collect();
                (name.clone(), xy)
            })
            .collect();
        let top = ymax.unwrap_or_else(|| {
            let m = data
                .iter()
                .flat_map(|d| d.1.iter().map(|p| p.1))
                .fold(0.0, f64::max);
            if m > 0.0 { m * 1.1 } else { 1.0 }
        });
        let last: Vec<String> = series
            .iter()
            .filter_map(|(n, k)| {
                let v = h.ring(k).and_then(|r| r.last()).map(|l| l.1);
                v.map(|v| format!("{n} {}", fmt(v)))
            })
            .collect();
        let datasets = data
            .iter()
            .enumerate()
            .map(|(j, (name, xy))| {
                Dataset::default()
                    .name(name.clone())
                    .marker(Marker::Braille)
                    .graph_type(GraphType::Line)
                    .style(t.series(j))
                    .data(xy)
            })
            .collect();
        let span_s = (until - since) as f64 / 1000.0;
        let chart = Chart::new(datasets)
            .block(
                Block::bordered()
                    .border_style(t.dim())
                    .title(Span::styled(format!(" {title} "), t.title()))
                    .title_bottom(Line::styled(format!(" {} ", last.join(" ")), t.accent())),
            )
            .x_axis(Axis::default().bounds([-span_s, 0.0]).style(t.dim()))
            .y_axis(
                Axis::default()
                    .bounds([0.0, top])
                    .labels([Line::from("0"), Line::from(fmt(top))])
                    .style(t.dim()),
            )
            .legend_position(None);
        chart.render(r, buf);
        if data.iter().all(|d| d.1.is_empty()) && r.height > 2 {
            let mid = Rect::new(r.x + 2, r.y + r.height / 2, r.width.saturating_sub(4), 1);
            Line::styled("no data yet", t.dim())
                .centered()
                .render(mid, buf);
        }
    }
}

/// (label, key, formatter) of each row of the stats table.
fn stat_rows(h: &HostData) -> Vec<(String, SeriesKey, Fmt)> {
    let pctf: Fmt = |v| format!("{v:.1}%");
    let ratef: Fmt = |v| format!("{}/s", bytes(v));
    let plain: Fmt = |v| format!("{v:.2}");
    let mut r = vec![
        ("cpu.usage_pct".to_owned(), key("cpu.usage_pct"), pctf),
        ("cpu.load1".to_owned(), key("cpu.load1"), plain),
        ("mem.used_pct".to_owned(), key("mem.used_pct"), pctf),
        ("net.rx (all)".to_owned(), key("net.rx_bytes_per_s"), ratef),
        ("net.tx (all)".to_owned(), key("net.tx_bytes_per_s"), ratef),
    ];
    for (m, _) in h.by_label("disk.used_pct", "mount").take(3) {
        r.push((
            format!("disk {m}"),
            labelled("disk.used_pct", "mount", m),
            pctf,
        ));
    }
    for (g, _) in h.by_label("gpu.util_pct", "gpu").take(2) {
        r.push((
            format!("gpu{g} util"),
            labelled("gpu.util_pct", "gpu", g),
            pctf,
        ));
    }
    r
}

fn render_stats(app: &App, t: Theme, h: &HostData, area: Rect, buf: &mut Buffer) {
    let (since, _) = app.window_range();
    let head = Row::new(
        [
            format!("STATS {} (since {})", app.window.label(), hhmm(since)),
            "AVG".into(),
            "MAX".into(),
            "P95".into(),
            "LAST".into(),
        ]
        .map(|s| Cell::from(Span::styled(s, t.head()))),
    );
    let rows = stat_rows(h).into_iter().map(|(label, k, fmt)| {
        let s = app.stats(&h.name, &k);
        let f = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), fmt);
        Row::new([
            Cell::from(label),
            Cell::from(f(s.map(|s| s.avg))),
            Cell::from(f(s.map(|s| s.max))),
            Cell::from(f(s.map(|s| s.p95))),
            Cell::from(f(s.map(|s| s.last))),
        ])
    });
    name_and_four(head, rows, area, buf);
}

/// A table of a name column and four value columns 10 wide: the host's stats, and its top
/// processes.
pub(super) fn name_and_four<'a>(
    head: Row<'a>,
    rows: impl IntoIterator<Item = Row<'a>>,
    area: Rect,
    buf: &mut Buffer,
) {
    Table::new(
        rows,
        [
            Constraint::Min(24),
            Constraint::Length(10),
            Constraint::Length(10),
            Constraint::Length(10),
            Constraint::Length(10),
        ],
    )
    .header(head)
    .column_spacing(1)
    .render(area, buf);
}
