//! `meshmon demo`: N agents of this machine on 127.0.0.1 with distinct names and ports, linked
//! in a ring with a chord, node 1 in the dashboard role with a temporary store and a generated
//! key. Every child process and the temporary directory are removed on every exit path
//! (normal end, Ctrl-C, SIGTERM, error, panic), by [`DemoMesh`]'s `Drop`.
//!
//! Not here: the agents themselves (they are real `meshmon agent` processes) or the live view
//! (the viewer module; the TUI once it exists).

use crate::viewer;
use anyhow::Context as _;
use meshmon_proto::payload::Status;
use meshmon_proto::{Key, Keyring};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A running demo mesh. Dropping it kills the agents and removes the temporary directory.
pub struct DemoMesh {
    /// Node names, in order.
    pub names: Vec<String>,
    /// `127.0.0.1:port` of each node.
    pub targets: Vec<String>,
    /// The mesh key.
    pub keyring: Keyring,
    /// Temporary directory with configs, key, logs and the store.
    pub dir: PathBuf,
    /// The web dashboard of node 1 (feature `web`): loopback, a free port.
    pub web_url: Option<String>,
    children: Vec<Child>,
    _tmp: tempfile::TempDir,
}

/// `n` distinct free TCP ports on 127.0.0.1, checked by binding them. They are drawn below
/// the kernel's ephemeral range where it leaves room (from port 20000 up): the agents'
/// own outgoing connections take ephemeral ports while they start, and one could take a
/// port the kernel had just handed out here before its agent binds it.
pub fn free_ports(n: usize) -> anyhow::Result<Vec<u16>> {
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|t| t.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    let mut ports: Vec<u16> = Vec::with_capacity(n);
    let mut tries = 0;
    while ports.len() < n {
        let port = if ephemeral_low > 21000 && tries < 64 * n {
            tries += 1;
            rand::random_range(20000..ephemeral_low)
        } else {
            0
        };
        let Ok(l) = std::net::TcpListener::bind(("127.0.0.1", port)) else {
            anyhow::ensure!(port != 0, "cannot find a free port on 127.0.0.1");
            continue;
        };
        let got = l.local_addr()?.port();
        if !ports.contains(&got) {
            ports.push(got);
        }
    }
    Ok(ports)
}

/// Which nodes node `i` (0-based) dials: the next one around the ring, and node 0 also the
/// one half-way round (the chord), when there are at least four nodes.
pub fn neighbours_of(i: usize, n: usize) -> Vec<usize> {
    let mut v = Vec::new();
    if n >= 2 && !(n == 2 && i == 1) {
        v.push((i + 1) % n);
    }
    if i == 0 && n >= 4 {
        v.push(n / 2);
    }
    v
}

