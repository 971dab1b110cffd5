//! Two hosts with one name, end to end: two real agents both named `dup` join a running 3-node
//! mesh. Within 10 s both log the conflict, every node's status marks it, the dashboard's
//! built-in `duplicate-name` fires exactly once, and during the conflict the store keeps one
//! host's data under the name: the higher boot's (the later start), never a mix.

mod common;

use common::webhook::Webhook;
use common::*;
use serde_json::Value;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// A `dup` node whose textfile metric `dup_which` says which of the two it is.
fn dup(dir: &Path, which: u32, neighbour: u16) -> Spec {
    let text = dir.join("text");
    std::fs::create_dir_all(&text).expect("textfile dir");
    std::fs::write(text.join("which.prom"), format!("dup_which {which}\n")).expect("prom");
    let mut s = Spec::new("dup");
    s.neighbours = vec![neighbour];
    s.extra = format!(
        "tags = [\"dup{which}\"]\n[collect]\ndocker_dir = \"\"\nsmartctl = \"\"\ntextfile_dir = \"{}\"\n",
        text.display()
    );
    s
}

const CONFLICT_LOG: &str = "another live host uses this node's name 'dup'";

#[tokio::test(flavor = "current_thread")]
async fn two_agents_named_dup_are_both_told_alerted_once_and_stored_as_one_host() {
    let _serial = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    let hook = Webhook::start();
    let mut specs = ring(&["d", "n2", "n3"]);
    specs[0].extra = format!(
        "dashboard = true\n[collect]\ndocker_dir = \"\"\nsmartctl = \"\"\n[store]\npath = \"{}\"\nflush_interval = \"1s\"\n[notify]\nwebhooks = [\"{}\"]\n\
         [[alert]]\nname = \"disk-full\"\nenabled = false\n\n[[alert]]\nname = \"inodes-full\"\nenabled = false\n",
        dir.path().join("store.db").display(),
        hook.url
    );
    let agents: Vec<Agent> = specs.iter().map(|s| Agent::start(dir.path(), s)).collect();
    let cfg = agents[0].config.clone();
    let names = ["d", "n2", "n3"];
    let targets: Vec<String> = agents.iter().map(Agent::target).collect();
    wait_all_see(&targets, &names, &null_ring(), Duration::from_secs(15))
        .await
        .unwrap_or_else(|e| panic!("mesh not converged: {e}"));

    // dup 1 hangs off d, dup 2 (started later: the higher boot id) off n3.
    let (dir1, dir2) = (dir.path().join("dup1"), dir.path().join("dup2"));
    std::fs::create_dir_all(&dir1).expect("dir");
    std::fs::create_dir_all(&dir2).expect("dir");
    let _dup1 = Agent::start(&dir1, &dup(&dir1, 1, specs[0].port));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let both_up = Instant::now();
    let _dup2 = Agent::start(&dir2, &dup(&dir2, 2, specs[2].port));

    // Both log the conflict within 10 s.
    let logged = |d: &Path| {
        std::fs::read_to_string(d.join("dup.log")).is_ok_and(|l| l.contains(CONFLICT_LOG))
    };
    while !(logged(&dir1) && logged(&dir2)) && both_up.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let took = both_up.elapsed();
    assert!(
        logged(&dir1) && logged(&dir2),
        "both dups log the conflict within 10 s (dup1: {}, dup2: {})\ndup1 log:\n{}",
        logged(&dir1),
        logged(&dir2),
        std::fs::read_to_string(dir1.join("dup.log")).unwrap_or_default()
    );
    eprintln!("both dups logged the conflict {took:?} after the second started");
    let kept = std::fs::read_to_string(dir2.join("dup.log")).unwrap_or_default();
    assert!(kept.contains("this node's frames are kept"), "{kept}");

    // duplicate-name fires, within the same 10 s, for host dup.
    let fired = hook.wait_for(
        1,
        Duration::from_secs(10).saturating_sub(both_up.elapsed()),
        |v| v["rule"] == "duplicate-name" && v["event"] == "firing",
    );
    assert!(!fired.is_empty(), "duplicate-name did not fire within 10 s");
    eprintln!(
        "duplicate-name fired {:?} after the second dup started",
        fired[0].at.duration_since(both_up)
    );
    assert_eq!(fired[0].body["host"], "dup");

    // Every node marks the name in its status, within the same 10 s (each node sees the two
    // boots side by side for 2 s on its own clock, so some mark it a little after the
    // dashboard fired).
    for t in &targets {
        let mut marked = false;
        while !marked && both_up.elapsed() < Duration::from_secs(10) {
            let s = status(t, &null_ring()).await.expect("status");
            let row = s.hosts.iter().find(|h| h.name == "dup").expect("dup row");
            marked = row.name_conflict;
            if !marked {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        assert!(marked, "{t} marks dup within 10 s");
    }
    let out = Command::new(env!("CARGO_BIN_EXE_meshmon"))
        .args(["status", "--config"])
        .arg(&cfg)
        .output()
        .expect("status");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("DUPLICATE NAME"), "{text}");

    // Still exactly once a while later (the conflict goes on: no repeat, no second episode).
    let mark = meshmon_agent::net::mesh::wall_ms() as i64;
    tokio::time::sleep(Duration::from_secs(6)).await;
    let firings = hook.delivered(|v| v["rule"] == "duplicate-name" && v["event"] == "firing");
    assert_eq!(firings.len(), 1, "{firings:?}");
    let rows = query(&cfg, &["alerts", "--all"]);
    let dups: Vec<&Value> = rows
        .as_array()
        .expect("array")
        .iter()
        .filter(|a| a["rule"] == "duplicate-name")
        .collect();
    assert_eq!(dups.len(), 1, "{dups:?}");

    // The store kept one host under the name during the conflict: dup 2's, the higher boot.
    let since = meshmon_dashboard::time::format_rfc3339(mark);
    let series = query(
        &cfg,
        &[
            "series",
            "--host",
            "dup",
            "--metric",
            "dup_which",
            "--since",
            &since,
        ],
    );
    let values: Vec<f64> = series
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|r| r["value"].as_f64())
        .collect();
    assert!(
        values.len() >= 3,
        "dup has samples in the store: {values:?}"
    );
    assert!(
        values.iter().all(|v| *v == 2.0),
        "only dup 2's data is stored during the conflict: {values:?}"
    );
}
