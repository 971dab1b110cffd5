//! The `meshmon` binary's commands that need no mesh: `check-config` over every example config
//! and every bad-config fixture (exit code and error text), and `keygen`.

use std::path::{Path, PathBuf};
use std::process::Command;

fn meshmon() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_meshmon"));
    c.env("NO_COLOR", "1").env_remove("MESHMON_CONFIG");
    c
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Example configs reference /etc/meshmon/mesh.key; check them with that key path swapped for
/// a temporary key so the test needs no root.
#[test]
fn every_example_config_is_valid() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = dir.path().join("mesh.key");
    let out = meshmon()
        .arg("keygen")
        .arg("--out")
        .arg(&key)
        .output()
        .expect("keygen");
    assert!(out.status.success());
    let mut n = 0;
    for entry in std::fs::read_dir(repo().join("config")).expect("config/") {
        let path = entry.expect("entry").path();
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        let text = std::fs::read_to_string(&path)
            .expect("read")
            .replace("/etc/meshmon/mesh.key", &key.display().to_string());
        let copy = dir.path().join(path.file_name().expect("name"));
        std::fs::write(&copy, text).expect("write");
        let out = meshmon()
            .arg("check-config")
            .arg("--config")
            .arg(&copy)
            .output()
            .expect("run");
        assert!(
            out.status.success(),
            "{}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.contains("[node]") && stdout.contains("max_hops"),
            "effective config printed"
        );
        n += 1;
    }
    assert!(n >= 3, "single node, mesh node and dashboard examples");
}

#[test]
fn every_invalid_config_fails_with_exit_2_and_its_message() {
    let dir = repo().join("agent/tests/invalid_configs");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("fixtures") {
        let path = entry.expect("entry").path();
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        let want = std::fs::read_to_string(path.with_extension("err")).expect("matching .err file");
        let out = meshmon()
            .arg("check-config")
            .arg("--config")
            .arg(&path)
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(2), "{}", path.display());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(&path.display().to_string()),
            "names the file: {stderr}"
        );
        assert!(
            stderr.contains(want.trim()),
            "{}: expected '{}' in '{stderr}'",
            path.display(),
            want.trim()
        );
        n += 1;
    }
    assert!(n >= 5);
}

#[test]
fn keygen_prints_a_key_and_writes_mode_0600_without_overwriting() {
    use std::os::unix::fs::PermissionsExt as _;
    let out = meshmon().arg("keygen").output().expect("run");
    assert!(out.status.success());
    let key = String::from_utf8_lossy(&out.stdout);
    assert!(
        meshmon_proto::Key::from_base64(key.trim()).is_ok(),
        "32 bytes of base64: {key}"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("k");
    assert!(
        meshmon()
            .arg("keygen")
            .arg("--out")
            .arg(&path)
            .status()
            .expect("run")
            .success()
    );
    let mode = std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let before = std::fs::read(&path).expect("read");
    let out = meshmon()
        .arg("keygen")
        .arg("--out")
        .arg(&path)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        std::fs::read(&path).expect("read"),
        before,
        "never overwritten"
    );
}

#[test]
fn bad_usage_exits_2() {
    let out = meshmon().arg("no-such-command").output().expect("run");
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn every_command_help_has_examples() {
    let top = meshmon().arg("--help").output().expect("run");
    assert!(String::from_utf8_lossy(&top.stdout).contains("Examples:"));
    for cmd in [
        &["agent"][..],
        &["tui"],
        &["demo"],
        &["status"],
        &["keygen"],
        &["check-config"],
        &["query", "hosts"],
        &["query", "series"],
        &["query", "stats"],
        &["query", "alerts"],
        &["query", "export"],
    ] {
        let out = meshmon().args(cmd).arg("--help").output().expect("run");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("Examples:"),
            "meshmon {cmd:?} --help has no examples:\n{text}"
        );
    }
}
