//! Maintenance windows end to end: real `meshmon agent` processes on 127.0.0.1, a real local
//! HTTP server standing in for the webhook, windows from the config (recurring, in a time
//! zone) and from `meshmon alerts maintenance` (one-off, on one of two dashboard nodes).

mod common;

use common::alerting::{QUIET, alerts_cli, dashboard, event, query_alerts, rule, two_dashboards};
use common::webhook::Webhook;
use common::{Agent, Spec, serial};
use serde_json::Value;
use std::path::Path;
use std::time::{Duration, Instant};

/// A `[[maintenance]]` table for `hosts` whose local time range in `tz` runs from 30 minutes
/// before now to an hour after (on the day it starts, so also across midnight).
fn window_around_now(hosts: &str, rules: &str, tz: &str) -> String {
    let zone = jiff::tz::TimeZone::get(tz).expect("zone");
    let now = jiff::Timestamp::now();
    let local =
        |min: i64| (now + jiff::SignedDuration::from_mins(min)).to_zoned_datetime(zone.clone());
    let (from, to) = (local(-30), local(60));
    let day = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
        [usize::try_from(from.weekday().to_monday_zero_offset()).expect("day")];
    format!(
        "[[maintenance]]\nhosts = [\"{hosts}\"]\nrules = [\"{rules}\"]\ndays = [\"{day}\"]\nfrom = \"{:02}:{:02}\"\nto = \"{:02}:{:02}\"\ntimezone = \"{tz}\"\n\n",
        from.hour(),
        from.minute(),
        to.hour(),
        to.minute()
    )
}

/// The host-down alert of `host` in the store `db`, if any.
fn host_down_row(db: &Path, host: &str) -> Option<Value> {
    query_alerts(db)
        .into_iter()
        .find(|r| r["rule"] == "host-down" && r["host"] == host)
}

fn down_of<'a>(host: &'a str) -> impl Fn(&Value) -> bool + 'a {
    move |v| rule(v) == "host-down" && v["host"] == host
}

#[test]
fn a_recurring_window_around_now_keeps_host_down_from_firing() {
    let _serial = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    let hook = Webhook::start();
    // web1 is in the window (in India's time zone, UTC+5:30); web2 is not, and shows that a
    // host-down would have gone out in this run.
    let extra = format!(
        "{QUIET}{}",
        window_around_now("web1", "host-down", "Asia/Kolkata")
    );
    let d = dashboard("dash", dir.path(), None, &[&hook.url], &extra);
    let db = dir.path().join("dash.db");
    let mut web1 = Spec::new("web1");
    let mut web2 = Spec::new("web2");
    web1.neighbours = vec![d.port];
    web2.neighbours = vec![d.port];
    let _d = Agent::start(dir.path(), &d);
    let mut a = Agent::start(dir.path(), &web1);
    let mut b = Agent::start(dir.path(), &web2);
    std::thread::sleep(Duration::from_secs(4));
    let stopped = Instant::now();
    a.stop();
    b.stop();
    let control = hook.wait_for(1, Duration::from_secs(25), down_of("web2"));
    assert_eq!(
        control.len(),
        1,
        "web2, outside the window, is reported down"
    );
    // Well past web1's host-down time too (15 s), and then some.
    while stopped.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(200));
    }
    let web1_sent = hook.delivered(down_of("web1"));
    assert!(
        web1_sent.is_empty(),
        "web1 is in maintenance: {web1_sent:?}"
    );
    let row = host_down_row(&db, "web1").expect("web1's host-down is recorded");
    assert_eq!(row["state"], "pending", "it does not fire: {row}");
    assert_eq!(row["maintenance"], "true", "and is marked: {row}");
    let listed = std::process::Command::new(env!("CARGO_BIN_EXE_meshmon"))
        .args(["alerts", "maintenance", "--list", "--config"])
        .arg(&_d.config)
        .output()
        .expect("list");
    let listed = String::from_utf8_lossy(&listed.stdout);
    assert!(
        listed.contains("hosts 'web1'") && listed.contains("Asia/Kolkata (active)"),
        "{listed}"
    );
    eprintln!(
        "web2 down notified {:?} after the stop; web1 silent for 30 s: {row}",
        control[0].at - stopped
    );
}

