//! Remote write into a real Prometheus (Debian's `prometheus` with
//! `--web.enable-remote-write-receiver`, its own temporary directory and a free loopback port)
//! from the dashboard node of a 2-node mesh:
//! - the query API returns both hosts' series;
//! - over one minute, one series' samples in Prometheus are exactly `meshmon query series`'s;
//! - Prometheus stopped for 60 s and started again: that minute is complete afterwards. The
//!   node's queue is set small (1000 samples) so that the outage overflows it and the minute
//!   can only come back from the store; the node's own `remote_write.samples_dropped` shows
//!   that it did.

mod common;

use common::prom::*;
use common::*;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const REMOTE_WRITE: &[&str] = &["--web.enable-remote-write-receiver"];
const PROM_CONFIG: &str = "global:\n  scrape_interval: 15s\n";

/// `meshmon query series` rows (ts ms, value) of `host`'s `metric` in `[since, until]`
/// (Unix seconds).
fn meshmon_series(cfg: &Path, host: &str, metric: &str, since: u64, until: u64) -> Vec<(i64, f64)> {
    let out = Command::new(env!("CARGO_BIN_EXE_meshmon"))
        .args(["query", "series", "--host", host, "--metric", metric])
        .args(["--since", &rfc3339(since), "--until", &rfc3339(until)])
        .args(["--format", "json", "--config"])
        .arg(cfg)
        .output()
        .expect("run meshmon query");
    assert!(
        out.status.success(),
        "query series: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    rows.as_array()
        .expect("array")
        .iter()
        .filter_map(|r| {
            let ts = r["ts"].as_str()?;
            Some((rfc3339_ms(ts)?, r["value"].as_f64()?))
        })
        .collect()
}

/// `2026-11-30T17:15:24.791Z` -> ms since the epoch.
fn rfc3339_ms(s: &str) -> Option<i64> {
    let (date, time) = s.strip_suffix('Z')?.split_once('T')?;
    let mut d = date.split('-').map(|x| x.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let mut t = hms.split(':').map(|x| x.parse::<i64>().ok());
    let (hh, mm, ss) = (t.next()??, t.next()??, t.next()??);
    let ms: i64 = format!("{frac:0<3}")[..3].parse().ok()?;
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 86_400 + hh * 3600 + mm * 60 + ss) * 1000) + ms)
}

