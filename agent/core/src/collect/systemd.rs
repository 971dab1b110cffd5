//! systemd units (`collect.systemd_units`): per unit whether it is active, its memory and its
//! CPU use, read from the unit's cgroup under `collect.cgroup_root` (default `/sys/fs/cgroup`).
//! A few small file reads per unit; no process is spawned (`systemctl` is not called).
//!
//! - cgroup v2 (`<root>/cgroup.controllers` exists): `<root>/system.slice/UNIT/` with
//!   `cgroup.events` (`populated 1` = the unit or a child cgroup has processes),
//!   `memory.current` and `cpu.stat` (`usage_usec`).
//! - cgroup v1: `<root>/memory/system.slice/UNIT/memory.usage_in_bytes` (includes page cache,
//!   as v1 counts it), `<root>/cpuacct/system.slice/UNIT/cpuacct.usage` (ns); active when a
//!   non-empty `cgroup.procs` is found in the `systemd` (name=systemd), `memory` or `cpuacct`
//!   hierarchy.
//!
//! Template instances (`getty@tty1.service`) live in `system.slice/system-getty.slice/`; a
//! `.slice` unit is looked up at the root. `systemd.active` is 1 when the unit's cgroup exists
//! and holds processes (what `systemctl` reports as active for a service with a main process;
//! a `oneshot` unit with `RemainAfterExit=yes` has no processes and reads 0), else 0 with no
//! memory or CPU value. CPU is the percent of one core over the time between two readings,
//! like `systemd-cgtop` (200 = two cores busy); the first reading of a unit has none.
//!
//! Not here: scheduling (the thread in [`start`]) and sending (the core loop via [`Extras`]).

use super::{Extras, Sample, Stop};
use meshmon_proto::SeriesKey;
use meshmon_proto::metrics::Metric;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The source name under which the values are published.
pub const SOURCE: &str = "systemd";

/// Reads the units' cgroups; keeps each unit's previous CPU counter for the percentage.
#[derive(Debug)]
pub struct Systemd {
    root: PathBuf,
    units: Vec<String>,
    /// Unit -> (CPU time in µs, when read).
    prev: HashMap<String, (u64, Instant)>,
}

/// What one unit's cgroup said.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Reading {
    mem_bytes: Option<u64>,
    cpu_usec: Option<u64>,
}

impl Systemd {
    /// A collector of `units` under the cgroup root `root`.
    pub fn new(root: &Path, units: &[String]) -> Systemd {
        Systemd {
            root: root.to_path_buf(),
            units: units.to_vec(),
            prev: HashMap::new(),
        }
    }

    /// One reading of every unit at `now`.
    pub fn collect(&mut self, now: Instant) -> Vec<Sample> {
        let v2 = self.root.join("cgroup.controllers").exists();
        let mut out = Vec::with_capacity(self.units.len() * 3);
        for unit in &self.units {
            let reading = if v2 {
                read_v2(&self.root, unit)
            } else {
                read_v1(&self.root, unit)
            };
            let key = |m| SeriesKey::labelled(m, unit.clone());
            let Some(r) = reading else {
                out.push((key(Metric::SystemdActive), 0.0));
                self.prev.remove(unit);
                continue;
            };
            out.push((key(Metric::SystemdActive), 1.0));
            if let Some(m) = r.mem_bytes {
                out.push((key(Metric::SystemdMemBytes), m as f64));
            }
            if let Some(usec) = r.cpu_usec {
                if let Some((before, then)) = self.prev.get(unit)
                    && let Some(pct) = cpu_pct(*before, usec, now.duration_since(*then))
                {
                    out.push((key(Metric::SystemdCpuPct), pct));
                }
                self.prev.insert(unit.clone(), (usec, now));
            }
        }
        out
    }
}

/// Percent of one core: CPU time used over wall time elapsed. `None` when no time passed or
/// the counter went back (the unit restarted: a new cgroup).
fn cpu_pct(before_usec: u64, now_usec: u64, elapsed: Duration) -> Option<f64> {
    let used = now_usec.checked_sub(before_usec)?;
    let wall = elapsed.as_micros();
    (wall > 0).then(|| used as f64 * 100.0 / wall as f64)
}

