//! Helpers for process-level tests: real `meshmon agent` processes on 127.0.0.1 ports, config
//! files in a temporary directory, and an in-process viewer that records what a node accepts.
#![allow(dead_code)]

pub mod alerting;
pub mod netns;
pub mod netns_watch;
pub mod prom;
pub mod webhook;

use meshmon_agent::gossip::Delivered;
use meshmon_agent::viewer;
use meshmon_proto::payload::Status;
use meshmon_proto::{Flags, Key, Keyring, Payload};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Whether a series may stop and start by design: a name leaves the top-process set, a
/// container stops. Checks that a host's stored series are whole skip these; every other
/// series is sent every interval.
pub fn comes_and_goes(series: &str) -> bool {
    series.starts_with("proc.") || series.starts_with("container.")
}

/// The worst hole in `times` over `[from_ms, to_ms]`, the window's edges counting, and where it
/// starts (ms after `from_ms`).
pub fn worst_hole(times: &[i64], from_ms: i64, to_ms: i64) -> (i64, i64) {
    let mut ts: Vec<i64> = times
        .iter()
        .copied()
        .filter(|t| (from_ms..=to_ms).contains(t))
        .collect();
    ts.sort_unstable();
    ts.insert(0, from_ms);
    ts.push(to_ms);
    ts.windows(2)
        .map(|w| (w[1] - w[0], w[0] - from_ms))
        .max()
        .unwrap_or_default()
}

/// Polls `f` every `every` until it gives a value; panics naming `what` after `within`.
pub fn poll<T>(
    what: &str,
    within: Duration,
    every: Duration,
    mut f: impl FnMut() -> Option<T>,
) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(start.elapsed() < within, "timed out: {what}");
        std::thread::sleep(every);
    }
}

/// Tests that start agent processes take this lock so that, within one test binary, they run
/// one at a time: a 2-core CI machine running several meshes at once would measure its own
/// overload instead of meshmon. (cargo runs test binaries one after another already.)
pub fn serial() -> Serial {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    Serial(
        LOCK.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    )
}

