//! A container's cgroup and network namespace: where they are and what they say.
//!
//! - Where: from the container's init pid (`/proc/<pid>/cgroup`, every engine and cgroup
//!   driver alike), or, with no engine answering, found by [`scan`]ning the cgroup tree for
//!   directories named after a container id (Docker `docker-<id>.scope` / `docker/<id>`,
//!   Podman `libpod-<id>.scope`, containerd `cri-containerd-<id>.scope`, CRI-O `crio-<id>.scope`,
//!   Kubernetes `kubepods…/pod<uid>/<id>`).
//! - cgroup v2 (one hierarchy with controllers): `cpu.stat` `usage_usec`, `memory.current`,
//!   `memory.max`, `io.stat` `rbytes`/`wbytes`. cgroup v1 (and the hybrid layout): `cpuacct.usage`
//!   (ns), `memory.usage_in_bytes`, `memory.limit_in_bytes`,
//!   `blkio.throttle.io_service_bytes` (`Read`/`Write` summed over devices).
//! - Network: `/proc/<pid>/net/dev` of the init pid, every interface but `lo`; nothing when the
//!   container shares the host's network namespace (its traffic is the host's).
//!
//! Not here: the engine API (`engine.rs`), rates and series (`mod.rs`).

use std::path::{Path, PathBuf};

/// The directories of one container's cgroup (whichever hierarchies exist).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cgroup {
    /// cgroup v2 directory (when the v2 hierarchy has controllers).
    pub v2: Option<PathBuf>,
    /// v1 `cpuacct` directory.
    pub cpuacct: Option<PathBuf>,
    /// v1 `memory` directory.
    pub memory: Option<PathBuf>,
    /// v1 `blkio` directory.
    pub blkio: Option<PathBuf>,
}

/// One reading of a container's counters and gauges; `None` where a file is missing.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Usage {
    /// CPU time used, µs.
    pub cpu_usec: Option<u64>,
    /// Memory charged to the cgroup.
    pub mem_bytes: Option<u64>,
    /// The memory limit; `None` when unlimited.
    pub mem_limit_bytes: Option<u64>,
    /// Bytes read from block devices.
    pub blk_read: Option<u64>,
    /// Bytes written to block devices.
    pub blk_write: Option<u64>,
    /// Bytes received on the container's interfaces (not `lo`).
    pub net_rx: Option<u64>,
    /// Bytes sent.
    pub net_tx: Option<u64>,
}

/// Where the cgroup file system and `/proc` are (fixture trees in tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Roots {
    /// `/sys/fs/cgroup`.
    pub cgroup: PathBuf,
    /// `/proc`.
    pub proc: PathBuf,
}

impl Roots {
    /// Whether the unified (v2) hierarchy at the root has controllers (a pure v2 host).
    pub fn is_v2(&self) -> bool {
        self.cgroup.join("cgroup.controllers").exists()
    }

    /// The cgroup of process `pid`, from `/proc/<pid>/cgroup`.
    pub fn of_pid(&self, pid: u32) -> Option<Cgroup> {
        let text =
            crate::collect::read_text(self.proc.join(pid.to_string()).join("cgroup")).ok()?;
        let mut cg = Cgroup::default();
        for line in text.lines() {
            let mut f = line.splitn(3, ':');
            let (Some(_), Some(ctrls), Some(path)) = (f.next(), f.next(), f.next()) else {
                continue;
            };
            let rel = path.trim_start_matches('/');
            if ctrls.is_empty() {
                if self.is_v2() {
                    cg.v2 = Some(self.cgroup.join(rel));
                }
                continue;
            }
            for c in ctrls.split(',') {
                let slot = match c {
                    "cpuacct" => &mut cg.cpuacct,
                    "memory" => &mut cg.memory,
                    "blkio" => &mut cg.blkio,
                    _ => continue,
                };
                // The mount is named after its controllers (`cpu,cpuacct`), often with a
                // symlink per controller; try both.
                *slot = [self.cgroup.join(ctrls), self.cgroup.join(c)]
                    .into_iter()
                    .map(|d| d.join(rel))
                    .find(|d| d.is_dir());
            }
        }
        Some(cg)
    }

    /// The same cgroup `rel` (a path below each hierarchy's root) in every hierarchy.
    pub fn at(&self, rel: &Path) -> Cgroup {
        if self.is_v2() {
            return Cgroup {
                v2: Some(self.cgroup.join(rel)),
                ..Cgroup::default()
            };
        }
        let first = |names: &[&str]| {
            names
                .iter()
                .map(|n| self.cgroup.join(n).join(rel))
                .find(|d| d.is_dir())
        };
        Cgroup {
            v2: None,
            cpuacct: first(&["cpuacct", "cpu,cpuacct"]),
            memory: first(&["memory"]),
            blkio: first(&["blkio"]),
        }
    }

    /// Bytes received and sent by `pid`'s network namespace, `None` when it is the host's
    /// (pid 1's) or unreadable.
    pub fn net(&self, pid: u32) -> Option<(u64, u64)> {
        let ns = |p: &str| std::fs::read_link(self.proc.join(p).join("ns/net")).ok();
        let own = ns(&pid.to_string());
        if own.is_some() && own == ns("1") {
            return None;
        }
        let text =
            crate::collect::read_text(self.proc.join(pid.to_string()).join("net/dev")).ok()?;
        Some(parse_net_dev(&text))
    }
}