/// Where the unit's cgroup lives below a hierarchy's root, in lookup order.
fn unit_dirs(base: &Path, unit: &str) -> Vec<PathBuf> {
    let mut dirs = vec![base.join("system.slice").join(unit)];
    if let Some((prefix, _)) = unit.split_once('@') {
        dirs.push(
            base.join("system.slice")
                .join(format!("system-{prefix}.slice"))
                .join(unit),
        );
    }
    if unit.ends_with(".slice") {
        dirs.push(base.join(unit));
    }
    dirs
}

fn find_dir(base: &Path, unit: &str) -> Option<PathBuf> {
    unit_dirs(base, unit).into_iter().find(|d| d.is_dir())
}

fn read_trimmed(p: &Path) -> Option<String> {
    super::read_text(p).ok().map(|s| s.trim().to_owned())
}

fn read_u64(p: &Path) -> Option<u64> {
    read_trimmed(p)?.parse().ok()
}

/// cgroup v2: `None` when the unit's cgroup is missing or holds no process.
fn read_v2(root: &Path, unit: &str) -> Option<Reading> {
    let dir = find_dir(root, unit)?;
    let populated = match read_trimmed(&dir.join("cgroup.events")) {
        Some(events) => events
            .lines()
            .any(|l| l.split_whitespace().eq(["populated", "1"])),
        None => read_trimmed(&dir.join("cgroup.procs")).is_some_and(|p| !p.is_empty()),
    };
    if !populated {
        return None;
    }
    let cpu_usec = read_trimmed(&dir.join("cpu.stat")).and_then(|stat| {
        stat.lines().find_map(|l| {
            let (k, v) = l.split_once(' ')?;
            (k == "usage_usec").then(|| v.trim().parse().ok()).flatten()
        })
    });
    Some(Reading {
        mem_bytes: read_u64(&dir.join("memory.current")),
        cpu_usec,
    })
}

/// cgroup v1: `None` when no hierarchy has a non-empty `cgroup.procs` for the unit.
fn read_v1(root: &Path, unit: &str) -> Option<Reading> {
    let mem = find_dir(&root.join("memory"), unit);
    let cpu =
        find_dir(&root.join("cpuacct"), unit).or_else(|| find_dir(&root.join("cpu,cpuacct"), unit));
    let populated = [
        find_dir(&root.join("systemd"), unit),
        mem.clone(),
        cpu.clone(),
    ]
    .into_iter()
    .flatten()
    .any(|d| read_trimmed(&d.join("cgroup.procs")).is_some_and(|p| !p.is_empty()));
    if !populated {
        return None;
    }
    Some(Reading {
        mem_bytes: mem.and_then(|d| read_u64(&d.join("memory.usage_in_bytes"))),
        cpu_usec: cpu
            .and_then(|d| read_u64(&d.join("cpuacct.usage")))
            .map(|ns| ns / 1000),
    })
}

