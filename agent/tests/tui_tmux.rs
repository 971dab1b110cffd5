//! End to end: a headless demo mesh of three real agents, the real `meshmon tui` attached to
//! node 1 inside tmux, keys sent with `tmux send-keys`, screens read with `capture-pane`.
//! tmux runs on a private socket, and the session and the demo are torn down on every path.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

struct Tmux {
    socket: String,
    /// The demo's directory: its agents' logs are printed when a wait times out.
    demo_dir: String,
}

impl Tmux {
    fn cmd(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("tmux runs (CI installs it: .ci/run)")
    }

    fn capture(&self) -> String {
        String::from_utf8_lossy(&self.cmd(&["capture-pane", "-p", "-t", "tui"]).stdout).into_owned()
    }

    fn alive(&self) -> bool {
        self.cmd(&["has-session", "-t", "tui"]).status.success()
    }

    /// Waits until the pane satisfies `ok`; returns the last screen either way.
    fn wait_for(&self, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let screen = self.capture();
            if ok(&screen) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; screen:\n{screen}\n{}",
                self.agent_logs()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

impl Tmux {
    /// The last lines of each demo agent's log, for a failure message.
    fn agent_logs(&self) -> String {
        let mut out = String::new();
        for i in 1..=3 {
            let path = format!("{}/demo-{i}.log", self.demo_dir);
            let text = std::fs::read_to_string(&path).unwrap_or_else(|e| format!("({e})"));
            let lines: Vec<&str> = text.lines().collect();
            out.push_str(&format!("--- {path}, last lines:\n"));
            for l in &lines[lines.len().saturating_sub(20)..] {
                out.push_str(l);
                out.push('\n');
            }
        }
        out
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd(&["kill-server"]);
    }
}

struct Demo(Child);

impl Drop for Demo {
    fn drop(&mut self) {
        // SIGTERM lets the demo stop its agents and remove its directory.
        if let Some(pid) = rustix::process::Pid::from_raw(self.0.id() as i32) {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while matches!(self.0.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn tui_in_tmux_lists_every_host_opens_a_host_and_quits() {
    let exe = env!("CARGO_BIN_EXE_meshmon");
    let mut child = Command::new(exe)
        .args(["demo", "--headless", "--nodes", "3", "--duration", "90s"])
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the demo");
    let stdout = child.stdout.take().expect("demo stdout");
    let _demo = Demo(child);
    let mut dir = String::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("demo output");
        if let Some(d) = line.split("files in ").nth(1) {
            dir = d.trim().to_owned();
        }
        if line.contains("started demo-3") {
            break;
        }
    }
    assert!(!dir.is_empty(), "the demo printed its directory");
    let config = format!("{dir}/demo-1.toml");

    let tmux = Tmux {
        socket: format!("meshmon-test-{}", std::process::id()),
        demo_dir: dir.clone(),
    };
    let run = format!("{exe} tui --config {config}");
    let out = tmux.cmd(&[
        "new-session",
        "-d",
        "-s",
        "tui",
        "-x",
        "120",
        "-y",
        "40",
        &run,
    ]);
    assert!(
        out.status.success(),
        "tmux new-session: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let fleet = tmux.wait_for("every host in the fleet view", |s| {
        ["demo-1", "demo-2", "demo-3"].iter().all(|h| s.contains(h)) && s.contains("3 up")
    });
    assert!(
        fleet.contains("HOST") && fleet.contains("1 Fleet"),
        "{fleet}"
    );
    assert!(
        fleet.contains("history: store"),
        "demo-1 is a dashboard node: history comes from its store\n{fleet}"
    );

    tmux.cmd(&["send-keys", "-t", "tui", "Enter"]);
    let host = tmux.wait_for("the host view", |s| {
        s.contains("STATS 5m") && s.contains("kernel")
    });
    assert!(
        host.contains(" demo-1 up  hops 0"),
        "first row (demo-1) opened:\n{host}"
    );
    assert!(host.contains("┌ CPU"), "charts drawn:\n{host}");

    tmux.cmd(&["send-keys", "-t", "tui", "q"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while tmux.alive() {
        assert!(
            Instant::now() < deadline,
            "the TUI quits on q:\n{}",
            tmux.capture()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
