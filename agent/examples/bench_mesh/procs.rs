//! Real `meshmon agent` processes for the benchmark: a shared key file, one config file per
//! node on a free 127.0.0.1 port, and what /proc says about a running agent (RSS, CPU time,
//! open file descriptors).
//!
//! Every agent is killed (SIGKILL) and reaped when its [`Agent`] is dropped, so a failing or
//! interrupted figure never leaves a process behind; `scripts/bench_mesh.sh` also kills the
//! whole process group on exit as a second line of defence.

use anyhow::{Context, Result};
use meshmon_proto::{Key, Keyring};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where agents run: the binary, a scratch directory for configs and logs, the mesh key.
pub struct Lab {
    pub meshmon: PathBuf,
    pub dir: tempfile::TempDir,
    pub key_file: PathBuf,
    pub keyring: Keyring,
}

impl Lab {
    /// A scratch directory with a fresh mesh key.
    pub fn new(meshmon: PathBuf) -> Result<Lab> {
        let dir = tempfile::tempdir().context("cannot create a scratch directory")?;
        let key = Key::generate()?;
        let key_file = dir.path().join("mesh.key");
        meshmon_agent::config::write_private(&key_file, &format!("{}\n", key.to_base64()))?;
        Ok(Lab {
            meshmon,
            dir,
            key_file,
            keyring: Keyring::new(vec![key])?,
        })
    }

    /// Starts `meshmon agent` named `name` on `port`, dialling `neighbours` (ports).
    pub fn start(&self, name: &str, port: u16, neighbours: &[u16]) -> Result<Agent> {
        let n: Vec<String> = neighbours
            .iter()
            .map(|p| format!("\"127.0.0.1:{p}\""))
            .collect();
        // The normal production settings: 1 s core metrics; the slow optional collectors
        // (docker walk, smartctl) are off so that they cannot disturb the timings.
        let toml = format!(
            "[node]\nname = \"{name}\"\nlisten = \"127.0.0.1:{port}\"\nneighbours = [{}]\n\
             key_file = \"{}\"\n\n[collect]\ninterval = \"1s\"\ndocker_dir = \"\"\nsmartctl = \"\"\n",
            n.join(", "),
            self.key_file.display()
        );
        let config = self.dir.path().join(format!("{name}.toml"));
        std::fs::write(&config, toml)?;
        let log = std::fs::File::create(self.dir.path().join(format!("{name}.log")))?;
        let child = Command::new(&self.meshmon)
            .args(["agent", "--config"])
            .arg(&config)
            .env("NO_COLOR", "1")
            .env("MESHMON_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot start '{}'", self.meshmon.display()))?;
        let agent = Agent {
            name: name.to_owned(),
            port,
            child,
        };
        agent
            .wait_listening(Duration::from_secs(10))
            .with_context(|| format!("its log:\n{}", self.log_of(name)))?;
        Ok(agent)
    }

    /// The log an agent wrote, for error messages.
    pub fn log_of(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("{name}.log"))).unwrap_or_default()
    }
}

/// A running agent; SIGKILLed and reaped on drop.
pub struct Agent {
    pub name: String,
    pub port: u16,
    child: Child,
}

impl Agent {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn target(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn wait_listening(&self, limit: Duration) -> Result<()> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        anyhow::bail!(
            "agent '{}' does not listen on port {}",
            self.name,
            self.port
        )
    }

    /// Resident set size in KiB (`VmRSS` of /proc/PID/status).
    pub fn rss_kib(&self) -> Result<u64> {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))?;
        s.lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .context("no VmRSS line")
    }

    /// User plus system CPU time of all its threads, in seconds (/proc/PID/stat).
    pub fn cpu_s(&self) -> Result<f64> {
        let s = std::fs::read_to_string(format!("/proc/{}/stat", self.pid()))?;
        // Fields after the command name (which may contain spaces) start at field 3.
        let rest = s.rsplit_once(')').map(|(_, r)| r).context("odd stat")?;
        let f: Vec<&str> = rest.split_whitespace().collect();
        let ticks = |i: usize| -> Result<f64> {
            Ok(f.get(i).context("short stat")?.parse::<u64>()? as f64)
        };
        Ok((ticks(11)? + ticks(12)?) / clock_ticks())
    }

    /// Open file descriptors (sockets included).
    pub fn fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid())).map_or(0, |d| d.count())
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// USER_HZ, the unit of /proc CPU times: `getconf CLK_TCK`, else 100 (its value on every
/// mainstream Linux architecture).
fn clock_ticks() -> f64 {
    static HZ: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *HZ.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// A free TCP port on 127.0.0.1 (bound, then released).
pub fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// `n` distinct free ports.
pub fn free_ports(n: usize) -> Result<Vec<u16>> {
    // Hold every listener until all are chosen so that no port is handed out twice.
    let held: Vec<std::net::TcpListener> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0"))
        .collect::<std::io::Result<_>>()?;
    held.iter().map(|l| Ok(l.local_addr()?.port())).collect()
}

/// Path of the `meshmon` binary next to this example (`target/release/meshmon`).
pub fn default_meshmon() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let dir: &Path = exe.parent()?.parent()?;
    let p = dir.join("meshmon");
    p.exists().then_some(p)
}

/// Waits until every node at `targets` lists `hosts` hosts heard within the last 3 s.
pub async fn wait_converged(
    targets: &[String],
    hosts: usize,
    lab: &Lab,
    limit: Duration,
) -> Result<()> {
    let start = Instant::now();
    let mut last = String::new();
    while start.elapsed() < limit {
        let mut all = true;
        for t in targets {
            let status =
                meshmon_agent::viewer::fetch_status(t, lab.keyring.clone(), Duration::from_secs(3))
                    .await;
            let now = meshmon_agent::net::mesh::wall_ms();
            let fresh = status.as_ref().map_or(0, |s| {
                s.hosts
                    .iter()
                    .filter(|h| now.saturating_sub(h.last_seen_ms) <= 3_000)
                    .count()
            });
            if fresh < hosts {
                last = format!("'{t}' hears {fresh} of {hosts} hosts");
                all = false;
                break;
            }
        }
        if all {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    anyhow::bail!("the mesh did not converge in {limit:?}: {last}")
}

/// The 1-minute load average (from /proc/loadavg), to judge how noisy a run was.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".into())
}
