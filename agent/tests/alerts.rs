//! Alerting end to end: real `meshmon agent` processes on 127.0.0.1 and a real local HTTP
//! server standing in for Slack and a generic webhook.

mod common;

use common::alerting::{QUIET, alerts_cli, dashboard, event, query_alerts, rule, two_dashboards};
use common::webhook::Webhook;
use common::{Agent, Spec, serial};
use serde_json::Value;
use std::time::{Duration, Instant};

/// Checks a Slack incoming-webhook body: a non-empty `text` fallback and Block Kit blocks of
/// the kinds and sizes Slack accepts.
fn assert_slack_message(v: &Value) {
    let text = v["text"].as_str().expect("text fallback");
    assert!(!text.is_empty());
    let blocks = v["blocks"].as_array().expect("blocks");
    assert!(!blocks.is_empty() && blocks.len() <= 50);
    for b in blocks {
        match b["type"].as_str().expect("block type") {
            "header" => {
                assert_eq!(b["text"]["type"], "plain_text");
                let t = b["text"]["text"].as_str().expect("header text");
                assert!(!t.is_empty() && t.chars().count() <= 150);
            }
            "section" => {
                let fields = b["fields"].as_array().expect("fields");
                assert!(!fields.is_empty() && fields.len() <= 10);
                for f in fields {
                    assert_eq!(f["type"], "mrkdwn");
                    let t = f["text"].as_str().expect("field text");
                    assert!(!t.is_empty() && t.chars().count() <= 2000);
                }
            }
            "context" => {
                assert!(!b["elements"].as_array().expect("elements").is_empty());
            }
            other => panic!("unexpected block type {other}"),
        }
    }
}

#[test]
fn a_rule_fires_once_within_hold_and_resolves_once_when_changed() {
    let _serial = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    let slack = Webhook::start();
    let hook = Webhook::start();
    let rules = |threshold: f64| {
        format!(
            "{QUIET}[[alert]]\nname = \"cpu-any\"\nmetric = \"cpu.usage_pct\"\nop = \">=\"\nthreshold = {threshold}\nfor = \"2s\"\nseverity = \"critical\"\n"
        )
    };
    let mut spec = dashboard(
        "dash",
        dir.path(),
        Some(&slack.url),
        &[&hook.url],
        &rules(0.0),
    );
    let start = Instant::now();
    let mut d = Agent::start(dir.path(), &spec);
    let fired = hook.wait_for(1, Duration::from_secs(10), |v| rule(v) == "cpu-any");
    assert_eq!(fired.len(), 1, "one firing notification");
    let after = fired[0].at - start;
    // The first CPU reading comes one interval after start; `for` is 2 s.
    assert!(
        after <= Duration::from_millis(4500),
        "fired {after:?} after start (first sample at ~1 s, for 2 s)"
    );
    let body = &fired[0].body;
    assert_eq!(event(body), "firing");
    assert_eq!(body["host"], "dash");
    assert_eq!(body["severity"], "critical");
    assert_eq!(body["threshold"], 0.0);
    assert!(body["value"].as_f64().is_some());
    let started = body["started_ms"].as_i64().expect("started_ms");
    let fired_at: i64 =
        meshmon_dashboard::time::parse_rfc3339(body["fired"].as_str().expect("fired"))
            .expect("rfc3339");
    // `for` is measured on the frames' own timestamps, with the engine's 100 ms of slack for
    // collector wake-up jitter (alert::engine's CLOCK_SLACK_MS).
    assert!(
        fired_at - started >= 2000 - 100,
        "held for `for` before firing: {} ms",
        fired_at - started
    );
    let s = slack.wait_for(1, Duration::from_secs(5), |v| {
        v["text"].as_str().is_some_and(|t| t.contains("cpu-any"))
    });
    assert_eq!(s.len(), 1);
    assert_slack_message(&s[0].body);
    eprintln!(
        "firing POST {after:?} after start; slack text: {}",
        s[0].body["text"]
    );

    // Held: no further notification (repeat is 4 h).
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(
        hook.delivered(|v| rule(v) == "cpu-any").len(),
        1,
        "no re-notification"
    );

    // Restart with the rule changed so that it no longer holds: one resolved, no new firing.
    d.stop();
    spec.extra = dashboard(
        "dash",
        dir.path(),
        Some(&slack.url),
        &[&hook.url],
        &rules(1000.0),
    )
    .extra;
    d.spec = spec.clone();
    d.restart(dir.path());
    let got = hook.wait_for(2, Duration::from_secs(10), |v| rule(v) == "cpu-any");
    std::thread::sleep(Duration::from_secs(2));
    let got2 = hook.delivered(|v| rule(v) == "cpu-any");
    assert_eq!(got.len(), 2, "{got2:?}");
    assert_eq!(got2.len(), 2, "exactly one resolved: {got2:?}");
    assert_eq!(event(&got2[1].body), "resolved");
    assert_eq!(got2[1].body["alert_id"], got2[0].body["alert_id"]);
    let s = slack.wait_for(2, Duration::from_secs(5), |v| {
        v["text"].as_str().is_some_and(|t| t.contains("cpu-any"))
    });
    assert_eq!(s.len(), 2);
    assert!(
        s[1].body["text"]
            .as_str()
            .expect("text")
            .contains("RESOLVED")
    );
    assert_slack_message(&s[1].body);
}

