//! `meshmon demo`: the headless run of the issue (5 nodes, 15 s, exit 0), and cleanup of every
//! agent process and temporary file, also when the demo is stopped by a signal.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn pids_and_dir(stdout: &str) -> (Vec<i32>, String) {
    let pids = stdout
        .lines()
        .filter_map(|l| l.split("(pid ").nth(1))
        .filter_map(|r| r.split(')').next())
        .filter_map(|p| p.parse().ok())
        .collect();
    let dir = stdout
        .lines()
        .find_map(|l| l.split("files in ").nth(1))
        .unwrap_or_default()
        .trim()
        .to_owned();
    (pids, dir)
}

fn alive(pid: i32) -> bool {
    // A zombie still has /proc/PID until reaped; check its state.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| s.split_whitespace().nth(2).is_none_or(|st| st != "Z"))
        .unwrap_or(false)
}

#[test]
fn headless_demo_of_five_nodes_exits_0_and_cleans_up() {
    let out = Command::new(env!("CARGO_BIN_EXE_meshmon"))
        .args(["demo", "--headless", "--nodes", "5", "--duration", "15s"])
        .env("NO_COLOR", "1")
        .output()
        .expect("run demo");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "demo failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for i in 1..=5 {
        assert!(
            stdout.contains(&format!("demo-{i}: saw 5/5 hosts")),
            "{stdout}"
        );
    }
    // Then the store's host table of the dashboard node: every host, up.
    let table = stdout.split("store of demo-1").nth(1).unwrap_or_default();
    for i in 1..=5 {
        assert!(
            table.contains(&format!("demo-{i}  up")),
            "store table lacks demo-{i}:\n{stdout}"
        );
    }
    let (pids, dir) = pids_and_dir(&stdout);
    assert_eq!(pids.len(), 5);
    assert!(pids.iter().all(|p| !alive(*p)), "every agent stopped");
    assert!(
        !dir.is_empty() && !std::path::Path::new(&dir).exists(),
        "temporary directory removed: {dir}"
    );
}

#[test]
fn a_demo_stopped_by_sigterm_leaves_nothing_behind() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_meshmon"))
        .args(["demo", "--headless", "--nodes", "3", "--duration", "60s"])
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn demo");
    let mut stdout = child.stdout.take().expect("stdout");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut stdout, &mut s);
        s
    });
    std::thread::sleep(Duration::from_secs(3));
    let pid = rustix::process::Pid::from_raw(child.id() as i32).expect("pid");
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).expect("signal");
    let start = Instant::now();
    let status = child.wait().expect("wait");
    assert!(start.elapsed() < Duration::from_secs(6), "stops promptly");
    assert!(
        !status.success(),
        "an interrupted headless demo does not report success"
    );
    let stdout = reader.join().expect("reader");
    let (pids, dir) = pids_and_dir(&stdout);
    assert_eq!(pids.len(), 3, "{stdout}");
    assert!(pids.iter().all(|p| !alive(*p)), "every agent stopped");
    assert!(
        !std::path::Path::new(&dir).exists(),
        "temporary directory removed: {dir}"
    );
}
