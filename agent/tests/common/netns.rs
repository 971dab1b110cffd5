//! Network namespaces for process tests whose faults must be real: every `meshmon agent` runs
//! in a namespace of its own (`ip netns exec`), plugged by veth pairs into bridges that live in
//! one more namespace (the "switch"), with addresses that exist only inside those namespaces.
//! Nothing is created in the host's own network namespace. A cut is `ip link set ... down` on
//! a real interface, so TCP connections stall exactly as they would on a pulled cable.
//!
//! [`Lab`] owns the namespaces and the agents started in them; dropping it (also on a panic)
//! kills the agents and deletes every namespace. Namespace names are `mmt-TAG-PID-...`, so two
//! test processes never collide, and [`Lab::new`] removes what an earlier, killed run of the
//! same tag left behind (namespaces whose PID is no longer running, and the processes in them).
//!
//! Needs root and `ip` (iproute2): without them [`Lab::new`] fails the test when `CI=true`
//! and skips it with a loud message otherwise.
//!
//! Not here: the scenarios (`agent/tests/netns.rs`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The port every node listens on inside its namespace (namespaces have their own ports).
pub const PORT: u16 = 6130;

/// Runs `ip ARGS`; `Err` with ip's own message when it fails.
pub fn ip(args: &[&str]) -> Result<String, String> {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run 'ip {}': {e}", args.join(" ")))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "'ip {}' failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// `ip ARGS`, panicking with ip's message: the lab cannot be built without it.
fn ip_ok(args: &[&str]) -> String {
    ip(args).unwrap_or_else(|e| panic!("{e}"))
}

/// Why this machine cannot run namespace tests, if it cannot.
fn missing() -> Option<String> {
    if !rustix::process::geteuid().is_root() {
        return Some("namespace tests need root (ip netns add)".into());
    }
    if let Err(e) = ip(&["-V"]) {
        return Some(format!(
            "namespace tests need 'ip' from Debian's iproute2: {e}"
        ));
    }
    None
}

/// Whether this is CI (`CI=true`, as GitHub, GitLab and `.ci/run` set it).
fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && v != "false")
}

/// Fails the test under CI, else skips it with a loud message.
fn skip_or_fail(why: &str) -> Option<Lab> {
    if in_ci() {
        panic!(
            "{why}; CI=true, so this is a failure, not a skip (run CI as root with iproute2 installed: .ci/run installs it)"
        );
    }
    eprintln!(
        "\n!!!!!!!! SKIPPED: {why}. This test did NOT run. (With CI=true it fails instead.) !!!!!!!!\n"
    );
    None
}

/// A running `meshmon agent` inside a namespace; killed with SIGKILL when dropped.
pub struct NsAgent {
    pub name: String,
    pub ns: String,
    pub config: PathBuf,
    child: Child,
}

impl NsAgent {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for NsAgent {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Namespaces, bridges, veth pairs, and the agents in them; removed on drop.
pub struct Lab {
    prefix: String,
    switch: String,
    namespaces: Vec<String>,
    veths: usize,
    pub agents: Vec<NsAgent>,
}

impl Lab {
    /// A lab whose namespace names start with `mmt-TAG-PID-` (keep `tag` short). `None` (after
    /// a loud message) where root or `ip` is missing outside CI; in CI that is a failure.
    pub fn new(tag: &str) -> Option<Lab> {
        if let Some(why) = missing() {
            return skip_or_fail(&why);
        }
        let base = format!("mmt-{tag}-");
        clean_stale(&base);
        let prefix = format!("{base}{}-", std::process::id());
        let switch = format!("{prefix}sw");
        // A leftover of this very name (a PID reused after a killed run) goes first.
        let _ = ip(&["netns", "del", &switch]);
        // Root without the right to make namespaces (a container): like no root at all.
        if let Err(e) = ip(&["netns", "add", &switch]) {
            return skip_or_fail(&format!("namespace tests cannot create a namespace: {e}"));
        }
        let lab = Lab {
            namespaces: vec![switch.clone()],
            switch,
            prefix,
            veths: 0,
            agents: Vec::new(),
        };
        ip_ok(&["-n", &lab.switch, "link", "set", "lo", "up"]);
        Some(lab)
    }