#[test]
fn a_one_off_window_made_on_one_dashboard_holds_on_the_other_and_its_end_fires_once() {
    let _serial = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    let hook = Webhook::start();
    let (d1, d2, w) = two_dashboards(dir.path(), &hook.url, QUIET);
    let _a = Agent::start(dir.path(), &d1);
    let _b = Agent::start(dir.path(), &d2);
    let mut web = Agent::start(dir.path(), &w);
    std::thread::sleep(Duration::from_secs(4));
    // On dash-b, which does not notify (dash-a is the lower name): a 25 s window for web1.
    let made = Instant::now();
    let out = alerts_cli(
        &dir.path().join("dash-b.db"),
        &[
            "maintenance",
            "--host",
            "web1",
            "--for",
            "25s",
            "--comment",
            "kernel upgrade",
        ],
    );
    assert!(out.starts_with("maintenance window "), "{out}");
    // The window reaches dash-a (tick + sync: about 3 s) before web1 would go down.
    std::thread::sleep(Duration::from_secs(3));
    let db_a = dir.path().join("dash-a.db");
    let list = alerts_cli(&db_a, &["maintenance", "--list"]);
    assert!(
        list.contains("web1") && list.contains("kernel upgrade") && list.contains("active"),
        "the window reached dash-a: {list}"
    );
    let stopped = Instant::now();
    web.stop();
    // host-down would fire 15 s after the stop (about 22 s after the window was made); the
    // window lasts 25 s.
    while made.elapsed() < Duration::from_millis(24_500) {
        std::thread::sleep(Duration::from_millis(200));
    }
    let early = hook.delivered(down_of("web1"));
    assert!(early.is_empty(), "sent inside the window: {early:?}");
    let row = host_down_row(&db_a, "web1").expect("recorded on dash-a");
    assert_eq!(
        (row["state"].as_str(), row["maintenance"].as_str()),
        (Some("pending"), Some("true")),
        "held on dash-a, the notifier: {row}"
    );
    // The window ends while web1 is still down: one firing, from dash-a, and no other.
    let got = hook.wait_for(1, Duration::from_secs(10), down_of("web1"));
    let ended = made + Duration::from_secs(25);
    assert_eq!(got.len(), 1, "the firing after the window");
    assert_eq!(event(&got[0].body), "firing");
    assert_eq!(got[0].body["source"], "dash-a");
    let after = got[0].at.saturating_duration_since(ended);
    std::thread::sleep(Duration::from_secs(6));
    let all = hook.delivered(down_of("web1"));
    assert_eq!(all.len(), 1, "exactly one, from either node: {all:?}");
    let row = host_down_row(&db_a, "web1").expect("row");
    assert_eq!(
        (row["state"].as_str(), row["maintenance"].as_str()),
        (Some("firing"), Some("false")),
        "{row}"
    );
    eprintln!(
        "web1 stopped {:?} after the window was made; its one firing came {after:?} after \
         the window ended",
        stopped - made
    );
}

#[test]
fn an_alert_firing_through_a_short_window_is_sent_once_when_it_ends() {
    let _serial = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    let hook = Webhook::start();
    // Fires about 6 s after the start (first sample at ~1 s, `for` 5 s); reminds every 2 s.
    let rules = format!(
        "{QUIET}[[alert]]\nname = \"held\"\nmetric = \"cpu.usage_pct\"\nop = \">=\"\nthreshold = 0\nfor = \"5s\"\nrepeat = \"2s\"\n"
    );
    let spec = dashboard("dash", dir.path(), None, &[&hook.url], &rules);
    let db = dir.path().join("dash.db");
    let _d = Agent::start(dir.path(), &spec);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !db.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = alerts_cli(
        &db,
        &[
            "maintenance",
            "--host",
            "dash",
            "--rule",
            "held",
            "--for",
            "10s",
        ],
    );
    let made = Instant::now();
    assert!(out.contains("rule 'held' host 'dash'"), "{out}");
    while made.elapsed() < Duration::from_millis(9_500) {
        std::thread::sleep(Duration::from_millis(100));
    }
    let early = hook.delivered(|v| rule(v) == "held");
    assert!(early.is_empty(), "sent inside the window: {early:?}");
    let row = query_alerts(&db)
        .into_iter()
        .find(|r| r["rule"] == "held")
        .expect("recorded");
    assert_eq!(
        (row["state"].as_str(), row["maintenance"].as_str()),
        (Some("firing"), Some("true")),
        "fired in the window, marked: {row}"
    );
    let got = hook.wait_for(1, Duration::from_secs(5), |v| rule(v) == "held");
    assert_eq!(got.len(), 1);
    assert_eq!(
        event(&got[0].body),
        "firing",
        "a normal firing: {:?}",
        got[0].body
    );
    // No burst: within the next second nothing else (the reminders due in the window are
    // not sent); afterwards reminders come every 2 s as usual.
    std::thread::sleep(Duration::from_millis(900));
    let burst: Vec<_> = hook
        .delivered(|v| rule(v) == "held")
        .into_iter()
        .filter(|r| r.at <= got[0].at + Duration::from_millis(900))
        .collect();
    assert_eq!(burst.len(), 1, "a burst after the window: {burst:?}");
    std::thread::sleep(Duration::from_secs(4));
    let all = hook.delivered(|v| rule(v) == "held");
    let kinds: Vec<&str> = all.iter().map(|r| event(&r.body)).collect();
    assert_eq!(
        kinds.iter().filter(|k| **k == "firing").count(),
        1,
        "{kinds:?}"
    );
    assert!(
        (2..=4).contains(&kinds.len()),
        "reminders resume at their pace after it: {kinds:?}"
    );
}