#[test]
fn reminders_come_only_every_repeat() {
    let _serial = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    let hook = Webhook::start();
    let rules = format!(
        "{QUIET}[[alert]]\nname = \"held\"\nmetric = \"cpu.usage_pct\"\nop = \">=\"\nthreshold = 0\nrepeat = \"4s\"\n"
    );
    let _d = Agent::start(
        dir.path(),
        &dashboard("dash", dir.path(), None, &[&hook.url], &rules),
    );
    let first = hook.wait_for(1, Duration::from_secs(10), |v| rule(v) == "held");
    assert_eq!(first.len(), 1);
    std::thread::sleep(Duration::from_millis(9000));
    let got = hook.delivered(|v| rule(v) == "held");
    let kinds: Vec<&str> = got.iter().map(|r| event(&r.body)).collect();
    // 1 s samples for 9 s with a 4 s repeat: the firing and two reminders, not one per sample.
    assert_eq!(kinds, vec!["firing", "reminder", "reminder"], "{kinds:?}");
}

#[test]
fn a_stopped_agent_is_reported_down_once_and_back_once() {
    let _serial = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    let hook = Webhook::start();
    let d = dashboard("dash", dir.path(), None, &[&hook.url], QUIET);
    let mut a = Spec::new("web1");
    a.neighbours = vec![d.port];
    let _d = Agent::start(dir.path(), &d);
    let mut a = Agent::start(dir.path(), &a);
    std::thread::sleep(Duration::from_secs(3));
    let stopped = Instant::now();
    a.stop();
    let down = hook.wait_for(1, Duration::from_secs(25), |v| {
        rule(v) == "host-down" && v["host"] == "web1"
    });
    assert_eq!(down.len(), 1, "host-down within 20 s");
    let took = down[0].at - stopped;
    assert!(took <= Duration::from_secs(20), "took {took:?}");
    let text = down[0].body["text"].as_str().expect("text");
    assert!(
        text.contains("web1") && text.contains("no frames since"),
        "{text}"
    );
    eprintln!("host-down POST {took:?} after the agent stopped: {text}");
    a.restart(dir.path());
    let back = hook.wait_for(2, Duration::from_secs(10), |v| {
        rule(v) == "host-down" && v["host"] == "web1"
    });
    std::thread::sleep(Duration::from_secs(2));
    let all = hook.delivered(|v| rule(v) == "host-down" && v["host"] == "web1");
    assert_eq!(back.len(), 2);
    assert_eq!(all.len(), 2, "one down, one resolved: {all:?}");
    assert_eq!(event(&all[1].body), "resolved");
}