/// Held for a whole test, across awaits on purpose: each test has a runtime of its own, so
/// no task of another test can be waiting for this lock on the same thread.
pub struct Serial(#[allow(dead_code)] std::sync::MutexGuard<'static, ()>);

/// A free TCP port on 127.0.0.1 (bound then released), below the kernel's ephemeral range
/// as the demo picks them: a port the kernel hands out for port 0 comes from the range that
/// the agents' own outgoing connections draw their source ports from, and one of those
/// could take it before the agent meant to listen on it binds it (one CI run had a node of
/// a line never heard by its neighbour for 15 s, as when that node could not bind).
pub fn free_port() -> u16 {
    meshmon_agent::demo::free_ports(1)
        .ok()
        .and_then(|p| p.first().copied())
        .expect("free port")
}

/// A key file with a fresh key; returns its path and the keyring.
pub fn key_file(dir: &Path, name: &str) -> (PathBuf, Keyring) {
    let key = Key::generate().expect("rng");
    let path = dir.join(name);
    meshmon_agent::config::write_private(&path, &format!("{}\n", key.to_base64()))
        .expect("write key");
    (path, Keyring::new(vec![key]).expect("ring"))
}

/// How to configure one test node.
#[derive(Clone)]
pub struct Spec {
    pub name: String,
    pub port: u16,
    pub neighbours: Vec<u16>,
    pub key: Option<PathBuf>,
    pub max_hops: u8,
    pub extra: String,
}

impl Spec {
    pub fn new(name: &str) -> Spec {
        Spec {
            name: name.into(),
            port: free_port(),
            neighbours: Vec::new(),
            key: None,
            max_hops: 8,
            extra: String::new(),
        }
    }

    pub fn toml(&self) -> String {
        let n: Vec<String> = self
            .neighbours
            .iter()
            .map(|p| format!("\"127.0.0.1:{p}\""))
            .collect();
        let key = self.key.as_ref().map_or(String::new(), |k| {
            format!("key_file = \"{}\"\n", k.display())
        });
        format!(
            "[node]\nname = \"{}\"\nlisten = \"127.0.0.1:{}\"\nneighbours = [{}]\nmax_hops = {}\n{key}{}",
            self.name,
            self.port,
            n.join(", "),
            self.max_hops,
            self.extra
        )
    }
}

/// A running `meshmon agent`; killed with SIGKILL when dropped.
pub struct Agent {
    pub spec: Spec,
    pub config: PathBuf,
    pub child: Child,
}

impl Agent {
    pub fn start(dir: &Path, spec: &Spec) -> Agent {
        Agent::start_exe(dir, spec, Path::new(env!("CARGO_BIN_EXE_meshmon")))
    }

    /// Like [`Agent::start`] with the process's wall clock `offset` off (`+600s`, `-10m`),
    /// through Debian's libfaketime (package `faketime`) preloaded into the real binary; its
    /// monotonic clock is left alone. Panics with how to install it when it is missing.
    pub fn start_faketime(dir: &Path, spec: &Spec, offset: &str) -> Agent {
        let lib = ["x86_64-linux-gnu", "aarch64-linux-gnu"]
            .iter()
            .map(|a| PathBuf::from(format!("/usr/lib/{a}/faketime/libfaketime.so.1")))
            .find(|p| p.exists())
            .expect("libfaketime not found: apt-get install faketime");
        let config = dir.join(format!("{}.toml", spec.name));
        std::fs::write(&config, spec.toml()).expect("write config");
        let log = std::fs::File::create(dir.join(format!("{}.log", spec.name))).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_meshmon"))
            .args(["agent", "--config"])
            .arg(&config)
            .env("NO_COLOR", "1")
            .env("MESHMON_LOG", "info")
            .env("LD_PRELOAD", lib)
            .env("FAKETIME", offset)
            .env("FAKETIME_DONT_FAKE_MONOTONIC", "1")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn meshmon");
        Agent {
            spec: spec.clone(),
            config,
            child,
        }
    }

    /// Like [`Agent::start`] with another build of `meshmon` (the plain agent).
    pub fn start_exe(dir: &Path, spec: &Spec, exe: &Path) -> Agent {
        let config = dir.join(format!("{}.toml", spec.name));
        std::fs::write(&config, spec.toml()).expect("write config");
        let log = std::fs::File::create(dir.join(format!("{}.log", spec.name))).expect("log file");
        let child = Command::new(exe)
            .args(["agent", "--config"])
            .arg(&config)
            .env("NO_COLOR", "1")
            .env("MESHMON_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn meshmon");
        Agent {
            spec: spec.clone(),
            config,
            child,
        }
    }

    pub fn target(&self) -> String {
        format!("127.0.0.1:{}", self.spec.port)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL and reap.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then waits up to 5 s for a clean exit (SIGKILL after that).
    pub fn stop(&mut self) {
        if let Some(pid) = rustix::process::Pid::from_raw(self.child.id() as i32) {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.kill();
    }

    /// Starts the node again from `self.spec` (same port; change `spec.extra` first to change
    /// its config). The log file starts over.
    pub fn restart(&mut self, dir: &Path) {
        self.kill();
        let spec = self.spec.clone();
        *self = Agent::start(dir, &spec);
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Resident set size in kB, from /proc.
    pub fn rss_kb(&self) -> u64 {
        rss_kb(self.pid())
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.kill();
    }
}

pub fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// Line: node i dials node i+1.
pub fn line(names: &[&str]) -> Vec<Spec> {
    let mut specs: Vec<Spec> = names.iter().map(|n| Spec::new(n)).collect();
    for i in 0..specs.len().saturating_sub(1) {
        let p = specs[i + 1].port;
        specs[i].neighbours.push(p);
    }
    specs
}

/// Ring: a line plus the last dialling the first.
pub fn ring(names: &[&str]) -> Vec<Spec> {
    let mut specs = line(names);
    let first = specs[0].port;
    if let Some(last) = specs.last_mut() {
        last.neighbours.push(first);
    }
    specs
}

/// The first status of a node, or `None` if it does not answer in time.
pub async fn status(target: &str, keyring: &Keyring) -> Option<Status> {
    viewer::fetch_status(target, keyring.clone(), Duration::from_secs(3))
        .await
        .ok()
}

/// Hosts a status lists as heard within the last `fresh`.
pub fn fresh_hosts(s: &Status, fresh: Duration) -> Vec<String> {
    let now = meshmon_agent::net::mesh::wall_ms();
    let mut v: Vec<String> = s
        .hosts
        .iter()
        .filter(|h| now.saturating_sub(h.last_seen_ms) <= fresh.as_millis() as u64)
        .map(|h| h.name.clone())
        .collect();
    v.sort();
    v
}

/// Polls until every node lists every name as fresh, or the deadline passes. Returns the
/// elapsed time on success.
pub async fn wait_all_see(
    targets: &[String],
    names: &[&str],
    keyring: &Keyring,
    deadline: Duration,
) -> Result<Duration, String> {
    let start = Instant::now();
    let mut want: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    want.sort();
    let mut last = String::new();
    while start.elapsed() < deadline {
        let mut all = true;
        for t in targets {
            match status(t, keyring).await {
                Some(s) if fresh_hosts(&s, Duration::from_secs(3)) == want => {}
                Some(s) => {
                    last = format!("{t} sees {:?}", fresh_hosts(&s, Duration::from_secs(3)));
                    all = false;
                    break;
                }
                None => {
                    last = format!("{t} does not answer");
                    all = false;
                    break;
                }
            }
        }
        if all {
            return Ok(start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    Err(last)
}

/// A viewer attached to a node that records arrival times of gossip frames per origin.
pub struct Recorder {
    pub arrivals: Arc<Mutex<HashMap<String, Vec<Instant>>>>,
    /// Timestamps (Unix ms) of every origin's samples frames.
    pub stamps: Arc<Mutex<HashMap<String, Vec<u64>>>>,
    pub statuses: Arc<Mutex<Vec<Status>>>,
    stop: CancellationToken,
}

impl Recorder {
    pub async fn attach(target: &str, keyring: &Keyring) -> Recorder {
        let tracker = TaskTracker::new();
        let stop = CancellationToken::new();
        let mut rx = viewer::attach(target, keyring.clone(), &tracker, stop.clone())
            .await
            .expect("attach viewer");
        let arrivals: Arc<Mutex<HashMap<String, Vec<Instant>>>> = Arc::default();
        let stamps: Arc<Mutex<HashMap<String, Vec<u64>>>> = Arc::default();
        let statuses: Arc<Mutex<Vec<Status>>> = Arc::default();
        let (a, ts, st) = (arrivals.clone(), stamps.clone(), statuses.clone());
        tokio::spawn(async move {
            while let Some(d) = rx.recv().await {
                record(&a, &ts, &st, d);
            }
        });
        Recorder {
            arrivals,
            stamps,
            statuses,
            stop,
        }
    }

    /// Largest gap between consecutive frames of `origin` within [from, to], counting the
    /// edges of the window.
    pub fn max_gap(&self, origin: &str, from: Instant, to: Instant) -> Duration {
        let map = self.arrivals.lock().expect("lock");
        let mut times: Vec<Instant> = map
            .get(origin)
            .map(|v| {
                v.iter()
                    .copied()
                    .filter(|t| *t >= from && *t <= to)
                    .collect()
            })
            .unwrap_or_default();
        times.insert(0, from);
        times.push(to);
        times
            .windows(2)
            .map(|w| w[1] - w[0])
            .max()
            .unwrap_or_default()
    }

    pub fn count(&self, origin: &str) -> usize {
        self.arrivals
            .lock()
            .expect("lock")
            .get(origin)
            .map_or(0, Vec::len)
    }

    pub fn last_status(&self) -> Option<Status> {
        self.statuses.lock().expect("lock").last().cloned()
    }
}

fn record(
    a: &Mutex<HashMap<String, Vec<Instant>>>,
    ts: &Mutex<HashMap<String, Vec<u64>>>,
    st: &Mutex<Vec<Status>>,
    d: Delivered,
) {
    if let Payload::Status(s) = d.payload {
        st.lock().expect("lock").push(s);
    } else if !d.header.flags.contains(Flags::LINK) {
        if matches!(d.payload, Payload::Samples(_)) {
            ts.lock()
                .expect("lock")
                .entry(d.header.origin.clone())
                .or_default()
                .push(d.header.ts_ms);
        }
        a.lock()
            .expect("lock")
            .entry(d.header.origin.clone())
            .or_default()
            .push(Instant::now());
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// The null keyring that keyless (loopback-only) nodes use.
pub fn null_ring() -> Keyring {
    Keyring::new(vec![Key::NULL]).expect("ring")
}

/// Attaches a viewer to `target` and decodes `origin`'s samples exactly as a remote node would,
/// calling `f(series, value, arrival)` for every value of every sample frame. Runs until the
/// returned token is cancelled (or dropped with the test's runtime).
pub async fn decode_values(
    target: &str,
    origin: &str,
    mut f: impl FnMut(meshmon_proto::SeriesKey, f64, Instant) + Send + 'static,
) -> CancellationToken {
    let stop = CancellationToken::new();
    let tracker = TaskTracker::new();
    let mut rx = viewer::attach(target, null_ring(), &tracker, stop.clone())
        .await
        .expect("attach");
    let origin = origin.to_owned();
    tokio::spawn(async move {
        let mut dec = meshmon_proto::samples::SampleDecoder::new();
        while let Some(d) = rx.recv().await {
            if d.header.origin != origin {
                continue;
            }
            match &d.payload {
                Payload::SeriesTable(t) => dec.table(t),
                Payload::Samples(s) => {
                    let now = Instant::now();
                    for (k, v) in dec.apply(s).0 {
                        f(k, v, now);
                    }
                }
                _ => {}
            }
        }
    });
    stop
}

/// `meshmon query ARGS --config CONFIG --format json`, which must succeed: its JSON.
pub fn query(config: &Path, args: &[&str]) -> serde_json::Value {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_meshmon"))
        .arg("query")
        .args(args)
        .arg("--config")
        .arg(config)
        .args(["--format", "json"])
        .output()
        .expect("run meshmon query");
    assert!(
        out.status.success(),
        "query {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json")
}
