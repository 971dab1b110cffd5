//! The plain agent (`cargo build --no-default-features`): its dependency tree has none of the
//! dashboard's crates, it meshes with default builds, and it refuses the dashboard role and the
//! dashboard's commands with a message naming the build that has them.
//!
//! The plain binary comes from `$MESHMON_PLAIN_BIN` (CI builds it once) or is built here into
//! `target/plain`.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// The plain binary, built once per test process.
fn plain_bin() -> PathBuf {
    static BIN: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(p) = std::env::var_os("MESHMON_PLAIN_BIN") {
            return PathBuf::from(p);
        }
        let target = workspace().join("target/plain");
        let out = Command::new(cargo())
            .current_dir(workspace())
            .args(["build", "-p", "meshmon-agent", "--no-default-features"])
            // No debug info and no incremental cache: about a minute from cold on 2 cores.
            .env("CARGO_PROFILE_DEV_DEBUG", "0")
            .env("CARGO_INCREMENTAL", "0")
            .arg("--target-dir")
            .arg(&target)
            .output()
            .expect("run cargo build");
        assert!(
            out.status.success(),
            "plain build failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        target.join("debug/meshmon")
    })
    .clone()
}

/// Runs `cmd` to the end, killing it after 20 s (a command that should refuse must not hang
/// the test).
fn output(cmd: &mut Command) -> std::process::Output {
    use std::process::Stdio;
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while child.try_wait().expect("wait").is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!(
                "{cmd:?} still running after 20 s: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("output")
}

/// `cargo tree` of the binary's normal dependencies, one crate a line.
fn cargo_tree(extra: &[&str]) -> String {
    let out = Command::new(cargo())
        .current_dir(workspace())
        .args([
            "tree",
            "-p",
            "meshmon-agent",
            "-e",
            "normal",
            "--prefix",
            "none",
        ])
        .args(extra)
        .output()
        .expect("cargo tree");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_plain_build_links_no_dashboard_crate() {
    let tree = cargo_tree(&["--no-default-features"]);
    assert!(tree.contains("meshmon-agent-core"), "{tree}");
    for banned in [
        "rusqlite",
        "ratatui",
        "crossterm",
        "reqwest",
        "rustls",
        "meshmon-dashboard",
    ] {
        assert!(
            !tree.lines().any(|l| l.starts_with(&format!("{banned} "))),
            "{banned} in the plain build's tree:\n{tree}"
        );
    }
    // And the default build does have them (the check above can fail).
    let tree = cargo_tree(&[]);
    assert!(tree.lines().any(|l| l.starts_with("rusqlite ")), "{tree}");
}

#[test]
fn the_plain_agent_refuses_the_dashboard_and_its_commands() {
    let bin = plain_bin();
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("d.toml");
    std::fs::write(&cfg, "[node]\ndashboard = true\n").expect("write");
    for args in [
        vec!["agent", "--config", cfg.to_str().expect("utf-8")],
        vec!["check-config", "--config", cfg.to_str().expect("utf-8")],
    ] {
        let out = output(Command::new(&bin).args(&args));
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains(
                "node.dashboard: is true but this meshmon was built without the dashboard"
            ) && err.contains("cargo build --release"),
            "{args:?}: {err}"
        );
        assert!(err.ends_with('\n'), "a whole line: {err:?}");
    }
    for (args, feature) in [
        (vec!["tui"], "tui"),
        (vec!["query", "hosts"], "dashboard"),
        (vec!["alerts", "outbox"], "dashboard"),
    ] {
        let out = output(Command::new(&bin).args(&args));
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains(&format!("needs the '{feature}' feature"))
                && err.contains("the default build (cargo build --release) has it"),
            "{args:?}: {err}"
        );
    }
    // What it does run.
    let out = Command::new(&bin)
        .args(["keygen"])
        .output()
        .expect("keygen");
    assert!(out.status.success());
    std::fs::write(&cfg, "[node]\nname = \"p\"\n[[alert]]\nname = \"x\"\n").expect("write");
    let out = output(
        Command::new(&bin)
            .args(["check-config", "--config"])
            .arg(&cfg),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_agent_meshes_with_default_builds() {
    let bin = plain_bin();
    let _serial = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    // default "a" -> plain "p" -> dashboard "d" (default build).
    let mut specs = line(&["a", "p", "d"]);
    specs[2].extra = format!(
        "dashboard = true\n[store]\npath = \"{}\"\n",
        dir.path().join("d.db").display()
    );
    let a = Agent::start(dir.path(), &specs[0]);
    let mut p = Agent::start_exe(dir.path(), &specs[1], &bin);
    let d = Agent::start(dir.path(), &specs[2]);
    wait_all_see(
        &[a.target(), p.target(), d.target()],
        &["a", "d", "p"],
        &null_ring(),
        Duration::from_secs(20),
    )
    .await
    .unwrap_or_else(|e| panic!("not converged: {e}"));
    // The plain agent relays: the dashboard hears "a" only through it.
    let watch = Recorder::attach(&d.target(), &null_ring()).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        watch.count("a") >= 2,
        "frames of 'a' reach 'd' through the plain agent"
    );
    assert!(
        watch.count("p") >= 2,
        "the plain agent's own frames reach 'd'"
    );
    let rss = p.rss_kb();
    eprintln!("plain agent RSS {rss} kB");
    // `status` works against the plain agent.
    let out = output(
        Command::new(&bin)
            .args(["status", "--format", "json", "--config"])
            .arg(dir.path().join("p.toml")),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(json["node"], "p", "{json}");
    assert!(p.alive());
    p.stop();
}
