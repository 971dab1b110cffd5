//! Notification targets end to end: a real `meshmon agent` dashboard node, 30 hosts of the
//! fleet simulator (the real protocol) and real local HTTP servers as receivers.
//!
//! - Grouping: the 30 hosts (three fleets of 10) stop within 5 s; the target with `group = "30s"` gets one host-down
//!   message naming all 30, the target without grouping gets 30, and a target answering 400
//!   expires its notifications without holding up the others. After the hosts come back the
//!   grouped target gets one resolved message. The outbox shows the group.
//! - `meshmon alerts test` against a receiver answering 200 and one answering 500.

mod common;

use common::webhook::{Received, Webhook};
use common::{Agent, Spec, serial};
use meshmon_sim::{Fleet, FleetConfig};
use serde_json::Value;
use std::path::Path;
use std::process::Command;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const HOSTS: usize = 30;

/// Built-ins that could fire on a busy machine are off; host-down stays.
const QUIET: &str = "[collect]\ndocker_dir = \"\"\nsmartctl = \"\"\ngpu = false\n\n[[alert]]\nname = \"disk-full\"\nenabled = false\n\n[[alert]]\nname = \"inodes-full\"\nenabled = false\n\n";

fn url_file(dir: &Path, name: &str, url: &str) -> String {
    let p = dir.join(format!("{name}.url"));
    std::fs::write(&p, format!("{url}\n")).expect("url file");
    p.display().to_string()
}

fn target(dir: &Path, name: &str, url: &str, extra: &str) -> String {
    format!(
        "[[notify.target]]\nname = \"{name}\"\nkind = \"webhook\"\nurl_file = \"{}\"\nrules = [\"host-down\"]\nhosts = [\"sim-*\"]\n{extra}\n",
        url_file(dir, name, url)
    )
}

fn host_down(event: &'static str) -> impl Fn(&Value) -> bool {
    move |v: &Value| v["rule"] == "host-down" && v["event"] == event
}

/// The hosts a delivered message names (a group's `hosts`, or an alert's `host`).
fn hosts_of(r: &Received) -> Vec<String> {
    match r.body["hosts"].as_array() {
        Some(h) => h
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        None => r.body["host"]
            .as_str()
            .map(str::to_owned)
            .into_iter()
            .collect(),
    }
}

