//! Containers end to end with real Podman containers (Debian's `podman`, `runc` and
//! `busybox-static`; `.ci/run` installs them): a busy one (`while :; do :; done`), an idle one
//! (`sleep`, with a healthcheck) and one that exits 1 under `--restart=always`, read by a real
//! `meshmon` dashboard node through Podman's Docker-compatible API on a Unix socket
//! (`podman system service`) and through the containers' cgroups. The busy one reads >= 80 %
//! CPU, the idle one < 5 %, `container-restarting` fires for the restarting one and
//! `container-unhealthy` for one whose healthcheck fails; the collector itself, with a bound of
//! 2 for 3 containers, folds the third into `container="other"`, and with no engine socket
//! finds a container in the cgroup tree, named by its short id.
//!
//! Where Podman cannot start a container here (no podman, no permission for namespaces or
//! cgroups), the tests print a loud SKIPPED line and do not run.

mod common;

use common::webhook::Webhook;
use common::{Agent, Spec, query, serial};
use meshmon_agent_core::collect::containers::{self, Containers, Options, cgroup::Roots};
use meshmon_proto::SeriesKey;
use meshmon_proto::metrics::Metric;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const IMAGE: &str = "localhost/meshmon-test-busybox:latest";

/// Podman with its own engine API socket, and the containers a test started (removed on drop).
struct Podman {
    conf: PathBuf,
    socket: PathBuf,
    service: Child,
    prefix: String,
    names: Vec<String>,
}

impl Podman {
    fn cmd(&self) -> Command {
        let mut c = Command::new("podman");
        c.env("CONTAINERS_CONF", &self.conf);
        c
    }

