//! `meshmon self-update` against a local HTTP server on 127.0.0.1: a good release replaces the
//! target; a bad checksum, a truncated download or a lower version change nothing; `--check`
//! only reports. The target is a copy in a temp dir (hidden `--target`), never the test binary.

#![allow(clippy::unwrap_used)]

use sha2::{Digest as _, Sha256};
use std::collections::HashMap;
use std::io::{Read as _, Write as _};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Output;

const OLD: &[u8] = b"old meshmon binary";
const NEW: &[u8] = b"\x7fELF new meshmon binary, version 99";

/// A response: the Content-Length it declares and the bytes it actually sends.
struct Resp {
    declared: usize,
    body: Vec<u8>,
}

/// Serves fixed responses by path, one connection at a time, until the test ends. The
/// routes are built from the port, since the release JSON names absolute URLs.
fn serve(routes: impl FnOnce(u16) -> HashMap<String, Resp>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let routes = routes(port);
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match conn.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            let text = String::from_utf8_lossy(&head);
            let path = text.split_whitespace().nth(1).unwrap_or("/").to_owned();
            let (status, declared, body) = match routes.get(&path) {
                Some(r) => ("200 OK", r.declared, r.body.as_slice()),
                None => ("404 Not Found", 0, &b""[..]),
            };
            let _ = write!(
                conn,
                "HTTP/1.1 {status}\r\nContent-Length: {declared}\r\nConnection: close\r\n\r\n"
            );
            let _ = conn.write_all(body);
            let _ = conn.flush();
        }
    });
    port
}

fn asset_name() -> String {
    format!(
        "meshmon-{}-{}",
        std::env::consts::ARCH,
        std::env::consts::OS
    )
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Starts a server with a release `tag` whose asset is `NEW` (declared size `NEW.len()`);
/// `sum_of` is what SHA256SUMS lists for it and `sent` how many of its bytes really go out.
fn release(tag: &str, sum_of: &[u8], sent: usize) -> u16 {
    let name = asset_name();
    let sums = format!(
        "{}  other-file\n{}  {name}\n",
        hex(&[0; 32]),
        hex(&Sha256::digest(sum_of))
    );
    let tag = tag.to_owned();
    serve(move |port| {
        let base = format!("http://127.0.0.1:{port}/dl");
        let json = serde_json::json!({
            "tag_name": tag,
            "name": "a release",
            "assets": [
                {"name": "meshmon-other-os", "browser_download_url": format!("{base}/nope"), "size": 1},
                {"name": name, "browser_download_url": format!("{base}/{name}"), "size": NEW.len()},
                {"name": "SHA256SUMS", "browser_download_url": format!("{base}/SHA256SUMS"), "size": sums.len()},
            ]
        })
        .to_string();
        let mut routes = HashMap::new();
        routes.insert(
            "/releases/latest".to_owned(),
            Resp {
                declared: json.len(),
                body: json.into_bytes(),
            },
        );
        routes.insert(
            format!("/dl/{name}"),
            Resp {
                declared: NEW.len(),
                body: NEW[..sent].to_vec(),
            },
        );
        routes.insert(
            "/dl/SHA256SUMS".to_owned(),
            Resp {
                declared: sums.len(),
                body: sums.into_bytes(),
            },
        );
        routes
    })
}

fn target_copy(dir: &Path) -> PathBuf {
    let t = dir.join("meshmon");
    std::fs::write(&t, OLD).unwrap();
    std::fs::set_permissions(&t, std::fs::Permissions::from_mode(0o644)).unwrap();
    t
}

fn self_update(port: u16, target: &Path, extra: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_meshmon"))
        .args(["self-update", "--url"])
        .arg(format!("http://127.0.0.1:{port}/releases/latest"))
        .arg("--target")
        .arg(target)
        .args(extra)
        .env_remove("MESHMON_CONFIG")
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn assert_unchanged(target: &Path) {
    assert_eq!(std::fs::read(target).unwrap(), OLD);
    let mode = std::fs::metadata(target).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o644);
    // No temp file left next to it.
    let dir = target.parent().unwrap();
    assert_eq!(std::fs::read_dir(dir).unwrap().count(), 1);
}

#[test]
fn good_release_replaces_the_target() {
    let dir = tempfile::tempdir().unwrap();
    let target = target_copy(dir.path());
    let port = release("v99.0.0", NEW, NEW.len());
    let out = self_update(port, &target, &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("updated 0.1.0 -> v99.0.0"),
        "{}",
        text(&out)
    );
    assert_eq!(std::fs::read(&target).unwrap(), NEW);
    let mode = std::fs::metadata(&target).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o755);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn bad_checksum_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let target = target_copy(dir.path());
    let port = release("v99.0.0", b"something else", NEW.len());
    let out = self_update(port, &target, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("checksum mismatch"), "{}", text(&out));
    assert_unchanged(&target);
}

#[test]
fn truncated_download_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let target = target_copy(dir.path());
    let port = release("v99.0.0", NEW, NEW.len() - 5);
    let out = self_update(port, &target, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_unchanged(&target);
}

#[test]
fn lower_or_equal_version_changes_nothing() {
    for tag in ["v0.0.1", "v0.1.0"] {
        let dir = tempfile::tempdir().unwrap();
        let target = target_copy(dir.path());
        let port = release(tag, NEW, NEW.len());
        let out = self_update(port, &target, &[]);
        assert!(out.status.success(), "{}", text(&out));
        assert!(text(&out).contains("up to date"), "{}", text(&out));
        assert_unchanged(&target);
    }
}

#[test]
fn check_only_reports() {
    let dir = tempfile::tempdir().unwrap();
    let target = target_copy(dir.path());
    let port = release("v99.0.0", NEW, NEW.len());
    let out = self_update(port, &target, &["--check"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("update available: v99.0.0"),
        "{}",
        text(&out)
    );
    assert_unchanged(&target);
}

#[test]
fn no_url_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("meshmon.toml");
    std::fs::write(&cfg, "[update]\nurl = \"\"\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_meshmon"))
        .args(["self-update", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("self-update is off"), "{}", text(&out));
}