#[test]
fn a_webhook_down_for_30s_then_back_gets_every_notification_once_across_a_restart() {
    let _serial = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    let hook = Webhook::start();
    hook.respond(500, 0);
    let rules = format!(
        "{QUIET}[[alert]]\nname = \"chatty\"\nmetric = \"cpu.usage_pct\"\nop = \">=\"\nthreshold = 0\nrepeat = \"3s\"\n"
    );
    let spec = dashboard("dash", dir.path(), None, &[&hook.url], &rules);
    let began = Instant::now();
    let mut d = Agent::start(dir.path(), &spec);
    std::thread::sleep(Duration::from_secs(12));
    // A restart while notifications are waiting: the outbox keeps them.
    d.stop();
    d.restart(dir.path());
    while began.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        hook.received().iter().filter(|r| r.status == 500).count() >= 3,
        "retried while failing"
    );
    hook.respond(200, 0);
    let recovered = Instant::now();
    std::thread::sleep(Duration::from_secs(15));
    d.stop();
    let got = hook.delivered(|v| rule(v) == "chatty");
    let mut ids: Vec<&str> = got
        .iter()
        .map(|r| r.body["id"].as_str().unwrap_or(""))
        .collect();
    let n = ids.len();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), n, "every notification exactly once");
    assert!(ids.iter().any(|i| i.contains(":firing#")), "{ids:?}");
    // Reminders of the first boot (before the restart at 12 s) and the second.
    assert!(n >= 6, "only {n} notifications: {ids:?}");
    // Everything that was queued while the receiver failed, and is still in the outbox, went.
    let db = meshmon_dashboard::alertdb::AlertDb::open(&dir.path().join("dash.db")).expect("db");
    let outbox = db.outbox().expect("outbox");
    let queued: Vec<_> = outbox.iter().filter(|r| r.state == "queued").collect();
    assert!(queued.is_empty(), "left queued: {queued:?}");
    let sent = outbox.iter().filter(|r| r.state == "sent").count();
    assert_eq!(sent, n, "the receiver got what the outbox says was sent");
    let first_ok = got.iter().map(|r| r.at).min().expect("some");
    eprintln!(
        "{n} notifications delivered once each; first {:?} after recovery",
        first_ok - recovered
    );
}

#[test]
fn http_429_retry_after_is_honoured() {
    let _serial = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    let hook = Webhook::start();
    hook.respond(429, 3);
    let rules = format!(
        "{QUIET}[[alert]]\nname = \"limited\"\nmetric = \"cpu.usage_pct\"\nop = \">=\"\nthreshold = 0\n"
    );
    let _d = Agent::start(
        dir.path(),
        &dashboard("dash", dir.path(), None, &[&hook.url], &rules),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while hook.received().iter().all(|r| r.status != 429) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    hook.respond(200, 0);
    let got = hook.wait_for(1, Duration::from_secs(10), |v| rule(v) == "limited");
    assert_eq!(got.len(), 1);
    let limited = hook.received();
    let first = limited.iter().find(|r| r.status == 429).expect("a 429");
    let gap = got[0].at - first.at;
    assert!(
        gap >= Duration::from_millis(2900),
        "retried {gap:?} after a Retry-After of 3 s"
    );
}

#[test]
fn two_dashboards_notify_once_and_the_survivor_sends_the_resolved() {
    let _serial = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    let hook = Webhook::start();
    let (d1, d2, n) = two_dashboards(dir.path(), &hook.url, QUIET);
    let mut a = Agent::start(dir.path(), &d1);
    let _b = Agent::start(dir.path(), &d2);
    let mut w = Agent::start(dir.path(), &n);
    std::thread::sleep(Duration::from_secs(4));
    w.stop();
    let down = hook.wait_for(1, Duration::from_secs(25), |v| {
        rule(v) == "host-down" && v["host"] == "web1"
    });
    assert_eq!(down.len(), 1);
    assert_eq!(
        down[0].body["source"], "dash-a",
        "the lowest-named live dashboard notifies"
    );
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        hook.delivered(|v| rule(v) == "host-down" && v["host"] == "web1")
            .len(),
        1,
        "the other dashboard did not send it again"
    );
    // Kill the sender while the alert fires; the survivor takes over within 10 s.
    a.kill();
    std::thread::sleep(Duration::from_secs(8));
    w.restart(dir.path());
    let got = hook.wait_for(2, Duration::from_secs(15), |v| {
        rule(v) == "host-down" && v["host"] == "web1"
    });
    std::thread::sleep(Duration::from_secs(3));
    let all = hook.delivered(|v| rule(v) == "host-down" && v["host"] == "web1");
    assert_eq!(got.len(), 2, "{all:?}");
    assert_eq!(all.len(), 2, "one firing, one resolved: {all:?}");
    assert_eq!(event(&all[1].body), "resolved");
    assert_eq!(all[1].body["source"], "dash-b");
    // And the survivor reported the dead dashboard node itself.
    let dead = hook.wait_for(1, Duration::from_secs(10), |v| {
        rule(v) == "host-down" && v["host"] == "dash-a" && event(v) == "firing"
    });
    assert_eq!(dead.len(), 1);
}

