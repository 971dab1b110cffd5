//! Containers (`collect.containers`, default on): per container CPU, memory and its limit,
//! network and block I/O rates, state, health, restart count and image, on a thread of its
//! own publishing into [`Extras`] under the source `containers` every `collect.interval`.
//!
//! - Names, state, image, health and restarts come from a Docker-compatible engine API on a
//!   Unix socket (`collect.container_sockets`: Docker's, then Podman's): the container list
//!   every [`ENGINE_EVERY`], a container's inspect call when it is new, its list entry
//!   changed, its init process is gone, or every [`INSPECT_EVERY`].
//! - Usage comes from the container's cgroup (found from its init pid) and its network
//!   namespace, every interval (`cgroup.rs`).
//! - With no engine answering, containers are found in the cgroup tree (containerd,
//!   Kubernetes, CRI-O, or an engine whose socket is elsewhere), named from their paths.
//! - With neither, the collector logs one line and keeps looking every [`IDLE_EVERY`] (an
//!   engine may start later).
//!
//! Bound: [`MAX_CONTAINERS`] containers get their own series (running ones first, then by
//! name); the rest are summed into `container="other"`. Not here: the HTTP client
//! (`engine.rs`) and cgroup files (`cgroup.rs`).

pub mod cgroup;
pub mod engine;
mod series;

use super::{Extras, Sample, Stop};
use cgroup::{Cgroup, Roots, Usage};
use engine::{Engine, EngineContainer, Inspect};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tracing::{info, warn};

/// The source name in [`Extras`].
pub const SOURCE: &str = "containers";
/// Containers with series of their own; the rest are folded into `container="other"`.
pub const MAX_CONTAINERS: usize = 50;
/// The name of the folded series.
pub const OTHER: &str = "other";
/// How often the engine's container list (or the cgroup tree) is read.
pub const ENGINE_EVERY: Duration = Duration::from_secs(5);
/// The longest a container goes without an inspect call.
pub const INSPECT_EVERY: Duration = Duration::from_secs(30);
/// How often a host with no containers is looked at again.
pub const IDLE_EVERY: Duration = Duration::from_secs(60);
/// The most containers tracked (inspected, cgroups read); past it a listed container only
/// counts in `container.running{container="other"}`.
pub const MAX_TRACKED: usize = 500;

/// Where to look.
#[derive(Debug, Clone)]
pub struct Options {
    /// Engine sockets, tried in order; the first that answers is used.
    pub sockets: Vec<PathBuf>,
    /// cgroup and `/proc` roots.
    pub roots: Roots,
    /// Containers with series of their own.
    pub max: usize,
}

/// One container being watched.
#[derive(Debug, Clone, Default)]
struct Tracked {
    name: String,
    image: String,
    state: String,
    /// The list entry's state and status text at the last inspect.
    listed: String,
    inspect: Option<Inspect>,
    inspected: Option<Instant>,
    cgroup: Option<Cgroup>,
    pid: u32,
    prev: Option<(Usage, Instant)>,
}

/// Where the containers came from last.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Mode {
    None,
    Engine(PathBuf),
    Cgroups,
}

/// Watches the host's containers; [`Containers::collect`] gives one interval's samples.
pub struct Containers {
    opts: Options,
    tracked: BTreeMap<String, Tracked>,
    /// Listed containers past [`MAX_TRACKED`] that run.
    untracked_running: usize,
    next_discovery: Option<Instant>,
    /// `None` until the first look (so the first state is logged too).
    mode: Option<Mode>,
    /// The last engine error logged, so one failure is logged once.
    last_error: String,
}

impl Containers {
    /// A collector; the first [`Containers::collect`] looks for containers.
    pub fn new(opts: Options) -> Containers {
        Containers {
            opts,
            tracked: BTreeMap::new(),
            untracked_running: 0,
            next_discovery: None,
            mode: None,
            last_error: String::new(),
        }
    }

    /// Whether an engine answers or container cgroups were found (after a `collect`).
    pub fn active(&self) -> bool {
        self.mode.as_ref().is_some_and(|m| *m != Mode::None)
    }

    /// One interval's samples at `now` (the list or the tree is read when due).
    pub fn collect(&mut self, now: Instant) -> Vec<Sample> {
        if self.next_discovery.is_none_or(|t| now >= t) {
            self.discover(now);
            let wait = if self.active() {
                ENGINE_EVERY
            } else {
                IDLE_EVERY
            };
            self.next_discovery = Some(now + wait);
        }
        let mut rows = Vec::with_capacity(self.tracked.len());
        for t in self.tracked.values_mut() {
            // Each container's counters are stamped when they are read, not at `now`: the
            // engine calls above can take a while on a loaded host, and a rate over a stamp
            // taken before them would count that time as CPU time of a shorter interval.
            rows.push(series::Row::read(t, &self.opts.roots, Instant::now()));
        }
        series::samples(rows, self.untracked_running, self.opts.max)
    }

