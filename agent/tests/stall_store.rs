//! A dashboard node whose store is locked by another process for 60 s, while it relays a
//! busy mesh and its alert rules keep changing state, must go on forwarding, stay bounded in
//! memory, get the 60 s back into its store afterwards, and deliver every notification
//! exactly once once its receiver works again.
//!
//! Set-up: a line `edge-n -> dash-d <- edge-f` of real agents; `dash-d` is a dashboard node
//! with a webhook target (a local HTTP server) answering 500 and a rule on `cpu.usage_pct`
//! that the fleet simulator's flap pattern crosses back and forth; 500 simulated hosts send
//! their frames into `dash-d` every second. After 10 s of warm-up, `sqlite3` holds
//! `BEGIN EXCLUSIVE` on the store for 60 s. All along, a viewer on `edge-f` times `edge-n`'s
//! frames (from the lock to 5 s after it), and `dash-d`'s RSS is sampled.
//!
//! The figures are printed whatever happens; the failures are collected and reported together.
//! `STALL_STORE_LOCK_S=N` changes the lock's length (0: no lock, to check the harness itself).

mod common;

use common::webhook::Webhook;
use common::*;
use meshmon_sim::{Fleet, FleetConfig, FleetHandle, Pattern};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

const SIM_HOSTS: usize = 500;
const WARM_UP: Duration = Duration::from_secs(10);
const LOCK_FOR: Duration = Duration::from_secs(60);

fn lock_for() -> Duration {
    std::env::var("STALL_STORE_LOCK_S")
        .ok()
        .and_then(|v| v.parse().ok())
        .map_or(LOCK_FOR, Duration::from_secs)
}
/// The most `edge-f` may go without a frame of `edge-n`.
const MAX_GAP: Duration = Duration::from_secs(2);
/// The cap on `dash-d`'s resident memory.
const MAX_RSS_KB: u64 = 150 * 1024;
/// After the lock: how long the store may take to hold the locked minute.
const CATCH_UP: Duration = Duration::from_secs(30);
/// After the receiver recovers: how long delivery of the outbox may take.
const DELIVERY: Duration = Duration::from_secs(30);
/// Largest hole allowed in a stored series (1 s interval, plus jitter).
const MAX_STORED_GAP_MS: i64 = 2_500;

/// Quiet collectors: this test is about the mesh, the store and the alerts.
const COLLECT: &str = "[collect]\ndocker_dir = \"\"\nsmartctl = \"\"\ngpu = false\n";

/// Built-ins that would fire here for reasons other than the rule under test (host-down
/// would fire for 500 hosts once the fleet stops at the end).
const QUIET: &str = "[[alert]]\nname = \"disk-full\"\nenabled = false\n\n[[alert]]\nname = \"inodes-full\"\nenabled = false\n\n[[alert]]\nname = \"host-down\"\nenabled = false\n\n";

/// The rule the flap pattern (10 <-> 95, 30 s period) crosses: 100 hosts, two notifications
/// per host and period.
const RULE: &str = "[[alert]]\nname = \"sim-cpu-flap\"\nmetric = \"cpu.usage_pct\"\nhosts = \"sim-00*\"\nop = \">\"\nthreshold = 50\nfor = \"1s\"\nseverity = \"warning\"\n";

fn dashboard_spec(dir: &Path, hook: &str) -> Spec {
    let mut s = Spec::new("dash-d");
    s.extra = format!(
        "dashboard = true\n\n{COLLECT}\n[store]\npath = \"{}\"\nflush_interval = \"1s\"\n\n[notify]\nwebhooks = [\"{hook}\"]\n\n{QUIET}{RULE}",
        dir.join("store.db").display()
    );
    s
}

/// `sqlite3 STORE` holding `BEGIN EXCLUSIVE` until [`Locker::release`].
struct Locker {
    child: Child,
    stdin: ChildStdin,
}