    fn add_ns_named(&mut self, full: &str) {
        // A leftover of this very name (a PID reused after a killed run) goes first.
        let _ = ip(&["netns", "del", full]);
        ip_ok(&["netns", "add", full]);
        self.namespaces.push(full.to_owned());
        ip_ok(&["-n", full, "link", "set", "lo", "up"]);
    }

    /// Creates the namespace of a node; returns its full name.
    pub fn add_ns(&mut self, name: &str) -> String {
        let full = format!("{}{name}", self.prefix);
        self.add_ns_named(&full);
        full
    }

    /// A bridge (a switch without STP, forwarding at once) in the switch namespace.
    pub fn bridge(&mut self, br: &str) {
        ip_ok(&["-n", &self.switch, "link", "add", br, "type", "bridge"]);
        ip_ok(&["-n", &self.switch, "link", "set", br, "up"]);
    }

    /// Plugs namespace `ns` into bridge `br`: a veth pair whose end `ifname` in `ns` gets
    /// `cidr` (e.g. `10.77.0.3/24`) and whose other end is a port of `br`. Both ends up.
    pub fn plug(&mut self, ns: &str, ifname: &str, br: &str, cidr: &str) {
        self.veths += 1;
        let port = format!("v{}", self.veths);
        ip_ok(&[
            "-n",
            &self.switch,
            "link",
            "add",
            &port,
            "type",
            "veth",
            "peer",
            "name",
            ifname,
            "netns",
            ns,
        ]);
        ip_ok(&["-n", &self.switch, "link", "set", &port, "master", br]);
        ip_ok(&["-n", &self.switch, "link", "set", &port, "up"]);
        ip_ok(&["-n", ns, "addr", "add", cidr, "dev", ifname]);
        ip_ok(&["-n", ns, "link", "set", ifname, "up"]);
    }

    /// Joins two bridges by a veth pair (a trunk cable); returns the name of its end on `a`,
    /// which [`Lab::cut_trunk`] sets down and up.
    pub fn trunk(&mut self, a: &str, b: &str) -> String {
        self.veths += 1;
        let (ea, eb) = (format!("t{}a", self.veths), format!("t{}b", self.veths));
        ip_ok(&[
            "-n",
            &self.switch,
            "link",
            "add",
            &ea,
            "type",
            "veth",
            "peer",
            "name",
            &eb,
        ]);
        for (end, br) in [(&ea, a), (&eb, b)] {
            ip_ok(&["-n", &self.switch, "link", "set", end, "master", br]);
            ip_ok(&["-n", &self.switch, "link", "set", end, "up"]);
        }
        ea
    }

    /// `ip link set IFNAME up|down` in namespace `ns`.
    pub fn set_link(&self, ns: &str, ifname: &str, up: bool) {
        ip_ok(&[
            "-n",
            ns,
            "link",
            "set",
            ifname,
            if up { "up" } else { "down" },
        ]);
    }

    /// Sets a trunk end (in the switch namespace) up or down.
    pub fn cut_trunk(&self, end: &str, up: bool) {
        self.set_link(&self.switch.clone(), end, up);
    }

    /// Writes `dir/NAME.toml` and starts `meshmon agent` (the test's own build) in `ns` with
    /// it, logging to `dir/NAME.log`. Returns the agent's index in [`Lab::agents`].
    pub fn start(&mut self, dir: &Path, ns: &str, name: &str, toml: &str) -> usize {
        let config = dir.join(format!("{name}.toml"));
        std::fs::write(&config, toml).expect("write config");
        let log = std::fs::File::create(dir.join(format!("{name}.log"))).expect("log file");
        // `ip netns exec` enters the namespace and execs the program: the child is meshmon.
        let child = Command::new("ip")
            .args(["netns", "exec", ns])
            .arg(exe())
            .args(["agent", "--config"])
            .arg(&config)
            .env("NO_COLOR", "1")
            .env("MESHMON_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn ip netns exec meshmon");
        self.agents.push(NsAgent {
            name: name.to_owned(),
            ns: ns.to_owned(),
            config,
            child,
        });
        self.agents.len() - 1
    }