    fn discover(&mut self, now: Instant) {
        let mut errors = Vec::new();
        for socket in &self.opts.sockets {
            let engine = Engine::new(socket);
            match engine.list() {
                Ok(list) => {
                    self.set_mode(Mode::Engine(socket.clone()), 0);
                    self.last_error.clear();
                    self.track_engine(&engine, list, now);
                    return;
                }
                Err(e) => errors.push(e),
            }
        }
        // A socket that exists but fails is worth a warning; a missing one is normal.
        let failing: Vec<String> = errors
            .iter()
            .filter(|e| {
                !matches!(e, engine::EngineError::Io { source, .. }
                    if source.kind() == std::io::ErrorKind::NotFound)
            })
            .map(ToString::to_string)
            .collect();
        let text = failing.join("; ");
        if !failing.is_empty() && text != self.last_error {
            warn!(error = %text, "containers collector: the engine socket does not answer; reading cgroups");
        }
        self.last_error = text;
        let found = cgroup::scan(&self.opts.roots).unwrap_or_default();
        if found.is_empty() {
            self.tracked.clear();
            self.untracked_running = 0;
            self.set_mode(Mode::None, 0);
            return;
        }
        self.set_mode(Mode::Cgroups, found.len());
        let mut next = BTreeMap::new();
        for f in found {
            let mut t = self.tracked.remove(&f.id).unwrap_or_default();
            let cg = self.opts.roots.at(&f.rel);
            t.pid = cgroup::first_pid(&cg).unwrap_or(0);
            t.state = if t.pid > 0 { "running" } else { "exited" }.into();
            (t.name, t.image, t.inspect, t.cgroup) = (f.name, String::new(), None, Some(cg));
            next.insert(f.id, t);
        }
        self.tracked = next;
        self.untracked_running = 0;
    }

    fn track_engine(&mut self, engine: &Engine, mut list: Vec<EngineContainer>, now: Instant) {
        // Running first, then by name: those keep series of their own under the bound.
        list.sort_by(|a, b| (a.state != "running", &a.name).cmp(&(b.state != "running", &b.name)));
        self.untracked_running = list
            .iter()
            .skip(MAX_TRACKED)
            .filter(|c| c.state == "running")
            .count();
        list.truncate(MAX_TRACKED);
        let mut next = BTreeMap::new();
        for c in list {
            let mut t = self.tracked.remove(&c.id).unwrap_or_default();
            let listed = format!("{}|{}", c.state, c.status);
            let alive = t.pid > 0 && self.opts.roots.proc.join(t.pid.to_string()).exists();
            let due = t
                .inspected
                .is_none_or(|at| now.duration_since(at) >= INSPECT_EVERY)
                || listed != t.listed
                || (c.state == "running" && !alive);
            if due {
                match engine.inspect(&c.id) {
                    Ok(i) => {
                        t.pid = i.pid;
                        t.cgroup = (i.pid > 0).then(|| self.opts.roots.of_pid(i.pid)).flatten();
                        t.inspect = Some(i);
                    }
                    // Gone between the list and the inspect: next round settles it.
                    Err(e) => tracing::debug!(error = %e, "container inspect failed"),
                }
                (t.inspected, t.listed) = (Some(now), listed);
            }
            (t.name, t.image, t.state) = (c.name, c.image, c.state);
            if t.state != "running" {
                (t.pid, t.cgroup, t.prev) = (0, None, None);
            }
            next.insert(c.id, t);
        }
        self.tracked = next;
    }

    /// Logs a change of source (`found`: containers found in cgroups).
    fn set_mode(&mut self, mode: Mode, found: usize) {
        if self.mode.as_ref() == Some(&mode) {
            return;
        }
        match &mode {
            Mode::Engine(socket) => {
                info!(socket = %socket.display(), "containers collector: reading the engine API")
            }
            Mode::Cgroups => info!(
                containers = found,
                root = %self.opts.roots.cgroup.display(),
                "containers collector: no engine socket answers; containers found in cgroups, named from their paths"
            ),
            Mode::None => info!(
                sockets = ?self.opts.sockets,
                root = %self.opts.roots.cgroup.display(),
                "containers collector off: no engine socket answers and no container cgroups; looking again every {}s",
                IDLE_EVERY.as_secs()
            ),
        }
        self.mode = Some(mode);
    }
}

/// Starts the collector thread when `on`.
pub fn start(
    on: bool,
    opts: Options,
    interval: Duration,
    extras: &Extras,
    stop: &Stop,
) -> Option<std::thread::JoinHandle<()>> {
    if !on {
        return None;
    }
    super::extra::spawn(
        "collect-containers",
        "containers",
        extras,
        stop,
        move |e, s| run(Containers::new(opts), interval, e, s),
    )
}