#[test]
fn backfilled_history_that_crossed_a_threshold_does_not_notify() {
    let _serial = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    let hook = Webhook::start();
    // While the dashboard is away, web1 has no peers; once it is back, one. Only the
    // backfilled history holds `mesh.peers < 1`, for far longer than `for`.
    let rules = format!(
        "{QUIET}[[alert]]\nname = \"lonely\"\nmetric = \"mesh.peers\"\nop = \"<\"\nthreshold = 1\nfor = \"3s\"\n"
    );
    let d = dashboard("dash", dir.path(), None, &[&hook.url], &rules);
    let mut n = Spec::new("web1");
    n.neighbours = vec![d.port];
    let mut dash = Agent::start(dir.path(), &d);
    let _w = Agent::start(dir.path(), &n);
    std::thread::sleep(Duration::from_secs(4));
    dash.stop();
    std::thread::sleep(Duration::from_secs(15));
    dash.restart(dir.path());
    std::thread::sleep(Duration::from_secs(10));
    dash.stop();
    // The gap was backfilled: the store holds web1's lonely readings.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_meshmon"))
        .args([
            "query",
            "series",
            "--host",
            "web1",
            "--metric",
            "mesh.peers",
            "--since",
            "1h",
            "--format",
            "json",
            "--db",
        ])
        .arg(dir.path().join("dash.db"))
        .output()
        .expect("query");
    let rows: Value = serde_json::from_slice(&out.stdout).expect("json");
    let zeros = rows
        .as_array()
        .expect("rows")
        .iter()
        .filter(|r| r["value"] == 0.0)
        .count();
    assert!(
        zeros >= 8,
        "backfill brought the lonely history ({zeros} zero readings)"
    );
    assert!(
        hook.delivered(|v| rule(v) == "lonely").is_empty(),
        "replayed data never fires: {:?}",
        hook.delivered(|v| rule(v) == "lonely")
    );
}

#[test]
fn a_value_flapping_across_the_threshold_notifies_once_with_a_clear_threshold() {
    let _serial = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    let hook = Webhook::start();
    let tf = dir.path().join("textfile");
    std::fs::create_dir(&tf).expect("mkdir");
    let prom = tf.join("flap.prom");
    let write = |v: f64| {
        let tmp = tf.join("flap.tmp");
        std::fs::write(&tmp, format!("# TYPE flappy gauge\nflappy {v}\n")).expect("write");
        std::fs::rename(&tmp, &prom).expect("rename");
    };
    write(50.0);
    let rules = format!(
        "[collect]\ntextfile_dir = \"{}\"\n\n{QUIET}[[alert]]\nname = \"flap\"\nmetric = \"flappy\"\nop = \">\"\nthreshold = 90\nclear_threshold = 80\n",
        tf.display()
    );
    let _d = Agent::start(
        dir.path(),
        &dashboard("dash", dir.path(), None, &[&hook.url], &rules),
    );
    std::thread::sleep(Duration::from_secs(3));
    // 12 s of a value hovering at the threshold: 91, 89, 91, 89...
    for i in 0..24 {
        write(if i % 2 == 0 { 91.0 } else { 89.0 });
        std::thread::sleep(Duration::from_millis(500));
    }
    let during = hook.delivered(|v| rule(v) == "flap");
    assert_eq!(
        during.len(),
        1,
        "one notification, not one per crossing: {during:?}"
    );
    assert_eq!(event(&during[0].body), "firing");
    write(70.0);
    let after = hook.wait_for(2, Duration::from_secs(10), |v| rule(v) == "flap");
    assert_eq!(after.len(), 2);
    assert_eq!(event(&after[1].body), "resolved");
}

