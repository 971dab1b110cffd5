//! TUI benchmark: startup to the first full frame with 100 hosts, redraw times at 200x60, and
//! memory with 100 hosts x 7 days of in-memory history. Drawn into ratatui's TestBackend, so
//! terminal output costs are not included (see scripts/tui_bench.sh for the real binary).
//!
//! `cargo run --release -p meshmon-dashboard --example tui_bench`

use meshmon_dashboard::tui::synthetic::{self, NOW_MS};
use meshmon_dashboard::tui::{App, AppEvent, HistorySource, Settings, View, Window, views};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use std::time::Instant;

const HOSTS: usize = 100;

fn rss_mb() -> f64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|k| k.parse::<f64>().ok())
        .map_or(f64::NAN, |k| k / 1024.0)
}

fn settings() -> Settings {
    Settings {
        color: true,
        history: HistorySource::Live { since_ms: NOW_MS },
        target: "127.0.0.1:6130".into(),
    }
}

fn redraw_ms(term: &mut Terminal<TestBackend>, app: &App, n: u32) -> (f64, f64) {
    let mut times = Vec::new();
    for _ in 0..n {
        let t = Instant::now();
        term.draw(|f| views::draw(f, app)).expect("draw");
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    let avg = times.iter().sum::<f64>() / times.len() as f64;
    (avg, times[times.len() * 95 / 100])
}

fn main() {
    let rss0 = rss_mb();
    // What a viewer gets on attach: HostInfo and a table and key frame per origin, Status.
    let t0 = Instant::now();
    let mut app = App::new(settings(), NOW_MS);
    synthetic::populate(&mut app, HOSTS, NOW_MS - 7 * 86_400_000, 1);
    let mut term = Terminal::new(TestBackend::new(200, 60)).expect("terminal");
    term.draw(|f| views::draw(f, &app)).expect("draw");
    let startup = t0.elapsed().as_secs_f64() * 1000.0;

    let t1 = Instant::now();
    let ten_min_ago = NOW_MS - 600_000;
    synthetic::fill_history(&mut app, HOSTS, NOW_MS - 7 * 86_400_000, ten_min_ago, 60);
    synthetic::fill_history(&mut app, HOSTS, ten_min_ago + 1000, NOW_MS, 1);
    let fill = t1.elapsed().as_secs_f64();
    let ring_mb = app
        .fleet
        .hosts
        .values()
        .map(|h| h.history_bytes())
        .sum::<usize>() as f64
        / 1e6;
    let t2 = Instant::now();
    app.update(AppEvent::Tick { now_ms: NOW_MS });
    app.update(AppEvent::Status(synthetic::status(HOSTS, NOW_MS, 2)));
    app.view = View::Host;
    app.window = Window::D7;
    term.draw(|f| views::draw(f, &app)).expect("draw");
    let host_first = t2.elapsed().as_secs_f64() * 1000.0;

    println!("meshmon tui benchmark: {HOSTS} hosts, 200x60, TestBackend");
    println!("{:<52} {:>10}", "measure", "value");
    println!(
        "{:<52} {:>7.1} ms",
        "startup to first full frame (fleet, live)", startup
    );
    println!(
        "{:<52} {:>7.1} ms",
        "first host-view frame, 7d window, full rings", host_first
    );
    let mut rows = Vec::new();
    app.view = View::Fleet;
    rows.push(("redraw fleet (sparklines)", redraw_ms(&mut term, &app, 200)));
    app.view = View::Host;
    for w in [Window::M5, Window::H24, Window::D7] {
        app.window = w;
        let label = format!("redraw host view, {} window", w.label());
        rows.push((
            Box::leak(label.into_boxed_str()),
            redraw_ms(&mut term, &app, 200),
        ));
    }
    app.view = View::Mesh;
    rows.push(("redraw mesh", redraw_ms(&mut term, &app, 200)));
    app.view = View::Disks;
    rows.push(("redraw disks", redraw_ms(&mut term, &app, 200)));
    for (label, (avg, p95)) in rows {
        println!("{label:<52} {avg:>7.2} ms avg, {p95:.2} ms p95");
    }
    println!(
        "{:<52} {:>7.1} s",
        "fill 100 hosts x 7 d of history (1/min + 10 min at 1/s)", fill
    );
    println!("{:<52} {:>7.1} MB", "history ring heap", ring_mb);
    println!("{:<52} {:>7.1} MB", "RSS at start", rss0);
    println!(
        "{:<52} {:>7.1} MB",
        "RSS with 100 hosts x 7 d of history",
        rss_mb()
    );
}