    /// `meshmon status --format json` of agent `i`, run in its namespace, as the operator
    /// would on that host.
    pub fn status(&self, i: usize, timeout: Duration) -> Result<NodeView, String> {
        let a = &self.agents[i];
        let out = Command::new("ip")
            .args(["netns", "exec", &a.ns])
            .arg(exe())
            .args(["status", "--format", "json", "--timeout"])
            .arg(format!("{}ms", timeout.as_millis()))
            .arg("--config")
            .arg(&a.config)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run meshmon status: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "{}: meshmon status: {}",
                a.name,
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        let v: serde_json::Value = serde_json::from_slice(&out.stdout)
            .map_err(|e| format!("{}: status is not JSON: {e}", a.name))?;
        NodeView::from_json(&v).ok_or_else(|| format!("{}: unexpected status JSON: {v}", a.name))
    }

    /// [`Lab::status`] of several agents at once (one thread each); the instant each answer
    /// was taken is the end of its call.
    pub fn statuses(
        &self,
        which: &[usize],
        timeout: Duration,
    ) -> Vec<(usize, Instant, Result<NodeView, String>)> {
        std::thread::scope(|s| {
            let handles: Vec<_> = which
                .iter()
                .map(|&i| {
                    s.spawn(move || {
                        let r = self.status(i, timeout);
                        (i, Instant::now(), r)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("status thread"))
                .collect()
        })
    }

    /// Kills the agents, then deletes every namespace (and with them every veth and bridge).
    fn teardown(&mut self) {
        self.agents.clear();
        for ns in self.namespaces.drain(..).rev() {
            if let Err(e) = ip(&["netns", "del", &ns]) {
                eprintln!("netns lab: {e}");
            }
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.teardown();
    }
}

/// The `meshmon` binary cargo built for this test.
pub fn exe() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_meshmon"))
}

/// Deletes namespaces named `BASE<pid>-...` whose test process is gone, killing what still
/// runs in them (agents of a run that was killed before its guard could clean up).
fn clean_stale(base: &str) {
    let Ok(list) = ip(&["netns", "list"]) else {
        return;
    };
    for line in list.lines() {
        let Some(name) = line.split_whitespace().next() else {
            continue;
        };
        let Some(rest) = name.strip_prefix(base) else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        if let Ok(pids) = ip(&["netns", "pids", name]) {
            for p in pids
                .split_whitespace()
                .filter_map(|p| p.parse::<i32>().ok())
            {
                if let Some(p) = rustix::process::Pid::from_raw(p) {
                    let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
                }
            }
        }
        match ip(&["netns", "del", name]) {
            Ok(_) => eprintln!("netns lab: removed '{name}', left by a killed run"),
            Err(e) => eprintln!("netns lab: cannot remove stale '{name}': {e}"),
        }
    }
}

/// What `meshmon status --format json` says about one host.
#[derive(Debug, Clone, PartialEq)]
pub struct HostView {
    /// `up` or `down`.
    pub status: String,
    pub last_seen_ms_ago: u64,
}

/// What `meshmon status --format json` says about one link.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkView {
    pub peer: String,
    pub state: String,
    pub role: String,
}

/// One node's `meshmon status --format json`: the hosts it hears and its links.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeView {
    pub hosts: BTreeMap<String, HostView>,
    pub links: Vec<LinkView>,
}

impl NodeView {
    fn from_json(v: &serde_json::Value) -> Option<NodeView> {
        let mut hosts = BTreeMap::new();
        for h in v.get("hosts")?.as_array()? {
            hosts.insert(
                h.get("host")?.as_str()?.to_owned(),
                HostView {
                    status: h.get("status")?.as_str()?.to_owned(),
                    last_seen_ms_ago: h.get("last_seen_ms_ago")?.as_u64()?,
                },
            );
        }
        let mut links = Vec::new();
        for l in v.get("links")?.as_array()? {
            links.push(LinkView {
                peer: l.get("peer")?.as_str()?.to_owned(),
                state: l.get("state")?.as_str()?.to_owned(),
                role: l.get("role")?.as_str()?.to_owned(),
            });
        }
        Some(NodeView { hosts, links })
    }

    /// Whether `host` is listed as `up`.
    pub fn up(&self, host: &str) -> bool {
        self.hosts.get(host).is_some_and(|h| h.status == "up")
    }

    /// Whether `host` is listed as `down` (a host never heard of is not listed at all).
    pub fn down(&self, host: &str) -> bool {
        self.hosts.get(host).is_some_and(|h| h.status == "down")
    }

    /// Whether this node has a node link in state `up` to `peer`.
    pub fn linked_to(&self, peer: &str) -> bool {
        self.links
            .iter()
            .any(|l| l.peer == peer && l.role == "node" && l.state == "up")
    }
}
