//! Key handling and data events tested on App state, without drawing.

use super::alerts::AlertState;
use super::synthetic::{self, NOW_MS, host_name};
use super::{Action, App, AppEvent, Loaded, Settings, SortKey, View, Window};
use meshmon_proto::SeriesKey;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

fn fleet(hosts: usize) -> App {
    let mut app = App::new(Settings::default(), NOW_MS - 120_000);
    synthetic::populate(&mut app, hosts, NOW_MS, 120);
    app
}

fn press(app: &mut App, code: KeyCode) -> Vec<Action> {
    app.update(AppEvent::Key(KeyEvent::from(code)))
}

fn chars(app: &mut App, s: &str) {
    for c in s.chars() {
        press(app, KeyCode::Char(c));
    }
}

fn names(app: &App) -> Vec<String> {
    app.rows().iter().map(|h| h.name.clone()).collect()
}

#[test]
fn rows_are_sorted_by_name_and_the_cursor_moves_and_clamps() {
    let mut app = fleet(6);
    let rows = names(&app);
    assert_eq!(
        rows,
        [
            "build-05", "cache-03", "db-02", "edge-06", "gpu-04", "web-01"
        ]
    );
    assert_eq!(app.selected_index(&app.rows()), Some(0));
    press(&mut app, KeyCode::Char('j'));
    press(&mut app, KeyCode::Down);
    assert_eq!(app.selected.as_deref(), Some("db-02"));
    press(&mut app, KeyCode::Char('k'));
    assert_eq!(app.selected.as_deref(), Some("cache-03"));
    press(&mut app, KeyCode::PageDown);
    assert_eq!(
        app.selected.as_deref(),
        Some("web-01"),
        "clamped at the end"
    );
    press(&mut app, KeyCode::Char('g'));
    assert_eq!(app.selected.as_deref(), Some("build-05"));
    press(&mut app, KeyCode::Char('G'));
    assert_eq!(app.selected.as_deref(), Some("web-01"));
}

#[test]
fn the_selection_follows_its_host_when_rows_resort() {
    let mut app = fleet(6);
    press(&mut app, KeyCode::Char('s'));
    press(&mut app, KeyCode::Char('s'));
    assert_eq!(app.sort, SortKey::Cpu);
    let cpus: Vec<f64> = app
        .rows()
        .iter()
        .filter_map(|h| h.summary.cpu_pct)
        .collect();
    assert!(
        cpus.windows(2).all(|w| w[0] >= w[1]),
        "largest first: {cpus:?}"
    );
    press(&mut app, KeyCode::Char('j'));
    let chosen = app.selected.clone().expect("selected");
    press(&mut app, KeyCode::Char('S'));
    assert!(app.reverse);
    let rows = app.rows();
    assert_eq!(rows[app.selected_index(&rows).expect("row")].name, chosen);
    let cpus: Vec<f64> = rows.iter().filter_map(|h| h.summary.cpu_pct).collect();
    assert!(cpus.windows(2).all(|w| w[0] <= w[1]), "reversed: {cpus:?}");
}

#[test]
fn status_sort_puts_down_hosts_first() {
    let mut app = fleet(6);
    press(&mut app, KeyCode::Char('s'));
    assert_eq!(app.sort, SortKey::Status);
    assert_eq!(names(&app)[..2], ["gpu-04", "edge-06"]);
}

#[test]
fn filter_by_name_or_tag_edits_keeps_and_clears() {
    let mut app = fleet(8);
    press(&mut app, KeyCode::Char('3'));
    press(&mut app, KeyCode::Char('/'));
    assert_eq!(app.view, View::Fleet, "/ always filters the fleet");
    assert!(app.filtering);
    chars(&mut app, "stagx");
    press(&mut app, KeyCode::Backspace);
    chars(&mut app, "ing");
    assert_eq!(app.filter, "staging");
    assert_eq!(names(&app), ["db-08", "gpu-04"], "tag match");
    chars(&mut app, "q"); // typed into the filter, does not quit
    assert!(!app.quit);
    press(&mut app, KeyCode::Backspace);
    press(&mut app, KeyCode::Enter);
    assert!(!app.filtering);
    assert_eq!(app.filter, "staging", "Enter keeps the filter");
    press(&mut app, KeyCode::Char('/'));
    press(&mut app, KeyCode::Esc);
    assert!(app.filter.is_empty() && !app.filtering);
    press(&mut app, KeyCode::Char('/'));
    chars(&mut app, "WEB");
    press(&mut app, KeyCode::Enter);
    assert_eq!(
        names(&app),
        ["web-01", "web-07"],
        "case-insensitive name match"
    );
    press(&mut app, KeyCode::Esc);
    assert!(app.filter.is_empty(), "Esc in the fleet clears the filter");
}