    /// Podman set up in `dir`, or why not.
    fn start(dir: &Path) -> Result<Podman, String> {
        // runc, not crun: crun refuses the hybrid cgroup layout (v1 controllers + an empty
        // v2 mount). The ulimits are the test process's own: a container may not raise them.
        let conf = dir.join("containers.conf");
        std::fs::write(
            &conf,
            "[containers]\ndefault_ulimits = [\"nofile=1024:1024\", \"nproc=1024:1024\"]\n[engine]\nruntime = \"runc\"\n",
        )
        .map_err(|e| e.to_string())?;
        let root = dir.join("rootfs/bin");
        std::fs::create_dir_all(&root).map_err(|e| e.to_string())?;
        std::fs::copy("/bin/busybox", root.join("busybox"))
            .map_err(|e| format!("/bin/busybox (package busybox-static): {e}"))?;
        for l in ["sh", "sleep", "true"] {
            std::os::unix::fs::symlink("busybox", root.join(l)).map_err(|e| e.to_string())?;
        }
        let tar = dir.join("rootfs.tar");
        run(Command::new("tar")
            .arg("-C")
            .arg(dir.join("rootfs"))
            .arg("-cf")
            .arg(&tar)
            .arg("."))?;
        let socket = dir.join("podman.sock");
        let mut p = Podman {
            conf,
            socket: socket.clone(),
            service: Command::new("true").spawn().map_err(|e| e.to_string())?,
            prefix: format!("meshmon-test-{}", std::process::id()),
            names: Vec::new(),
        };
        run(p.cmd().arg("import").arg(&tar).arg(IMAGE))?;
        p.service = p
            .cmd()
            .args(["system", "service", "--time=0"])
            .arg(format!("unix://{}", socket.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("podman system service: {e}"))?;
        let until = Instant::now() + Duration::from_secs(20);
        while !socket.exists() {
            if Instant::now() > until {
                return Err("podman system service made no socket in 20 s".into());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(p)
    }

    /// Starts container `name` (prefixed) with `args` before the image and `cmd` after.
    fn run(&mut self, name: &str, args: &[&str], cmd: &[&str]) -> Result<String, String> {
        let full = format!("{}-{name}", self.prefix);
        self.names.push(full.clone());
        run(self
            .cmd()
            .args(["run", "-d", "--name", &full])
            .args(args)
            .arg(IMAGE)
            .args(cmd))?;
        Ok(full)
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        // A `--restart=always` container caught between two runs can refuse `rm` for a
        // moment ("improper state"): try again until none of ours is left.
        for _ in 0..10 {
            if self.names.is_empty() {
                break;
            }
            let _ = self
                .cmd()
                .args(["rm", "-f", "-t", "0"])
                .args(&self.names)
                .output();
            let left = self
                .cmd()
                .args(["ps", "-a", "--format", "{{.Names}}"])
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default();
            self.names.retain(|n| left.lines().any(|l| l.trim() == n));
            if !self.names.is_empty() {
                std::thread::sleep(Duration::from_millis(300));
            }
        }
        let _ = self.service.kill();
        let _ = self.service.wait();
    }
}

/// A cgroup parent with a large CPU weight, so the busy container gets a whole core even on a
/// loaded test machine (with 10 runnable processes on 2 cores a plain busy loop gets ~30 %,
/// which the collector reports correctly, but the check is about a container that is busy).
/// Removed, with what Podman left in it, on drop.
struct CpuParent(String);

impl CpuParent {
    fn create() -> Option<CpuParent> {
        let name = format!("meshmon-test-cpu-{}", std::process::id());
        let root = Path::new("/sys/fs/cgroup");
        let (dir, file, weight) = if root.join("cgroup.controllers").exists() {
            (root.join(&name), "cpu.weight", "10000")
        } else {
            let h = ["cpu", "cpu,cpuacct"]
                .iter()
                .map(|h| root.join(h))
                .find(|h| h.is_dir())?;
            (h.join(&name), "cpu.shares", "262144")
        };
        std::fs::create_dir_all(&dir).ok()?;
        let parent = CpuParent(name);
        std::fs::write(dir.join(file), weight).ok()?;
        Some(parent)
    }
}

impl Drop for CpuParent {
    fn drop(&mut self) {
        let root = Path::new("/sys/fs/cgroup");
        let mut dirs = vec![root.join(&self.0)];
        if let Ok(rd) = std::fs::read_dir(root) {
            dirs.extend(rd.flatten().map(|e| e.path().join(&self.0)));
        }
        // A removed container's cgroups may go a moment after `podman rm` returns.
        for _ in 0..30 {
            remove_tree(&dirs);
            if dirs.iter().all(|d| !d.is_dir()) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Removes cgroup directories, children first (rmdir removes a cgroup, files and all).
fn remove_tree(dirs: &[PathBuf]) {
    for d in dirs.iter().filter(|d| d.is_dir()) {
        let mut all: Vec<PathBuf> = walkdir::WalkDir::new(d)
            .into_iter()
            .flatten()
            .filter(|e| e.file_type().is_dir())
            .map(|e| e.into_path())
            .collect();
        all.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
        for p in all {
            let _ = std::fs::remove_dir(p);
        }
    }
}

fn run(c: &mut Command) -> Result<String, String> {
    let out = c.output().map_err(|e| format!("{c:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{c:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Podman with one container started, or `None` after a loud skip line.
fn podman_or_skip(dir: &Path) -> Option<Podman> {
    let tried = Podman::start(dir).and_then(|mut p| {
        p.run("probe", &[], &["true"])?;
        Ok(p)
    });
    match tried {
        Ok(p) => Some(p),
        Err(why) => {
            eprintln!(
                "\n!!!!!!!! SKIPPED: podman cannot start a container here ({why}). This test did NOT run. !!!!!!!!\n"
            );
            None
        }
    }
}

fn values(cfg: &Path, metric: &str, since: &str) -> Vec<f64> {
    let rows = query(
        cfg,
        &[
            "series", "--host", "ctr", "--metric", metric, "--since", since,
        ],
    );
    rows.as_array()
        .map(|a| a.iter().filter_map(|r| r["value"].as_f64()).collect())
        .unwrap_or_default()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

#[test]
fn busy_idle_and_restarting_podman_containers_through_a_real_node() {
    let _serial = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    // Made before Podman so that, dropped after it (also on a panic), it is empty by then.
    let parent = CpuParent::create();
    let Some(mut pm) = podman_or_skip(dir.path()) else {
        return;
    };
    let parent_arg = parent.as_ref().map(|p| format!("--cgroup-parent=/{}", p.0));
    let busy_args: Vec<&str> = parent_arg.iter().map(String::as_str).collect();
    let busy = pm
        .run("busy", &busy_args, &["sh", "-c", "while :; do :; done"])
        .expect("busy");
    let idle = pm
        .run(
            "idle",
            &["--health-cmd", "true", "--health-interval", "1h"],
            &["sleep", "100000"],
        )
        .expect("idle");
    let crash = pm
        .run(
            "crash",
            &["--restart=always"],
            &["sh", "-c", "sleep 3; exit 1"],
        )
        .expect("crash");
    let sick = pm
        .run(
            "sick",
            &[
                "--health-cmd",
                "false",
                "--health-retries",
                "1",
                "--health-interval",
                "1h",
            ],
            &["sleep", "100000"],
        )
        .expect("sick");
    // Without systemd Podman runs no healthcheck timer: run them once by hand.
    run(pm.cmd().args(["healthcheck", "run", &idle])).expect("healthcheck");
    let _ = pm.cmd().args(["healthcheck", "run", &sick]).output();

    let hook = Webhook::start();
    let mut spec = Spec::new("ctr");
    spec.extra = format!(
        "dashboard = true\n\n[collect]\ncontainer_sockets = [\"{}\"]\n\n[store]\npath = \"{}\"\n\n[notify]\nwebhooks = [\"{}\"]\n\n[[alert]]\nname = \"disk-full\"\nenabled = false\n\n[[alert]]\nname = \"inodes-full\"\nenabled = false\n\n[[alert]]\nname = \"container-unhealthy\"\nfor = \"2s\"\n",
        pm.socket.display(),
        dir.path().join("ctr.db").display(),
        hook.url
    );
    let since = meshmon_dashboard::time::format_rfc3339(meshmon_agent::net::mesh::wall_ms() as i64);
    let agent = Agent::start(dir.path(), &spec);

    let fired = hook.wait_for(1, Duration::from_secs(40), |v| {
        v["rule"] == "container-restarting" && v["event"] == "firing"
    });
    assert_eq!(fired.len(), 1, "container-restarting fired: {fired:?}");
    let series = fired[0].body["series"].as_str().unwrap_or_default();
    assert!(series.contains(&crash), "fired for {crash}: {series}");
    eprintln!("container-restarting: {}", fired[0].body);
    let unhealthy = hook.wait_for(1, Duration::from_secs(20), |v| {
        v["rule"] == "container-unhealthy" && v["event"] == "firing"
    });
    assert_eq!(
        unhealthy.len(),
        1,
        "container-unhealthy fired: {unhealthy:?}"
    );
    let series = unhealthy[0].body["series"].as_str().unwrap_or_default();
    assert!(series.contains(&sick), "fired for {sick}: {series}");
    // Let the CPU readings pile up, then read them back from the store.
    std::thread::sleep(Duration::from_secs(6));
    let cpu = |name: &str| {
        values(
            &agent.config,
            &format!("container.cpu_pct{{container=\"{name}\"}}"),
            &since,
        )
    };
    let (busy_cpu, idle_cpu) = (cpu(&busy), cpu(&idle));
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    eprintln!("busy cpu_pct {busy_cpu:?}\nidle cpu_pct {idle_cpu:?}\nload {load}");
    assert!(
        busy_cpu.len() >= 5 && idle_cpu.len() >= 5,
        "readings stored"
    );
    assert!(median(busy_cpu.clone()) >= 80.0, "busy: {busy_cpu:?}");
    assert!(idle_cpu.iter().all(|v| *v < 5.0), "idle: {idle_cpu:?}");
    let healthy = values(
        &agent.config,
        &format!("container.healthy{{container=\"{idle}\"}}"),
        &since,
    );
    assert_eq!(healthy.last(), Some(&1.0), "idle is healthy: {healthy:?}");
    let mem = values(
        &agent.config,
        &format!("container.mem_bytes{{container=\"{busy}\"}}"),
        &since,
    );
    assert!(mem.last().is_some_and(|m| *m > 0.0), "memory: {mem:?}");
    let running = values(
        &agent.config,
        &format!("container.running{{container=\"{busy}\"}}"),
        &since,
    );
    assert_eq!(running.last(), Some(&1.0));
    drop(pm);
    drop(parent);
}

#[test]
fn without_an_engine_containers_are_found_in_cgroups_by_id() {
    let _serial = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(mut pm) = podman_or_skip(dir.path()) else {
        return;
    };
    let name = pm
        .run("nosock", &[], &["sh", "-c", "while :; do sleep 0.01; done"])
        .expect("run");
    let id = run(pm.cmd().args(["inspect", "-f", "{{.Id}}", &name])).expect("inspect");
    let short = id.trim().get(..12).expect("an id").to_owned();
    let mut c = Containers::new(Options {
        sockets: vec![dir.path().join("no-engine.sock")],
        roots: Roots {
            cgroup: "/sys/fs/cgroup".into(),
            proc: "/proc".into(),
        },
        max: containers::MAX_CONTAINERS,
    });
    c.collect(Instant::now());
    std::thread::sleep(Duration::from_millis(1100));
    let out = c.collect(Instant::now());
    assert!(c.active(), "container cgroups found");
    let get = |m: Metric| {
        let key = SeriesKey::labelled(m, short.clone());
        out.iter().find(|(k, _)| *k == key).map(|s| s.1)
    };
    assert_eq!(get(Metric::ContainerRunning), Some(1.0), "{short}: {out:?}");
    assert!(
        get(Metric::ContainerCpuPct).is_some_and(|v| v < 50.0),
        "{out:?}"
    );
    assert!(get(Metric::ContainerMemBytes).is_some_and(|v| v > 0.0));
    assert!(
        get(Metric::ContainerNetRxBytesPerS).is_some(),
        "its own network namespace: {out:?}"
    );
    assert_eq!(
        get(Metric::ContainerRestarts),
        None,
        "no engine, no restart count"
    );
}

#[test]
fn past_the_bound_containers_fold_into_other() {
    let _serial = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(mut pm) = podman_or_skip(dir.path()) else {
        return;
    };
    let names: Vec<String> = ["a", "b", "c"]
        .iter()
        .map(|n| pm.run(n, &[], &["sleep", "100000"]).expect("run"))
        .collect();
    let mut c = Containers::new(Options {
        sockets: vec![dir.path().join("missing.sock"), pm.socket.clone()],
        roots: Roots {
            cgroup: "/sys/fs/cgroup".into(),
            proc: "/proc".into(),
        },
        max: 2,
    });
    c.collect(Instant::now());
    std::thread::sleep(Duration::from_millis(1100));
    let out = c.collect(Instant::now());
    assert!(c.active());
    let get = |m: Metric, name: &str| {
        let key = SeriesKey::labelled(m, name);
        out.iter().find(|(k, _)| *k == key).map(|s| s.1)
    };
    // Two containers (running first, then by name) have series of their own; the rest, at
    // least one of ours, are folded.
    let own: std::collections::BTreeSet<&str> = out
        .iter()
        .filter(|(k, _)| k.name == Metric::ContainerRunning.name())
        .filter_map(|(k, _)| k.label("container"))
        .filter(|n| *n != containers::OTHER)
        .collect();
    assert_eq!(own.len(), 2, "{out:?}");
    let folded = names.iter().filter(|n| !own.contains(n.as_str())).count();
    assert!(folded >= 1, "{own:?}");
    assert!(
        get(Metric::ContainerRunning, containers::OTHER).is_some_and(|n| n >= 1.0),
        "{out:?}"
    );
    assert!(get(Metric::ContainerMemBytes, containers::OTHER).is_some_and(|m| m > 0.0));
    assert!(get(Metric::ContainerCpuPct, containers::OTHER).is_some());
}