/// Prometheus' samples (ts ms, value) of `selector` in `(until - 60 s, until]`.
fn prom_minute(web_port: u16, selector: &str, until: u64) -> Vec<(i64, f64)> {
    let q = urlencode(&format!("{selector}[60s]"));
    let Some(result) = prom_result(web_port, &format!("/api/v1/query?query={q}&time={until}"))
    else {
        return Vec::new();
    };
    let Some(series) = result.first() else {
        return Vec::new();
    };
    series["values"]
        .as_array()
        .map(|vals| {
            vals.iter()
                .filter_map(|p| {
                    let ts = p[0].as_f64()?;
                    let v: f64 = p[1].as_str()?.parse().ok()?;
                    Some(((ts * 1000.0).round() as i64, v))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Stops Prometheus cleanly (SIGTERM, so its WAL is complete).
fn stop(prom: &mut Killed) {
    let _ = Command::new("kill")
        .args(["-TERM", &prom.0.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = prom.0.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Both sides' samples of one minute, compared; `what` names the minute in messages.
fn assert_minute_equal(cfg: &Path, web_port: u16, host: &str, until: u64, what: &str) {
    let metric = "mem.used_bytes";
    let selector = format!("meshmon_memory_used_bytes{{host=\"{host}\"}}");
    let since_ms = (until as i64 - 60) * 1000;
    let ours: Vec<(i64, f64)> = meshmon_series(cfg, host, metric, until - 60, until)
        .into_iter()
        .filter(|(ts, _)| *ts > since_ms)
        .collect();
    let theirs = prom_minute(web_port, &selector, until);
    assert!(
        ours.len() >= 50,
        "{what}: meshmon holds only {} samples of {host}'s {metric} in the minute",
        ours.len()
    );
    assert_eq!(
        theirs, ours,
        "{what}: Prometheus' samples of {selector} differ from `meshmon query series`"
    );
    eprintln!(
        "{what}: {} samples of {host}'s {metric}, all equal",
        ours.len()
    );
}

#[tokio::test(flavor = "current_thread")]
async fn a_dashboard_pushes_both_hosts_and_refills_an_outage_from_its_store() {
    let _serial = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    let web_port = free_port();
    let prom_dir = dir.path().join("prometheus");
    std::fs::create_dir_all(&prom_dir).expect("mkdir");
    let mut prom = start_prometheus(&prom_dir, PROM_CONFIG, web_port, REMOTE_WRITE);

    let mut specs = line(&["p1", "p2"]);
    specs[0].extra = format!(
        "dashboard = true\n[store]\npath = \"{}\"\nflush_interval = \"1s\"\n[collect]\ndocker_dir = \"\"\nsmartctl = \"\"\n[export]\nremote_write_url = \"http://127.0.0.1:{web_port}/api/v1/write\"\nremote_write_interval = \"1s\"\nremote_write_queue = 1000\n",
        dir.path().join("store.db").display()
    );
    let _agents: Vec<Agent> = specs.iter().map(|s| Agent::start(dir.path(), s)).collect();
    let cfg = dir.path().join("p1.toml");

    // The query API returns both hosts' series.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let q = urlencode("meshmon_cpu_usage_ratio");
        let hosts: Vec<String> = prom_result(web_port, &format!("/api/v1/query?query={q}"))
            .unwrap_or_default()
            .iter()
            .filter_map(|r| r["metric"]["host"].as_str().map(str::to_owned))
            .collect();
        if hosts.contains(&"p1".to_owned()) && hosts.contains(&"p2".to_owned()) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus lacks a host after 30 s: {hosts:?}; log: {}; p1: {}",
            std::fs::read_to_string(prom_dir.join("prometheus.log")).unwrap_or_default(),
            std::fs::read_to_string(dir.path().join("p1.log")).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let q = urlencode("{__name__=~\"meshmon_.+\",host=\"p2\"}");
    let p2_series = get(web_port, &format!("/api/v1/series?match%5B%5D={q}"))
        .and_then(|(_, body)| serde_json::from_str::<serde_json::Value>(&body).ok())
        .and_then(|v| v["data"].as_array().map(Vec::len))
        .unwrap_or(0);
    assert!(
        p2_series >= 20,
        "p2 has only {p2_series} series in Prometheus"
    );

    // One live minute: equal to the store, sample for sample.
    let live_start = unix_now();
    tokio::time::sleep(Duration::from_secs(63)).await;
    assert_minute_equal(&cfg, web_port, "p2", live_start + 61, "live minute");

    // Prometheus down for 60 s, then up again with the same data directory.
    stop(&mut prom);
    let down = unix_now();
    tokio::time::sleep(Duration::from_secs(60)).await;
    let up = unix_now();
    prom = start_prometheus(&prom_dir, PROM_CONFIG, web_port, REMOTE_WRITE);
    let restarted = Instant::now();
    // The node retries with backoff (at most 30 s), then reads the outage back.
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let ours = meshmon_series(&cfg, "p2", "mem.used_bytes", up - 60, up);
        let theirs = prom_minute(web_port, "meshmon_memory_used_bytes{host=\"p2\"}", up);
        let since_ms = (up as i64 - 60) * 1000;
        let ours = ours.iter().filter(|(ts, _)| *ts > since_ms).count();
        if theirs.len() >= ours && ours > 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the outage minute did not come back within 90 s: {} of {ours} samples; p1: {}",
            theirs.len(),
            std::fs::read_to_string(dir.path().join("p1.log")).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    assert!(up - down >= 60);
    eprintln!(
        "outage minute complete in Prometheus {:.1} s after its restart",
        restarted.elapsed().as_secs_f64()
    );
    assert_minute_equal(&cfg, web_port, "p2", up, "outage minute (p2)");
    assert_minute_equal(&cfg, web_port, "p1", up, "outage minute (p1)");

    // The queue overflowed (so the minute came from the store), and the node says so.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let now = unix_now();
    let dropped = meshmon_series(&cfg, "p1", "remote_write.samples_dropped", now - 30, now);
    let last = dropped.last().map_or(0.0, |p| p.1);
    assert!(
        last > 0.0,
        "remote_write.samples_dropped did not count the overflow: {dropped:?}"
    );
    let lag = meshmon_series(&cfg, "p1", "remote_write.lag_s", now - 10, now);
    let lag = lag.last().map_or(f64::MAX, |p| p.1);
    assert!(lag < 10.0, "remote_write.lag_s {lag} after catching up");
    eprintln!("remote_write.samples_dropped {last}, remote_write.lag_s {lag}");
    drop(prom);
}