#[test]
fn enter_opens_the_host_and_asks_for_its_history_esc_goes_back() {
    let mut app = fleet(6);
    press(&mut app, KeyCode::Down);
    let actions = press(&mut app, KeyCode::Enter);
    assert_eq!(app.view, View::Host);
    assert_eq!(app.host_data().map(|h| h.name.as_str()), Some("cache-03"));
    assert_eq!(
        actions,
        vec![Action::LoadHistory {
            host: "cache-03".into(),
            since_ms: NOW_MS - 300_000,
            until_ms: NOW_MS,
        }]
    );
    press(&mut app, KeyCode::Right);
    assert_eq!(app.host.as_deref(), Some("db-02"), "→ is the next host");
    press(&mut app, KeyCode::Char('h'));
    press(&mut app, KeyCode::Char('h'));
    press(&mut app, KeyCode::Char('h'));
    assert_eq!(
        app.host.as_deref(),
        Some("web-01"),
        "h wraps to the last host"
    );
    press(&mut app, KeyCode::Esc);
    assert_eq!(app.view, View::Fleet);
    assert_eq!(
        app.selected.as_deref(),
        Some("web-01"),
        "the fleet cursor followed"
    );
}

#[test]
fn time_window_cycles_and_reloads_history_in_the_host_view() {
    let mut app = fleet(3);
    assert!(
        press(&mut app, KeyCode::Char('t')).is_empty(),
        "no host view, no load"
    );
    assert_eq!(app.window, Window::H1);
    press(&mut app, KeyCode::Enter);
    let a = press(&mut app, KeyCode::Char('t'));
    assert_eq!(app.window, Window::H12);
    assert!(
        matches!(&a[..], [Action::LoadHistory { since_ms, .. }] if *since_ms == NOW_MS - 12 * 3_600_000)
    );
    press(&mut app, KeyCode::Char('T'));
    press(&mut app, KeyCode::Char('T'));
    assert_eq!(app.window, Window::M5);
}

#[test]
fn tabs_numbers_and_arrows_switch_views() {
    let mut app = fleet(3);
    press(&mut app, KeyCode::Tab);
    assert_eq!(app.view, View::Host);
    press(&mut app, KeyCode::BackTab);
    press(&mut app, KeyCode::BackTab);
    assert_eq!(app.view, View::Containers);
    press(&mut app, KeyCode::BackTab);
    assert_eq!(app.view, View::Mesh);
    press(&mut app, KeyCode::Char('7'));
    assert_eq!(app.view, View::Containers);
    press(&mut app, KeyCode::Char('4'));
    assert_eq!(app.view, View::Disks);
    press(&mut app, KeyCode::Char('l'));
    assert_eq!(app.view, View::Alerts);
    press(&mut app, KeyCode::Left);
    assert_eq!(app.view, View::Disks);
    press(&mut app, KeyCode::Esc);
    assert_eq!(app.view, View::Fleet);
}

#[test]
fn list_views_scroll_within_their_rows() {
    let mut app = fleet(4);
    press(&mut app, KeyCode::Char('3'));
    let n = app.row_count(View::Services);
    assert_eq!(n, 6, "3 checks + 3 units");
    for _ in 0..10 {
        press(&mut app, KeyCode::Char('j'));
    }
    assert_eq!(app.row[View::Services.index()], n - 1);
    press(&mut app, KeyCode::Home);
    assert_eq!(app.row[View::Services.index()], 0);
    press(&mut app, KeyCode::Char('6'));
    press(&mut app, KeyCode::Down);
    press(&mut app, KeyCode::Enter);
    assert_eq!(app.view, View::Host);
    assert_eq!(
        app.host.as_deref(),
        Some("gpu-04"),
        "mesh rows are by hops: web-01, gpu-04"
    );
}

#[test]
fn help_swallows_keys_until_closed() {
    let mut app = fleet(3);
    press(&mut app, KeyCode::Char('?'));
    assert!(app.help);
    press(&mut app, KeyCode::Char('4'));
    assert_eq!(app.view, View::Fleet);
    press(&mut app, KeyCode::Esc);
    assert!(!app.help);
    press(&mut app, KeyCode::Char('?'));
    press(&mut app, KeyCode::Char('?'));
    assert!(!app.help);
}

