//! End to end: the values a real agent puts on the mesh, decoded by a viewer exactly as a
//! remote node would, agree with what /proc and statvfs say on this machine, and
//! `cpu.usage_pct` moves when a busy loop runs.

mod common;

use common::*;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

type Latest = Arc<Mutex<HashMap<String, (Instant, f64)>>>;
type History = Arc<Mutex<Vec<(Instant, f64)>>>;

/// (busy, total) jiffies of all CPUs from /proc/stat.
fn proc_cpu() -> (u64, u64) {
    let text = std::fs::read_to_string("/proc/stat").expect("/proc/stat");
    let v: Vec<u64> = text
        .lines()
        .next()
        .expect("cpu line")
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let total: u64 = v.iter().sum();
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    (total - idle, total)
}

fn usage_between(a: (u64, u64), b: (u64, u64)) -> f64 {
    let total = b.1.saturating_sub(a.1).max(1) as f64;
    b.0.saturating_sub(a.0) as f64 * 100.0 / total
}

/// Mean of the cpu.usage_pct readings that arrived after `from`.
fn mean_since(h: &History, from: Instant) -> f64 {
    let v: Vec<f64> = h
        .lock()
        .expect("lock")
        .iter()
        .filter(|(t, _)| *t >= from)
        .map(|(_, v)| *v)
        .collect();
    assert!(!v.is_empty(), "cpu.usage_pct readings arrived");
    v.iter().sum::<f64>() / v.len() as f64
}

/// Attaches a viewer and keeps the latest decoded value of every series of `origin`.
async fn watch(target: &str, origin: &str) -> (Latest, History, CancellationToken) {
    let latest: Latest = Arc::default();
    let history: History = Arc::default();
    let (l, hist) = (latest.clone(), history.clone());
    let stop = decode_values(target, origin, move |k, v, now| {
        let key = k.to_string();
        if key == "cpu.usage_pct" {
            hist.lock().expect("lock").push((now, v));
        }
        l.lock().expect("lock").insert(key, (now, v));
    })
    .await;
    (latest, history, stop)
}

fn get(latest: &Latest, key: &str) -> Option<f64> {
    latest.lock().expect("lock").get(key).map(|(_, v)| *v)
}

/// Waits up to `limit` for a value of `key` received after `after`.
async fn wait_value(latest: &Latest, key: &str, after: Instant, limit: Duration) -> Option<f64> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Some((t, v)) = latest.lock().expect("lock").get(key)
            && *t >= after
        {
            return Some(*v);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

fn proc_field(path: &str, key: &str) -> u64 {
    std::fs::read_to_string(path)
        .expect("read proc")
        .lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .expect("field")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mesh_values_agree_with_proc_and_statvfs_and_cpu_moves() {
    let _serial = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = Spec::new("metrics1");
    let agent = Agent::start(dir.path(), &spec);
    wait_all_see(
        &[agent.target()],
        &["metrics1"],
        &null_ring(),
        Duration::from_secs(15),
    )
    .await
    .unwrap_or_else(|e| panic!("agent not up: {e}"));
    let (latest, history, _stop) = watch(&agent.target(), "metrics1").await;
    // A late viewer gets the table at once and the values within a key-frame period (10 s).
    let total = wait_value(
        &latest,
        "mem.total_bytes",
        Instant::now(),
        Duration::from_secs(12),
    )
    .await;
    let total = total.expect("mem.total_bytes arrives over the mesh");
    assert_eq!(
        total as u64,
        proc_field("/proc/meminfo", "MemTotal:") * 1024
    );

    let st = rustix::fs::statvfs("/").expect("statvfs /");
    let disk_total = get(&latest, "disk.total_bytes{mount=\"/\"}").expect("disk.total_bytes{/}");
    assert_eq!(disk_total as u64, st.f_blocks * st.f_frsize);
    let inodes = get(&latest, "disk.inodes_total{mount=\"/\"}").expect("disk.inodes_total{/}");
    assert_eq!(inodes as u64, st.f_files);
    let boot = get(&latest, "host.boot_time_s").expect("host.boot_time_s");
    assert_eq!(boot as u64, proc_field("/proc/stat", "btime"));
    for key in [
        "cpu.usage_pct",
        "mem.used_pct",
        "cpu.load1",
        "host.uptime_s",
        "mesh.peers",
    ] {
        assert!(get(&latest, key).is_some(), "{key} is sent");
    }

    // cpu.usage_pct tracks the machine: over an idle-ish window it agrees with /proc/stat,
    // and it reads busy while every core spins. (Comparing idle with busy directly would
    // fail on a machine that is already loaded.)
    let (t0, t0_at) = (proc_cpu(), Instant::now());
    tokio::time::sleep(Duration::from_millis(3100)).await;
    let truth = usage_between(t0, proc_cpu());
    let agent_idle = mean_since(&history, t0_at + Duration::from_secs(1));
    eprintln!("window before spinning: agent {agent_idle:.1} %, /proc/stat {truth:.1} %");
    assert!(
        (agent_idle - truth).abs() <= 25.0,
        "agent {agent_idle:.1} vs /proc/stat {truth:.1}"
    );

    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let spinners: Vec<_> = (0..cores)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut x = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
                    std::hint::black_box(x);
                }
            })
        })
        .collect();
    let busy_from = Instant::now() + Duration::from_millis(1500);
    tokio::time::sleep(Duration::from_millis(4000)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for s in spinners {
        let _ = s.join();
    }
    let busy = mean_since(&history, busy_from);
    eprintln!("while every core spins: agent {busy:.1} %");
    assert!(busy >= 80.0, "all cores spinning read as busy: {busy:.1}");
}