/// Collects every `interval` until `stop`, publishing under [`SOURCE`].
pub fn run(mut c: Containers, interval: Duration, extras: &Extras, stop: &Stop) {
    loop {
        let samples = c.collect(Instant::now());
        if samples.is_empty() {
            extras.clear(SOURCE);
        } else {
            extras.set(SOURCE, samples);
        }
        if stop.sleep(interval) {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use meshmon_proto::metrics::Metric;
    use std::io::{Read, Write};
    use std::os::unix::net::UnixListener;

    const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn opts(dir: &std::path::Path, sockets: Vec<PathBuf>) -> Options {
        Options {
            sockets,
            roots: Roots {
                cgroup: dir.join("cgroup"),
                proc: dir.join("proc"),
            },
            max: MAX_CONTAINERS,
        }
    }

    #[test]
    fn off_without_containers_then_finds_a_cgroup_that_appears_later() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("cgroup");
        std::fs::create_dir_all(&root).expect("mkdir");
        std::fs::write(root.join("cgroup.controllers"), "cpu memory io\n").expect("w");
        let mut c = Containers::new(opts(dir.path(), vec![dir.path().join("none.sock")]));
        let t0 = Instant::now();
        assert!(c.collect(t0).is_empty());
        assert!(!c.active());
        let cg = root.join(format!("system.slice/docker-{ID}.scope"));
        std::fs::create_dir_all(&cg).expect("mkdir");
        std::fs::write(cg.join("memory.current"), "1048576\n").expect("w");
        std::fs::write(cg.join("cgroup.procs"), "").expect("w");
        // Not looked at again before IDLE_EVERY.
        assert!(c.collect(t0 + Duration::from_secs(1)).is_empty());
        let out = c.collect(t0 + IDLE_EVERY);
        assert!(c.active());
        let key = |m| meshmon_proto::SeriesKey::labelled(m, &ID[..12]);
        let running = out
            .iter()
            .find(|(k, _)| *k == key(Metric::ContainerRunning));
        assert_eq!(
            running.map(|s| s.1),
            Some(0.0),
            "no process: not running {out:?}"
        );
    }

    /// A one-connection-at-a-time server answering each request with `reply(path)`.
    fn serve(listener: UnixListener, reply: impl Fn(&str) -> Vec<u8> + Send + 'static) {
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut s) = conn else { return };
                let mut req = Vec::new();
                let mut buf = [0u8; 1024];
                while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => req.extend_from_slice(&buf[..n]),
                    }
                }
                let text = String::from_utf8_lossy(&req);
                let path = text.split_whitespace().nth(1).unwrap_or("").to_owned();
                let _ = s.write_all(&reply(&path));
            }
        });
    }

    fn chunked(body: &str) -> Vec<u8> {
        let (a, b) = body.split_at(body.len() / 2);
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{a}\r\n{:x}\r\n{b}\r\n0\r\n\r\n",
            a.len(),
            b.len()
        )
        .into_bytes()
    }

    #[test]
    fn engine_api_over_a_real_unix_socket_names_containers_with_health_and_restarts() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sock = dir.path().join("docker.sock");
        let listener = UnixListener::bind(&sock).expect("bind");
        // A Docker Engine 1.41 list and inspect, cut to the fields read (plus some that are not).
        serve(listener, |path| {
            if path.starts_with("/containers/json") {
                chunked(&format!(
                    r#"[{{"Id":"{ID}","Names":["/web"],"Image":"nginx:1.27","ImageID":"sha256:x","Command":"nginx","Created":1,"Ports":[],"Labels":{{}},"State":"running","Status":"Up 2 hours (unhealthy)","HostConfig":{{"NetworkMode":"bridge"}}}}]"#
                ))
            } else if path == format!("/containers/{ID}/json") {
                let body = r#"{"Id":"x","RestartCount":4,"State":{"Status":"running","Running":true,"Pid":999999999,"Health":{"Status":"unhealthy","FailingStreak":3}},"Config":{"Image":"nginx:1.27"}}"#;
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                )
                .into_bytes()
            } else {
                b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_vec()
            }
        });
        let mut c = Containers::new(opts(dir.path(), vec![dir.path().join("none.sock"), sock]));
        let out = c.collect(Instant::now());
        assert!(c.active());
        let get = |m| {
            let key = meshmon_proto::SeriesKey::labelled(m, "web");
            out.iter().find(|(k, _)| *k == key).map(|s| s.1)
        };
        assert_eq!(get(Metric::ContainerRunning), Some(1.0), "{out:?}");
        assert_eq!(get(Metric::ContainerHealthy), Some(0.0));
        assert_eq!(get(Metric::ContainerRestarts), Some(4.0));
        let info = out
            .iter()
            .find(|(k, _)| k.name == "container.info")
            .expect("info");
        assert_eq!(info.0.label("image"), Some("nginx:1.27"));
        // The pid does not exist: no cgroup, so no usage series.
        assert_eq!(get(Metric::ContainerCpuPct), None);
    }
}