/// The first process of a cgroup directory (for its network namespace).
pub fn first_pid(cg: &Cgroup) -> Option<u32> {
    [&cg.v2, &cg.memory, &cg.cpuacct]
        .into_iter()
        .flatten()
        .find_map(|d| {
            let procs = crate::collect::read_text(d.join("cgroup.procs")).ok()?;
            procs.lines().find_map(|l| l.trim().parse().ok())
        })
}

fn read_u64(p: &Path) -> Option<u64> {
    crate::collect::read_text(p).ok()?.trim().parse().ok()
}

/// Reads a container's cgroup files.
pub fn read(cg: &Cgroup) -> Usage {
    let mut u = Usage::default();
    if let Some(d) = &cg.v2 {
        u.cpu_usec = keyed(&d.join("cpu.stat"), "usage_usec");
        u.mem_bytes = read_u64(&d.join("memory.current"));
        // "max" does not parse: unlimited.
        u.mem_limit_bytes = read_u64(&d.join("memory.max"));
        if let Ok(text) = crate::collect::read_text(d.join("io.stat")) {
            let (r, w) = parse_io_stat(&text);
            (u.blk_read, u.blk_write) = (Some(r), Some(w));
        }
    }
    if let Some(d) = &cg.cpuacct {
        u.cpu_usec = read_u64(&d.join("cpuacct.usage")).map(|ns| ns / 1000);
    }
    if let Some(d) = &cg.memory {
        u.mem_bytes = read_u64(&d.join("memory.usage_in_bytes"));
        // v1 writes "unlimited" as a huge page-rounded number.
        u.mem_limit_bytes = read_u64(&d.join("memory.limit_in_bytes")).filter(|l| *l < 1 << 62);
    }
    if let Some(d) = &cg.blkio
        && let Ok(text) = crate::collect::read_text(d.join("blkio.throttle.io_service_bytes"))
    {
        let (r, w) = parse_blkio(&text);
        (u.blk_read, u.blk_write) = (Some(r), Some(w));
    }
    u
}

/// `key value` lines: the value of `key`.
fn keyed(p: &Path, key: &str) -> Option<u64> {
    let text = crate::collect::read_text(p).ok()?;
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

/// v2 `io.stat`: `8:0 rbytes=1 wbytes=2 rios=3 ...` per device; read and written bytes summed.
pub fn parse_io_stat(text: &str) -> (u64, u64) {
    let (mut r, mut w) = (0u64, 0u64);
    for field in text.split_whitespace() {
        match field.split_once('=') {
            Some(("rbytes", v)) => r = r.saturating_add(v.parse().unwrap_or(0)),
            Some(("wbytes", v)) => w = w.saturating_add(v.parse().unwrap_or(0)),
            _ => {}
        }
    }
    (r, w)
}

/// v1 `blkio.throttle.io_service_bytes`: `8:0 Read 123` lines; the `Total` line is skipped.
pub fn parse_blkio(text: &str) -> (u64, u64) {
    let (mut r, mut w) = (0u64, 0u64);
    for line in text.lines() {
        let mut f = line.split_whitespace();
        let (Some(_dev), Some(op), Some(v)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        let v: u64 = v.parse().unwrap_or(0);
        match op {
            "Read" => r = r.saturating_add(v),
            "Write" => w = w.saturating_add(v),
            _ => {}
        }
    }
    (r, w)
}

/// `/proc/<pid>/net/dev`: received and sent bytes, summed over interfaces except `lo`.
pub fn parse_net_dev(text: &str) -> (u64, u64) {
    let (mut rx, mut tx) = (0u64, 0u64);
    for line in text.lines().skip(2) {
        let Some((iface, rest)) = line.split_once(':') else {
            continue;
        };
        if iface.trim() == "lo" {
            continue;
        }
        let f: Vec<u64> = rest
            .split_whitespace()
            .map(|v| v.parse().unwrap_or(0))
            .collect();
        if f.len() >= 9 {
            rx = rx.saturating_add(f[0]);
            tx = tx.saturating_add(f[8]);
        }
    }
    (rx, tx)
}

/// A container found in the cgroup tree without an engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// The container id (64 hex digits).
    pub id: String,
    /// A name made from the path: `pod<uid 8>/<id 12>` for Kubernetes, else `<id 12>`.
    pub name: String,
    /// The path below the hierarchy's root.
    pub rel: PathBuf,
}

/// How deep [`scan`] goes (kubepods.slice/kubepods-burstable.slice/…pod….slice/…scope is 4).
const SCAN_DEPTH: usize = 6;
/// The most directories one scan visits (a bound on a huge tree's cost).
const SCAN_MAX_DIRS: usize = 20_000;

/// Walks the hierarchy that carries memory accounting (the v2 root, or v1 `memory`) for
/// container cgroups; `None` when no hierarchy is there.
pub fn scan(roots: &Roots) -> Option<Vec<Found>> {
    let base = if roots.is_v2() {
        roots.cgroup.clone()
    } else {
        roots.cgroup.join("memory")
    };
    if !base.is_dir() {
        return None;
    }
    let mut found = Vec::new();
    let mut stack = vec![(PathBuf::new(), 0usize)];
    let mut visited = 0;
    while let Some((rel, depth)) = stack.pop() {
        visited += 1;
        if visited > SCAN_MAX_DIRS {
            break;
        }
        let Ok(rd) = std::fs::read_dir(base.join(&rel)) else {
            continue;
        };
        for entry in rd.flatten() {
            if !entry.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let name = entry.file_name().to_string_lossy().into_owned();
            let child = rel.join(&name);
            if let Some(id) = container_id(&name) {
                let name = match pod_of(&rel) {
                    Some(pod) => format!("{pod}/{}", &id[..12]),
                    None => id[..12].to_owned(),
                };
                found.push(Found {
                    id: id.to_owned(),
                    name,
                    rel: child,
                });
            } else if depth < SCAN_DEPTH {
                stack.push((child, depth + 1));
            }
        }
    }
    found.sort_by(|a, b| a.name.cmp(&b.name));
    Some(found)
}

/// The container id in a cgroup directory name, if it is a container's.
pub fn container_id(dir: &str) -> Option<&str> {
    if dir.contains("conmon") {
        return None;
    }
    let stem = dir.strip_suffix(".scope").unwrap_or(dir);
    let id = stem.rsplit(['-', ':']).next().unwrap_or(stem);
    (id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit())).then_some(id)
}