impl Locker {
    /// Takes the lock (waiting up to 20 s for the node's own transactions).
    fn take(db: &Path) -> Locker {
        let mut child = Command::new("sqlite3")
            .arg(db)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("run sqlite3 (Debian package sqlite3)");
        let mut stdin = child.stdin.take().expect("stdin");
        let stdout = child.stdout.take().expect("stdout");
        stdin
            .write_all(b".timeout 20000\nBEGIN EXCLUSIVE;\nSELECT 'locked';\n")
            .expect("write to sqlite3");
        stdin.flush().expect("flush");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if line.trim() == "locked" {
                    let _ = tx.send(());
                }
            }
        });
        rx.recv_timeout(Duration::from_secs(25))
            .expect("sqlite3 took the exclusive lock");
        Locker { child, stdin }
    }

    fn release(mut self) {
        self.stdin
            .write_all(b"COMMIT;\n.quit\n")
            .expect("write to sqlite3");
        let _ = self.stdin.flush();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The worst hole of `host`'s series in `[from_ms, to_ms]` (edges count), where it starts
/// (ms after `from_ms`), how many series the host has there and the series with the hole.
/// `want`: series that must be present.
fn stored_gap(
    reader: &meshmon_dashboard::Reader,
    host: &str,
    from_ms: i64,
    to_ms: i64,
    want: &[&str],
) -> Result<(i64, i64, usize, String), String> {
    let (mut worst, mut at) = (0, 0);
    let mut worst_key = String::new();
    let mut seen = Vec::new();
    reader
        .export(host, from_ms, to_ms, |key, points| {
            let name = key.to_string();
            if !comes_and_goes(&name) {
                let times: Vec<i64> = points.iter().map(|p| p.0).collect();
                let (gap, gap_at) = worst_hole(&times, from_ms, to_ms);
                if gap > worst {
                    (worst, at, worst_key) = (gap, gap_at, name.clone());
                }
            }
            seen.push(name);
            Ok(())
        })
        .map_err(|e| format!("{host}: {e}"))?;
    for w in want {
        if !seen.iter().any(|s| s == w) {
            return Err(format!("{host}: no {w} in the store"));
        }
    }
    Ok((worst, at, seen.len(), worst_key))
}

/// Checks every simulated host and `edge-n` over the window; `Ok` with a summary, or the
/// first problems found.
fn store_holds(db: &Path, hosts: &[String], from_ms: i64, to_ms: i64) -> Result<String, String> {
    let reader = meshmon_dashboard::Reader::open(db).map_err(|e| e.to_string())?;
    let sim_series = [
        "cpu.usage_pct",
        "mem.used_pct",
        "disk.used_pct{mount=\"/\"}",
    ];
    let mut problems = Vec::new();
    let mut worst_sim = 0;
    for h in hosts {
        match stored_gap(&reader, h, from_ms, to_ms, &sim_series) {
            Ok((gap, at, _, key)) if gap > MAX_STORED_GAP_MS => {
                problems.push(format!(
                    "{h}: a {gap} ms hole in {key} at t+{:.1}s",
                    at as f64 / 1e3
                ));
            }
            Ok((gap, ..)) => worst_sim = worst_sim.max(gap),
            Err(e) => problems.push(e),
        }
    }
    let n = stored_gap(&reader, "edge-n", from_ms, to_ms, &["cpu.usage_pct"]);
    match &n {
        Ok((gap, at, _, key)) if *gap > MAX_STORED_GAP_MS => {
            problems.push(format!(
                "edge-n: a {gap} ms hole in {key} at t+{:.1}s",
                *at as f64 / 1e3
            ));
        }
        Ok(_) => {}
        Err(e) => problems.push(e.clone()),
    }
    if problems.is_empty() {
        let (n_gap, _, n_series, _) = n.unwrap_or_default();
        Ok(format!(
            "{} simulated hosts whole (worst hole {worst_sim} ms), edge-n's {n_series} series whole (worst hole {n_gap} ms)",
            hosts.len()
        ))
    } else {
        let total = problems.len();
        // edge-n's line (last) and a few simulated hosts.
        if total > 6 {
            problems.drain(5..total - 1);
        }
        Err(format!("{total} problems, e.g. {problems:?}"))
    }
}

fn fleet_config(target: &Agent) -> FleetConfig {
    let addr = target.target().parse().expect("address");
    let mut cfg = FleetConfig::new(addr, SIM_HOSTS);
    cfg.pattern = Pattern::Flap {
        period: Duration::from_secs(30),
        low: 10.0,
        high: 95.0,
    };
    cfg
}

/// Samples `pid`'s RSS every 3 s into `out` until `stop`.
fn sample_rss(
    pid: u32,
    out: std::sync::Arc<std::sync::Mutex<Vec<(Duration, u64)>>>,
) -> CancellationToken {
    let stop = CancellationToken::new();
    let s = stop.clone();
    let start = Instant::now();
    tokio::spawn(async move {
        loop {
            let kb = rss_kb(pid);
            out.lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push((start.elapsed(), kb));
            tokio::select! {
                () = s.cancelled() => return,
                () = tokio::time::sleep(Duration::from_secs(3)) => {}
            }
        }
    });
    stop
}

fn print_fleet(label: &str, fleet: &FleetHandle) {
    eprintln!("fleet {label}: {}", fleet.stats());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_locked_for_60s_stalls_neither_forwarding_nor_memory_nor_history_nor_notifications()
{
    let _serial = serial();
    let began = Instant::now();
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("store.db");
    let hook = Webhook::start();
    hook.respond(500, 0);
    let d_spec = dashboard_spec(dir.path(), &hook.url);
    let mut n_spec = Spec::new("edge-n");
    n_spec.neighbours = vec![d_spec.port];
    n_spec.extra = COLLECT.into();
    let mut f_spec = Spec::new("edge-f");
    f_spec.neighbours = vec![d_spec.port];
    f_spec.extra = COLLECT.into();
    let d = Agent::start(dir.path(), &d_spec);
    let n = Agent::start(dir.path(), &n_spec);
    let f = Agent::start(dir.path(), &f_spec);
    wait_all_see(
        &[f.target(), d.target()],
        &["dash-d", "edge-f", "edge-n"],
        &null_ring(),
        Duration::from_secs(15),
    )
    .await
    .unwrap_or_else(|e| panic!("the line never converged: {e}"));
    let watch = Recorder::attach(&f.target(), &null_ring()).await;

    let stop_fleet = CancellationToken::new();
    let fleet = Fleet::start(fleet_config(&d), stop_fleet.clone()).expect("fleet");
    assert!(
        fleet.wait_connected(Duration::from_secs(10)).await,
        "the fleet's link to dash-d came up: {}",
        fleet.stats()
    );
    let rss = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let stop_rss = sample_rss(d.pid(), rss.clone());
    let watch_from = Instant::now();
    tokio::time::sleep(WARM_UP).await;
    print_fleet("after warm-up", &fleet);
    let heard = {
        let all = watch.statuses.lock().expect("lock").clone();
        let epoch = all.last().map_or(0, |s| s.epoch);
        all.iter()
            .filter(|s| s.epoch == epoch)
            .map(|s| s.hosts.len())
            .sum::<usize>()
    };
    eprintln!("edge-f's status lists {heard} hosts after warm-up");

    // The lock: another process holds the store's write lock for 60 s.
    let locked_ms = meshmon_agent::net::mesh::wall_ms() as i64;
    let lock_start = Instant::now();
    let lock_len = lock_for();
    let locker = if lock_len.is_zero() {
        None
    } else {
        let db = db.clone();
        Some(
            tokio::task::spawn_blocking(move || Locker::take(&db))
                .await
                .expect("join"),
        )
    };
    let took = lock_start.elapsed();
    eprintln!("store locked after {took:?}");
    while lock_start.elapsed() < lock_len.max(Duration::from_secs(10)) {
        tokio::time::sleep(Duration::from_secs(10)).await;
        let t = lock_start.elapsed().as_secs();
        let gap = watch.max_gap("edge-n", lock_start, Instant::now());
        eprintln!(
            "  locked t+{t:>2}s: edge-n's worst gap at edge-f since the lock {gap:?}, dash-d RSS {} kB, fleet {}",
            rss_kb(d.pid()),
            fleet.stats()
        );
    }
    if let Some(locker) = locker {
        tokio::task::spawn_blocking(move || locker.release())
            .await
            .expect("join");
    }
    let released_ms = meshmon_agent::net::mesh::wall_ms() as i64;
    eprintln!("store released after {:?}", lock_start.elapsed());
    print_fleet("at release", &fleet);
    tokio::time::sleep(Duration::from_secs(5)).await;
    let watch_to = Instant::now();
    let mut failures: Vec<String> = Vec::new();

    // 1. Forwarding: edge-f kept hearing edge-n through dash-d while the store was locked
    // (the warm-up, 500 hosts joining a debug build, is shown but not judged).
    let warm_gap = watch.max_gap("edge-n", watch_from, lock_start);
    let gap = watch.max_gap("edge-n", lock_start, watch_to);
    let heard = watch.count("edge-n");
    eprintln!(
        "edge-n -> edge-f through dash-d: worst gap {gap:?} from the lock to 5 s after it ({:?}); {warm_gap:?} during the warm-up; {heard} frames in all",
        watch_to - lock_start
    );
    if gap > MAX_GAP {
        failures.push(format!(
            "edge-f went {gap:?} without a frame of edge-n (limit {MAX_GAP:?})"
        ));
    }

    // 2. Memory: dash-d's RSS stayed bounded while the store was locked.
    let max_rss = rss
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .iter()
        .map(|(_, kb)| *kb)
        .max()
        .unwrap_or(0);

    // 3. History: the locked minute reaches the store once the lock is gone (the writer
    // catches up; what the mesh dropped is backfilled from the origins).
    let from_ms = locked_ms;
    let to_ms = released_ms;
    let hosts = fleet.host_names().to_vec();
    let catch_start = Instant::now();
    let stored = loop {
        tokio::time::sleep(Duration::from_secs(3)).await;
        let db2 = db.clone();
        let hosts2 = hosts.clone();
        let r = tokio::task::spawn_blocking(move || store_holds(&db2, &hosts2, from_ms, to_ms))
            .await
            .expect("join");
        if r.is_ok() || catch_start.elapsed() >= CATCH_UP {
            break r;
        }
    };
    match &stored {
        Ok(summary) => eprintln!(
            "store after {:?}: the locked minute is whole: {summary}",
            catch_start.elapsed()
        ),
        Err(e) => {
            eprintln!("store {CATCH_UP:?} after the lock: {e}");
            failures.push(format!("the locked minute is not whole in the store: {e}"));
        }
    }
    print_fleet("after catch-up", &fleet);
    let final_fleet = fleet.stats();
    stop_fleet.cancel();
    fleet.join().await;
    stop_rss.cancel();
    let samples = rss
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    let series: Vec<String> = samples
        .iter()
        .map(|(t, kb)| format!("{}s:{}", t.as_secs(), kb / 1024))
        .collect();
    eprintln!(
        "dash-d RSS (MB, every 3 s from the fleet's start): {}",
        series.join(" ")
    );
    eprintln!("dash-d RSS max {} kB", max_rss);
    if max_rss > MAX_RSS_KB {
        failures.push(format!(
            "dash-d's RSS reached {max_rss} kB (cap {MAX_RSS_KB} kB)"
        ));
    }

    // 4. Notifications: the receiver works again; the outbox empties, each once.
    hook.respond(200, 0);
    let recovered = Instant::now();
    let outbox_state = |db: &Path| -> Result<(usize, usize, usize), String> {
        let adb = meshmon_dashboard::alertdb::AlertDb::open(db).map_err(|e| e.to_string())?;
        let rows = adb.outbox().map_err(|e| e.to_string())?;
        let queued = rows.iter().filter(|r| r.state == "queued").count();
        let sent = rows.iter().filter(|r| r.state == "sent").count();
        Ok((rows.len(), queued, sent))
    };
    let mut outbox = Err("not read".to_owned());
    while recovered.elapsed() < DELIVERY {
        tokio::time::sleep(Duration::from_secs(2)).await;
        outbox = outbox_state(&db);
        if matches!(outbox, Ok((total, 0, _)) if total > 0) {
            // Let the last deliveries' reports land.
            tokio::time::sleep(Duration::from_secs(2)).await;
            outbox = outbox_state(&db);
            break;
        }
    }
    let delivered = hook.delivered(|v| v["rule"] == "sim-cpu-flap");
    let failed_posts = hook.received().iter().filter(|r| r.status != 200).count();
    let mut per_id: HashMap<String, usize> = HashMap::new();
    for r in &delivered {
        *per_id
            .entry(r.body["id"].as_str().unwrap_or("").to_owned())
            .or_default() += 1;
    }
    let twice: Vec<&String> = per_id
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(id, _)| id)
        .collect();
    eprintln!(
        "notifications: {} delivered ({} distinct ids, {} more than once), {failed_posts} POSTs answered 500; outbox (rows, queued, sent) = {outbox:?}, {:?} after the receiver recovered",
        delivered.len(),
        per_id.len(),
        twice.len(),
        recovered.elapsed()
    );
    if per_id.is_empty() {
        failures.push("no notification of the flapping rule was delivered".into());
    }
    if !twice.is_empty() {
        failures.push(format!(
            "{} notifications delivered more than once, e.g. {:?}",
            twice.len(),
            twice.iter().take(3).collect::<Vec<_>>()
        ));
    }
    match outbox {
        Ok((_, 0, sent)) if sent == per_id.len() => {}
        Ok((total, queued, sent)) => failures.push(format!(
            "outbox: {queued} of {total} notifications still queued {DELIVERY:?} after the receiver recovered; {sent} marked sent, {} received",
            per_id.len()
        )),
        Err(e) => failures.push(format!("cannot read the outbox: {e}")),
    }

    eprintln!(
        "fleet at the end: {final_fleet}\nwhole test: {:?}",
        began.elapsed()
    );
    drop(watch);
    drop((n, f));
    let d_log = std::fs::read_to_string(dir.path().join("dash-d.log")).unwrap_or_default();
    let warnings: Vec<&str> = d_log
        .lines()
        .filter(|l| l.contains("WARN") || l.contains("ERROR"))
        .take(12)
        .collect();
    eprintln!("dash-d's first warnings:\n{}", warnings.join("\n"));
    drop(d);
    assert!(failures.is_empty(), "\n- {}", failures.join("\n- "));
}