fn outbox(db: &Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_meshmon"))
        .args(["alerts", "outbox", "--db"])
        .arg(db)
        .output()
        .expect("meshmon alerts outbox");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Waits (off the runtime's async workers) for `n` bodies at `hook` that `pred` accepts.
fn wait(hook: &Webhook, n: usize, secs: u64, pred: impl Fn(&Value) -> bool) -> Vec<Received> {
    tokio::task::block_in_place(|| hook.wait_for(n, Duration::from_secs(secs), pred))
}

/// The 30 hosts as three fleets of 10 (`sim-a-0000`..., `sim-b-0000`..., `sim-c-0000`...), each
/// its own link, so that they can stop one after the other.
fn fleets(port: u16) -> Vec<meshmon_sim::FleetHandle> {
    let addr = format!("127.0.0.1:{port}").parse().expect("addr");
    ["a", "b", "c"]
        .iter()
        .enumerate()
        .map(|(i, part)| {
            let mut cfg = FleetConfig::new(addr, HOSTS / 3);
            cfg.name_prefix = format!("sim-{part}-");
            cfg.link_name = format!("sim-fleet-{part}");
            cfg.seed = i as u64 + 1;
            Fleet::start(cfg, CancellationToken::new()).expect("fleet")
        })
        .collect()
}

async fn all_connected(fleets: &[meshmon_sim::FleetHandle]) -> bool {
    for f in fleets {
        if !f.wait_connected(Duration::from_secs(15)).await {
            return false;
        }
    }
    true
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_hosts_down_make_one_grouped_message_and_thirty_plain_ones() {
    let _serial = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let (grouped, plain, rejecting) = (Webhook::start(), Webhook::start(), Webhook::start());
    rejecting.respond(400, 0);
    let db = d.join("dash.db");
    let mut spec = Spec::new("dash-a");
    spec.extra = format!(
        "dashboard = true\n\n{QUIET}[store]\npath = \"{}\"\n\n{}{}{}",
        db.display(),
        target(d, "grouped", &grouped.url, "group = \"30s\""),
        target(d, "plain", &plain.url, ""),
        target(d, "rejecting", &rejecting.url, ""),
    );
    let _dash = Agent::start(d, &spec);
    let sim = fleets(spec.port);
    assert!(all_connected(&sim).await, "fleets linked");
    // Every host known to the alert engine (frames for a few intervals).
    tokio::time::sleep(Duration::from_secs(5)).await;
    // The three fleets stop 2 s apart: 30 hosts down within 5 s, as a switch failing
    // port by port would take them.
    for (i, f) in sim.into_iter().enumerate() {
        if i > 0 {
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        f.join().await;
    }

    // host-down fires 5 s after a host's last frame: 30 plain messages, one grouped.
    let plain_down = wait(&plain, HOSTS, 40, host_down("firing"));
    assert_eq!(plain_down.len(), HOSTS, "one per host without grouping");
    let group_down = wait(&grouped, 1, 45, |v| v["rule"] == "host-down");
    assert_eq!(group_down.len(), 1);
    let named = hosts_of(&group_down[0]);
    assert_eq!(named.len(), HOSTS, "{}", group_down[0].body);
    assert_eq!(group_down[0].body["count"], HOSTS);
    let text = group_down[0].body["text"].as_str().unwrap_or_default();
    assert!(
        text.contains("host-down: 30 hosts: sim-") && text.ends_with("and 25 more"),
        "{text}"
    );
    let first_plain = plain_down.iter().map(|r| r.at).min().expect("plain");
    let last_plain = plain_down.iter().map(|r| r.at).max().expect("plain");
    eprintln!(
        "30 plain host-down messages within {:?}; the grouped one {:?} after the first: {text}",
        last_plain - first_plain,
        group_down[0].at - first_plain
    );

    // The 400 target's 30 notifications expired; they held up nothing.
    let rows = outbox(&db);
    let expired = rows
        .lines()
        .filter(|l| l.contains("#rejecting") && l.contains("expired"))
        .count();
    assert_eq!(expired, HOSTS, "{rows}");
    let in_group = rows
        .lines()
        .filter(|l| l.contains("grouped with 29"))
        .count();
    assert_eq!(in_group, HOSTS, "{rows}");

    // Back: 30 plain resolved notices, one grouped one.
    let sim = fleets(spec.port);
    assert!(all_connected(&sim).await, "fleets back");
    let plain_back = wait(&plain, HOSTS, 30, host_down("resolved"));
    assert_eq!(plain_back.len(), HOSTS);
    let group_back = wait(&grouped, 2, 45, |v| v["rule"] == "host-down");
    assert_eq!(group_back.len(), 2, "one firing and one resolved message");
    assert_eq!(group_back[1].body["event"], "resolved");
    assert_eq!(hosts_of(&group_back[1]).len(), HOSTS);
    // Nothing more arrives: no duplicates.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(grouped.delivered(|v| v["rule"] == "host-down").len(), 2);
    assert_eq!(
        plain.delivered(|v| v["rule"] == "host-down").len(),
        2 * HOSTS
    );
    for f in sim {
        f.join().await;
    }
}

#[test]
fn alerts_test_prints_every_target_and_fails_when_one_did() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let (ok, broken) = (Webhook::start(), Webhook::start());
    broken.respond(500, 0);
    let config = d.join("t.toml");
    let toml = format!(
        "[[notify.target]]\nname = \"ops-ok\"\nkind = \"slack\"\nurl_file = \"{}\"\n\n[[notify.target]]\nname = \"ops-broken\"\nkind = \"webhook\"\nurl_file = \"{}\"\n",
        url_file(d, "ok", &ok.url),
        url_file(d, "broken", &broken.url)
    );
    std::fs::write(&config, toml).expect("config");
    let out = Command::new(env!("CARGO_BIN_EXE_meshmon"))
        .args(["alerts", "test", "--config"])
        .arg(&config)
        .output()
        .expect("meshmon alerts test");
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(1));
    let line = |name: &str| {
        stdout
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_default()
    };
    assert!(line("ops-ok").contains("delivered: HTTP 200"), "{stdout}");
    assert!(line("ops-broken").contains("FAILED: HTTP 500"), "{stdout}");
    assert!(line("ops-ok").contains("ms"));
    // Each receiver got one marked test notice.
    let got = ok.received();
    assert_eq!(got.len(), 1);
    assert!(
        got[0].body["text"]
            .as_str()
            .is_some_and(|t| t.starts_with("[TEST]"))
    );
    assert!(broken.received()[0].body["test"] == true);

    // One target only: exit 0 when it was delivered.
    let out = Command::new(env!("CARGO_BIN_EXE_meshmon"))
        .args(["alerts", "test", "--target", "ops-ok", "--config"])
        .arg(&config)
        .output()
        .expect("meshmon alerts test --target");
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(ok.received().len(), 2);
    assert_eq!(broken.received().len(), 1);
}