/// Starts the collector thread when units are configured.
pub fn start(
    root: &Path,
    units: &[String],
    interval: Duration,
    extras: &Extras,
    stop: &Stop,
) -> Option<std::thread::JoinHandle<()>> {
    if units.is_empty() {
        return None;
    }
    let mut sd = Systemd::new(root, units);
    super::extra::spawn("systemd", "systemd", extras, stop, move |extras, stop| {
        loop {
            extras.set(SOURCE, sd.collect(Instant::now()));
            if stop.sleep(interval) {
                break;
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(p: &Path, text: &str) {
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, text).expect("write");
    }

    fn value(out: &[Sample], m: Metric, unit: &str) -> Option<f64> {
        out.iter()
            .find(|(k, _)| *k == SeriesKey::labelled(m, unit))
            .map(|(_, v)| *v)
    }

    #[test]
    fn cgroup_v2_units() {
        let t = tempfile::tempdir().expect("tempdir");
        let root = t.path();
        write(&root.join("cgroup.controllers"), "cpu memory\n");
        let nginx = root.join("system.slice/nginx.service");
        write(&nginx.join("cgroup.events"), "populated 1\nfrozen 0\n");
        write(&nginx.join("memory.current"), "52428800\n");
        write(
            &nginx.join("cpu.stat"),
            "usage_usec 1000000\nuser_usec 600000\nsystem_usec 400000\n",
        );
        let getty = root.join("system.slice/system-getty.slice/getty@tty1.service");
        write(&getty.join("cgroup.events"), "populated 1\n");
        write(&getty.join("memory.current"), "4096\n");
        let stopped = root.join("system.slice/backup.service");
        write(&stopped.join("cgroup.events"), "populated 0\n");
        let units: Vec<String> = [
            "nginx.service",
            "getty@tty1.service",
            "backup.service",
            "gone.service",
        ]
        .map(String::from)
        .to_vec();
        let mut sd = Systemd::new(root, &units);
        let t0 = Instant::now();
        let first = sd.collect(t0);
        assert_eq!(
            value(&first, Metric::SystemdActive, "nginx.service"),
            Some(1.0)
        );
        assert_eq!(
            value(&first, Metric::SystemdMemBytes, "nginx.service"),
            Some(52_428_800.0)
        );
        assert_eq!(value(&first, Metric::SystemdCpuPct, "nginx.service"), None);
        assert_eq!(
            value(&first, Metric::SystemdActive, "getty@tty1.service"),
            Some(1.0)
        );
        assert_eq!(
            value(&first, Metric::SystemdMemBytes, "getty@tty1.service"),
            Some(4096.0)
        );
        for unit in ["backup.service", "gone.service"] {
            assert_eq!(value(&first, Metric::SystemdActive, unit), Some(0.0));
            assert_eq!(value(&first, Metric::SystemdMemBytes, unit), None);
            assert_eq!(value(&first, Metric::SystemdCpuPct, unit), None);
        }
        // 0.5 s of CPU over 2 s of wall time: 25 % of one core.
        write(&nginx.join("cpu.stat"), "usage_usec 1500000\n");
        let second = sd.collect(t0 + Duration::from_secs(2));
        let pct = value(&second, Metric::SystemdCpuPct, "nginx.service").expect("cpu");
        assert!((pct - 25.0).abs() < 1e-9, "{pct}");
    }

    #[test]
    fn cgroup_v1_units() {
        let t = tempfile::tempdir().expect("tempdir");
        let root = t.path();
        let mem = root.join("memory/system.slice/nginx.service");
        write(&mem.join("cgroup.procs"), "812\n813\n");
        write(&mem.join("memory.usage_in_bytes"), "104857600\n");
        let cpu = root.join("cpuacct/system.slice/nginx.service");
        write(&cpu.join("cgroup.procs"), "812\n813\n");
        write(&cpu.join("cpuacct.usage"), "2000000000\n");
        let idle = root.join("systemd/system.slice/idle.service");
        write(&idle.join("cgroup.procs"), "");
        let units: Vec<String> = ["nginx.service", "idle.service", "gone.service"]
            .map(String::from)
            .to_vec();
        let mut sd = Systemd::new(root, &units);
        let t0 = Instant::now();
        let first = sd.collect(t0);
        assert_eq!(
            value(&first, Metric::SystemdActive, "nginx.service"),
            Some(1.0)
        );
        assert_eq!(
            value(&first, Metric::SystemdMemBytes, "nginx.service"),
            Some(104_857_600.0)
        );
        assert_eq!(
            value(&first, Metric::SystemdActive, "idle.service"),
            Some(0.0)
        );
        assert_eq!(
            value(&first, Metric::SystemdActive, "gone.service"),
            Some(0.0)
        );
        assert_eq!(value(&first, Metric::SystemdMemBytes, "gone.service"), None);
        // 1.5 s of CPU (ns counter) over 1 s: 150 % (one and a half cores).
        write(&cpu.join("cpuacct.usage"), "3500000000\n");
        let second = sd.collect(t0 + Duration::from_secs(1));
        let pct = value(&second, Metric::SystemdCpuPct, "nginx.service").expect("cpu");
        assert!((pct - 150.0).abs() < 1e-9, "{pct}");
    }

    #[test]
    fn cpu_counter_going_back_gives_no_value() {
        assert_eq!(cpu_pct(10, 5, Duration::from_secs(1)), None);
        assert_eq!(cpu_pct(0, 5, Duration::ZERO), None);
        assert_eq!(cpu_pct(0, 500_000, Duration::from_secs(1)), Some(50.0));
    }
}
