//! Clock skew end to end: one real agent runs with its wall clock 10 minutes ahead (Debian's
//! libfaketime preloaded into the real binary). Its neighbours measure the offset from
//! heartbeats; it publishes `host.clock_offset_ms`; the dashboard's built-in `clock-skew` fires
//! for that host only; its samples are stored at sane times (not 10 minutes in the future); and
//! `meshmon query hosts` shows the offset.

mod common;

use common::webhook::Webhook;
use common::*;
use serde_json::Value;
use std::time::{Duration, Instant};

const TEN_MIN_MS: i64 = 600_000;

fn now_ms() -> i64 {
    meshmon_agent::net::mesh::wall_ms() as i64
}

#[tokio::test(flavor = "current_thread")]
async fn a_host_ten_minutes_ahead_is_flagged_alone_and_stored_at_sane_times() {
    let _serial = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    let hook = Webhook::start();
    // A ring d -> n2 -> n3 -> s -> d: the skewed host s has two good neighbours, and every
    // good node has at least one other good neighbour.
    let mut specs = ring(&["d", "n2", "n3", "s"]);
    specs[0].extra = format!(
        "dashboard = true\n[collect]\ndocker_dir = \"\"\nsmartctl = \"\"\n[store]\npath = \"{}\"\nflush_interval = \"1s\"\n[notify]\nwebhooks = [\"{}\"]\n\
         [[alert]]\nname = \"disk-full\"\nenabled = false\n\n[[alert]]\nname = \"inodes-full\"\nenabled = false\n\n\
         [[alert]]\nname = \"clock-skew\"\nfor = \"3s\"\n",
        dir.path().join("store.db").display(),
        hook.url
    );
    let start_ms = now_ms();
    let started = Instant::now();
    let mut agents: Vec<Agent> = specs[..3]
        .iter()
        .map(|s| Agent::start(dir.path(), s))
        .collect();
    agents.push(Agent::start_faketime(dir.path(), &specs[3], "+600s"));
    let cfg = agents[0].config.clone();

    let fired = hook.wait_for(1, Duration::from_secs(40), |v| {
        v["rule"] == "clock-skew" && v["event"] == "firing"
    });
    assert!(
        !fired.is_empty(),
        "clock-skew did not fire within 40 s; d's log:\n{}",
        std::fs::read_to_string(dir.path().join("d.log")).unwrap_or_default()
    );
    eprintln!("clock-skew fired {:?} after start", started.elapsed());
    assert_eq!(fired[0].body["host"], "s", "{:?}", fired[0].body);
    let value = fired[0].body["value"].as_f64().expect("value");
    assert!(
        (value - TEN_MIN_MS as f64).abs() < 2_000.0,
        "offset {value} ms, want about +600000"
    );

    // Let the others have every chance to fire wrongly too.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let wrong = hook.delivered(|v| v["rule"] == "clock-skew" && v["host"] != "s");
    assert!(wrong.is_empty(), "clock-skew for good hosts: {wrong:?}");
    let alerts = query(&cfg, &["alerts", "--all"]);
    let skew_rows: Vec<&Value> = alerts
        .as_array()
        .expect("array")
        .iter()
        .filter(|a| a["rule"] == "clock-skew")
        .collect();
    assert_eq!(skew_rows.len(), 1, "{skew_rows:?}");
    assert_eq!(skew_rows[0]["host"], "s");
    // The episode started on the dashboard's time line, not 10 minutes ahead.
    let started_ms = skew_rows[0]["started"]
        .as_str()
        .and_then(meshmon_dashboard::time::parse_rfc3339)
        .expect("started");
    assert!(
        started_ms >= start_ms - 2_000 && started_ms <= now_ms() + 2_000,
        "alert started at {started_ms}, test ran from {start_ms} to {}",
        now_ms()
    );

    // query hosts: s about +600 s, the others within 2 s.
    let hosts = query(&cfg, &["hosts"]);
    for h in hosts.as_array().expect("array") {
        let name = h["host"].as_str().unwrap_or("");
        let off = h["clock_offset_ms"].as_i64();
        if name == "s" {
            let off = off.expect("s publishes its offset");
            assert!((off - TEN_MIN_MS).abs() < 2_000, "s: {off} ms");
        } else if let Some(off) = off {
            assert!(off.abs() < 2_000, "{name}: {off} ms");
        }
    }

    // Every sample of s is stored between the test's start and now: none in the future.
    let until = meshmon_dashboard::time::format_rfc3339(now_ms() + 2 * TEN_MIN_MS);
    let since = meshmon_dashboard::time::format_rfc3339(start_ms - 2 * TEN_MIN_MS);
    let rows = query(
        &cfg,
        &[
            "export", "--host", "s", "--since", &since, "--until", &until,
        ],
    );
    let ts: Vec<i64> = rows
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|r| {
            r["ts"]
                .as_str()
                .and_then(meshmon_dashboard::time::parse_rfc3339)
        })
        .collect();
    assert!(ts.len() > 50, "s has samples in the store ({})", ts.len());
    let now = now_ms();
    let bad: Vec<i64> = ts
        .iter()
        .copied()
        .filter(|t| *t < start_ms - 2_000 || *t > now + 2_000)
        .collect();
    assert!(
        bad.is_empty(),
        "{} of {} samples of s outside [{start_ms}, {now}]: first {:?}",
        bad.len(),
        ts.len(),
        bad.first()
    );
    drop(agents);
}