#[test]
fn ack_stops_reminders_and_a_silence_made_on_one_dashboard_holds_on_the_other() {
    let _serial = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    let hook = Webhook::start();
    let rules = format!(
        "{QUIET}[[alert]]\nname = \"held\"\nmetric = \"cpu.usage_pct\"\nop = \">=\"\nthreshold = 0\nrepeat = \"3s\"\n\n[[alert]]\nname = \"quiet\"\nmetric = \"mem.used_pct\"\nop = \">=\"\nthreshold = 0\nrepeat = \"3s\"\n"
    );
    let mut d1 = dashboard("dash-a", dir.path(), None, &[&hook.url], &rules);
    let mut d2 = dashboard("dash-b", dir.path(), None, &[&hook.url], &rules);
    d2.neighbours = vec![d1.port];
    d1.neighbours = vec![];
    let _a = Agent::start(dir.path(), &d1);
    let _b = Agent::start(dir.path(), &d2);
    let first = hook.wait_for(1, Duration::from_secs(10), |v| {
        rule(v) == "held" && v["host"] == "dash-b"
    });
    assert_eq!(first.len(), 1);
    // On the non-notifying node: acknowledge dash-b's `held` alert, silence `quiet` everywhere.
    let db_b = dir.path().join("dash-b.db");
    let id = query_alerts(&db_b)
        .iter()
        .find(|r| r["rule"] == "held" && r["host"] == "dash-b")
        .and_then(|r| r["id"].as_i64())
        .expect("held alert of dash-b");
    let out = alerts_cli(&db_b, &["ack", &id.to_string()]);
    assert!(out.contains("acknowledged"), "{out}");
    let out = alerts_cli(&db_b, &["silence", "--rule", "quiet", "--for", "1h"]);
    assert!(out.contains("silence"), "{out}");
    // Wait until the acknowledgement has reached dash-a (tick + sync: about 3 s, more on a
    // loaded machine), and give the silence, made just after it, a moment more.
    let db_a = dir.path().join("dash-a.db");
    let acked_on_a = || {
        query_alerts(&db_a).iter().any(|r| {
            r["rule"] == "held"
                && r["host"] == "dash-b"
                && (r["acked"] == true || r["acked"] == "true")
        })
    };
    let synced = Instant::now();
    while !acked_on_a() {
        if synced.elapsed() > Duration::from_secs(20) {
            for name in ["dash-a", "dash-b"] {
                let log = std::fs::read_to_string(dir.path().join(format!("{name}.log")));
                eprintln!("---- {name}.log\n{}", log.unwrap_or_default());
                let db = dir.path().join(format!("{name}.db"));
                eprintln!("---- {name} alerts: {:?}", query_alerts(&db));
            }
            panic!("the acknowledgement made on dash-b reached dash-a within 20 s");
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    eprintln!(
        "the acknowledgement reached dash-a after {:?}",
        synced.elapsed()
    );
    std::thread::sleep(Duration::from_secs(2));
    let mark = Instant::now();
    std::thread::sleep(Duration::from_secs(8));
    let late = |r: &&common::webhook::Received| r.at > mark;
    let held_b: Vec<_> = hook
        .delivered(|v| rule(v) == "held" && v["host"] == "dash-b")
        .into_iter()
        .filter(|r| late(&r))
        .collect();
    assert!(
        held_b.is_empty(),
        "reminders after the acknowledgement: {held_b:?}"
    );
    let held_a = hook
        .delivered(|v| rule(v) == "held" && v["host"] == "dash-a")
        .into_iter()
        .filter(|r| late(&r))
        .count();
    assert!(
        held_a >= 2,
        "unacknowledged alerts keep reminding ({held_a})"
    );
    let quiet: Vec<_> = hook
        .delivered(|v| rule(v) == "quiet")
        .into_iter()
        .filter(|r| late(&r))
        .collect();
    assert!(
        quiet.is_empty(),
        "silenced on dash-b, still sent by dash-a: {quiet:?}"
    );
    let silences = alerts_cli(&dir.path().join("dash-a.db"), &["silences"]);
    assert!(
        silences.contains("quiet"),
        "the silence reached dash-a: {silences}"
    );
    let outbox = alerts_cli(&dir.path().join("dash-a.db"), &["outbox"]);
    assert!(outbox.contains("silenced"), "{outbox}");
}