/// `pod<first 8 of uid>` when `rel` is inside a Kubernetes pod's cgroup.
fn pod_of(rel: &Path) -> Option<String> {
    let last = rel.file_name()?.to_str()?;
    if !rel.to_string_lossy().contains("kubepods") {
        return None;
    }
    let stem = last.strip_suffix(".slice").unwrap_or(last);
    let uid = stem.rsplit_once("pod")?.1.replace('_', "-");
    Some(format!("pod{}", uid.get(..8).unwrap_or(&uid)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "f8266ca39280167a7c6f4e4722a5ac0040b9174ff15c26283ac936775bfeac93";

    #[test]
    fn container_ids_from_directory_names() {
        for dir in [
            format!("docker-{ID}.scope"),
            format!("libpod-{ID}.scope"),
            format!("cri-containerd-{ID}.scope"),
            format!("crio-{ID}.scope"),
            ID.to_owned(),
        ] {
            assert_eq!(container_id(&dir), Some(ID), "{dir}");
        }
        assert_eq!(container_id(&format!("libpod-conmon-{ID}.scope")), None);
        assert_eq!(container_id("system.slice"), None);
        assert_eq!(container_id("docker-123.scope"), None);
    }

    #[test]
    fn parsers() {
        let io = "8:0 rbytes=100 wbytes=200 rios=1 wios=2\n259:0 rbytes=1 wbytes=2 dbytes=0\n";
        assert_eq!(parse_io_stat(io), (101, 202));
        let blk = "8:0 Read 10\n8:0 Write 20\n8:0 Sync 30\n8:0 Total 30\n8:16 Read 1\nTotal 31\n";
        assert_eq!(parse_blkio(blk), (11, 20));
        let dev = "Inter-|   Receive |  Transmit\n face |bytes packets\n    lo: 50 1 0 0 0 0 0 0 50 1 0 0 0 0 0 0\n  eth0: 1000 10 0 0 0 0 0 0 2000 20 0 0 0 0 0 0\n";
        assert_eq!(parse_net_dev(dev), (1000, 2000));
        assert_eq!(parse_net_dev("garbage"), (0, 0));
    }

    #[test]
    fn scan_finds_kubernetes_and_docker_containers_in_a_v2_tree() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        std::fs::write(root.join("cgroup.controllers"), "cpu memory io\n").expect("write");
        let pod = "kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1234abcd_5678_90ab.slice";
        let k8s = root.join(pod).join(format!("cri-containerd-{ID}.scope"));
        let docker = root.join(format!(
            "system.slice/docker-{}.scope",
            &ID.replace('f', "e")
        ));
        for d in [&k8s, &docker] {
            std::fs::create_dir_all(d).expect("mkdir");
        }
        std::fs::write(k8s.join("cpu.stat"), "usage_usec 5000\nuser_usec 1\n").expect("w");
        std::fs::write(k8s.join("memory.current"), "4096\n").expect("w");
        std::fs::write(k8s.join("memory.max"), "max\n").expect("w");
        let roots = Roots {
            cgroup: root.to_owned(),
            proc: root.join("proc"),
        };
        let found = scan(&roots).expect("a tree");
        let names: Vec<_> = found.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["e8266ca39280", "pod1234abcd/f8266ca39280"]);
        let u = read(&roots.at(&found[1].rel));
        assert_eq!(u.cpu_usec, Some(5000));
        assert_eq!(u.mem_bytes, Some(4096));
        assert_eq!(u.mem_limit_bytes, None, "max is unlimited");
    }
}