impl DemoMesh {
    /// Writes configs and starts `n` agents (the `meshmon` binary at `exe`).
    pub fn start(exe: &std::path::Path, n: usize) -> anyhow::Result<DemoMesh> {
        anyhow::ensure!((1..=64).contains(&n), "--nodes must be between 1 and 64");
        let tmp = tempfile::Builder::new()
            .prefix("meshmon-demo-")
            .tempdir()
            .context("cannot create a temporary directory")?;
        let dir = tmp.path().to_path_buf();
        let key = Key::generate()?;
        let key_path = dir.join("mesh.key");
        crate::config::write_private(&key_path, &format!("{}\n", key.to_base64()))
            .with_context(|| format!("cannot write '{}'", key_path.display()))?;
        let keyring = Keyring::new(vec![key])?;
        let mut ports = free_ports(n + 1)?;
        let web = ports.pop();
        let names: Vec<String> = (1..=n).map(|i| format!("demo-{i}")).collect();
        let web_port = web.filter(|_| cfg!(feature = "web"));
        let mut mesh = DemoMesh {
            web_url: web_port.map(|p| format!("http://127.0.0.1:{p}/")),
            targets: ports.iter().map(|p| format!("127.0.0.1:{p}")).collect(),
            names,
            keyring,
            dir: dir.clone(),
            children: Vec::new(),
            _tmp: tmp,
        };
        for i in 0..n {
            let neighbours: Vec<String> = neighbours_of(i, n)
                .into_iter()
                .map(|j| format!("\"127.0.0.1:{}\"", ports[j]))
                .collect();
            let dashboard = i == 0;
            let web = match web_port {
                Some(p) if dashboard => format!(
                    "\n[web]\nlisten = \"127.0.0.1:{p}\"\npublic_status = true\ntitle = \"meshmon demo\"\n"
                ),
                _ => String::new(),
            };
            let mut config = format!(
                "[node]\nname = \"{}\"\nlisten = \"127.0.0.1:{}\"\nneighbours = [{}]\ndashboard = {dashboard}\n\
                 key_file = \"{}\"\ntags = [\"demo\"]\n\n[collect]\ninterval = \"1s\"\ndocker_dir = \"\"\nsmartctl = \"\"\n\n\
                 [store]\npath = \"{}\"\nflush_interval = \"5s\"\n",
                mesh.names[i],
                ports[i],
                neighbours.join(", "),
                key_path.display(),
                dir.join("store.db").display(),
            );
            config.push_str(&web);
            let cfg_path = dir.join(format!("{}.toml", mesh.names[i]));
            std::fs::write(&cfg_path, config)
                .with_context(|| format!("cannot write '{}'", cfg_path.display()))?;
            let log = std::fs::File::create(dir.join(format!("{}.log", mesh.names[i])))
                .context("cannot create a log file")?;
            let child = Command::new(exe)
                .arg("agent")
                .arg("--config")
                .arg(&cfg_path)
                .env("NO_COLOR", "1")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .with_context(|| format!("cannot start '{}'", exe.display()))?;
            mesh.children.push(child);
        }
        Ok(mesh)
    }

    /// Process ids of the agents.
    pub fn pids(&self) -> Vec<u32> {
        self.children.iter().map(Child::id).collect()
    }

    /// Names of agents that have exited (crashed) so far.
    pub fn exited(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        for (c, n) in self.children.iter_mut().zip(&self.names) {
            if !matches!(c.try_wait(), Ok(None)) {
                out.push(n.clone());
            }
        }
        out
    }

    /// The last lines of an agent's log, for error messages.
    pub fn log_tail(&self, name: &str) -> String {
        let text =
            std::fs::read_to_string(self.dir.join(format!("{name}.log"))).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(5)..].join("\n")
    }

    /// The status of node `i`.
    pub async fn status(&self, i: usize) -> anyhow::Result<Status> {
        viewer::fetch_status(
            &self.targets[i],
            self.keyring.clone(),
            Duration::from_secs(3),
        )
        .await
    }
}

impl Drop for DemoMesh {
    fn drop(&mut self) {
        for c in &mut self.children {
            // SIGTERM first so agents flush; SIGKILL whatever is left.
            let pid = i32::try_from(c.id())
                .ok()
                .and_then(rustix::process::Pid::from_raw);
            if let Some(pid) = pid {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
            }
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(3);
        for c in &mut self.children {
            while matches!(c.try_wait(), Ok(None)) && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Hosts a node heard within the last 5 s.
pub fn fresh(status: &Status) -> Vec<String> {
    let now = crate::net::mesh::wall_ms();
    let mut v: Vec<String> = status
        .hosts
        .iter()
        .filter(|h| now.saturating_sub(h.last_seen_ms) <= 5_000)
        .map(|h| h.name.clone())
        .collect();
    v.sort();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_ports_are_distinct_and_bindable() {
        let ports = free_ports(8).expect("ports");
        let mut sorted = ports.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), 8, "{ports:?}");
        for p in ports {
            std::net::TcpListener::bind(("127.0.0.1", p)).expect("still free");
        }
    }

    #[test]
    fn ring_with_chord() {
        assert_eq!(neighbours_of(0, 5), vec![1, 2]);
        assert_eq!(neighbours_of(4, 5), vec![0]);
        assert_eq!(neighbours_of(0, 2), vec![1]);
        assert_eq!(
            neighbours_of(1, 2),
            Vec::<usize>::new(),
            "one link between two nodes"
        );
        assert_eq!(neighbours_of(0, 1), Vec::<usize>::new());
    }
}