#[test]
fn q_ctrl_c_and_shutdown_quit_and_releases_are_ignored() {
    let mut app = fleet(2);
    let mut release = KeyEvent::from(KeyCode::Char('q'));
    release.kind = KeyEventKind::Release;
    app.update(AppEvent::Key(release));
    assert!(!app.quit);
    press(&mut app, KeyCode::Char('q'));
    assert!(app.quit);
    let mut app = fleet(2);
    press(&mut app, KeyCode::Char('/'));
    app.update(AppEvent::Key(KeyEvent::new(
        KeyCode::Char('c'),
        KeyModifiers::CONTROL,
    )));
    assert!(app.quit, "Ctrl-C quits even while filtering");
    let mut app = fleet(2);
    app.update(AppEvent::Shutdown);
    assert!(app.quit);
}

#[test]
fn ack_and_silence_mark_the_alert_and_ask_the_caller() {
    let mut app = fleet(6);
    app.update(AppEvent::Alerts(synthetic::alerts(NOW_MS)));
    assert!(
        press(&mut app, KeyCode::Char('a')).is_empty(),
        "a acts only in Alerts"
    );
    press(&mut app, KeyCode::Char('5'));
    assert_eq!(
        app.selected_alert().map(|a| a.state),
        Some(AlertState::Firing)
    );
    assert_eq!(
        press(&mut app, KeyCode::Char('a')),
        vec![Action::Ack { id: 1 }]
    );
    assert!(app.alerts.list()[0].acked);
    press(&mut app, KeyCode::Down);
    press(&mut app, KeyCode::Down);
    let until_ms = NOW_MS + 3_600_000;
    assert_eq!(
        press(&mut app, KeyCode::Char('m')),
        vec![Action::Silence { id: 3, until_ms }]
    );
    assert_eq!(app.alerts.list()[2].silenced_until_ms, Some(until_ms));
    assert_eq!(app.alerts.firing_on(&host_name(1)), 1);
    press(&mut app, KeyCode::Enter);
    assert_eq!(
        app.host.as_deref(),
        Some(host_name(2).as_str()),
        "Enter opens the alert's host"
    );
}

#[test]
fn a_silent_node_shows_a_notice_until_status_arrives() {
    let mut app = App::new(Settings::default(), NOW_MS);
    app.update(AppEvent::Disconnected("no meshmon node answers".into()));
    assert_eq!(app.notice.as_deref(), Some("no meshmon node answers"));
    app.update(AppEvent::Status(synthetic::status(2, NOW_MS, 0)));
    assert_eq!(app.notice, None);
    assert_eq!(app.fleet.hosts.len(), 2);
}

#[test]
fn loaded_history_is_preferred_then_the_live_ring_continues() {
    let mut app = fleet(2);
    let key = SeriesKey::custom("cpu.usage_pct", Vec::new());
    let host = host_name(0);
    let live = app.series(&host, &key, 0);
    assert!(live.len() > 100, "live ring: {}", live.len());
    app.update(AppEvent::History(Loaded {
        host: host.clone(),
        since_ms: NOW_MS - 300_000,
        until_ms: NOW_MS - 60_000,
        series: vec![(
            key.clone(),
            vec![(NOW_MS - 200_000, 99.0), (NOW_MS - 100_000, 98.0)],
        )],
    }));
    let merged = app.series(&host, &key, 0);
    assert_eq!(
        merged[..2],
        [(NOW_MS - 200_000, 99.0), (NOW_MS - 100_000, 98.0)]
    );
    assert!(merged[2..].iter().all(|p| p.0 > NOW_MS - 60_000));
    assert_eq!(app.stats(&host, &key).map(|s| s.max), Some(99.0));
}

#[test]
fn loaded_history_of_a_labelled_metric_is_aggregated_like_the_live_rings() {
    let mut app = fleet(1);
    let host = host_name(0);
    let iface = |i: &str| SeriesKey::custom("net.rx_bytes_per_s", vec![("iface".into(), i.into())]);
    let pct = |m: &str| SeriesKey::custom("disk.used_pct", vec![("mount".into(), m.into())]);
    let t = NOW_MS - 200_000;
    app.update(AppEvent::History(Loaded {
        host: host.clone(),
        since_ms: NOW_MS - 300_000,
        until_ms: NOW_MS - 60_000,
        series: vec![
            (iface("eth0"), vec![(t, 100.0)]),
            (iface("eth1"), vec![(t, 50.0)]),
            (pct("/"), vec![(t, 40.0)]),
            (pct("/home"), vec![(t, 70.0)]),
        ],
    }));
    let rx = app.series(
        &host,
        &SeriesKey::custom("net.rx_bytes_per_s", Vec::new()),
        0,
    );
    assert_eq!(
        rx.first(),
        Some(&(t, 150.0)),
        "rates add up over interfaces"
    );
    let disk = app.series(&host, &SeriesKey::custom("disk.used_pct", Vec::new()), 0);
    assert_eq!(disk.first(), Some(&(t, 70.0)), "percentages take the worst");
}
