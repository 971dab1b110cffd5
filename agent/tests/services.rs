//! Textfile metrics, systemd units and HTTP checks, end to end with real agents: a plain agent
//! with a `.prom` directory, a cgroup fixture tree and a check, and a dashboard node that runs
//! the same check. Everything lands in the dashboard's store (queried with `meshmon query`),
//! the check is seen from both vantage points, and "down from 2 of 2 nodes" once its server
//! stops.

mod common;

use common::*;
use std::io::{Read as _, Write as _};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

fn query(config: &Path, args: &[&str], format: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_meshmon"))
        .arg("query")
        .args(args)
        .arg("--config")
        .arg(config)
        .args(["--format", format])
        .output()
        .expect("run meshmon query");
    assert!(
        out.status.success(),
        "query {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn query_json(config: &Path, args: &[&str]) -> Vec<serde_json::Value> {
    serde_json::from_str::<serde_json::Value>(&query(config, args, "json"))
        .expect("json")
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// Polls `f` every 300 ms for up to 20 s.
fn wait_for<T>(what: &str, f: impl FnMut() -> Option<T>) -> T {
    common::poll(what, Duration::from_secs(20), Duration::from_millis(300), f)
}

/// A tiny HTTP server answering 200 "ok" until `stop` is set (then the port is closed).
fn http_server(stop: Arc<AtomicBool>) -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        while !stop.load(Ordering::SeqCst) {
            match listener.accept() {
                Ok((mut conn, _)) => {
                    let _ = conn.set_nonblocking(false);
                    let _ = conn.set_read_timeout(Some(Duration::from_secs(1)));
                    let mut buf = [0u8; 4096];
                    let _ = conn.read(&mut buf);
                    let _ = conn.write_all(
                        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                    );
                }
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
    });
    port
}

fn write(p: &Path, text: &str) {
    std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
    std::fs::write(p, text).expect("write");
}

#[test]
fn textfile_systemd_and_check_metrics_reach_the_dashboard() {
    let _serial = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let stop = Arc::new(AtomicBool::new(false));
    let port = http_server(stop.clone());

    write(
        &d.join("textfile/backup.prom"),
        "# HELP backup_last_success_timestamp_seconds Last good backup.\n\
         # TYPE backup_last_success_timestamp_seconds gauge\n\
         backup_last_success_timestamp_seconds{job=\"home\"} 1.7e9\n\
         this is not a metric line\n\
         backup_ok 1\n",
    );
    let cg = d.join("cgroup");
    write(&cg.join("cgroup.controllers"), "cpu memory\n");
    let nginx = cg.join("system.slice/nginx.service");
    write(&nginx.join("cgroup.events"), "populated 1\n");
    write(&nginx.join("memory.current"), "1048576\n");
    write(&nginx.join("cpu.stat"), "usage_usec 1000\n");

    let check = format!(
        "[[check]]\nname = \"web\"\nurl = \"http://127.0.0.1:{port}/\"\ninterval = \"200ms\"\ntimeout = \"1s\"\nbody_contains = \"ok\"\n"
    );
    let mut specs = line(&["d1", "a2"]);
    specs[0].extra = format!(
        "dashboard = true\n[collect]\ndocker_dir = \"\"\nsmartctl = \"\"\n[store]\npath = \"{}\"\nflush_interval = \"1s\"\n{check}",
        d.join("store.db").display()
    );
    specs[1].extra = format!(
        "[collect]\ndocker_dir = \"\"\nsmartctl = \"\"\ntextfile_dir = \"{}\"\nsystemd_units = [\"nginx.service\", \"gone.service\"]\ncgroup_root = \"{}\"\n{check}",
        d.join("textfile").display(),
        cg.display()
    );
    let _agents: Vec<Agent> = specs.iter().map(|s| Agent::start(d, s)).collect();
    let cfg = d.join("d1.toml");

    // Textfile and systemd values of a2, in the dashboard's store.
    let want = [
        ("backup_last_success_timestamp_seconds{job=\"home\"}", 1.7e9),
        ("backup_ok", 1.0),
        ("systemd.active{unit=\"nginx.service\"}", 1.0),
        ("systemd.mem_bytes{unit=\"nginx.service\"}", 1_048_576.0),
        ("systemd.active{unit=\"gone.service\"}", 0.0),
    ];
    let stats = wait_for("a2's textfile and systemd metrics in the store", || {
        if std::fs::metadata(d.join("store.db")).is_err() {
            return None;
        }
        let out = Command::new(env!("CARGO_BIN_EXE_meshmon"))
            .args([
                "query", "stats", "--host", "a2", "--since", "1m", "--format", "json",
            ])
            .arg("--config")
            .arg(&cfg)
            .output()
            .ok()?;
        let rows: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        let rows = rows.as_array()?.clone();
        let has = |m: &str| rows.iter().any(|r| r["metric"] == m);
        want.iter().all(|(m, _)| has(m)).then_some(rows)
    });
    for (metric, value) in want {
        let row = stats
            .iter()
            .find(|r| r["metric"] == metric)
            .expect("metric");
        assert_eq!(row["last"].as_f64(), Some(value), "{metric}");
    }
    assert!(
        !stats
            .iter()
            .any(|r| r["metric"] == "systemd.mem_bytes{unit=\"gone.service\"}"),
        "a missing unit has no memory value"
    );
    let series = query(
        &cfg,
        &[
            "series",
            "--host",
            "a2",
            "--metric",
            "backup_last_success_timestamp_seconds{job=\"home\"}",
            "--since",
            "1m",
        ],
        "csv",
    );
    assert!(
        series
            .lines()
            .nth(1)
            .is_some_and(|l| l.ends_with(",1700000000")),
        "{series}"
    );
    let log = std::fs::read_to_string(d.join("a2.log")).expect("a2 log");
    assert!(
        log.lines()
            .any(|l| l.contains("malformed textfile line skipped")
                && l.contains("backup.prom")
                && l.contains("line=4")),
        "{log}"
    );

    // The check from both vantage points, up.
    let rows = wait_for("the check up from d1 and a2", || {
        let rows = query_json(&cfg, &["checks", "--since", "1m"]);
        (rows.len() == 2 && rows.iter().all(|r| r["up"] == "up")).then_some(rows)
    });
    let hosts: Vec<&str> = rows.iter().filter_map(|r| r["host"].as_str()).collect();
    assert_eq!(hosts, ["a2", "d1"]);
    for r in &rows {
        assert_eq!(r["check"], "web");
        assert_eq!(r["status"].as_f64(), Some(200.0));
        assert!(r["latency_ms"].as_f64().is_some_and(|ms| ms >= 0.0));
        assert_eq!(r["cert_days_left"], serde_json::Value::Null);
        assert_eq!(r["uptime_pct"].as_f64(), Some(100.0));
        assert_eq!(
            (r["down_from"].as_i64(), r["vantages"].as_i64()),
            (Some(0), Some(2))
        );
    }

    // The server stops: down from both.
    stop.store(true, Ordering::SeqCst);
    wait_for("the check down from both nodes", || {
        let rows = query_json(&cfg, &["checks", "--since", "1m"]);
        rows.iter()
            .all(|r| r["up"] == "down" && r["down_from"] == 2)
            .then_some(())
    });
    let table = query(&cfg, &["checks", "--since", "1m"], "table");
    assert!(
        table.contains("web: DOWN, down from 2 of 2 nodes"),
        "{table}"
    );
    let rows = query_json(&cfg, &["checks", "--since", "1m"]);
    assert!(
        rows.iter().all(|r| r["uptime_pct"]
            .as_f64()
            .is_some_and(|u| u > 0.0 && u < 100.0)),
        "{rows:?}"
    );
}
