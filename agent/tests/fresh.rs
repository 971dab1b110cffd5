//! Fresh queries with real processes: a dashboard node with the default store settings
//! (flushing every 30 s) answers `meshmon query series` with data at most 2.5 s old 5 s after
//! it starts and again 45 s after, from its head; a missing series names the closest ones; a
//! node without the dashboard role answers `query hosts` from its live view; and once the
//! dashboard node has stopped, `--db` queries read the file alone, at once.

mod common;

use common::*;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn meshmon_query(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_meshmon"))
        .arg("query")
        .args(args)
        .output()
        .expect("run meshmon query")
}

fn json(args: &[&str]) -> Vec<serde_json::Value> {
    let out = meshmon_query(args);
    assert!(
        out.status.success(),
        "query {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "query {args:?} warned: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    v.as_array().expect("array").clone()
}

/// The newest `cpu.usage_pct` row of `d1` (its time in ms) and how old it was when the
/// answer came back.
fn newest_cpu(src: &[&str]) -> Option<(i64, Duration)> {
    let mut args = vec![
        "series",
        "--host",
        "d1",
        "--metric",
        "cpu.usage_pct",
        "--since",
        "1m",
        "--format",
        "json",
    ];
    args.extend_from_slice(src);
    let rows = json(&args);
    let now = meshmon_dashboard::time::now_ms();
    let ts = rows
        .last()
        .and_then(|r| r["ts"].as_str())
        .and_then(meshmon_dashboard::time::parse_rfc3339)?;
    Some((
        ts,
        Duration::from_millis(u64::try_from(now - ts).unwrap_or(0)),
    ))
}

fn at(start: Instant, after: Duration) {
    let left = after.saturating_sub(start.elapsed());
    std::thread::sleep(left);
}

#[test]
fn queries_are_fresh_from_start_on_and_the_file_answers_once_the_node_stops() {
    let _serial = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("store.db");
    let mut specs = line(&["p1", "d1"]);
    // Default store settings: only the path is set.
    specs[1].extra = format!(
        "dashboard = true\n[collect]\ndocker_dir = \"\"\nsmartctl = \"\"\n[store]\npath = \"{}\"\n",
        db.display()
    );
    specs[0].extra = "[collect]\ndocker_dir = \"\"\nsmartctl = \"\"\n".into();
    let start = Instant::now();
    let mut d1 = Agent::start(dir.path(), &specs[1]);
    let p1 = Agent::start(dir.path(), &specs[0]);
    let cfg = d1.config.to_string_lossy().into_owned();
    let cfg: &[&str] = &["--config", &cfg];

    at(start, Duration::from_secs(5));
    let (_, age) = newest_cpu(cfg).expect("rows 5 s after start");
    eprintln!("5 s after start: newest row {age:?} old");
    assert!(
        age <= Duration::from_millis(2500),
        "5 s: newest row {age:?} old"
    );

    // The series the host has come closest, in the error.
    let out = meshmon_query(&[
        "series",
        "--host",
        "d1",
        "--metric",
        "cpu.usage",
        "--config",
        cfg[1],
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("has no series matching 'cpu.usage'; closest: cpu.usage_pct"),
        "{err}"
    );

    // A node without the dashboard role: its live view.
    let p1_cfg = p1.config.to_string_lossy().into_owned();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let hosts = json(&["hosts", "--format", "json", "--config", &p1_cfg]);
        let names: Vec<&str> = hosts.iter().filter_map(|h| h["host"].as_str()).collect();
        let up = hosts.iter().all(|h| h["status"] == "up");
        if names == ["d1", "p1"] && up {
            assert_eq!(hosts[0]["hops"], 1);
            assert_eq!(hosts[1]["hops"], 0);
            assert!(hosts[1]["version"].is_string() && hosts[1]["os"].is_string());
            break;
        }
        assert!(Instant::now() < deadline, "p1's live hosts: {hosts:?}");
        std::thread::sleep(Duration::from_millis(500));
    }

    at(start, Duration::from_secs(45));
    let (_, age) = newest_cpu(cfg).expect("rows 45 s after start");
    eprintln!("45 s after start: newest row {age:?} old");
    assert!(
        age <= Duration::from_millis(2500),
        "45 s: newest row {age:?} old"
    );
    let (live, _) = newest_cpu(cfg).expect("rows");

    // Stopped (SIGTERM flushes): the file answers alone, at once, with the rows the head had.
    d1.stop();
    assert!(!Path::new(&format!("{}.sock", db.display())).exists());
    let db_arg = db.to_string_lossy().into_owned();
    let asked = Instant::now();
    let (stored, _) = newest_cpu(&["--db", &db_arg]).expect("rows from the file");
    assert!(
        asked.elapsed() < Duration::from_secs(2),
        "{:?}",
        asked.elapsed()
    );
    assert!(
        stored >= live,
        "the file has what the head had: {stored} < {live}"
    );
    let stats = json(&[
        "stats", "--host", "p1", "--since", "5m", "--format", "json", "--db", &db_arg,
    ]);
    assert!(
        stats.iter().any(|r| r["metric"] == "cpu.usage_pct"),
        "{stats:?}"
    );
}
