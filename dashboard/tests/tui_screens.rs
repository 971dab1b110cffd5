//! Screens of the TUI drawn with ratatui's `TestBackend` from a deterministic synthetic fleet
//! (fixed clock) and compared with committed insta snapshots.

use meshmon_dashboard::tui::synthetic::{self, NOW_MS};
use meshmon_dashboard::tui::{App, AppEvent, HistorySource, Settings, View, views};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent};
use ratatui::style::Color;

fn app(hosts: usize) -> App {
    let mut app = App::new(
        Settings {
            color: true,
            history: HistorySource::Live {
                since_ms: NOW_MS - 600_000,
            },
            target: "127.0.0.1:6130".into(),
        },
        NOW_MS - 600_000,
    );
    synthetic::populate(&mut app, hosts, NOW_MS, 600);
    app
}

fn key(app: &mut App, code: KeyCode) {
    app.update(AppEvent::Key(KeyEvent::from(code)));
}

fn draw(app: &App, w: u16, h: u16) -> Terminal<TestBackend> {
    let mut term = Terminal::new(TestBackend::new(w, h)).expect("terminal");
    term.draw(|f| views::draw(f, app)).expect("draw");
    term
}

fn screen(app: &App, w: u16, h: u16) -> String {
    draw(app, w, h).backend().to_string()
}

#[test]
fn fleet_80x24() {
    insta::assert_snapshot!(screen(&app(8), 80, 24));
}

#[test]
fn fleet_160x48_with_alerts() {
    let mut a = app(12);
    a.update(AppEvent::Alerts(synthetic::alerts(NOW_MS)));
    insta::assert_snapshot!(screen(&a, 160, 48));
}

#[test]
fn fleet_sorted_by_cpu_and_filtered() {
    let mut a = app(12);
    key(&mut a, KeyCode::Char('s'));
    key(&mut a, KeyCode::Char('s'));
    key(&mut a, KeyCode::Char('/'));
    for c in "prod".chars() {
        key(&mut a, KeyCode::Char(c));
    }
    key(&mut a, KeyCode::Enter);
    insta::assert_snapshot!(screen(&a, 100, 20));
}

#[test]
fn host_80x24() {
    let mut a = app(8);
    key(&mut a, KeyCode::Down);
    key(&mut a, KeyCode::Enter);
    assert_eq!(a.view, View::Host);
    insta::assert_snapshot!(screen(&a, 80, 24));
}

#[test]
fn containers_view_sorted_and_in_the_host_view() {
    let mut a = app(8);
    key(&mut a, KeyCode::Char('7'));
    assert_eq!(a.view, View::Containers);
    // Default sort: CPU, busiest first.
    insta::assert_snapshot!("containers_by_cpu", screen(&a, 160, 16));
    for _ in 0..4 {
        key(&mut a, KeyCode::Char('s'));
    }
    key(&mut a, KeyCode::Char('S'));
    insta::assert_snapshot!("containers_by_restarts_reversed", screen(&a, 160, 16));
    // Enter opens the selected container's host (the first row: a container of web-07).
    key(&mut a, KeyCode::Enter);
    assert_eq!(a.view, View::Host);
    insta::assert_snapshot!("host_with_containers", screen(&a, 160, 48));
}

#[test]
fn host_gpu_160x48() {
    let mut a = app(12);
    a.selected = Some(synthetic::host_name(9));
    a.host = Some(synthetic::host_name(20)); // not in the fleet: falls back to the selection
    key(&mut a, KeyCode::Char('2'));
    assert_eq!(a.host_data().map(|h| h.name.as_str()), Some("gpu-10"));
    insta::assert_snapshot!(screen(&a, 160, 48));
}

#[test]
fn host_with_top_processes_100x30() {
    let mut a = app(14);
    a.selected = Some(synthetic::host_name(12));
    key(&mut a, KeyCode::Char('2'));
    assert_eq!(a.host_data().map(|h| h.name.as_str()), Some("web-13"));
    insta::assert_snapshot!(screen(&a, 100, 30));
}

#[test]
fn alerts_view() {
    let mut a = app(8);
    a.update(AppEvent::Alerts(synthetic::alerts(NOW_MS)));
    key(&mut a, KeyCode::Char('5'));
    key(&mut a, KeyCode::Down);
    insta::assert_snapshot!(screen(&a, 100, 16));
}

#[test]
fn alerts_view_with_maintenance_windows() {
    let mut a = app(8);
    let (list, windows) = synthetic::alerts_in_maintenance(NOW_MS);
    a.update(AppEvent::Alerts(list));
    a.update(AppEvent::Maintenance(windows));
    key(&mut a, KeyCode::Char('5'));
    insta::assert_snapshot!(screen(&a, 120, 30));
}

#[test]
fn alerts_view_empty_80x24() {
    let mut a = app(4);
    key(&mut a, KeyCode::Char('5'));
    insta::assert_snapshot!(screen(&a, 80, 24));
}

#[test]
fn mesh_view() {
    let mut a = app(8);
    key(&mut a, KeyCode::Char('6'));
    insta::assert_snapshot!(screen(&a, 100, 30));
}

#[test]
fn services_and_disks() {
    let mut a = app(8);
    key(&mut a, KeyCode::Char('3'));
    insta::assert_snapshot!("services", screen(&a, 100, 24));
    key(&mut a, KeyCode::Char('4'));
    insta::assert_snapshot!("disks", screen(&a, 100, 30));
}

#[test]
fn help_overlay_80x24() {
    let mut a = app(8);
    key(&mut a, KeyCode::Char('?'));
    insta::assert_snapshot!(screen(&a, 80, 24));
}

#[test]
fn node_not_answering() {
    let mut a = App::new(
        Settings {
            target: "127.0.0.1:6130".into(),
            ..Settings::default()
        },
        NOW_MS,
    );
    a.update(AppEvent::Disconnected(
        "no meshmon node answers at 127.0.0.1:6130; start one with `meshmon agent --config /etc/meshmon/meshmon.toml`".into(),
    ));
    insta::assert_snapshot!(screen(&a, 80, 24));
}

#[test]
fn down_hosts_are_red_and_no_color_means_no_colour() {
    let down = synthetic::host_name(3);
    let find = |term: &Terminal<TestBackend>| {
        let buf = term.backend().buffer();
        (0..buf.area.height)
            .find_map(|y| {
                let line: String = (0..buf.area.width).map(|x| buf[(x, y)].symbol()).collect();
                line.find(&down).map(|x| buf[(x as u16, y)].fg)
            })
            .expect("down host drawn")
    };
    let a = app(8);
    assert_eq!(find(&draw(&a, 80, 24)), Color::Red);
    let mut a = app(8);
    a.settings.color = false;
    let term = draw(&a, 80, 24);
    assert_eq!(find(&term), Color::Reset);
    let buf = term.backend().buffer();
    assert!(
        buf.content
            .iter()
            .all(|c| c.fg == Color::Reset && c.bg == Color::Reset)
    );
}
